"""Text classifiers: embedder -> encoder -> head; the five lab models differ only in the encoder
(as flax's ``examples/sst2`` composes its ``TextClassifier``). The head gives one logit for two
classes (the lab's BCE-with-logits) and ``C`` logits for ``C > 2`` (softmax cross-entropy).

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
``state_dict`` onto, and that saved checkpoints hold. :func:`TextClassifier` builds the model
of an encoder's name.

Encoders are registered by name in :data:`ENCODERS` (:class:`EncoderDef`: a builder that takes
keywords only, and the hyperparameters it reads); :func:`register_encoder` adds one, and every
model that takes an encoder name can then use it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from seqjax.nn.conv import ConvMaxPool
from seqjax.nn.recurrent import RNN, sequence_mask
from seqjax.registry import Registry



@dataclasses.dataclass(frozen=True)
class EncoderDef:
    """A registered encoder: ``build(**keywords) -> module`` with the encoder contract of this
    module's docstring, built from keywords only (``fields``, the hyperparameters it reads, and
    ``dtype``); ``doc`` one line for ``--help``; ``preset``: the ``seqjax imdb train --model NAME``
    values it trains with unless given (:class:`seqjax.configs.ImdbConfig` fields such as
    ``vectors``, ``embed``, ``hidden``, ``optimizer``, ``lr``; the rest from
    :func:`seqjax.configs.imdb_preset`)."""

    name: str
    build: Callable[..., nn.Module]
    fields: tuple[str, ...]
    doc: str = ""
    preset: dict = dataclasses.field(default_factory=dict)


ENCODERS: Registry[EncoderDef] = Registry("encoder")
register_encoder = ENCODERS.register  # (encoder) -> encoder, a name registered once
get_encoder = ENCODERS.lookup  # name -> EncoderDef; an unknown name is refused with the list


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
    cell: str = "lstm"  # a name in seqjax.nn.cells.CELLS
    unroll: int = 1
    dtype: Any = jnp.float32
    recurrence: str = "auto"  # seqjax.nn.recurrent.RNN's

    @nn.compact
    def __call__(self, x_BTE, lengths_B, train: bool = False):
        _, finals = RNN(self.hidden, self.cell, 1, unroll=self.unroll, dtype=self.dtype, recurrence=self.recurrence,
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
    recurrence: str = "auto"  # seqjax.nn.recurrent.RNN's

    @nn.compact
    def __call__(self, x_BTE, lengths_B, train: bool = False):
        x_BTE = _dropout(self.dropout, train)(x_BTE)
        _, finals = RNN(self.hidden, self.cell, self.layers, bidirectional=True, dropout=self.dropout,
                        unroll=self.unroll, dtype=self.dtype, recurrence=self.recurrence, name="rnn")(x_BTE, lengths_B, train=train,
                                                                          outputs=False)
        return _dropout(self.dropout, train)(jnp.concatenate([finals[-2][0], finals[-1][0]], axis=-1))


class MeanEncoder(nn.Module):
    """The mean of each row's first ``lengths_B[b]`` vectors: ``float32[B, E]`` (FastText). No params."""

    @nn.compact
    def __call__(self, x_BTE, lengths_B, train: bool = False):
        # the sum in float32 whatever the compute dtype: a bfloat16 sum of thousands of vectors loses digits
        x_BTE = x_BTE.astype(jnp.float32) * sequence_mask(lengths_B, x_BTE.shape[1])[:, :, None]
        n_B1 = jnp.maximum(lengths_B, 1).astype(jnp.float32)[:, None]
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
    """``embedding`` -> ``encoder`` -> ``fc``: one logit per text (two classes), or ``classes``.

    Attributes:
      vocab, embed: the embedding table ``float32[V, E]``, ``N(0, 1)`` init as PyTorch's (replace
        ``params["params"]["embedding"]["embedding"]`` with pretrained vectors after init).
      encoder: a module with the encoder contract of this file's docstring.
      dtype: what the embeddings, the encoder and the head compute in; params stay float32.
      classes: 2 (one logit, ``fc/kernel [D, 1]``, as the lab) or ``C > 2`` (``fc/kernel [D, C]``).

    Call: ``(ids_BT int32[B, T], lengths_B int32[B], train=False) -> logits float32[B]`` (two
    classes) or ``float32[B, C]``.
    """

    vocab: int
    embed: int
    encoder: nn.Module
    dtype: Any = jnp.float32
    classes: int = 2

    def setup(self):
        nn.share_scope(self, self.encoder)  # the encoder's params beside embedding and fc

    @nn.compact
    def __call__(self, ids_BT, lengths_B, train: bool = False):
        x_BTE = nn.Embed(self.vocab, self.embed, embedding_init=nn.initializers.normal(1.0),
                         name="embedding")(ids_BT).astype(self.dtype)
        feats_BD = self.encoder(x_BTE, lengths_B, train)
        D = feats_BD.shape[-1]
        if self.classes < 2:
            raise ValueError(f"classes {self.classes}: a classifier needs 2 or more")
        C = 1 if self.classes == 2 else self.classes
        logits_BC = nn.Dense(C, kernel_init=torch_linear_init(D), bias_init=torch_linear_init(D),
                             dtype=self.dtype, name="fc")(feats_BD).astype(jnp.float32)
        return logits_BC[:, 0] if C == 1 else logits_BC


register_encoder(EncoderDef(
    "rnn", lambda *, hidden, cell="rnn", unroll=1, recurrence="auto", dtype=jnp.float32: RecurrentEncoder(
        hidden=hidden, cell=cell, unroll=unroll, recurrence=recurrence, dtype=dtype),
    ("hidden", "cell", "unroll", "recurrence"), "the final state of a 1-layer recurrence (the lab's plain RNN)"))
register_encoder(EncoderDef(
    "lstm", lambda *, hidden, cell="lstm", unroll=1, recurrence="auto", dtype=jnp.float32: RecurrentEncoder(
        hidden=hidden, cell=cell, unroll=unroll, recurrence=recurrence, dtype=dtype),
    ("hidden", "cell", "unroll", "recurrence"), "the final state of a 1-layer LSTM"))
register_encoder(EncoderDef(
    "bilstm", lambda *, hidden, layers=2, cell="lstm", dropout=0.0, unroll=1, recurrence="auto",
    dtype=jnp.float32: BiRecurrentEncoder(hidden=hidden, layers=layers, cell=cell, dropout=dropout, unroll=unroll,
                                          recurrence=recurrence, dtype=dtype),
    ("hidden", "layers", "cell", "dropout", "unroll", "recurrence"), "both final states of a stacked bidirectional LSTM"))
register_encoder(EncoderDef("fasttext", lambda *, dtype=jnp.float32: MeanEncoder(), (),
                            "the mean of the token and bigram vectors (FastText)"))
register_encoder(EncoderDef(
    "cnn", lambda *, filters=(3, 4, 5), n_filters=100, dropout=0.0, dtype=jnp.float32: CNNEncoder(
        filters=tuple(filters), n_filters=n_filters, dropout=dropout, dtype=dtype),
    ("filters", "n_filters", "dropout"), "Kim's CNN: Conv1d per width, max over time"))


def TextClassifier(vocab: int, embed: int = 50, encoder: str = "lstm", cell: str = "lstm",  # noqa: N802
                   hidden: int = 100, layers: int = 1, dropout: float = 0.0,
                   filters: Sequence[int] = (3, 4, 5), n_filters: int = 100, unroll: int = 1,
                   dtype: Any = jnp.float32, classes: int = 2, recurrence: str = "auto", **extra) -> Classifier:
    """The classifier of the encoder named ``encoder`` (:data:`ENCODERS`), as a :class:`Classifier`
    with ``classes`` outputs.

    The encoder is built from the keywords it declares (:attr:`EncoderDef.fields`) out of
    ``cell``, ``hidden``, ``layers``, ``dropout``, ``filters``, ``n_filters``, ``unroll``,
    ``recurrence`` (:class:`seqjax.nn.recurrent.RNN`'s) and ``extra`` (a registered encoder's own
    hyperparameters); the others are ignored.
    """
    spec = get_encoder(encoder)
    given = dict(cell=cell, hidden=hidden, layers=layers, dropout=dropout, filters=tuple(filters),
                 n_filters=n_filters, unroll=unroll, recurrence=recurrence, **extra)
    enc = spec.build(**{k: given[k] for k in spec.fields if k in given}, dtype=dtype)
    return Classifier(vocab, embed, enc, dtype, classes)


def classification_loss(model: Classifier, confusion: bool = False):
    """Loss for :func:`seqjax.train.loop.fit`, by the model's ``classes``: weighted sigmoid
    BCE-with-logits for two (the lab's), softmax cross-entropy for more.

    ``batch``: ``ids int32[B, T]``, ``lengths int32[B]``, ``labels float32[B]`` (0/1, or the class
    index 0..C-1), ``weights float32[B]``. Sums: ``loss``, ``correct`` (the predicted class is
    the label), ``count``; with ``confusion``, also ``confusion`` ``float32[C, C]``: the weight of
    the rows of each (true class, predicted class), rows the true class (an evaluation then gets
    the confusion matrix in the same pass).
    """

    def loss_fn(params, batch, rng, train):
        logits = model.apply(params, batch["ids"], batch["lengths"], train, rngs={"dropout": rng})
        w, y = batch["weights"], batch["labels"]
        if model.classes == 2:
            losses = optax.sigmoid_binary_cross_entropy(logits, y)
            true_B, pred_B = (y > 0.5).astype(jnp.int32), (logits > 0).astype(jnp.int32)
        else:
            true_B = y.astype(jnp.int32)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, true_B)
            pred_B = jnp.argmax(logits, axis=-1)
        hit = pred_B == true_B
        count = w.sum()
        sums = {"loss": (losses * w).sum(), "correct": (hit * w).sum(), "count": count}
        if confusion:
            c = model.classes
            sums["confusion"] = jnp.einsum("b,bi,bj->ij", w, jax.nn.one_hot(true_B, c), jax.nn.one_hot(pred_B, c))
        return sums["loss"] / jnp.maximum(count, 1.0), (sums, {})

    return loss_fn


bce_loss = classification_loss  # the lab's name for the two-class loss
