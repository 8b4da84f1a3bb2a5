"""The training engine: one step changes every param, 1 vs 8 devices, kill/resume, NaN, Ctrl-C."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_on_cpu_devices

from seqjax import SeqjaxError, configs
from seqjax.data.batching import ArrayBatches, StreamBatches
from seqjax.nn.charlm import CharLM, lm_loss
from seqjax.train import loop
from seqjax.train.callbacks import Callback
from seqjax.train.checkpoint import Checkpointer
from seqjax.train.state import TrainState, make_optimizer

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("the quick brown fox jumps over the lazy dog. " * 8 + "supposing that truth is a woman. ") * 12


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(TEXT)
    return p


def test_one_step_changes_every_param():
    m = CharLM(20, layers=2)
    p = m.init(jax.random.PRNGKey(0), jnp.zeros((2, 8), jnp.int32))
    st = TrainState.create(p, make_optimizer("rmsprop", 0.01), jax.random.PRNGKey(1))
    before = jax.device_get(st.params)
    batch = {"ids": np.random.default_rng(0).integers(0, 20, (16, 8)).astype(np.int32),
             "labels": np.arange(16, dtype=np.int32) % 20, "weights": np.ones(16, np.float32)}
    st, sums = loop.make_train_step(lm_loss(m, "last"))(st, batch)
    assert int(st.step) == 1 and float(sums["count"]) == 16
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(before), jax.tree.leaves(st.params)):
        assert not np.allclose(a, b), f"{path} did not change"


def _run(args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "seqjax.cli", *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, **kw)


def _tiny(text_file, out, *extra):
    return ["charlm", "train", "--text", str(text_file), "--out", str(out), "--epochs", "2",
            "--sample-length", "20", "--markov-orders", "1", "--hidden", "32", "--batch-size", "64",
            "--results", str(out / "r.json"), *extra]


def _one_epoch_history(text_file, out, *prefix, env=None) -> dict:
    r = _run([*prefix, *_tiny(text_file, out, "--epochs", "1")], env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads((out / "r.json").read_text())


ONE_STEP_ON_N_DEVICES = """
import sys, jax, jax.numpy as jnp, numpy as np
from seqjax.nn.charlm import CharLM, lm_loss
from seqjax.train import loop, parallel
from seqjax.train.state import TrainState, make_optimizer
mesh = parallel.make_mesh()
assert mesh.devices.size == 8
m = CharLM(20, hidden=16)
fresh = lambda: TrainState.create(m.init(jax.random.PRNGKey(0), jnp.zeros((2, 8), jnp.int32)),
                                  make_optimizer("sgd", 0.5), jax.random.PRNGKey(1))
rng = np.random.default_rng(0)
weights = np.ones(32, np.float32)
weights[21:] = 0.0  # padding rows: devices 0-4 hold 4 real rows, device 5 one, devices 6-7 none
batch = {"ids": rng.integers(0, 20, (32, 8)).astype(np.int32), "labels": rng.integers(0, 20, 32).astype(np.int32),
         "weights": weights}
one, s1 = loop.make_train_step(lm_loss(m, "last"))(fresh(), batch)
many, s8 = loop.make_train_step(lm_loss(m, "last"), mesh)(parallel.replicate(fresh(), mesh),
                                                          parallel.shard_batch(batch, mesh))
err = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12)) for a, b in
          zip(jax.tree.leaves(jax.device_get(one.params)), jax.tree.leaves(jax.device_get(many.params))))
delta = max(float(np.max(np.abs(a - b))) for a, b in
            zip(jax.tree.leaves(jax.device_get(one.params)), jax.tree.leaves(jax.device_get(fresh().params))))
print(err, delta, float(s1["count"]), float(s8["count"]), float(s1["loss"]), float(s8["loss"]))
"""


def test_one_sgd_step_on_8_devices_equals_one_device_with_uneven_shards():
    """The tight check: one plain-SGD step (no optimizer that rescales the gradient) over 8
    devices whose real-row counts differ (4, 4, 4, 4, 4, 1, 0, 0) gives the one-device params
    to float32 rounding; a gradient averaged per device instead of per row would be off by
    far more, and so would a psum that double-counts."""
    r = run_on_cpu_devices(ONE_STEP_ON_N_DEVICES, 8)
    assert r.returncode == 0, r.stderr[-2000:]
    err, delta, c1, c8, l1, l8 = map(float, r.stdout.split())
    assert delta > 1e-3, "the step did not move the params; the comparison would be empty"
    assert c1 == c8 == 21.0
    assert abs(l1 - l8) <= 1e-6 * abs(l1), (l1, l8)
    assert err <= 1e-5, err


def test_device_counts_give_the_same_losses(tmp_path, text_file):
    """8 fake devices (XLA_FLAGS) and ``--cpu-devices 2`` train as ``--cpu-devices 1`` does, end to end
    through the CLI. RMSprop divides by a running RMS that starts near zero, so float32
    reduction-order noise grows over an epoch's 22 steps: CI measured a relative train-loss
    difference of 1.5e-5 for 8 devices. The bound is 2e-4; exactness is checked per step by
    the test above."""
    h1 = _one_epoch_history(text_file, tmp_path / "one", "--cpu-devices", "1")
    h8 = _one_epoch_history(text_file, tmp_path / "eight", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
    h2 = _one_epoch_history(text_file, tmp_path / "two", "--cpu-devices", "2")
    assert len(h1["machine"]["devices"]) == 1
    assert h2["command"] == "seqjax " + shlex.join(["--cpu-devices", "2", *_tiny(text_file, tmp_path / "two", "--epochs", "1")])
    for hn, n in ((h8, 8), (h2, 2)):
        assert len(hn["machine"]["devices"]) == n
        for a, b in zip(h1["history"], hn["history"]):
            for k in ("train_loss", "heldout_loss"):
                assert abs(a[k] - b[k]) <= 2e-4 * abs(a[k]), (n, k, a[k], b[k])


def _final_params(out):
    m = CharLM(len(set(TEXT)), hidden=32)
    cfg = configs.CharLMConfig(hidden=32, batch_size=64)
    from seqjax.tasks.charlm import init_state
    ck = Checkpointer(out / "checkpoints")
    state, meta = ck.restore(init_state(cfg, m, 1))
    ck.close()
    return jax.device_get(state.params), meta


def _wait_for_checkpoint(out, proc, at_least):
    deadline = time.time() + 240
    while time.time() < deadline:
        steps = [int(p.name) for p in (out / "checkpoints").glob("[0-9]*") if p.name.isdigit()]
        if steps and max(steps) >= at_least:
            return max(steps)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_sigkill_then_resume_is_bitwise_identical(tmp_path, text_file):
    full = _run(_tiny(text_file, tmp_path / "full", "--ckpt-every", "3"))
    assert full.returncode == 0, full.stderr[-2000:]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "seqjax.cli", *_tiny(text_file, out, "--ckpt-every", "3")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(out, proc, 6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps_per_epoch = len(json.loads((tmp_path / "full" / "r.json").read_text())["history"]) and \
        json.loads((tmp_path / "full" / "r.json").read_text())["history"][0]["step"]
    killed_at = max(int(p.name) for p in (out / "checkpoints").glob("[0-9]*") if p.name.isdigit())
    assert killed_at < 2 * steps_per_epoch  # really interrupted
    resumed = _run(_tiny(text_file, out, "--ckpt-every", "3", "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    a, meta_a = _final_params(tmp_path / "full")
    b, meta_b = _final_params(out)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.array_equal(x, y)
    assert [h["train_loss"] for h in meta_a["history"]] == [h["train_loss"] for h in meta_b["history"]]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_saves_a_checkpoint(tmp_path, text_file, sig):
    """Ctrl-C, and SIGTERM (what Colab, SLURM and ``timeout`` send), finish the step and save."""
    out = tmp_path / "int"
    args = _tiny(text_file, out, "--ckpt-every", "4")
    args[args.index("--epochs") + 1] = "50"
    proc = subprocess.Popen([sys.executable, "-m", "seqjax.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(out, proc, 4)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "checkpoint saved" in stdout and "Traceback" not in stderr


def test_existing_run_needs_resume(tmp_path, text_file):
    (tmp_path / "r" / "checkpoints" / "5").mkdir(parents=True)
    r = _run(_tiny(text_file, tmp_path / "r"))
    assert r.returncode == 2 and "pass --resume" in r.stderr


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    m = CharLM(10, hidden=8)
    p = m.init(jax.random.PRNGKey(0), jnp.zeros((2, 4), jnp.int32))
    st = TrainState.create(p, make_optimizer("sgd", 0.1), jax.random.PRNGKey(1))
    x = np.zeros((64, 4), np.int32)
    y = np.zeros(64, np.int32)
    base = lm_loss(m, "last")

    def poisoned(params, batch, rng, train):  # NaN once a batch has label 9
        loss, aux = base(params, batch, rng, train)
        return jnp.where((batch["labels"] == 9).any(), jnp.nan, loss), aux

    y[40:] = 9
    ck = Checkpointer(tmp_path / "ck")
    run = loop.Run(tmp_path, log_every=1, ckpt_every=1, checkpointer=ck)
    with pytest.raises(SeqjaxError, match=r"non-finite loss .*last good checkpoint is kept"):
        loop.fit(st, ArrayBatches(x, y, 8), poisoned, 1, run=run)
    good, _ = ck.restore(st)
    assert int(good.step) == 5
    assert all(bool(jnp.isfinite(v).all()) for v in jax.tree.leaves(good.params))


class _InterruptAfterFirstSave(Checkpointer):
    """A Checkpointer whose first save is followed by a Ctrl-C: the race seen in a real run."""

    def save(self, state, meta, force=True):
        super().save(state, meta, force)
        if not getattr(self, "fired", False):
            self.fired = True
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_right_after_a_periodic_save_exits_cleanly(tmp_path):
    m = CharLM(10, hidden=8)
    p = m.init(jax.random.PRNGKey(0), jnp.zeros((2, 4), jnp.int32))
    st = TrainState.create(p, make_optimizer("sgd", 0.1), jax.random.PRNGKey(1))
    x = np.zeros((64, 4), np.int32)
    ck = _InterruptAfterFirstSave(tmp_path / "ck")
    run = loop.Run(tmp_path, log_every=1, ckpt_every=2, checkpointer=ck)
    with pytest.raises(KeyboardInterrupt):
        loop.fit(st, ArrayBatches(x, np.zeros(64, np.int32), 8), lm_loss(m, "last"), 3, run=run)
    saved, meta = ck.restore(st)
    assert int(saved.step) == 2 and (meta["epoch"], meta["batch"]) == (0, 2)


def test_time_budget_stops_mid_epoch_and_checkpoints_there(tmp_path):
    m = CharLM(10, hidden=8)
    p = m.init(jax.random.PRNGKey(0), jnp.zeros((2, 4), jnp.int32))
    st = TrainState.create(p, make_optimizer("sgd", 0.1), jax.random.PRNGKey(1))
    x = np.zeros((640, 4), np.int32)
    ck = Checkpointer(tmp_path / "ck")
    run = loop.Run(tmp_path, time_budget_s=1e-9, checkpointer=ck)  # spent after the first step
    st, history = loop.fit(st, ArrayBatches(x, np.zeros(640, np.int32), 8), lm_loss(m, "last"), 5, run=run)
    assert int(st.step) == 1 and len(history) == 1
    assert history[0]["epoch_fraction"] == 1 / 80 and history[0]["train_loss"] > 0
    saved, meta = ck.restore(st)
    assert int(saved.step) == 1 and (meta["epoch"], meta["batch"]) == (0, 1)


def test_resuming_a_budget_cut_epoch_leaves_one_record_per_epoch(tmp_path):
    m = CharLM(10, hidden=8)
    p = m.init(jax.random.PRNGKey(0), jnp.zeros((2, 4), jnp.int32))
    st0 = TrainState.create(p, make_optimizer("sgd", 0.1), jax.random.PRNGKey(1))
    data = ArrayBatches(np.zeros((80, 4), np.int32), np.zeros(80, np.int32), 8)
    ck = Checkpointer(tmp_path / "ck")
    run = loop.Run(tmp_path, time_budget_s=1e-9, checkpointer=ck)
    _, cut = loop.fit(st0, data, lm_loss(m, "last"), 2, run=run)
    cut_time = cut[0]["train_time_s"]
    pos = loop.LoopState.start(ck, st0, resume=True)
    assert (pos.epoch, pos.batch) == (0, 1) and pos.history[0]["epoch_fraction"] == 0.1
    assert pos.train_s == cut_time and pos.partial["count"] == 8.0
    # Ctrl-C while finishing that epoch: the checkpoint still carries the cut record
    ck2 = _InterruptAfterFirstSave(tmp_path / "ck")
    with pytest.raises(KeyboardInterrupt):
        loop.fit(pos, data, lm_loss(m, "last"), 2, run=loop.Run(tmp_path, ckpt_every=1, checkpointer=ck2))
    pos = loop.LoopState.start(ck2, st0, resume=True)
    assert (pos.epoch, pos.batch) == (0, 2) and [h["epoch"] for h in pos.history] == [1]
    assert "epoch_fraction" in pos.history[0]
    st, history = loop.fit(pos, data, lm_loss(m, "last"), 2, run=loop.Run(tmp_path, checkpointer=ck2))
    assert [h["epoch"] for h in history] == [1, 2] and int(st.step) == 20
    assert "epoch_fraction" not in history[0] and history[0]["train_time_s"] >= cut_time
    assert history[1]["wall_time_s"] > history[0]["wall_time_s"] >= cut[0]["wall_time_s"]


def test_a_callback_ends_training_mid_epoch_and_the_resumed_run_is_exact(tmp_path):
    """A hook's ``on_step`` wish cuts the epoch where it asks; the checkpoint resumes there and
    the finished run's params and train loss equal an uninterrupted run's, bit for bit."""
    from seqjax.train.callbacks import Callback

    class StopAfter3(Callback):
        def on_step(self, loop):
            return loop.batch == 3

    m = CharLM(10, hidden=8)
    p = m.init(jax.random.PRNGKey(0), jnp.zeros((2, 4), jnp.int32))
    fresh = lambda: TrainState.create(jax.tree.map(jnp.copy, p), make_optimizer("adam", 0.01),  # noqa: E731
                                      jax.random.PRNGKey(1))  # a new copy each time: fit donates its state
    rng = np.random.default_rng(0)
    data = ArrayBatches(rng.integers(0, 10, (80, 4)).astype(np.int32), rng.integers(0, 10, 80).astype(np.int32),
                        8, shuffle=True)
    straight, h_straight = loop.fit(fresh(), data, lm_loss(m, "last"), 2)
    ck = Checkpointer(tmp_path / "ck")
    st, cut = loop.fit(fresh(), data, lm_loss(m, "last"), 2, run=loop.Run(checkpointer=ck), callbacks=[StopAfter3()])
    assert int(st.step) == 3 and len(cut) == 1 and cut[0]["epoch_fraction"] == 0.3
    pos = loop.LoopState.start(ck, fresh(), resume=True)
    assert (pos.epoch, pos.batch) == (0, 3)
    st, history = loop.fit(pos, data, lm_loss(m, "last"), 2, run=loop.Run(checkpointer=ck))
    assert int(st.step) == 20 and [h["epoch"] for h in history] == [1, 2]
    for x, y in zip(jax.tree.leaves(jax.device_get(straight.params)), jax.tree.leaves(jax.device_get(st.params))):
        assert np.array_equal(x, y)
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in h_straight]


def test_plot_history_leaves_the_plotting_backend_alone(tmp_path):
    import matplotlib

    old = matplotlib.get_backend()
    matplotlib.use("svg")  # stands in for a notebook's inline backend
    try:
        loop.plot_history([{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}], tmp_path / "c.png")
        assert (tmp_path / "c.png").stat().st_size > 1000
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(old)


def test_negative_time_budget_is_refused_with_the_flag_named():
    with pytest.raises(SeqjaxError, match=r"--minutes -2: give a training-time budget >= 0"):
        loop.Run(time_budget_s=-120.0)


IN_LOOP_ALL_REDUCES = """
import re, sys, jax, jax.numpy as jnp, numpy as np
from seqjax.nn.classifiers import TextClassifier, bce_loss
from seqjax.train import loop, parallel
from seqjax.train.state import TrainState, make_optimizer
mesh = parallel.make_mesh()
assert mesh.devices.size == 2
m = TextClassifier(50, 8, "lstm", hidden=16)
params = m.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
st = parallel.replicate(TrainState.create(params, make_optimizer("adam", 1e-3), jax.random.key(0)), mesh)
batch = parallel.shard_batch({"ids": np.ones((4, 12), np.int32), "lengths": np.array([12, 5, 9, 1], np.int32),
                              "labels": np.array([1, 0, 1, 0], np.float32), "weights": np.ones(4, np.float32)}, mesh)
step = loop.make_train_step(bce_loss(m), mesh if sys.argv[1] == "mesh" else None)
hlo = step.lower(st, batch).compile().as_text()
bodies = set(re.findall(r"body=%([\\w.\\-]+)", hlo))
blocks = {b: re.search(r"^%" + re.escape(b) + r" .*?^}", hlo, re.S | re.M).group(0) for b in bodies}
print(len(bodies), sum(b.count("all-reduce(") for b in blocks.values()), hlo.count("all-reduce("))
"""


def test_data_parallel_step_sums_gradients_once_not_at_every_time_step():
    """Over two devices, a recurrent model's gradient is all-reduced after the backward scan,
    not inside it (jit's automatic partitioning put one all-reduce in every time step)."""
    r = run_on_cpu_devices(IN_LOOP_ALL_REDUCES, 2, "mesh")
    assert r.returncode == 0, r.stderr[-2000:]
    loops, in_loops, total = map(int, r.stdout.split())
    assert loops >= 2 and in_loops == 0 and total >= 1, r.stdout


def test_bad_cpu_devices_name_the_fix():
    bad = _run(["--cpu-devices", "0", "markov", "--order", "1"])
    assert bad.returncode == 2 and "--cpu-devices 0: give at least 1" in bad.stderr
    bad = _run(["markov", "--order", "1"], env={"SEQJAX_CPU_DEVICES": "two"})
    assert bad.returncode == 2 and "SEQJAX_CPU_DEVICES='two'" in bad.stderr


def test_resume_checks_the_saved_config_and_never_logs_an_epoch_twice(tmp_path, text_file):
    out = tmp_path / "r"
    first = _run(_tiny(text_file, out, "--epochs", "1"))
    assert first.returncode == 0, first.stderr[-2000:]
    # a model, data or optimizer field that differs is refused in one line naming it
    for flag, value in (("--hidden", "16"), ("--lr", "0.5"), ("--text", str(tmp_path / "other.txt"))):
        if flag == "--text":
            (tmp_path / "other.txt").write_text(TEXT[::-1])
        r = _run(_tiny(text_file, out, "--epochs", "2", "--resume", flag, value))
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"seqjax: error: {flag} ") and "trained with" in r.stderr
    # an epoch logged after the last checkpoint (a kill between the log line and the save) is dropped
    log = out / "log.jsonl"
    line = json.loads(log.read_text().splitlines()[0])
    with open(log, "a") as f:
        f.write(json.dumps({**line, "epoch": 2}) + "\n")
    r = _run(_tiny(text_file, out, "--epochs", "2", "--resume"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming with --epochs 2 (was 1)" in r.stdout
    assert [json.loads(x)["epoch"] for x in log.read_text().splitlines()] == [1, 2]


def test_resume_falls_back_past_a_damaged_latest_checkpoint(tmp_path, text_file):
    out = tmp_path / "r"
    full = _run(_tiny(text_file, out, "--epochs", "1", "--ckpt-every", "2"))
    assert full.returncode == 0, full.stderr[-2000:]
    steps = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert len(steps) == 2
    for f in (out / "checkpoints" / str(steps[-1]) / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"damaged")
    r = _run(_tiny(text_file, out, "--epochs", "1", "--ckpt-every", "2", "--resume"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"checkpoint step {steps[-1]}" in r.stderr and f"resuming from step {steps[0]}" in r.stderr
    assert f"resumed from {out / 'checkpoints'} at epoch 1" in r.stdout


def test_tensorboard_scalars_beside_the_log(tmp_path, text_file):
    out = tmp_path / "tb"
    r = _run(_tiny(text_file, out, "--epochs", "1", "--tensorboard"))
    assert r.returncode == 0, r.stderr[-2000:]
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    data = events[0].read_bytes()
    for tag in (b"step/train_loss", b"epoch/train_loss", b"epoch/heldout_bpc"):
        assert tag in data, tag



# ---- the optimizer settings the published runs use, and stateful training, through fit --------
class _KeepParams(Callback):
    """The parameters after every step."""

    def __init__(self):
        self.seen = []

    def on_step(self, loop_state):
        self.seen.append(np.asarray(jax.device_get(loop_state.state.params["w"])))

    def on_epoch_end(self, loop_state, metrics):  # the epoch's last step has no on_step
        self.on_step(loop_state)


def _linear_loss(params, batch, rng, train):
    """``100 + mean_b x_b . w``: its gradient is the batch's mean row, known without autodiff."""
    weights_B = batch["weights"]
    count = weights_B.sum()
    per_row_B = batch["ids"] @ params["w"]
    loss = 100.0 + (per_row_B * weights_B).sum() / count
    return loss, ({"loss": loss * count, "count": count}, {})


def test_cosine_schedule_and_gradient_clipping_through_fit():
    """SGD with ``--lr-schedule cosine`` and ``--clip``: step t of fit moves w by
    ``lr_t * g_t * min(1, clip / |g_t|)``, ``lr_t = lr (1 + cos(pi t / N)) / 2`` over the run's N
    steps (written out here, not taken from optax), so the run ends at lr 0; the logged gradient
    norm is the norm before clipping."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(24, 3)) * np.array([[3.0], [0.1]]).repeat(12, 0)).astype(np.float32)  # big, small rows
    data = ArrayBatches(x, np.zeros(24, np.int32), 4)  # 6 steps an epoch, unshuffled
    epochs, lr, clip = 2, 0.5, 1.0
    N = epochs * len(data)
    st = TrainState.create({"w": jnp.zeros(3)}, make_optimizer("sgd", lr, clip, "cosine", N), jax.random.PRNGKey(0))
    kept = _KeepParams()
    _, history = loop.fit(st, data, _linear_loss, epochs, callbacks=[kept])
    w, norms = np.zeros(3), []
    for t in range(N):
        g = x[(t % len(data)) * 4:(t % len(data) + 1) * 4].mean(0)
        norms.append(np.linalg.norm(g))
        w = w - lr * (1 + np.cos(np.pi * t / N)) / 2 * g * min(1.0, clip / norms[-1])
        np.testing.assert_allclose(kept.seen[t], w, rtol=1e-5, atol=1e-6, err_msg=f"step {t}")
    assert max(norms) > clip > min(norms)  # both regimes: clipped and not
    first = next(iter(data.batches()))  # the step's own gradient norm is the norm before clipping
    fresh = TrainState.create({"w": jnp.zeros(3)}, make_optimizer("sgd", lr, clip, "cosine", N), jax.random.PRNGKey(0))
    _, sums = loop.make_train_step(_linear_loss)(fresh, first)
    np.testing.assert_allclose(float(sums["grad_norm"]), norms[0], rtol=1e-5)
    assert [h["epoch"] for h in history] == [1, 2]


def test_stateful_training_through_fit_carries_the_state_across_batches():
    """``--objective every --stateful``: fit hands each batch the state the previous batch of the
    same streams ended in. With lr 0 the epoch's loss must be the loss of the whole streams read
    in one pass, and the state left in the TrainState that pass's final state (chunks read each
    from a zero state score measurably differently)."""
    lm = CharLM(11, embed=4, hidden=8, layers=1, cell="rnn")
    ids = np.random.default_rng(3).integers(0, 11, 3 * 40 + 1).astype(np.int32)
    streams = StreamBatches(ids, 3, 8)  # 3 streams, 5 chunks of 8
    p = lm.init(jax.random.PRNGKey(0), jnp.zeros((3, 8), jnp.int32))
    p = jax.tree.map(lambda a: 4 * a, p)  # weights big enough that the state carried in matters

    @jax.jit
    def nll(p, x_BT, y_BT):  # float32[B, T]: -log p(next char), from a zero state
        logits, finals = lm.apply(p, x_BT, last_only=False)
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), y_BT[..., None], -1)[..., 0], finals

    whole, finals = nll(p, streams.x[:, :40], streams.y[:, :40])
    from_zero = np.mean([nll(p, b["ids"], b["labels"])[0].mean() for b in streams.batches()])
    assert abs(from_zero - float(whole.mean())) > 1e-2
    st = TrainState.create(jax.tree.map(jnp.copy, p), make_optimizer("sgd", 0.0), jax.random.PRNGKey(1),
                           lm.zero_state(3))  # copied: fit donates the state
    st, history = loop.fit(st, streams, lm_loss(lm, "every"), 1)
    np.testing.assert_allclose(history[0]["train_loss"], float(whole.mean()), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(st.carry), jax.tree.leaves(finals)):
        np.testing.assert_allclose(a, b, atol=1e-5)
