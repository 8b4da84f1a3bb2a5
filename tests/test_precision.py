"""``--precision bfloat16``: mixed precision that trains like float32.

The tolerance: bfloat16 keeps 8 significant bits, so each product is rounded by up to 2^-9
(0.2 %) and a step's gradient differs from float32's by about 0.5 % (measured below). Training
is chaotic, so two runs drift apart step by step; what must hold is that the bfloat16 run learns
as the float32 one does: its loss, epoch by epoch over a few hundred steps, within 3 % (and 0.05
nats) of float32's. A bfloat16 cell state or loss (the mistakes the recipe avoids) would not stay
that close: the state's sum over 40 steps, or a softmax over 60 characters, loses the digits.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import configs
from seqjax.nn.classifiers import MeanEncoder, TextClassifier
from seqjax.nn.recurrent import RNN
from seqjax.tasks import charlm, imdb

from conftest import make_imdb_dir, sentiment_reviews

TEXT = "".join(f"the {w} fox jumps over the {v} dog; supposing that truth is a woman. "
               for w in ("quick", "slow", "red", "lazy", "brave") for v in ("lazy", "old", "young", "tired")) * 12


def _close(a, b):
    return abs(a - b) <= max(0.05, 0.03 * abs(b))


def test_bfloat16_keeps_state_loss_and_sums_in_float32():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 9, 8))
    lengths = jnp.array([9, 3, 0, 5])
    for bi, layers in ((False, 1), (True, 2)):
        rnn32 = RNN(16, "lstm", layers, bidirectional=bi)
        rnn16 = RNN(16, "lstm", layers, bidirectional=bi, dtype=jnp.bfloat16)
        p = rnn32.init(jax.random.PRNGKey(1), x, lengths)
        (o32, f32), (o16, f16) = rnn32.apply(p, x, lengths), rnn16.apply(p, x, lengths)
        assert o16.dtype == jnp.bfloat16  # activations
        assert all(a.dtype == jnp.float32 for carry in f16 for a in carry)  # h and the cell state c
        np.testing.assert_allclose(np.asarray(o16, np.float32), o32, atol=0.02)
        for c16, c32 in zip(f16, f32):
            for a16, a32 in zip(c16, c32):
                np.testing.assert_allclose(a16, a32, atol=0.02)
        g32 = jax.grad(lambda q: rnn32.apply(q, x, lengths)[0].sum())(p)["params"]
        g16 = jax.grad(lambda q: rnn16.apply(q, x, lengths)[0].astype(jnp.float32).sum())(p)["params"]
        for k in g32:  # float32 gradients of float32 params, within bfloat16's rounding
            assert g16[k].dtype == jnp.float32
            assert float(jnp.abs(g16[k] - g32[k]).max() / jnp.abs(g32[k]).max()) < 0.03, k
    # a sum over many bfloat16 vectors keeps float32's digits: 4,000 tokens of 1 + 2^-7 (a bfloat16 sum stalls at 256)
    x_BTE = jnp.full((1, 4000, 2), 1 + 2.0**-7, jnp.bfloat16)
    assert MeanEncoder().apply({}, x_BTE, jnp.array([4000])).dtype == jnp.float32
    np.testing.assert_allclose(MeanEncoder().apply({}, x_BTE, jnp.array([4000])), 1 + 2.0**-7, rtol=1e-6)
    clf = TextClassifier(vocab=50, embed=8, encoder="cnn", n_filters=4, dtype=jnp.bfloat16)
    ids = jnp.arange(24).reshape(2, 12) % 50
    p = clf.init(jax.random.PRNGKey(0), ids, jnp.array([12, 7]))
    assert clf.apply(p, ids, jnp.array([12, 7])).dtype == jnp.float32  # logits for the loss
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(p))  # params


def test_a_bfloat16_char_lstm_tracks_the_float32_run(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    runs = {}
    for prec in ("float32", "bfloat16"):
        cfg = configs.CharLMConfig(text=str(tmp_path / "t.txt"), hidden=64, batch_size=64, epochs=4, optimizer="adam",
                                   lr=0.005, markov_orders="", sample_length=5, temperatures="0.5", precision=prec,
                                   out=str(tmp_path / prec), results=str(tmp_path / f"{prec}.json"))
        charlm.run(cfg)
        runs[prec] = json.loads((tmp_path / f"{prec}.json").read_text())
    h32, h16 = runs["float32"]["history"], runs["bfloat16"]["history"]
    assert runs["float32"]["train_steps"] >= 300
    assert h32[-1]["train_loss"] < 0.75 * h32[0]["train_loss"]  # it learns
    for a, b in zip(h16, h32):
        assert _close(a["train_loss"], b["train_loss"]), (a["train_loss"], b["train_loss"])
        assert _close(a["heldout_loss"], b["heldout_loss"]), (a["heldout_loss"], b["heldout_loss"])
    assert runs["bfloat16"]["config"]["precision"] == "bfloat16"
    assert h16[-1]["train_loss"] != h32[-1]["train_loss"]  # the steps did compute in bfloat16


def test_a_bfloat16_cnn_tracks_the_float32_run(tmp_path):
    make_imdb_dir(tmp_path / "data", sentiment_reviews(600, 100, words=(6, 30)))
    runs = {}
    for prec in ("float32", "bfloat16"):
        cfg = configs.ImdbConfig(model="cnn", vectors="none", embed=16, data_dir=str(tmp_path / "data"), batch_size=8,
                                 epochs=3, precision=prec, out=str(tmp_path / prec), results=str(tmp_path / f"{prec}.json"))
        runs[prec] = imdb.run(cfg)
    h32, h16 = runs["float32"]["history"], runs["bfloat16"]["history"]
    assert sum(1 for _ in h32) * 105 >= 300  # 840 training reviews / 8 per batch = 105 steps per epoch
    for a, b in zip(h16, h32):
        assert _close(a["train_loss"], b["train_loss"]), (a["train_loss"], b["train_loss"])
        assert _close(a["valid_loss"], b["valid_loss"]), (a["valid_loss"], b["valid_loss"])
    assert runs["bfloat16"]["test_accuracy"] > 0.9 and runs["float32"]["test_accuracy"] > 0.9


def test_precision_is_refused_by_name():
    with pytest.raises(Exception, match="--precision"):
        configs.ImdbConfig(precision="float16")
