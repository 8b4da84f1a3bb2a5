"""The char LM: causality, objectives against NumPy, stateful chunks, jit sampling, CLI errors."""

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.data.batching import StreamBatches, chunks
from seqjax.nn.charlm import CharLM, lm_loss, sample
from seqjax.nn.recurrent import RNN

pytestmark = pytest.mark.usefixtures("highest_precision")  # parity to 1e-5, in this file only
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_causality(cell):
    m = RNN(6, cell, num_layers=2)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 7, 3))
    p = m.init(jax.random.PRNGKey(1), x)
    jac = jax.jacrev(lambda x: m.apply(p, x)[0][0, :, 0])(x)  # d out[t] / d x[s]: [T, 1, T, F]
    for t in range(7):
        assert float(jnp.abs(jac[t, 0, t + 1:]).max(initial=0.0)) == 0.0
        assert float(jnp.abs(jac[t, 0, t]).max()) > 0.0
    lm = CharLM(12, hidden=8, cell=cell)
    ids = jnp.arange(10)[None] % 12
    lp = lm.init(jax.random.PRNGKey(0), ids)
    a, _ = lm.apply(lp, ids, last_only=False)
    b, _ = lm.apply(lp, ids.at[0, 6:].set(3), last_only=False)
    np.testing.assert_array_equal(a[0, :6], b[0, :6])
    assert not np.allclose(a[0, 6:], b[0, 6:])


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_every_loss_is_mean_per_position_cross_entropy(cell):
    lm = CharLM(11, hidden=8, cell=cell)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 11, 4 * 9 + 1).astype(np.int32)
    x, y = chunks(ids, 9)
    p = lm.init(jax.random.PRNGKey(0), jnp.asarray(x))
    batch = {"ids": x, "labels": y, "weights": np.array([1, 1, 1, 0], np.float32)}
    loss, (sums, _) = lm_loss(lm, "every")(p, batch, jax.random.PRNGKey(0), False)
    logits = np.asarray(lm.apply(p, x, last_only=False)[0], np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    np.testing.assert_allclose(float(loss), ce[:3].mean(), rtol=1e-5)
    assert float(sums["count"]) == 27
    last, _ = lm_loss(lm, "last")(p, {"ids": x, "labels": y[:, -1], "weights": np.ones(4, np.float32)},
                                  jax.random.PRNGKey(0), False)
    np.testing.assert_allclose(float(last), ce[:, -1].mean(), rtol=1e-5)


def test_stateful_chunks_equal_the_whole_sequence():
    lm = CharLM(13, hidden=8, layers=2, cell="gru")
    ids = np.random.default_rng(1).integers(0, 13, 2 * 30 + 1).astype(np.int32)
    streams = StreamBatches(ids, 2, 10)
    p = lm.init(jax.random.PRNGKey(0), jnp.zeros((2, 10), jnp.int32))
    whole, _ = lm.apply(p, streams.x, last_only=False)
    carry, outs = lm.zero_state(2), []
    for b in streams.batches():
        o, carry = lm.apply(p, b["ids"], carry, last_only=False)
        outs.append(o)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), whole, atol=1e-5)
    assert len(streams) == 3 and (streams.y[:, :-1] == streams.x[:, 1:]).all()


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_greedy_sampling_matches_rerunning_the_model(cell):
    lm = CharLM(9, hidden=16, layers=2, cell=cell)
    p = lm.init(jax.random.PRNGKey(3), jnp.zeros((1, 5), jnp.int32))
    seed = jnp.array([1, 4, 2, 7], jnp.int32)
    out = sample(lm, p, seed, 12, jnp.array([1e-6, 1.0]), jax.random.PRNGKey(0))
    assert out.shape == (2, 12) and out.dtype == jnp.int32
    seq = list(np.asarray(seed))
    for _ in range(12):
        logits, _ = lm.apply(p, jnp.asarray(seq)[None])
        seq.append(int(jnp.argmax(logits[0])))
    assert list(np.asarray(out[0])) == seq[4:]
    again = sample(lm, p, seed, 12, jnp.array([1e-6, 1.0]), jax.random.PRNGKey(0))
    np.testing.assert_array_equal(out, again)


def test_sample_cli_rejects_unknown_seed_chars(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abcdefgh " * 400)
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", "charlm", "train", "--text", str(text),
                        "--out", str(out), "--epochs", "1", "--hidden", "8", "--sample-length", "5",
                        "--markov-orders", "1"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    ok = subprocess.run([sys.executable, "-m", "seqjax.cli", "charlm", "sample", "--checkpoint",
                         str(out / "checkpoints"), "--seed-text", "abc", "--length", "30"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and len(ok.stdout.strip()) == 33, ok.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-m", "seqjax.cli", "charlm", "sample", "--checkpoint",
                          str(out / "checkpoints"), "--seed-text", "xyz"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--seed-text 'xyz': the characters 'xyz' are not among" in bad.stderr


def test_input_gradient_norms_are_per_distance_and_causal():
    from seqjax.nn.charlm import input_gradient_norms

    lm = CharLM(9, hidden=8)
    ids = jnp.asarray(np.random.default_rng(0).integers(0, 9, (4, 6)), jnp.int32)
    p = lm.init(jax.random.PRNGKey(0), ids)
    g = input_gradient_norms(lm, p, ids, jnp.zeros(4, jnp.int32))
    assert g.shape == (6,) and bool((g > 0).all())
    # distance 0 = the last input; compare with a direct gradient of one window
    e = lm.apply(p, ids[:1], method=lambda m, i: m.emb(i))
    direct = jax.grad(lambda e: -jax.nn.log_softmax(lm.apply(p, e, method=CharLM.from_embeddings))[0, 0])(e)
    one = input_gradient_norms(lm, p, ids[:1], jnp.zeros(1, jnp.int32))
    np.testing.assert_allclose(one, np.linalg.norm(direct[0], axis=-1)[::-1], rtol=1e-5)


@pytest.mark.parametrize("seed_len,window", [(2, 8), (9, 5)])
def test_window_sampling_rereads_the_last_window_from_a_zero_state(seed_len, window):
    """The lab's sampler: each char from the last `window` chars only, read from a zero state
    (a seed shorter than the window is read whole); same keys, same draws as a Python loop."""
    from seqjax.nn.charlm import sample_window

    lm = CharLM(9, hidden=16, cell="lstm")
    p = lm.init(jax.random.PRNGKey(4), jnp.zeros((1, 5), jnp.int32))
    seed = jnp.asarray(np.random.default_rng(seed_len).integers(0, 9, seed_len), jnp.int32)
    key = jax.random.PRNGKey(0)
    out = sample_window(lm, p, seed, 14, jnp.array([1.0]), key, window=window)
    assert out.shape == (1, 14) and out.dtype == jnp.int32
    seq = list(np.asarray(seed))
    for k in jax.random.split(key, 14):
        logits, _ = lm.apply(p, jnp.asarray(seq[-window:])[None])  # zero initial state
        seq.append(int(jax.random.categorical(k, logits / 1.0, axis=-1)[0]))
    assert list(np.asarray(out[0])) == seq[seed_len:]
    assert len(set(seq[seed_len:])) > 3  # the draws vary, so a wrong window would show


def test_window_as_long_as_the_text_equals_the_stateful_sampler():
    from seqjax.nn.charlm import sample_window

    lm = CharLM(9, hidden=16, layers=2, cell="gru")
    p = lm.init(jax.random.PRNGKey(5), jnp.zeros((1, 5), jnp.int32))
    seed, temps, key = jnp.array([3, 1, 4], jnp.int32), jnp.array([1e-6, 0.7, 1.5]), jax.random.PRNGKey(2)
    stateful = sample(lm, p, seed, 12, temps, key)
    window = sample_window(lm, p, seed, 12, temps, key, window=15)  # 3 + 12 chars fit
    np.testing.assert_array_equal(window, stateful)
    short = sample_window(lm, p, seed, 12, temps, key, window=4)
    assert short.shape == stateful.shape


def test_training_samples_and_the_cli_default_use_the_labs_window(tmp_path, capsys):
    """A `last`-objective model samples the lab's way by default, at epoch ends and from the
    CLI; `--method stateful` is the option."""
    from seqjax import cli, configs
    from seqjax.tasks import charlm as task
    from seqjax.train.checkpoint import Checkpointer

    text = tmp_path / "t.txt"
    text.write_text("abcdefgh " * 400)
    cfg = configs.CharLMConfig(text=str(text), out=str(tmp_path / "run"), epochs=1, hidden=8, seq_len=8,
                               sample_length=25, markov_orders="1", temperatures="0.5,1.0")
    res = task.train(cfg)
    ckpt = str(tmp_path / "run" / "checkpoints")
    corpus = task.load_corpus(cfg)
    model = task.build_model(cfg, len(corpus.vocab))
    ck = Checkpointer(Path(ckpt))
    state, _ = ck.restore(task.init_state(cfg, model, 1))
    ck.close()
    seed_text = task.lab_seed_text(corpus, cfg.seed, 0)
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 0)
    gen = task.make_generator(model, corpus.vocab, 25, "window", 8)
    assert res["history"][-1]["seed_text"] == seed_text
    assert list(res["history"][-1]["samples"].values()) == gen(state.params, seed_text, [0.5, 1.0], key)
    capsys.readouterr()
    outs = {}
    for method in (None, "window", "stateful"):
        argv = ["charlm", "sample", "--checkpoint", ckpt, "--seed-text", "abcdefgh abc", "--length", "30"]
        assert cli.main(argv + (["--method", method] if method else [])) == 0
        outs[method] = capsys.readouterr().out.rstrip("\n")
        assert len(outs[method]) == 42
    assert outs[None] == outs["window"]
    from seqjax import SeqjaxError
    from seqjax.tasks import imdb as imdb_task

    with pytest.raises(SeqjaxError, match=r"a checkpoint of kind 'charlm' where 'imdb' is needed"):
        imdb_task.Predictor(str(tmp_path / "run"))  # the run folder is accepted as well as its checkpoints
    with pytest.raises(SystemExit):  # argparse: invalid choice, exit status 2
        cli.main(["charlm", "sample", "--checkpoint", ckpt, "--method", "beam"])
