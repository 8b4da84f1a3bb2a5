"""The lab's character-level language model (CharPredictor) and its variants.

``CharLM``: embedding (``embed`` = 8) -> ``RNN`` (any cell, ``layers`` deep, ``hidden`` = 128)
-> dense over the ``vocab`` chars. Parameter names mirror the lab's PyTorch module
(``emb``, ``lstm``/``rnn``, ``lin``).

Objectives (see :func:`lm_loss`):

* ``last`` — the lab: a window ``ids int32[B, T]`` is scored on the char after it
  (``labels int32[B]``), from the output at the last timestep;
* ``every`` — a contiguous chunk ``ids int32[B, T]`` is scored at every position on the next
  char (``labels int32[B, T]``), optionally from a carried state (truncated BPTT).

Two samplers, each one jit-compiled ``lax.scan`` over the generated chars:

* :func:`sample_window` — the lab's method: every next char is predicted from the last
  ``window`` (40) chars, re-read from a zero state, exactly what a ``last``-objective model
  was trained on. O(window) work per char.
* :func:`sample` — stateful: the seed is read once, then each step feeds the sampled char
  back with the state carried, so the context is everything generated so far. O(1) work per
  char; the natural choice for ``every``/stateful models.

Both draw from the logits with ``jax.random.categorical``, which never hits the
"sum(pvals) > 1" failure of sampling from float32 probabilities.

Shapes: ``B`` windows / streams, ``T`` chars per window, ``E`` = ``embed``, ``H`` = ``hidden``,
``V`` = ``vocab`` (chars), ``K`` temperatures, ``S`` seed chars.
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
    recurrence's backward pass, see :func:`seqjax.nn.recurrent.scan_cell`), recurrence
    (:class:`seqjax.nn.recurrent.RNN`'s).

    Call: ``(ids int32[B, T], initial=None, train=False, last_only=True)`` ->
    ``(logits float32[B, V] if last_only else float32[B, T, V], finals)``; ``finals`` a list
    over layers of carries (``(h,)`` or ``(h, c)``, each ``float32[B, H]``), ``initial`` alike.
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
    recurrence: str = "auto"  # seqjax.nn.recurrent.RNN's: cuDNN's LSTM on a CUDA GPU

    def setup(self):
        self.emb = nn.Embed(self.vocab, self.embed, embedding_init=nn.initializers.normal(1.0))
        self.rnn = RNN(self.hidden, self.cell, self.layers, dropout=self.dropout,
                       unroll=self.unroll, dtype=self.dtype, backward=self.backward, recurrence=self.recurrence)
        bound = 1.0 / self.hidden**0.5  # PyTorch nn.Linear init
        uni = lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound)
        self.lin = nn.Dense(self.vocab, kernel_init=uni, bias_init=uni, dtype=self.dtype)

    def __call__(self, ids_BT, initial=None, train: bool = False, last_only: bool = True):
        # every window is full length, so the last output is the last layer's final state and
        # ``last_only`` needs no [B, T, H] outputs at all
        out_BTH, finals = self.rnn(self.emb(ids_BT), None, initial, train, outputs=not last_only)
        return self.lin(finals[-1][0] if last_only else out_BTH).astype(jnp.float32), finals

    def from_embeddings(self, x_BTE):
        """Last-step logits ``float32[B, V]`` from input embeddings ``x_BTE float32[B, T, E]``
        (for gradient analysis)."""
        out_BTH, _ = self.rnn(x_BTE)
        return self.lin(out_BTH[:, -1]).astype(jnp.float32)

    def step(self, ids_B, carries):
        """One char per row: ``ids_B int32[B]`` -> ``(logits float32[B, V], carries)``."""
        h_BH, carries = self.rnn.step(self.emb(ids_B), carries)
        return self.lin(h_BH).astype(jnp.float32), carries

    def zero_state(self, batch: int):
        """The zero initial state: a list over layers of carries of ``float32[B, H]`` arrays
        (``B = batch``)."""
        return [zero_carry(self.cell, batch, self.hidden, self.dtype) for _ in range(self.layers)]


def lm_loss(model: CharLM, objective: str):
    """A loss for :func:`seqjax.train.loop.fit`: ``(params, batch, rng, train) -> (mean, sums)``.

    ``batch``: ``ids int32[B, T]``, ``labels int32[B]`` (last) or ``int32[B, T]`` (every),
    ``weights float32[B]``; with ``every`` and a carried state, ``carry`` (list of carries).
    Sums: ``loss`` (nats, summed over scored chars), ``correct``, ``count`` (scored chars).
    """

    def loss_fn(params, batch, rng, train):
        # logits [B, V] (last) or [B, T, V] (every); w, ce: [B] or [B, T] alike
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
    emb_BTE = model.apply(params, ids, method=lambda m, i: m.emb(i))

    def loss(e_BTE):
        logits_BV = model.apply(params, e_BTE, method=CharLM.from_embeddings)
        return optax.softmax_cross_entropy_with_integer_labels(logits_BV, labels).sum()

    g_BTE = jax.grad(loss)(emb_BTE)
    return jnp.linalg.norm(g_BTE, axis=-1).mean(axis=0)[::-1]


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
    ids_KS = jnp.broadcast_to(seed_ids[None, :], (K, seed_ids.shape[0]))
    # read the seed except its last char; the scan starts by feeding that char
    state = model.zero_state(K)
    if seed_ids.shape[0] > 1:
        _, state = model.apply(params, ids_KS[:, :-1], state, last_only=True)

    def body(carry, k):
        last_K, state = carry
        logits_KV, state = model.apply(params, last_K, state, method=CharLM.step)
        nxt_K = jax.random.categorical(k, logits_KV / temperatures[:, None], axis=-1).astype(jnp.int32)
        return (nxt_K, state), nxt_K

    keys = jax.random.split(key, length)
    _, out_TK = jax.lax.scan(body, (ids_KS[:, -1], state), keys)  # T = length
    return out_TK.T


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
    # int32[K, max(S + length, window)]: the seed, then the generated chars
    buf = jnp.zeros((K, max(S + length, window)), jnp.int32).at[:, :S].set(seed_ids[None, :])

    def body(buf, xs):
        i, k = xs
        n = S + i  # chars written so far
        win_KT = jax.lax.dynamic_slice(buf, (0, jnp.maximum(n - window, 0)), (K, window))
        logits_KTV, _ = model.apply(params, win_KT, last_only=False)  # zero state; T = window
        last_KV = jnp.take(logits_KTV, jnp.minimum(n, window) - 1, axis=1)
        nxt_K = jax.random.categorical(k, last_KV / temperatures[:, None], axis=-1).astype(jnp.int32)
        return jax.lax.dynamic_update_slice(buf, nxt_K[:, None], (0, n)), nxt_K

    _, out = jax.lax.scan(body, buf, (jnp.arange(length), jax.random.split(key, length)))
    return out.T  # int32[K, length]
