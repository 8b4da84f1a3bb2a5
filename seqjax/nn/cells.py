"""SimpleRNN (tanh), LSTM and GRU cells with parameters in PyTorch's layout.

Parameters of a cell with ``G`` gates (1 rnn, 4 lstm, 3 gru), input size ``F`` and hidden ``H``::

    weight_ih  float32[G*H, F]     bias_ih  float32[G*H]
    weight_hh  float32[G*H, H]     bias_hh  float32[G*H]

Gate order as PyTorch: LSTM ``i, f, g, o``; GRU ``r, z, n`` with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``. All initialised ``U(-1/sqrt(H), 1/sqrt(H))``
as PyTorch does, so PyTorch weights import by copying.

Each cell is a ``combine(carry, gx, gh) -> carry`` of the two projections
``gx = x W_ih^T + b_ih`` and ``gh = h W_hh^T + b_hh`` (``[batch, G*H]``); rnn and lstm only
need their sum. These are the single-step reference (``Cell``, sampling); the sequence layer
:func:`seqjax.nn.recurrent.scan_cell` runs the same equations with its own backward pass.

Carries are tuples: ``(h,)`` for rnn / gru, ``(h, c)`` for lstm, each ``[batch, H]``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
Carry = tuple[jnp.ndarray, ...]


def torch_uniform(hidden: int):
    """PyTorch's RNN init: ``U(-1/sqrt(hidden), 1/sqrt(hidden))``."""
    bound = 1.0 / hidden**0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def rnn_combine(carry: Carry, gx, gh) -> Carry:
    """``h' = tanh(gx + gh)`` with ``gh = h W_hh^T + b_hh``; ``gx, gh [B, H]``."""
    return (jnp.tanh(gx + gh),)


def lstm_combine(carry: Carry, gx, gh) -> Carry:
    """LSTM update from both projections ``gx, gh [B, 4H]`` (gate order i, f, g, o)."""
    _, c = carry
    i, f, g, o = jnp.split(gx + gh, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def gru_combine(carry: Carry, gx, gh) -> Carry:
    """GRU update from ``gx, gh [B, 3H]`` (r, z, n); ``n = tanh(x_n + r * (W_hn h + b_hn))``."""
    (h,) = carry
    xr, xz, xn = jnp.split(gx, 3, axis=-1)
    hr, hz, hn = jnp.split(gh, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return ((1.0 - z) * n + z * h,)


COMBINE = {"rnn": rnn_combine, "lstm": lstm_combine, "gru": gru_combine}


def cell_step(kind: str, carry: Carry, gx, w_hh, b_hh) -> Carry:
    """One step of cell ``kind`` from the input projection ``gx [B, G*H]``."""
    return COMBINE[kind](carry, gx, carry[0] @ w_hh.T + b_hh[None, :])


def zero_carry(cell: str, batch: int, hidden: int, dtype=jnp.float32) -> Carry:
    """The zero initial state: a tuple of ``[batch, hidden]`` arrays."""
    z = jnp.zeros((batch, hidden), dtype)
    return (z, z) if cell == "lstm" else (z,)


class Cell(nn.Module):
    """A recurrent cell, flax ``RNNCellBase``-style: ``(carry, x [B, F]) -> (carry, h [B, H])``.

    Attributes:
      features: hidden size ``H``. kind: "rnn" | "lstm" | "gru". dtype: compute dtype
      (params are float32).
    """

    features: int
    kind: str = "lstm"
    dtype: Any = jnp.float32

    def params_for(self, in_features: int):
        if self.kind not in GATES:
            raise ValueError(f"cell {self.kind!r}: choose rnn, gru or lstm")
        G, H = GATES[self.kind], self.features
        init = torch_uniform(H)
        return (self.param("weight_ih", init, (G * H, in_features)),
                self.param("weight_hh", init, (G * H, H)),
                self.param("bias_ih", init, (G * H,)),
                self.param("bias_hh", init, (G * H,)))

    @nn.compact
    def __call__(self, carry: Carry, x):
        w_ih, w_hh, b_ih, b_hh = (p.astype(self.dtype) for p in self.params_for(x.shape[-1]))
        gx = x.astype(self.dtype) @ w_ih.T + b_ih[None, :]
        carry = cell_step(self.kind, carry, gx, w_hh, b_hh)
        return carry, carry[0]

    def initialize_carry(self, rng, input_shape) -> Carry:
        return zero_carry(self.kind, input_shape[0], self.features, self.dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1
