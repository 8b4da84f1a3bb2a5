"""More than one process: real ``jax.distributed`` runs on 127.0.0.1 (gloo CPU collectives).

Two processes with two CPU devices each train as one process with four devices does; a
checkpoint written by two processes resumes on one; a killed process stops its peer. The
per-process share of each batch (``rows=``) is checked against the one-process batches here,
without JAX.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import flax.serialization
import jax
import numpy as np
import pytest
from conftest import make_imdb_tar

from seqjax import cli, configs
from seqjax.data.batching import ArrayBatches, BucketedBatches, StreamBatches
from seqjax.nn.charlm import CharLM
from seqjax.tasks.charlm import init_state
from seqjax.tasks.imdb import Predictor
from seqjax.train.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("the quick brown fox jumps over the lazy dog. " * 8 + "supposing that truth is a woman. ") * 12
# The bound of test_train_engine.test_device_counts_give_the_same_losses: RMSprop/Adam amplify
# float32 reduction-order differences over an epoch; the per-step check there is exact.
REL = 2e-4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COMPILED = []


@pytest.fixture(scope="module", autouse=True)
def _one_compilation_cache(tmp_path_factory):
    """One XLA compilation cache for every run of this module: runs of the same shapes on the
    same devices (the resumed run, the killed run) load their programs instead of compiling."""
    COMPILED.append(tmp_path_factory.mktemp("xla"))
    yield
    COMPILED.clear()


def _env(devices: int, cache: Path) -> dict:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
            "SEQJAX_CACHE": str(cache), "SEQJAX_COMPILE_CACHE": str(COMPILED[-1]), "PYTHONPATH": str(ROOT),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def _start(args, logs: Path, processes: int = 2, devices: int = 2, heartbeat: int = 10):
    """``processes`` CLI processes of one run (``devices`` CPU devices each); output in ``logs``."""
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    procs = []
    for i in range(processes):
        flags = (["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes), "--process-id", str(i),
                  "--heartbeat-timeout", str(heartbeat)] if processes > 1 else [])
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "seqjax.cli", *flags, *args], cwd=ROOT, env=_env(devices, logs / "cache"),
            stdout=open(logs / f"out{i}", "w"), stderr=open(logs / f"err{i}", "w")))
    return procs


def _run(args, logs: Path, processes: int = 2, devices: int = 2, timeout: float = 240):
    procs = _start(args, logs, processes, devices)
    deadline = time.time() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(deadline - time.time(), 1))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"process {i}: {(logs / f'err{i}').read_text()[-3000:]}"
    return [(logs / f"out{i}").read_text() for i in range(processes)]


def _charlm(text_file, out, *extra):
    return ["charlm", "train", "--text", str(text_file), "--out", str(out), "--sample-length", "20",
            "--markov-orders", "1", "--hidden", "32", "--batch-size", "64", "--results", str(out / "r.json"), *extra]


def _close(a: dict, b: dict, keys, epochs: int | None = None) -> None:
    assert len(a["history"]) == len(b["history"])
    for x, y in zip(a["history"][:epochs], b["history"][:epochs]):
        for k in keys:
            assert abs(x[k] - y[k]) <= REL * abs(x[k]), (k, x[k], y[k])


def _params(ckpt_dir: Path, step: int) -> list[np.ndarray]:
    """The params leaves of checkpoint ``step`` of a ``_charlm`` run, restored by this process."""
    ck = Checkpointer(ckpt_dir)
    state, _ = ck.restore(init_state(configs.CharLMConfig(hidden=32, batch_size=64),
                                     CharLM(len(set(TEXT)), hidden=32), 1), step)
    ck.close()
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state.params))]


@pytest.fixture(scope="module")
def charlm_runs(tmp_path_factory):
    """Two processes x two devices, 2 epochs (checkpoints at the end of each); one process x four
    devices, 2 epochs; then one process x four devices resuming the two-process run from its
    epoch-1 checkpoint."""
    tmp = tmp_path_factory.mktemp("charlm")
    text = tmp / "t.txt"
    text.write_text(TEXT)
    outs2 = _run(_charlm(text, tmp / "two", "--epochs", "2"), tmp / "logs2")
    outs1 = _run(_charlm(text, tmp / "one", "--epochs", "2"), tmp / "logs1", processes=1, devices=4)
    # the two-process run as it stood after epoch 1: its last checkpoint removed
    shutil.copytree(tmp / "two" / "checkpoints", tmp / "resumed" / "checkpoints")
    steps = sorted(int(p.name) for p in (tmp / "resumed" / "checkpoints").iterdir() if p.name.isdigit())
    shutil.rmtree(tmp / "resumed" / "checkpoints" / str(steps[-1]))
    outs_r = _run(_charlm(text, tmp / "resumed", "--epochs", "2", "--resume"), tmp / "logsr", processes=1, devices=4)
    return tmp, steps, outs2, outs1, outs_r


def test_two_processes_train_a_char_lm_as_one_process_with_four_devices(charlm_runs):
    tmp, _, outs2, _, _ = charlm_runs
    two = json.loads((tmp / "two" / "r.json").read_text())
    one = json.loads((tmp / "one" / "r.json").read_text())
    assert (two["machine"]["processes"], len(two["machine"]["devices"])) == (2, 4)
    assert (one["machine"]["processes"], len(one["machine"]["devices"])) == (1, 4)
    _close(one, two, ("train_loss", "heldout_loss"), epochs=1)  # measured: 3.4e-5 relative
    # only process 0 prints and logs
    assert "held-out bits/char" in outs2[0] and "epoch 1" in outs2[0]
    assert "epoch" not in outs2[1] and "results written" not in outs2[1]
    assert len((tmp / "two" / "log.jsonl").read_text().splitlines()) == 2


def test_saved_by_two_processes_resumed_by_one_continues_the_uninterrupted_run(charlm_runs):
    """The two-process checkpoint of epoch 1, resumed by one process (four devices) for epoch 2,
    ends where the uninterrupted two-process run ended. Not to the bit: the two runs sum each
    step's gradient over the four devices in different orders (XLA's in-process all-reduce,
    gloo's ring) and RMSprop amplifies the last-bit differences over the epoch (measured: params
    9.8e-6 apart after an epoch that moved them by 0.32, identical losses). A resume that lost the
    optimizer state or the data position would be off by a good part of the move; that the
    restore itself is exact is checked bitwise by the IMDB test below."""
    tmp, steps, _, _, outs_r = charlm_runs
    assert steps[-1] == 2 * steps[0]  # one checkpoint per epoch
    assert "at epoch 2, batch 0" in outs_r[0]
    resumed = _params(tmp / "resumed" / "checkpoints", steps[-1])
    uninterrupted = _params(tmp / "two" / "checkpoints", steps[-1])
    started = _params(tmp / "two" / "checkpoints", steps[0])
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(started, uninterrupted))
    apart = max(float(np.max(np.abs(a - b))) for a, b in zip(resumed, uninterrupted))
    assert moved > 1e-2 and apart <= 1e-3 * moved, (moved, apart)
    _close(json.loads((tmp / "two" / "r.json").read_text()), json.loads((tmp / "resumed" / "r.json").read_text()),
           ("train_loss", "heldout_loss"))


def _reviews(rng, n, words, lo=3, hi=40):
    return [" ".join(rng.choice(words, rng.integers(lo, hi))) for _ in range(n)]


def test_two_processes_train_an_imdb_classifier_as_one_process_with_four_devices(tmp_path):
    """Reviews of many lengths, so the padded length of a batch is set by rows that another
    process holds; 85 training reviews in batches of 16 leave a last batch whose second half,
    process 1's, is all padding."""
    rng = np.random.default_rng(0)
    pos = ["great", "wonderful", "film", "loved", "acting", "fun", "a", "the"]
    neg = ["awful", "boring", "film", "hated", "bad", "mess", "a", "the"]
    data = tmp_path / "data"
    make_imdb_tar(tmp_path / "a.tar.gz",
                  {("train", "pos"): _reviews(rng, 61, pos), ("train", "neg"): _reviews(rng, 61, neg),
                   ("test", "pos"): _reviews(rng, 20, pos), ("test", "neg"): _reviews(rng, 20, neg)})
    with tarfile.open(tmp_path / "a.tar.gz") as t:  # the folder form: no checksum to match
        t.extractall(data, filter="data")
    args = lambda out: ["imdb", "train", "--data-dir", str(data), "--model", "lstm", "--vectors", "none",
                        "--embed", "16", "--hidden", "16", "--batch-size", "16", "--epochs", "1", "--bucket-growth", "2",
                        "--out", str(out), "--results", str(out / "r.json")]
    _run(args(tmp_path / "two"), tmp_path / "logs2")
    _run(args(tmp_path / "one"), tmp_path / "logs1", processes=1, devices=4)
    two = json.loads((tmp_path / "two" / "r.json").read_text())
    one = json.loads((tmp_path / "one" / "r.json").read_text())
    assert two["machine"]["processes"] == 2 and len(two["history"]) == 1
    _close(one, two, ("train_loss", "valid_loss", "valid_accuracy"))
    assert abs(one["test_loss"] - two["test_loss"]) <= REL * one["test_loss"]
    assert one["test_accuracy"] == two["test_accuracy"]
    # Saved by two processes, read by one: the params the two processes held at that step, to
    # the bit (process 0 also wrote them from memory, without orbax, as the best epoch's).
    restored = Predictor(str(tmp_path / "two" / "checkpoints")).params
    held = flax.serialization.msgpack_restore((tmp_path / "two" / "best_params.msgpack").read_bytes())
    pairs = list(zip(jax.tree.leaves(jax.device_get(restored)), jax.tree.leaves(held)))
    assert len(pairs) == len(jax.tree.leaves(held)) > 3
    assert all(np.array_equal(a, b) for a, b in pairs)


def test_a_killed_process_stops_the_other_within_60_s(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    out = tmp_path / "run"
    procs = _start(_charlm(text, out, "--epochs", "100", "--ckpt-every", "5"), tmp_path / "logs")
    try:
        deadline = time.time() + 180
        while not any(p.name.isdigit() for p in (out / "checkpoints").glob("*")):  # mid-run
            assert time.time() < deadline and all(p.poll() is None for p in procs), \
                (tmp_path / "logs" / "err0").read_text()[-3000:]
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGKILL)
        killed = time.time()
        procs[0].wait(timeout=90)
        took = time.time() - killed
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    err = (tmp_path / "logs" / "err0").read_text()
    assert procs[0].returncode != 0
    assert took <= 60, took
    assert "another task died" in err or "seqjax: error: process 0 of 2 stopped" in err, err[-3000:]


# ---- the per-process share of each batch (no JAX) ---------------------------------------------
def _halves(data, epoch=1, start=0):
    B = data.batch_size
    full = list(data.batches(epoch, start))
    parts = [list(data.batches(epoch, start, rows=slice(i * B // 2, (i + 1) * B // 2))) for i in (0, 1)]
    assert len(full) == len(parts[0]) == len(parts[1]) > 0
    return full, parts


@pytest.mark.parametrize("make", [
    lambda: ArrayBatches(np.arange(70 * 5).reshape(70, 5), np.arange(70), 8, shuffle=True, seed=3),
    lambda: StreamBatches(np.arange(500) % 17, 4, 10),
    lambda: BucketedBatches([np.arange(1, 2 + n % 23) for n in range(45)], np.arange(45) % 2, 8,
                            boundaries=(4, 8, 16, 24), shuffle=True, seed=1, min_len=5),
])
def test_each_process_prepares_its_rows_of_the_one_process_batches(make):
    data = make()
    full, (a, b) = _halves(data)
    for f, x, y in zip(full, a, b):
        assert f.keys() == x.keys() == y.keys()
        for k in f:
            assert np.array_equal(f[k], np.concatenate([x[k], y[k]])), k
    # a resumed epoch starts at the same batch in every process
    _, (a2, _) = _halves(data, start=2)
    assert all(np.array_equal(u["ids"], v["ids"]) for u, v in zip(a[2:], a2))


def test_the_padded_length_comes_from_the_whole_batch():
    seqs = [np.ones(3, np.int32)] * 4 + [np.ones(20, np.int32)] * 4  # the long ones in the second half
    data = BucketedBatches(seqs, np.zeros(8), 8, boundaries=(4, 8, 24))
    (first,) = data.batches(0, rows=slice(0, 4))
    assert first["ids"].shape == (4, 24) and (first["lengths"] == 3).all()


@pytest.mark.parametrize("flags, says", [
    (["--coordinator", "127.0.0.1:5"], "--num-processes, --process-id missing"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], "give HOST:PORT of process 0"),
    (["--coordinator", "127.0.0.1:5", "--num-processes", "2", "--process-id", "2"], "--process-id 2: give 0 .. 1"),
    (["--coordinator", "127.0.0.1:5", "--num-processes", "2", "--process-id", "0", "--heartbeat-timeout", "0"],
     "--heartbeat-timeout 0"),
])
def test_bad_distributed_flags_name_the_fix(capsys, flags, says):
    assert cli.main([*flags, "markov", "--order", "1"]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_seeds_across_two_processes_train_what_one_process_does(tmp_path):
    """``--seeds 2`` over two processes (the seeds' batches split by rows across the hosts, the
    seed axis of size 1) trains the seeds that one process with two devices (a device per seed)
    does: Adam, per-seed held-out loss to float32 rounding."""
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    args = ["--epochs", "1", "--seeds", "2", "--optimizer", "adam", "--lr", "0.003"]
    _run(_charlm(text, tmp_path / "two", *args), tmp_path / "logs2", processes=2, devices=1)
    _run(_charlm(text, tmp_path / "one", *args), tmp_path / "logs1", processes=1, devices=2)
    two, one = (json.loads((tmp_path / n / "r.json").read_text()) for n in ("two", "one"))
    assert two["layout"]["mesh"] == {"seed": 1, "data": 2} and one["layout"]["mesh"] == {"seed": 2, "data": 1}
    for a, b in zip(two["per_seed"], one["per_seed"]):
        assert abs(a["heldout_loss"] - b["heldout_loss"]) <= 1e-5 * abs(b["heldout_loss"]), (a, b)
    assert abs(two["per_seed"][0]["heldout_loss"] - two["per_seed"][1]["heldout_loss"]) > 1e-4
