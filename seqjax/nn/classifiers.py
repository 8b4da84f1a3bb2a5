"""IMDB classifiers: embedder -> encoder -> head (one logit), differing only in the encoder.

``TextClassifier(encoder=...)`` with encoders

* ``rnn`` / ``lstm`` (any ``cell``): the final hidden state of a 1-layer recurrence over the
  true lengths (the lab's RNN and ImprovedRNN);
* ``bilstm``: a ``layers``-deep bidirectional recurrence, final forward and backward states
  of the last layer concatenated, dropout on embeddings and before the head (the tutorial);
* ``fasttext``: the mean of the embeddings of a review's tokens and bigrams (padding excluded);
* ``cnn``: Kim (2014) — Conv1d of each width in ``filters`` with ``n_filters`` channels, ReLU,
  max over time, concat, dropout.

Padding never reaches an output: embeddings are multiplied by :func:`sequence_mask`, the
recurrences stop at each length, pooling ignores padded positions, and a CNN window counts
only if it ends within ``max(length, widest filter)`` (texts shorter than the widest filter
are treated as padded to it, as the lab pads them). Hence the same review padded to any
length gives the same logit.

Call: ``(ids int32[B, T], lengths int32[B], train=False) -> logits float32[B]``.
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


class TextClassifier(nn.Module):
    """Attributes:
      vocab, embed: embedding table ``[vocab, embed]``, ``N(0, 1)`` init as PyTorch (replace
        ``params["params"]["embedding"]["embedding"]`` with pretrained vectors after init).
      encoder: one of ``ENCODERS``. cell: rnn | gru | lstm for the recurrent encoders.
      hidden, layers, dropout: recurrent sizes / dropout rate (bilstm, cnn).
      filters, n_filters: CNN widths and channels per width.
    """

    vocab: int
    embed: int = 50
    encoder: str = "lstm"
    cell: str = "lstm"
    hidden: int = 100
    layers: int = 1
    dropout: float = 0.0
    filters: Sequence[int] = (3, 4, 5)
    n_filters: int = 100
    unroll: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, ids, lengths, train: bool = False):
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder {self.encoder!r}: choose one of {ENCODERS}")
        B, T = ids.shape
        emb = nn.Embed(self.vocab, self.embed, embedding_init=nn.initializers.normal(1.0),
                       name="embedding")(ids)
        mask = sequence_mask(lengths, T)
        emb = (emb * mask[:, :, None]).astype(self.dtype)
        drop = lambda x: nn.Dropout(self.dropout, deterministic=not train)(x) if self.dropout else x

        if self.encoder in ("rnn", "lstm"):
            _, finals = RNN(self.hidden, self.cell, 1, unroll=self.unroll, dtype=self.dtype,
                            name="rnn")(emb, lengths, outputs=False)
            feats, fan = finals[-1][0], self.hidden
        elif self.encoder == "bilstm":
            _, finals = RNN(self.hidden, self.cell, self.layers, bidirectional=True,
                            dropout=self.dropout, unroll=self.unroll, dtype=self.dtype,
                            name="rnn")(drop(emb), lengths, train=train, outputs=False)
            feats = drop(jnp.concatenate([finals[-2][0], finals[-1][0]], axis=-1))
            fan = 2 * self.hidden
        elif self.encoder == "fasttext":
            n = jnp.maximum(lengths, 1).astype(emb.dtype)[:, None]
            feats, fan = emb.sum(axis=1) / n, self.embed
        else:  # cnn
            kmax = max(self.filters)
            Tp = max(T, kmax)
            if Tp > T:
                emb = jnp.pad(emb, ((0, 0), (0, Tp - T), (0, 0)))
            eff = jnp.maximum(lengths, kmax)
            pooled = [ConvMaxPool(self.n_filters, k, torch_linear_init(k * self.embed),
                                  torch_linear_init(k * self.embed), self.dtype, name=f"conv{k}")(emb, eff - k + 1)
                      for k in self.filters]  # each [B, n_filters]
            feats = drop(jnp.concatenate(pooled, axis=-1))
            fan = self.n_filters * len(self.filters)
        out = nn.Dense(1, kernel_init=torch_linear_init(fan), bias_init=torch_linear_init(fan),
                       dtype=self.dtype, name="fc")(feats)
        return out[:, 0].astype(jnp.float32)


def bce_loss(model: TextClassifier):
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
