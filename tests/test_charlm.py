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

jax.config.update("jax_default_matmul_precision", "highest")
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
    assert bad.returncode == 2 and "outside the vocabulary: 'xyz'" in bad.stderr


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
