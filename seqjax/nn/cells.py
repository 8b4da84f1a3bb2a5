"""SimpleRNN (tanh), LSTM and GRU cells with parameters in PyTorch's layout.

Parameters of a cell with ``G`` gate rows (``H`` rnn, ``4 H`` lstm, ``3 H`` gru), input width
``F`` and ``H`` hidden units::

    weight_ih  float32[G, F]     bias_ih  float32[G]
    weight_hh  float32[G, H]     bias_hh  float32[G]

Gate order as PyTorch: LSTM ``i, f, g, o``; GRU ``r, z, n`` with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``. All initialised ``U(-1/sqrt(H), 1/sqrt(H))``
as PyTorch does, so PyTorch weights import by copying.

Each cell is a ``combine(carry, gx_BG, gh_BG) -> carry`` of the two projections
``gx_BG = x_BF W_ih^T + b_ih`` and ``gh_BG = h_BH W_hh^T + b_hh`` (``float32[B, G]``); rnn and
lstm only need their sum. :func:`cell_params` creates the parameters and :func:`cell_apply`
runs one step; :class:`Cell` and :class:`seqjax.nn.recurrent.RNN` (its one-step
``RNN.step``, used for sampling) are both built from these two. The sequence layer
:func:`seqjax.nn.recurrent.scan_cell` runs the same equations with its own backward pass.

Carries are tuples: ``(h_BH,)`` for rnn / gru, ``(h_BH, c_BH)`` for lstm, each ``float32[B, H]``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
Carry = tuple[jnp.ndarray, ...]


def torch_uniform(hidden: int):
    """PyTorch's RNN init: ``U(-1/sqrt(hidden), 1/sqrt(hidden))``."""
    bound = 1.0 / hidden**0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def rnn_combine(carry: Carry, gx_BG, gh_BG) -> Carry:
    """``h' = tanh(gx + gh)`` with ``gh = h W_hh^T + b_hh``; ``gx_BG, gh_BG float32[B, H]``."""
    return (jnp.tanh(gx_BG + gh_BG),)


def lstm_combine(carry: Carry, gx_BG, gh_BG) -> Carry:
    """LSTM update from both projections ``gx_BG, gh_BG float32[B, 4H]`` (gate order i, f, g, o)."""
    _, c_BH = carry
    i, f, g, o = jnp.split(gx_BG + gh_BG, 4, axis=-1)
    c_BH = jax.nn.sigmoid(f) * c_BH + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c_BH), c_BH


def gru_combine(carry: Carry, gx_BG, gh_BG) -> Carry:
    """GRU update from ``gx_BG, gh_BG float32[B, 3H]`` (r, z, n); ``n = tanh(x_n + r * (W_hn h + b_hn))``."""
    (h_BH,) = carry
    xr, xz, xn = jnp.split(gx_BG, 3, axis=-1)
    hr, hz, hn = jnp.split(gh_BG, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return ((1.0 - z) * n + z * h_BH,)


COMBINE = {"rnn": rnn_combine, "lstm": lstm_combine, "gru": gru_combine}


def cell_step(kind: str, carry: Carry, gx_BG, w_hh, b_hh) -> Carry:
    """One step of cell ``kind`` from the input projection ``gx_BG float32[B, G]``.

    ``w_hh float32[G, H]``, ``b_hh float32[G]``; returns the new carry.
    """
    return COMBINE[kind](carry, gx_BG, carry[0] @ w_hh.T + b_hh[None, :])


def cell_apply(kind: str, carry: Carry, x_BF, w_ih, w_hh, b_ih, b_hh) -> Carry:
    """One step of cell ``kind`` from its input ``x_BF float32[B, F]``: the input projection
    ``x W_ih^T + b_ih``, then :func:`cell_step`. Weights as :func:`cell_params` returns them."""
    return cell_step(kind, carry, x_BF @ w_ih.T + b_ih[None, :], w_hh, b_hh)


def cell_params(module: nn.Module, kind: str, hidden: int, in_features: int, suffix: str = ""):
    """The parameters ``weight_ih{suffix}, weight_hh{suffix}, bias_ih{suffix}, bias_hh{suffix}``
    of a ``kind`` cell, declared on ``module`` (inside its compact method) in that order:
    ``float32[G, F]``, ``float32[G, H]``, ``float32[G]``, ``float32[G]``."""
    if kind not in GATES:
        raise ValueError(f"cell {kind!r}: choose rnn, gru or lstm")
    G, H = GATES[kind] * hidden, hidden
    init = torch_uniform(H)
    shapes = ((G, in_features), (G, H), (G,), (G,))
    return tuple(module.param(f"{n}{suffix}", init, s) for n, s in zip(PARAM_NAMES, shapes))


def zero_carry(cell: str, batch: int, hidden: int, dtype=jnp.float32) -> Carry:
    """The zero initial state: a tuple of ``float32[B, H]`` arrays (``B = batch``, ``H = hidden``)."""
    z_BH = jnp.zeros((batch, hidden), dtype)
    return (z_BH, z_BH) if cell == "lstm" else (z_BH,)


class Cell(nn.Module):
    """A recurrent cell, flax ``RNNCellBase``-style: ``(carry, x float32[B, F]) -> (carry, h float32[B, H])``.

    Attributes:
      features: hidden size ``H``. kind: "rnn" | "lstm" | "gru". dtype: compute dtype
      (params are float32).
    """

    features: int
    kind: str = "lstm"
    dtype: Any = jnp.float32

    def params_for(self, in_features: int):
        """The cell's four parameters for an input of width ``in_features`` (:func:`cell_params`)."""
        return cell_params(self, self.kind, self.features, in_features)

    @nn.compact
    def __call__(self, carry: Carry, x_BF):
        weights = (p.astype(self.dtype) for p in self.params_for(x_BF.shape[-1]))
        carry = cell_apply(self.kind, carry, x_BF.astype(self.dtype), *weights)
        return carry, carry[0]

    def initialize_carry(self, rng, input_shape) -> Carry:
        return zero_carry(self.kind, input_shape[0], self.features, self.dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1
