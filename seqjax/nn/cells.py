"""Recurrent cells as data: each one registered once, with parameters in PyTorch's layout.

A cell is a :class:`CellDef`: its gate count ``gates`` (``G = gates x H`` rows), its carry (how
many ``float32[B, H]`` arrays, ``h`` first), the form of its recurrent weight, any parameters
of its own, and one function, ``combine(carry, gx_BG, gh_BG, *extra) -> carry``, the update
from the two projections ``gx_BG = x_BF W_ih^T + b_ih`` and ``gh_BG = h_BH W_hh^T + b_hh``
(``float32[B, G]``). Everything else is derived from that definition: the parameters
(:func:`cell_params`), one step (:func:`cell_apply`, used for sampling and by :class:`Cell`),
the zero carry, and the sequence layer's backward pass (:mod:`seqjax.nn.recurrent` takes each
step's local derivatives from ``jax.vjp`` of ``combine``). ``rnn``, ``lstm`` and ``gru`` also
have hand-fused loops in :mod:`seqjax.nn.recurrent`, which the tests prove equal to the generic
one. :data:`CELLS` is the registry; :func:`register_cell` adds to it, and an unknown name is
refused with the list.

Parameters of a cell with ``G`` gate rows, input width ``F`` and ``H`` hidden units::

    weight_ih  float32[G, F]     bias_ih  float32[G]
    weight_hh  float32[G, H]     bias_hh  float32[G]     (recurrent="matrix", the default)
    weight_hh  float32[G]                                (recurrent="diagonal": gh = h * w, per gate)

plus the cell's ``extra`` parameters (e.g. a peephole LSTM's ``float32[3, H]``). Gate order as
PyTorch: LSTM ``i, f, g, o``; GRU ``r, z, n`` with ``n = tanh(W_in x + b_in + r * (W_hn h +
b_hn))``. All initialised ``U(-1/sqrt(H), 1/sqrt(H))`` as PyTorch does, so PyTorch weights
import by copying (``CellDef.torch`` names the ``torch.nn`` module with the same layout).

Carries are tuples: ``(h_BH,)`` for rnn / gru / indrnn, ``(h_BH, c_BH)`` for lstm, each
``float32[B, H]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.registry import Registry

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
Carry = tuple[jnp.ndarray, ...]


@dataclasses.dataclass(frozen=True)
class CellDef:
    """One recurrent cell.

    Attributes:
      name: the name ``--cell`` takes.
      gates: ``G / H``, the gate blocks of ``weight_ih`` (``G = gates x H`` rows).
      combine: ``(carry, gx_BG, gh_BG, *extra) -> carry``: the update from the input projection
        ``gx_BG float32[B, G]`` (bias included) and the recurrent one ``gh_BG float32[B, G]``
        (``h W_hh^T + b_hh``); ``extra`` are the cell's own parameters, in ``extra``'s order.
        Elementwise over the batch: a cell's matmuls are the two projections, which the layer
        batches over time where it can.
      carry: arrays in the carry, ``h`` first (1: ``(h,)``; 2: ``(h, c)``).
      recurrent: ``"matrix"`` (``weight_hh float32[G, H]``) or ``"diagonal"`` (``weight_hh
        float32[G]``: ``gh = tile(h, gates) * weight_hh + bias_hh``, IndRNN's form).
      extra: ``((name, shape_of_H), ...)``: parameters beyond PyTorch's four, created
        ``U(-1/sqrt(H), 1/sqrt(H))`` with shape ``shape_of_H(H)``.
      torch: the ``torch.nn`` module with this cell's layout (``"LSTM"``), or None.
    """

    name: str
    gates: int
    combine: Callable[..., Carry]
    carry: int = 1
    recurrent: str = "matrix"
    extra: tuple[tuple[str, Callable[[int], tuple[int, ...]]], ...] = ()
    torch: str | None = None

    def __post_init__(self):
        if self.recurrent not in ("matrix", "diagonal"):
            raise ValueError(f"cell {self.name!r}: recurrent {self.recurrent!r}: choose matrix or diagonal")
        if self.gates < 1 or self.carry < 1:
            raise ValueError(f"cell {self.name!r}: gates and carry must be >= 1")

    def param_names(self) -> tuple[str, ...]:
        """PyTorch's four names, then the cell's own."""
        return PARAM_NAMES + tuple(n for n, _ in self.extra)

    def param_shapes(self, hidden: int, in_features: int) -> tuple[tuple[int, ...], ...]:
        """Shapes in :meth:`param_names` order: ``[G, F]``, ``[G, H]`` (or ``[G]``), ``[G]``,
        ``[G]``, then each extra's ``shape_of_H(H)``."""
        G = self.gates * hidden
        hh = (G, hidden) if self.recurrent == "matrix" else (G,)
        return ((G, in_features), hh, (G,), (G,)) + tuple(tuple(s(hidden)) for _, s in self.extra)


CELLS: Registry[CellDef] = Registry("cell")
register_cell = CELLS.register  # (cell) -> cell, a name registered once
get_cell = CELLS.lookup  # name -> CellDef; an unknown name is refused with the list


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


def indrnn_combine(carry: Carry, gx_BG, gh_BG) -> Carry:
    """IndRNN (Li et al., CVPR 2018): ``h' = relu(W x + b + u * h)``, ``u`` the diagonal recurrent
    weight (``gh_BG = u * h + b_hh``); ``gx_BG, gh_BG float32[B, H]``."""
    return (jax.nn.relu(gx_BG + gh_BG),)


RNN_CELL = register_cell(CellDef("rnn", 1, rnn_combine, torch="RNN"))
LSTM_CELL = register_cell(CellDef("lstm", 4, lstm_combine, carry=2, torch="LSTM"))
GRU_CELL = register_cell(CellDef("gru", 3, gru_combine, torch="GRU"))
INDRNN_CELL = register_cell(CellDef("indrnn", 1, indrnn_combine, recurrent="diagonal"))


def recurrent_projection(cell: CellDef, h_BH, w_hh, b_hh):
    """``gh float32[B, G]`` from ``h_BH float32[B, H]``: ``h W_hh^T + b_hh`` (``w_hh [G, H]``),
    or ``tile(h, gates) * w_hh + b_hh`` for a diagonal ``w_hh [G]``."""
    if cell.recurrent == "diagonal":
        return jnp.tile(h_BH, (1,) * (h_BH.ndim - 1) + (cell.gates,)) * w_hh[..., None, :] + b_hh[..., None, :]
    return h_BH @ jnp.swapaxes(w_hh, -1, -2) + b_hh[..., None, :]


def cell_step(kind: str, carry: Carry, gx_BG, w_hh, b_hh, *extra) -> Carry:
    """One step of cell ``kind`` from the input projection ``gx_BG float32[B, G]``.

    ``w_hh float32[G, H]`` (``[G]`` for a diagonal cell), ``b_hh float32[G]``, then the cell's
    extra parameters; returns the new carry.
    """
    cell = get_cell(kind)
    return cell.combine(carry, gx_BG, recurrent_projection(cell, carry[0], w_hh, b_hh), *extra)


def cell_apply(kind: str, carry: Carry, x_BF, w_ih, w_hh, b_ih, b_hh, *extra) -> Carry:
    """One step of cell ``kind`` from its input ``x_BF float32[B, F]``: the input projection
    ``x W_ih^T + b_ih``, then :func:`cell_step`. Weights as :func:`cell_params` returns them."""
    return cell_step(kind, carry, x_BF @ w_ih.T + b_ih[None, :], w_hh, b_hh, *extra)


def cell_params(module: nn.Module, kind: str, hidden: int, in_features: int, suffix: str = ""):
    """The parameters ``weight_ih{suffix}, weight_hh{suffix}, bias_ih{suffix}, bias_hh{suffix}``
    (then the cell's extra ones) of a ``kind`` cell, declared on ``module`` (inside its compact
    method) in that order, shapes as :meth:`CellDef.param_shapes`."""
    cell = get_cell(kind)
    init = torch_uniform(hidden)
    return tuple(module.param(f"{n}{suffix}", init, s)
                 for n, s in zip(cell.param_names(), cell.param_shapes(hidden, in_features)))


def zero_carry(cell: str, batch: int, hidden: int, dtype=jnp.float32) -> Carry:
    """The zero initial state: a tuple of ``float32[B, H]`` arrays (``B = batch``, ``H = hidden``),
    as many as the cell carries."""
    z_BH = jnp.zeros((batch, hidden), dtype)
    return (z_BH,) * get_cell(cell).carry


class Cell(nn.Module):
    """A recurrent cell, flax ``RNNCellBase``-style: ``(carry, x float32[B, F]) -> (carry, h float32[B, H])``.

    Attributes:
      features: hidden size ``H``. kind: a name in :data:`CELLS`. dtype: compute dtype
      (params are float32).
    """

    features: int
    kind: str = "lstm"
    dtype: Any = jnp.float32

    def params_for(self, in_features: int):
        """The cell's parameters for an input of width ``in_features`` (:func:`cell_params`)."""
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
