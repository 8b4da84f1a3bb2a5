"""The lab's character-level language model (CharPredictor) and its variants.

``CharLM``: embedding (``embed`` = 8) -> ``RNN`` (any cell, ``layers`` deep, ``hidden`` = 128)
-> dense over the ``vocab`` chars. Parameter names mirror the lab's PyTorch module
(``emb``, ``lstm``/``rnn``, ``lin``).

Objectives (see :func:`lm_loss`):

* ``last`` — the lab: a window ``ids [B, T]`` is scored on the char after it, from the
  output at the last timestep;
* ``every`` — a contiguous chunk ``ids [B, T]`` is scored at every position on the next
  char (``labels [B, T]``), optionally from a carried state (truncated BPTT).

Two samplers, each one jit-compiled ``lax.scan`` over the generated chars:

* :func:`sample_window` — the lab's method: every next char is predicted from the last
  ``window`` (40) chars, re-read from a zero state, exactly what a ``last``-objective model
  was trained on. O(window) work per char.
* :func:`sample` — stateful: the seed is read once, then each step feeds the sampled char
  back with the state carried, so the context is everything generated so far. O(1) work per
  char; the natural choice for ``every``/stateful models.

Both draw from the logits with ``jax.random.categorical``, which never hits the
"sum(pvals) > 1" failure of sampling from float32 probabilities.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from seqjax.nn.cells import zero_carry
from seqjax.nn.recurrent import RNN


class CharLM(nn.Module):
    """Attributes: vocab, embed, hidden, layers, cell, dropout, unroll, dtype, backward (the
    recurrence's backward pass, see :func:`seqjax.nn.recurrent.scan_cell`).

    Call: ``(ids int32[B, T], initial=None, train=False, last_only=True)`` ->
    ``(logits float32[B, vocab] if last_only else float32[B, T, vocab], finals)``.
    """

    vocab: int
    embed: int = 8
    hidden: int = 128
    layers: int = 1
    cell: str = "lstm"
    dropout: float = 0.0
    unroll: int = 1
    dtype: Any = jnp.float32
    backward: str = "hoisted"

    def setup(self):
        self.emb = nn.Embed(self.vocab, self.embed, embedding_init=nn.initializers.normal(1.0))
        self.rnn = RNN(self.hidden, self.cell, self.layers, dropout=self.dropout,
                       unroll=self.unroll, dtype=self.dtype, backward=self.backward)
        bound = 1.0 / self.hidden**0.5  # PyTorch nn.Linear init
        uni = lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound)
        self.lin = nn.Dense(self.vocab, kernel_init=uni, bias_init=uni, dtype=self.dtype)

    def __call__(self, ids, initial=None, train: bool = False, last_only: bool = True):
        # every window is full length, so the last output is the last layer's final state and
        # ``last_only`` needs no [B, T, H] outputs at all
        out, finals = self.rnn(self.emb(ids), None, initial, train, outputs=not last_only)
        return self.lin(finals[-1][0] if last_only else out).astype(jnp.float32), finals

    def from_embeddings(self, x_BTE):
        """Last-step logits from input embeddings ``float32[B, T, embed]`` (for gradient analysis)."""
        out, _ = self.rnn(x_BTE)
        return self.lin(out[:, -1]).astype(jnp.float32)

    def step(self, ids_B, carries):
        """One char per row: ``ids int32[B]`` -> ``(logits float32[B, vocab], carries)``."""
        h, carries = self.rnn.step(self.emb(ids_B), carries)
        return self.lin(h).astype(jnp.float32), carries

    def zero_state(self, batch: int):
        """The zero initial state: a list over layers of carries ``[batch, hidden]``."""
        return [zero_carry(self.cell, batch, self.hidden, self.dtype) for _ in range(self.layers)]


def lm_loss(model: CharLM, objective: str):
    """A loss for :func:`seqjax.train.loop.fit`: ``(params, batch, rng, train) -> (mean, sums)``.

    ``batch``: ``ids int32[B, T]``, ``labels int32[B]`` (last) or ``int32[B, T]`` (every),
    ``weights float32[B]``; with ``every`` and a carried state, ``carry`` (list of carries).
    Sums: ``loss`` (nats, summed over scored chars), ``correct``, ``count`` (scored chars).
    """

    def loss_fn(params, batch, rng, train):
        logits, finals = model.apply(params, batch["ids"], batch.get("carry"), train,
                                     last_only=objective == "last", rngs={"dropout": rng})
        w = batch["weights"]
        if objective == "every":
            w = jnp.broadcast_to(w[:, None], batch["labels"].shape)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"])
        count = w.sum()
        sums = {"loss": (ce * w).sum(),
                "correct": ((logits.argmax(-1) == batch["labels"]) * w).sum(),
                "count": count}
        aux = {"carry": jax.lax.stop_gradient(finals)} if "carry" in batch else {}
        return sums["loss"] / jnp.maximum(count, 1.0), (sums, aux)

    return loss_fn


@functools.partial(jax.jit, static_argnames=("model",))
def input_gradient_norms(model: CharLM, params, ids, labels):
    """How far back the last-step loss reaches: ``float32[T]``, entry ``k`` = mean over windows of
    ``|| d loss_last / d embedding(x_{T-1-k}) ||`` (distance ``k`` from the end).

    Args: ``ids int32[B, T]`` windows, ``labels int32[B]`` the char after each window.
    """
    emb = model.apply(params, ids, method=lambda m, i: m.emb(i))

    def loss(e):
        logits = model.apply(params, e, method=CharLM.from_embeddings)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).sum()

    g = jax.grad(loss)(emb)  # [B, T, E]
    return jnp.linalg.norm(g, axis=-1).mean(axis=0)[::-1]


@functools.partial(jax.jit, static_argnames=("model", "length"))
def sample(model: CharLM, params, seed_ids, length: int, temperatures, key):
    """Continue a seed at several temperatures in one compiled program.

    Args:
      seed_ids: ``int32[S]`` the seed text (S >= 1).
      length: chars to generate.
      temperatures: ``float32[K]``; one row per temperature.
      key: a ``jax.random`` key.
    Returns:
      ``int32[K, length]`` generated ids.
    """
    K = temperatures.shape[0]
    ids = jnp.broadcast_to(seed_ids[None, :], (K, seed_ids.shape[0]))
    # read the seed except its last char; the scan starts by feeding that char
    state = model.zero_state(K)
    if seed_ids.shape[0] > 1:
        _, state = model.apply(params, ids[:, :-1], state, last_only=True)

    def body(carry, k):
        last, state = carry
        logits, state = model.apply(params, last, state, method=CharLM.step)
        nxt = jax.random.categorical(k, logits / temperatures[:, None], axis=-1).astype(jnp.int32)
        return (nxt, state), nxt

    keys = jax.random.split(key, length)
    _, out = jax.lax.scan(body, (ids[:, -1], state), keys)
    return out.T


@functools.partial(jax.jit, static_argnames=("model", "length", "window"))
def sample_window(model: CharLM, params, seed_ids, length: int, temperatures, key, window: int = 40):
    """Continue a seed the lab's way: each char from the last ``window`` chars, from a zero state.

    The lab slides a 40-char window over the text and runs the model on it afresh for every
    new char; a seed shorter than ``window`` is read whole (the window grows until it is full).
    (The lab's own loop pads its 39-char seed with id 0 at the end; here the window holds only
    real chars.) Causality makes this exact with a static shape: the window is read from a
    zero-padded buffer and the logits are taken at its last real position.

    Args:
      seed_ids: ``int32[S]`` the seed text (S >= 1).
      length: chars to generate. window: context length (the training ``seq_len``).
      temperatures: ``float32[K]``; one row per temperature.
      key: a ``jax.random`` key.
    Returns:
      ``int32[K, length]`` generated ids.
    """
    K, S = temperatures.shape[0], seed_ids.shape[0]
    buf = jnp.zeros((K, max(S + length, window)), jnp.int32).at[:, :S].set(seed_ids[None, :])

    def body(buf, xs):
        i, k = xs
        n = S + i  # chars written so far
        win = jax.lax.dynamic_slice(buf, (0, jnp.maximum(n - window, 0)), (K, window))
        logits, _ = model.apply(params, win, last_only=False)  # [K, window, vocab], zero state
        last = jnp.take(logits, jnp.minimum(n, window) - 1, axis=1)  # [K, vocab]
        nxt = jax.random.categorical(k, last / temperatures[:, None], axis=-1).astype(jnp.int32)
        return jax.lax.dynamic_update_slice(buf, nxt[:, None], (0, n)), nxt

    _, out = jax.lax.scan(body, buf, (jnp.arange(length), jax.random.split(key, length)))
    return out.T
