"""Encoders by name with keywords, and heads with more than two classes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.data.batching import BucketedBatches
from seqjax.nn.classifiers import (ENCODERS, EncoderDef, TextClassifier, classification_loss, get_encoder,
                                   register_encoder)
from seqjax.nn.recurrent import sequence_mask
from seqjax.train import loop
from seqjax.train.state import TrainState, make_optimizer


class MaxEncoder(nn.Module):
    """A projection, then the max over each row's real tokens: ``float32[B, width]``."""

    width: int
    dtype: object = jnp.float32

    @nn.compact
    def __call__(self, x_BTE, lengths_B, train: bool = False):
        h_BTW = nn.Dense(self.width, dtype=self.dtype, name="proj")(x_BTE)
        mask_BT1 = sequence_mask(lengths_B, x_BTE.shape[1])[:, :, None]
        return jnp.where(mask_BT1, h_BTW, -1e9).max(axis=1)


register_encoder(EncoderDef("maxdense", lambda *, width=16, dtype=jnp.float32: MaxEncoder(width=width, dtype=dtype),
                            ("width",), "a projection, then the max over time"))


def four_classes(n=192, seed=0):
    """Texts of shared noise tokens with one word of their class somewhere: ids 2..5 mark classes
    0..3, ids 6..29 are noise."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        y = i % 4
        s = rng.integers(6, 30, rng.integers(3, 12))
        s[rng.integers(0, len(s))] = 2 + y
        seqs.append(s.astype(np.int32))
        labels.append(y)
    return seqs, np.array(labels)


@pytest.mark.parametrize("enc,kw", [("lstm", dict(hidden=16)), ("cnn", dict(n_filters=8)),
                                    ("maxdense", dict(width=12))])
def test_four_classes_are_learned_well_above_chance(enc, kw):
    """An LSTM, the CNN and an encoder registered in this file learn a 4-class task through one
    ``[D, 4]`` head and softmax cross-entropy; held-out accuracy far above chance (25 %)."""
    seqs, labels = four_classes()
    m = TextClassifier(30, 12, enc, classes=4, **kw)
    p = m.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    assert p["params"]["fc"]["kernel"].shape[-1] == 4
    st = TrainState.create(p, make_optimizer("adam", 0.03), jax.random.PRNGKey(1))
    test_seqs, test_labels = four_classes(96, seed=1)
    st, hist = loop.fit(st, BucketedBatches(seqs, labels, 32, (8, 12), shuffle=True), classification_loss(m), 10,
                        valid=BucketedBatches(test_seqs, test_labels, 32, (8, 12)))
    assert hist[-1]["valid_accuracy"] > 0.9, hist[-1]
    logits = m.apply(st.params, jnp.asarray([[2, 7, 8], [9, 5, 7]]), jnp.array([3, 3]))
    assert logits.shape == (2, 4) and list(np.argmax(logits, -1)) == [0, 3]


def test_two_classes_keep_one_logit_and_the_lab_loss():
    m = TextClassifier(30, 12, "maxdense", width=6)
    p = m.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    assert p["params"]["fc"]["kernel"].shape == (6, 1) and p["params"]["proj"]["kernel"].shape == (12, 6)
    ids, lengths = jnp.asarray([[2, 7, 8, 0]]), jnp.array([3])
    batch = {"ids": ids, "lengths": lengths, "labels": jnp.array([1.0]), "weights": jnp.array([1.0])}
    loss, _ = classification_loss(m)(p, batch, jax.random.PRNGKey(0), False)
    z = float(m.apply(p, ids, lengths)[0])
    assert abs(float(loss) - np.log1p(np.exp(-z))) < 1e-6


def test_encoders_are_refused_by_unknown_name_and_registered_once():
    assert list(ENCODERS)[:5] == ["rnn", "lstm", "bilstm", "fasttext", "cnn"]
    with pytest.raises(ValueError, match="encoder 'transformer': choose rnn, lstm, bilstm, fasttext, cnn"):
        get_encoder("transformer")
    with pytest.raises(ValueError, match="already registered"):
        register_encoder(EncoderDef("cnn", lambda **kw: None, ()))
    with pytest.raises(ValueError, match="classes 1"):
        m = TextClassifier(30, 12, "fasttext", classes=1)
        m.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))


def test_the_flags_each_imdb_model_takes_are_its_encoders_fields():
    """configs.IMDB_MODEL_FLAGS (kept without importing JAX, for the command line) says which
    model flags each of the five models reads: exactly the fields its registered encoder declares."""
    from seqjax import configs

    for flag, models in configs.IMDB_MODEL_FLAGS.items():
        readers = {name for name in configs.IMDB_PRESETS if flag in ENCODERS[name].fields}
        assert set(models) == readers, flag
