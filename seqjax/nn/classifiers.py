"""IMDB classifiers: embedder -> encoder -> head (one logit); the five lab models differ only
in the encoder (as flax's ``examples/sst2`` composes its ``TextClassifier``).

An encoder is a small flax module with one contract::

    (x_BTE float32[B, T, E], lengths_B int32[B], train: bool) -> features float32[B, D]

and it ignores ``x_BTE[b, t]`` for ``t >= lengths_B[b]``, whatever is there:

* :class:`RecurrentEncoder` (the lab's ``rnn`` and ``lstm``, any cell): the final hidden state
  of a 1-layer recurrence over the true lengths; ``D = hidden``;
* :class:`BiRecurrentEncoder` (``bilstm``, the tutorial's): dropout on the inputs, a
  ``layers``-deep bidirectional recurrence, the final forward and backward states of the last
  layer concatenated, dropout; ``D = 2 * hidden``;
* :class:`MeanEncoder` (``fasttext``): the mean of the vectors of a review's tokens and bigrams;
  ``D = E``;
* :class:`CNNEncoder` (``cnn``, Kim 2014): Conv1d of each width in ``filters`` with
  ``n_filters`` channels, ReLU, max over time, concat, dropout; ``D = n_filters * len(filters)``.
  A window counts only if it ends within ``max(length, widest filter)``: a text shorter than
  the widest filter is read as zero-padded to it, as the lab pads it.

The recurrences stop at each length; the mean and the CNN multiply their inputs by
:func:`sequence_mask` first. Hence the same review padded to any length gives the same logit.

:class:`Classifier` ``(ids int32[B, T], lengths int32[B], train=False) -> logits float32[B]``:
``embedding`` (``nn.Embed``) -> encoder -> ``fc`` (``nn.Dense(1)``). The encoder shares the
classifier's scope (``nn.share_scope``), so its parameters sit beside ``embedding`` and ``fc``
(``rnn/weight_ih_l0``, ``conv3/kernel``, ...): the names ``seqjax.interop.torch`` maps a PyTorch
``state_dict`` onto, and that saved checkpoints hold. :func:`TextClassifier` builds the lab's
model of a name.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from seqjax.nn.conv import ConvMaxPool
from seqjax.nn.recurrent import RNN, sequence_mask

ENCODERS = ("rnn", "lstm", "bilstm", "fasttext", "cnn")


def torch_linear_init(fan_in: int):
    """PyTorch nn.Linear / Conv1d default init: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / fan_in**0.5
    return lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound)


def _dropout(rate: float, train: bool):
    """``nn.Dropout(rate)`` when ``rate > 0``, else the identity (no op, no RNG drawn)."""
    return nn.Dropout(rate, deterministic=not train) if rate else (lambda x: x)


class RecurrentEncoder(nn.Module):
    """The final hidden state of a 1-layer ``cell`` recurrence: ``float32[B, hidden]``.

    Params: ``rnn/{weight,bias}_{ih,hh}_l0`` (PyTorch's names and layout).
    """

    hidden: int
    cell: str = "lstm"  # rnn | gru | lstm
    unroll: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BTE, lengths_B, train: bool = False):
        _, finals = RNN(self.hidden, self.cell, 1, unroll=self.unroll, dtype=self.dtype,
                        name="rnn")(x_BTE, lengths_B, outputs=False)
        return finals[-1][0]


class BiRecurrentEncoder(nn.Module):
    """``layers`` bidirectional ``cell`` layers; the last layer's final forward and backward
    states concatenated: ``float32[B, 2 * hidden]``. Dropout ``dropout`` on the inputs, between
    layers and on the features (the tutorial's bi-LSTM).

    Params: ``rnn/{weight,bias}_{ih,hh}_l{k}[_reverse]``.
    """

    hidden: int
    layers: int = 2
    cell: str = "lstm"
    dropout: float = 0.0
    unroll: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BTE, lengths_B, train: bool = False):
        x_BTE = _dropout(self.dropout, train)(x_BTE)
        _, finals = RNN(self.hidden, self.cell, self.layers, bidirectional=True, dropout=self.dropout,
                        unroll=self.unroll, dtype=self.dtype, name="rnn")(x_BTE, lengths_B, train=train,
                                                                          outputs=False)
        return _dropout(self.dropout, train)(jnp.concatenate([finals[-2][0], finals[-1][0]], axis=-1))


class MeanEncoder(nn.Module):
    """The mean of each row's first ``lengths_B[b]`` vectors: ``float32[B, E]`` (FastText). No params."""

    @nn.compact
    def __call__(self, x_BTE, lengths_B, train: bool = False):
        x_BTE = x_BTE * sequence_mask(lengths_B, x_BTE.shape[1])[:, :, None]
        n_B1 = jnp.maximum(lengths_B, 1).astype(x_BTE.dtype)[:, None]
        return x_BTE.sum(axis=1) / n_B1


class CNNEncoder(nn.Module):
    """Kim's CNN: per width ``k`` in ``filters``, Conv1d with ``n_filters`` channels, ReLU and the
    max over the windows that end within ``max(length, max(filters))``; concatenated, dropout:
    ``float32[B, n_filters * len(filters)]``.

    Params: ``conv{k}/kernel [k, E, n_filters]``, ``conv{k}/bias [n_filters]``.
    """

    filters: Sequence[int] = (3, 4, 5)
    n_filters: int = 100
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BTE, lengths_B, train: bool = False):
        B, T, E = x_BTE.shape
        x_BTE = x_BTE * sequence_mask(lengths_B, T)[:, :, None]
        kmax = max(self.filters)
        if T < kmax:
            x_BTE = jnp.pad(x_BTE, ((0, 0), (0, kmax - T), (0, 0)))
        eff_B = jnp.maximum(lengths_B, kmax)
        pooled = [ConvMaxPool(self.n_filters, k, torch_linear_init(k * E), torch_linear_init(k * E),
                              self.dtype, name=f"conv{k}")(x_BTE, eff_B - k + 1)
                  for k in self.filters]  # each [B, n_filters]
        return _dropout(self.dropout, train)(jnp.concatenate(pooled, axis=-1))


class Classifier(nn.Module):
    """``embedding`` -> ``encoder`` -> ``fc``: one logit per review.

    Attributes:
      vocab, embed: the embedding table ``float32[V, E]``, ``N(0, 1)`` init as PyTorch's (replace
        ``params["params"]["embedding"]["embedding"]`` with pretrained vectors after init).
      encoder: a module with the encoder contract of this file's docstring.
      dtype: what the embeddings, the encoder and the head compute in; params stay float32.

    Call: ``(ids_BT int32[B, T], lengths_B int32[B], train=False) -> logits float32[B]``.
    """

    vocab: int
    embed: int
    encoder: nn.Module
    dtype: Any = jnp.float32

    def setup(self):
        nn.share_scope(self, self.encoder)  # the encoder's params beside embedding and fc

    @nn.compact
    def __call__(self, ids_BT, lengths_B, train: bool = False):
        x_BTE = nn.Embed(self.vocab, self.embed, embedding_init=nn.initializers.normal(1.0),
                         name="embedding")(ids_BT).astype(self.dtype)
        feats_BD = self.encoder(x_BTE, lengths_B, train)
        D = feats_BD.shape[-1]
        logits_B1 = nn.Dense(1, kernel_init=torch_linear_init(D), bias_init=torch_linear_init(D),
                             dtype=self.dtype, name="fc")(feats_BD)
        return logits_B1[:, 0].astype(jnp.float32)


def TextClassifier(vocab: int, embed: int = 50, encoder: str = "lstm", cell: str = "lstm",  # noqa: N802
                   hidden: int = 100, layers: int = 1, dropout: float = 0.0,
                   filters: Sequence[int] = (3, 4, 5), n_filters: int = 100, unroll: int = 1,
                   dtype: Any = jnp.float32) -> Classifier:
    """The lab's classifier named ``encoder`` (one of :data:`ENCODERS`), as a :class:`Classifier`.

    ``cell``, ``hidden``: rnn / lstm / bilstm; ``layers``: bilstm (rnn and lstm have one);
    ``dropout``: bilstm and cnn; ``filters``, ``n_filters``: cnn. Arguments a model does not
    have are ignored.
    """
    if encoder in ("rnn", "lstm"):
        enc = RecurrentEncoder(hidden, cell, unroll, dtype)
    elif encoder == "bilstm":
        enc = BiRecurrentEncoder(hidden, layers, cell, dropout, unroll, dtype)
    elif encoder == "fasttext":
        enc = MeanEncoder()
    elif encoder == "cnn":
        enc = CNNEncoder(tuple(filters), n_filters, dropout, dtype)
    else:
        raise ValueError(f"encoder {encoder!r}: choose one of {ENCODERS}")
    return Classifier(vocab, embed, enc, dtype)


def bce_loss(model: Classifier):
    """Loss for :func:`seqjax.train.loop.fit`: weighted sigmoid BCE-with-logits.

    ``batch``: ``ids int32[B, T]``, ``lengths int32[B]``, ``labels float32[B]``, ``weights
    float32[B]``. Sums: ``loss``, ``correct`` (logit > 0 agrees with the label), ``count``.
    """

    def loss_fn(params, batch, rng, train):
        logits = model.apply(params, batch["ids"], batch["lengths"], train, rngs={"dropout": rng})
        w = batch["weights"]
        bce = optax.sigmoid_binary_cross_entropy(logits, batch["labels"])
        count = w.sum()
        sums = {"loss": (bce * w).sum(), "correct": (((logits > 0) == (batch["labels"] > 0.5)) * w).sum(),
                "count": count}
        return sums["loss"] / jnp.maximum(count, 1.0), (sums, {})

    return loss_fn
