"""Masked recurrences over time with ``jax.lax.scan``: lengths, reverse, bidirectional, stacks.

Public arrays are batch-major (``x float32[B, T, F]``, ``lengths int32[B]``); the scan runs
time-major inside (``x_TBF``). For each direction of each layer:

1. ``lax.scan`` runs the cell over time, with a custom backward pass (``_recurrence``: only
   ``dh, dc`` in the reverse loop, the weight gradients one matmul after it); at
   ``t >= length`` the carry is frozen and the
   output is zero, so the final state is the state at ``length - 1`` — what PyTorch's
   ``pack_padded_sequence`` gives — and padding never reaches any output;
2. the reverse direction reverses each sequence *within its own length*, so it starts at the
   last real token, not in the padding.

A bidirectional layer runs its two directions one of two ways (``RNN.fuse_directions``), with
the same parameters and the same outputs, final states and gradients (tests/test_recurrent.py):

- two loops (the default): :func:`scan_cell` forward, then :func:`scan_cell` on the input
  reversed within each length (a gather, :func:`reverse_within_lengths`), gathered back;
- one loop (:func:`scan_bidirectional`): step ``s`` advances the forward direction at
  ``t = s`` and the reverse one at ``t = T - 1 - s`` (the input and the mask flipped in time),
  each direction with its own weights, carry and mask, in one ``lax.scan`` with the same
  custom backward pass; the weight gradients stay one matmul per direction after the loop.

Two loops are the default because the one loop was not faster on XLA:CPU. Both do the same
matmuls; at the IMDB bi-LSTM's shapes they dominate each step, and putting both directions'
matmuls in one step (one batched ``[2, B, K] @ [2, K, G]``, or two independent dots) gained
nothing over running them in turn. ``benchmarks/bidirectional.py`` (gradient of the bi-LSTM
classifier's loss, embed 50, 2 layers, T 256, ragged lengths; median CPU ms of 9 interleaved
rounds on one pinned core, results/benchmarks/bidirectional_c1.json)::

    hidden, batch       two loops   one loop, batched   one loop, dots
    256, 64               3,553          3,647              3,540
    256, 32               1,633          1,688              1,776
    100, 64                 838            853                876
    100, 32                 414            424                418

(batch 32 is each core's share under seqjax's one-device-per-core layout, seqjax/layout.py).
Over both cores of one device the one loop ran at 0.86-1.05x the two loops' speed
(bidirectional_c2.json, measured while other work shared the machine: the process's CPU time
about equals its wall time). On an accelerator, where a step costs launch latency rather than
flops, the one loop halves the sequential steps; that is not measured here.

Any cell registered in :mod:`seqjax.nn.cells` runs here. Its equations exist once, as the
cell's ``combine``: the generic loop (:func:`_generic_recurrence`) runs it forward and takes
each step's local derivatives from ``jax.vjp`` of it in the reverse loop, which, like the
fused loops, carries only the carry's gradient through ``W_hh`` and leaves the weight gradients
to one matmul each after the loop. rnn, lstm and gru also have hand-fused loops (``_forward``,
``_recurrence_bwd``: the local derivatives computed in the forward pass's own elementwise
work); tests/test_cells.py proves every cell's loops, fused and generic, equal to JAX's
autodiff of a plain ``lax.scan`` of the cell's step. The fused loops stay because they are
faster: forward + backward at the lab's shapes (``benchmarks/recurrence.py``, one core,
results/benchmarks/recurrence.json)::

                                           fused     generic    autodiff of the generic scan
    char-LSTM layer 1 (T 40, B 128, H 128)   32.0 ms   39.8 ms   32.3 ms
    IMDB LSTM (T 256, B 64, H 100, ragged)  159.2 ms  206.2 ms  175.9 ms

(the generic pass at 1.24x and 1.29x the fused one). On XLA:CPU JAX's own transpose of the
generic scan is faster still at these shapes, so a new cell's ``backward="autodiff"`` is worth
timing; the generic pass is the default because its reverse loop holds no weight-gradient
accumulation, the part that grows with ``H``.

Parameter names follow ``torch.nn.{RNN,LSTM,GRU}``: ``weight_ih_l{k}[_reverse]`` etc. (then a
cell's own, e.g. ``weight_peephole_l0``), so a PyTorch ``state_dict`` maps onto these params by
name. They are declared by :func:`seqjax.nn.cells.cell_params`, and ``RNN.step`` runs
:func:`seqjax.nn.cells.cell_apply`.

Shapes: ``G`` is the gate width (gates x ``H``: ``H`` rnn, ``4 H`` lstm, ``3 H`` gru;
:attr:`seqjax.nn.cells.CellDef.gates`).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax import backend
from seqjax.nn.cells import Carry, cell_apply, cell_params, get_cell, zero_carry

# cells with a hand-fused loop and backward pass here (``_forward``, ``_recurrence_bwd``); every
# other registered cell runs the generic ones, which tests/test_recurrent.py proves equal to these
FUSED_CELLS = ("rnn", "lstm", "gru")


def sequence_mask(lengths: jnp.ndarray, maxlen: int) -> jnp.ndarray:
    """``bool[B, T]`` (``T = maxlen``): True at ``t < lengths[b]``, ``lengths int32[B]``.
    The one padding mask of seqjax."""
    return jnp.arange(maxlen)[None, :] < lengths[:, None]


def reverse_within_lengths(x_TB: jnp.ndarray, lengths: jnp.ndarray) -> jnp.ndarray:
    """Reverse each column ``b`` of a time-major ``x_TB [T, B, ...]`` over its first
    ``lengths[b]`` steps (``lengths int32[B]``).

    Steps past the length stay in place. The map is its own inverse.
    """
    T = x_TB.shape[0]
    t_T1 = jnp.arange(T)[:, None]
    idx_TB = jnp.where(t_T1 < lengths[None, :], lengths[None, :] - 1 - t_T1, t_T1)
    idx_TB = idx_TB.reshape(idx_TB.shape + (1,) * (x_TB.ndim - 2))
    return jnp.take_along_axis(x_TB, idx_TB, axis=0)


def _reverse(x_TB: jnp.ndarray, lengths: jnp.ndarray | None) -> jnp.ndarray:
    """Time reversal of ``x_TB [T, B, ...]`` within each length; a plain flip when every
    sequence is full (``lengths`` None)."""
    return x_TB[::-1] if lengths is None else reverse_within_lengths(x_TB, lengths)


def scan_cell(kind: str, x_TBF: jnp.ndarray, mask_TB: jnp.ndarray | None, w_ih, w_hh, b_ih, b_hh,
              carry: Carry, unroll: int = 1, emit: bool = True, projection: str | None = None,
              backward: str = "hoisted", extra: tuple = ()) -> tuple[jnp.ndarray | None, Carry]:
    """Run cell ``kind`` over time-major inputs ``x_TBF float32[T, B, F]``.

    Args:
      mask_TB: ``bool[T, B]``, False past each sequence's length; ``None`` when every step of
        every row is real (the char models' full windows), which skips the masking work.
      w_ih, w_hh, b_ih, b_hh: ``float32[G, F]``, ``[G, H]``, ``[G]``, ``[G]`` (PyTorch layout).
      carry: the initial state, ``(h,)`` or ``(h, c)``, each ``float32[B, H]``.
      emit: with False only the final state is wanted; no ``[T, B, H]`` outputs are written.
      projection: how each step gets ``x_t W_ih^T + h W_hh^T``: ``"fused"`` — one matmul of
        ``[x_t, h]`` with ``[W_ih | W_hh]^T`` (rnn / lstm); ``"separate"`` — two matmuls;
        ``"hoisted"`` — ``X W_ih^T`` for all steps in one matmul before the loop (cuDNN's way),
        ``h W_hh^T`` in it. Default (``None``): :func:`default_projection`.
      backward: ``"hoisted"`` (default) — the custom backward pass: the hand-fused one of
        :func:`_recurrence` for rnn / lstm / gru, the generic one (:func:`_generic_recurrence`,
        local derivatives from ``jax.vjp`` of the cell's ``combine``) for any other cell;
        ``"generic"`` — the generic one for every cell; ``"autodiff"`` — JAX's transpose of the
        cell's plain ``lax.scan`` (the reference in the tests).
      extra: the cell's own parameters after the four (:attr:`seqjax.nn.cells.CellDef.extra`).

    Returns:
      ``(outputs float32[T, B, H] | None, final carry)``: outputs are zero where masked and the
      carry is frozen past each sequence's length (the state at ``length - 1``).
    """
    return _run(kind, x_TBF, mask_TB, (w_ih, w_hh, b_ih, b_hh, *extra), tuple(carry), unroll, emit, projection,
                backward, None)


def scan_bidirectional(kind: str, x_TBF: jnp.ndarray, mask_TB: jnp.ndarray | None, w_ih, w_hh, b_ih, b_hh,
                       carry: Carry, unroll: int = 1, emit: bool = True, projection: str | None = None,
                       backward: str = "hoisted", step_matmul: str = "batched", extra: tuple = ()
                       ) -> tuple[tuple[jnp.ndarray, jnp.ndarray] | None, Carry]:
    """Both directions of a bidirectional layer over ``x_TBF float32[T, B, F]`` in one ``lax.scan``.

    Step ``s`` advances the forward direction at time ``s`` and the reverse direction at time
    ``T - 1 - s``: the reverse direction reads the input flipped in time with the mask flipped
    too, so each row's padding comes first, where its carry stays the initial one, and its
    first real step is the row's last token — each sequence reversed within its own length, as
    :func:`reverse_within_lengths` does for the two-scan layer, without a gather.

    Args:
      mask_TB: ``bool[T, B]`` (False past each length) or ``None`` (every step real).
      w_ih, w_hh, b_ih, b_hh: ``float32[2, G, F]``, ``[2, G, H]``, ``[2, G]``, ``[2, G]``: each
        direction's PyTorch-layout weights, forward first.
      carry: the initial states, ``(h,)`` or ``(h, c)``, each ``float32[2, B, H]`` (forward first).
      unroll, emit, projection, backward: as :func:`scan_cell`; extra: the cell's own
        parameters, each with a leading direction axis.
      step_matmul: how a step multiplies both directions: ``"batched"`` (default) — one
        batched matmul over the direction axis, ``[2, B, K] @ [2, K, G]``; ``"dots"`` — one
        ``[B, K] @ [K, G]`` matmul per direction, independent ops in one loop body. On XLA:CPU
        the two measured within noise of each other (``benchmarks/bidirectional.py``,
        results/benchmarks/bidirectional_c1.json and _c2.json); ``"batched"`` is one op per
        product on any backend.

    Returns:
      ``((forward, reverse) outputs, each float32[T, B, H] in time order | None, final carry)``,
      the final carry ``(h,)`` or ``(h, c)``, each ``float32[2, B, H]``. Outputs are zero past
      each length; a direction's final state is its state after its last real step.
    """
    if step_matmul not in _STEP_MATMULS:
        raise ValueError(f"step_matmul {step_matmul!r}: choose {', '.join(_STEP_MATMULS)}")
    x_TDBF = jnp.stack([x_TBF, x_TBF[::-1]], axis=1)
    mask_TDB = None if mask_TB is None else jnp.stack([mask_TB, mask_TB[::-1]], axis=1)
    y_TDBH, carry = _run(kind, x_TDBF, mask_TDB, (w_ih, w_hh, b_ih, b_hh, *extra), tuple(carry), unroll, emit,
                         projection, backward, step_matmul)
    return (None if y_TDBH is None else (y_TDBH[:, 0], y_TDBH[::-1, 1])), carry


def _run(kind, x, mask, weights, carry, unroll, emit, projection, backward, step_matmul):
    """:func:`scan_cell` (``step_matmul`` None) or :func:`scan_bidirectional`'s stacked loop
    (``x float32[T, 2, B, F]``, ``mask bool[T, 2, B]``) with the projection and backward pass
    chosen and checked."""
    cell = get_cell(kind)
    if len(weights) != len(cell.param_names()):
        raise ValueError(f"cell {kind!r} takes {len(cell.param_names())} parameters "
                         f"({', '.join(cell.param_names())}), got {len(weights)}")
    projection = projection or default_projection(kind, x.shape[-1], cell_hidden(cell, weights[1]))
    if projection not in ("fused", "separate", "hoisted"):
        raise ValueError(f"projection {projection!r}: choose fused, separate or hoisted")
    if backward not in ("hoisted", "generic", "autodiff"):
        raise ValueError(f"backward {backward!r}: choose hoisted, generic or autodiff")
    fused = kind in FUSED_CELLS and backward == "hoisted"
    if projection == "fused" and (kind == "gru" or not fused):
        projection = "separate"  # the gru, and the generic path, need h W_hh^T + b_hh on its own
    if backward == "autodiff":
        out, carry, _ = _generic_forward(cell, x, mask, weights, carry, emit, projection, unroll, False, step_matmul)
        return out, carry
    if fused:
        return _recurrence(kind, emit, projection, unroll, step_matmul, x, mask, *weights, carry)
    return _generic_recurrence(kind, emit, projection, unroll, step_matmul, x, mask, tuple(weights), carry)


def cell_hidden(cell, w_hh: jnp.ndarray) -> int:
    """``H`` from the recurrent weight ``w_hh`` (``float32[(D,) G, H]``, or ``[(D,) G]`` for a
    diagonal cell)."""
    return w_hh.shape[-1] if cell.recurrent == "matrix" else w_hh.shape[-1] // cell.gates


def default_projection(kind: str, features: int, hidden: int) -> str:
    """The input projection :func:`scan_cell` uses for an input of width ``features``: on a CPU
    the fastest one at the lab's shapes in ``benchmarks/recurrence.py``
    (results/benchmarks/recurrence.json), on a GPU or TPU the hoisted one
    (:func:`seqjax.backend.projection`)."""
    return backend.projection(kind, features, hidden)


def _split_directions(w_DKG: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """``w_DKG float32[D, K, G]`` as ``D`` arrays ``float32[K, G]``, sliced once before the loop
    (a slice inside the loop body is copied at every step)."""
    return tuple(w_DKG[d] for d in range(w_DKG.shape[0]))


def _matmul_per_direction(a_DBK: jnp.ndarray, w_KG: tuple[jnp.ndarray, ...]) -> jnp.ndarray:
    """``a_DBK float32[..., D, B, K]`` times each direction's ``w_KG[d] float32[K, G]``: ``D``
    independent matmuls, stacked to ``float32[..., D, B, G]``."""
    return jnp.stack([a_DBK[..., d, :, :] @ w for d, w in enumerate(w_KG)], axis=-3)


def _matmul_batched(a_DBK: jnp.ndarray, w_DKG: jnp.ndarray) -> jnp.ndarray:
    """``a_DBK float32[..., D, B, K] @ w_DKG float32[D, K, G]`` as one batched matmul:
    ``float32[..., D, B, G]``."""
    return jnp.einsum("...dbk,dkg->...dbg", a_DBK, w_DKG)


def _same(w: jnp.ndarray) -> jnp.ndarray:
    """``w`` unchanged (a weight the product takes as it is)."""
    return w


# step_matmul: (how a weight is prepared before the loop, the product in it)
_STEP_MATMULS = {"dots": (_split_directions, _matmul_per_direction), "batched": (_same, _matmul_batched)}


def _step_matmul(step_matmul: str | None):
    """``(prepare, matmul)`` of the loop: ``jnp.matmul`` for one direction, else
    ``_STEP_MATMULS[step_matmul]``; weights go through ``prepare`` before the loop."""
    return (_same, jnp.matmul) if step_matmul is None else _STEP_MATMULS[step_matmul]


# --- the recurrence with a backward pass that keeps only the sequential part in the loop ----------
#
# Autodiff of a scan accumulates dW_ih, dW_hh and the biases inside the reverse loop: T small
# matmuls of [G, B] @ [B, F + H] and T read-modify-writes of the gradient. cuDNN and oneDNN do
# instead what _recurrence does: the reverse loop carries only (dh, dc) through W_hh and stores each
# step's pre-activation gradient dZ_t; after the loop the weight and bias gradients are one matmul
# over all N = T*B rows ([F + H, N] @ [N, G]) and the input gradient another ([N, G] @ [G, F]),
# large matmuls that run near the CPU's matmul peak. The forward pass also stores, per step, the local
# derivatives that the backward step multiplies by (e.g. i * (1 - i) * g for the LSTM's input gate),
# computed in the same fused elementwise pass as the gates, so the reverse loop does one matmul and
# a few multiply-adds per step. The benchmark that backs this: ``benchmarks/recurrence.py``
# (results/benchmarks/recurrence.json), hoisted against autodiff at the lab's shapes.
#
# The same code runs both directions of a bidirectional layer in one loop (step_matmul not None):
# every array then has a direction axis D = 2 before the batch axis (x [T, D, B, F], carry
# [D, B, H], weights [D, G, ...]), the per-step products are `_STEP_MATMULS[step_matmul]`, and the
# weight gradients after the loop are computed direction by direction.


def _forward(kind, x, mask, w_ih, w_hh, b_ih, b_hh, carry, emit, projection, unroll, save, step_matmul=None):
    """The masked scan forward of ``x float32[T, B, F]`` (``mask bool[T, B] | None``), or of
    ``x float32[T, D, B, F]`` with a direction axis (``mask bool[T, D, B]``, weights with a
    leading ``D``, carries ``[D, B, H]``) when ``step_matmul`` names a product.

    Returns ``(out float32[T, (D,) B, H] | None, final carry, residuals)``. With ``save``, the
    residuals are the stacked arrays the backward pass needs: ``hprev [T, (D,) B, H]`` (the
    state each step read) and each cell's local derivatives; else ``None``.

    Inside the step the gates keep the bare symbols of the cell's equations (``i, f, g, o``).
    """
    prepare, mm = _step_matmul(step_matmul)
    w_ih_T, w_hh_T = prepare(jnp.swapaxes(w_ih, -1, -2)), prepare(jnp.swapaxes(w_hh, -1, -2))
    b_x = (b_ih + b_hh if kind != "gru" else b_ih)[..., None, :]  # [(D,) 1, G]
    b_h = b_hh[..., None, :]
    if projection == "hoisted":  # gx [T, (D,) B, G]: one matmul over all T*B rows per direction
        if step_matmul is None:
            xs = x @ w_ih_T + b_x[None]
        else:
            xs = _matmul_per_direction(x, _split_directions(jnp.swapaxes(w_ih, -1, -2))) + b_x[None]

        def project(gx_BG, h_BH):
            if kind == "gru":
                return gx_BG, mm(h_BH, w_hh_T) + b_h
            return gx_BG + mm(h_BH, w_hh_T), None
    elif projection == "fused":
        xs = x
        W = prepare(jnp.swapaxes(jnp.concatenate([w_ih, w_hh], axis=-1), -1, -2))  # [(D,) F + H, G]

        def project(x_BF, h_BH):
            return mm(jnp.concatenate([x_BF, h_BH], axis=-1), W) + b_x, None
    else:
        xs = x

        def project(x_BF, h_BH):
            if kind == "gru":
                return mm(x_BF, w_ih_T) + b_x, mm(h_BH, w_hh_T) + b_h
            return mm(x_BF, w_ih_T) + b_x + mm(h_BH, w_hh_T), None

    def body(c, xs_t):
        x_t, m_B = xs_t
        h_BH = c[0]
        a_BG, ah_BG = project(x_t, h_BH)
        new, h_new_BH, res = _gates(kind, a_BG, ah_BG, c, save)
        if m_B is not None:
            m_B1 = m_B[..., None]
            new = tuple(jnp.where(m_B1, n_, o_) for n_, o_ in zip(new, c))
            y_BH = jnp.where(m_B1, h_new_BH, 0.0) if emit else None
        else:
            y_BH = h_new_BH if emit else None
        return new, (y_BH, (h_BH,) + res if save else None)

    carry, (out_TBH, res) = jax.lax.scan(body, carry, (xs, mask), unroll=unroll)
    return out_TBH, carry, res


def _gates(kind, a_BG, ah_BG, c, save):
    """One step of cell ``kind`` from its pre-activations ``a_BG float32[(D,) B, G]`` (for the
    gru the input part, with ``ah_BG`` the hidden part) and carry ``c``: ``(new carry, h',
    residuals)``, the residuals (with ``save``) the local derivatives :func:`_recurrence_bwd`
    multiplies by."""
    if kind == "lstm":
        i, f, g, o = jnp.split(a_BG, 4, axis=-1)
        i, f, o, g = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jax.nn.sigmoid(o), jnp.tanh(g)
        c_new_BH = f * c[1] + i * g
        tc = jnp.tanh(c_new_BH)
        h_new_BH = o * tc
        # dZ = coef * [dc', dc', dc', dh'] with dc' = dc + dh' * k;  dc_prev = dc' * f
        res = (jnp.concatenate([g * i * (1 - i), c[1] * f * (1 - f), i * (1 - g * g),
                                tc * o * (1 - o)], axis=-1), o * (1 - tc * tc), f) if save else ()
        return (h_new_BH, c_new_BH), h_new_BH, res
    if kind == "rnn":
        h_new_BH = jnp.tanh(a_BG)
        return (h_new_BH,), h_new_BH, ((1 - h_new_BH * h_new_BH,) if save else ())  # dZ = dh' * coef
    h_BH = c[0]
    xr, xz, xn = jnp.split(a_BG, 3, axis=-1)
    hr, hz, hn = jnp.split(ah_BG, 3, axis=-1)
    r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h_new_BH = (1 - z) * n + z * h_BH
    # d(gx) = dh' * [cr, cz, cn], d(gh) = dh' * [cr, cz, cn * r], dh_prev = d(gh) W_hh + dh' z
    cn = (1 - z) * (1 - n * n)
    res = (jnp.concatenate([cn * hn * r * (1 - r), (h_BH - n) * z * (1 - z), cn * r], axis=-1),
           cn, z) if save else ()
    return (h_new_BH,), h_new_BH, res


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3, 4))
def _recurrence(kind, emit, projection, unroll, step_matmul, x, mask, w_ih, w_hh, b_ih, b_hh, carry):
    out, carry, _ = _forward(kind, x, mask, w_ih, w_hh, b_ih, b_hh, carry, emit, projection, unroll,
                             save=False, step_matmul=step_matmul)
    return out, carry


def _recurrence_fwd(kind, emit, projection, unroll, step_matmul, x, mask, w_ih, w_hh, b_ih, b_hh, carry):
    out, final, res = _forward(kind, x, mask, w_ih, w_hh, b_ih, b_hh, carry, emit, projection, unroll,
                               save=True, step_matmul=step_matmul)
    return (out, final), (x, mask, w_ih, w_hh, res)


def _recurrence_bwd(kind, emit, projection, unroll, step_matmul, saved, cotangents):
    x, mask, w_ih, w_hh, res = saved
    d_out, d_final = cotangents
    prepare, mm = _step_matmul(step_matmul)
    D = None if step_matmul is None else w_ih.shape[0]
    w_hh_GH = prepare(w_hh)

    def body(dc, xs):
        dy_BH, m_B, r = xs
        dh_BH = dc[0] if dy_BH is None else dc[0] + dy_BH
        if m_B is not None:  # past the length the state passed through untouched
            m_B1 = m_B[..., None]
            dh_new_BH, skip = jnp.where(m_B1, dh_BH, 0.0), tuple(jnp.where(m_B1, 0.0, d) for d in dc)
        else:
            dh_new_BH, skip = dh_BH, None
        if kind == "lstm":
            coef, k, f = r
            dc_new_BH = dh_new_BH * k + (dc[1] if m_B is None else jnp.where(m_B1, dc[1], 0.0))
            dz_BG = coef * jnp.concatenate([dc_new_BH, dc_new_BH, dc_new_BH, dh_new_BH], axis=-1)
            prev = (mm(dz_BG, w_hh_GH), dc_new_BH * f)
            emitted = dz_BG
        elif kind == "rnn":
            dz_BG = dh_new_BH * r[0]
            prev, emitted = (mm(dz_BG, w_hh_GH),), dz_BG
        else:
            coef, _, z = r
            dgh_BG = coef * jnp.concatenate([dh_new_BH, dh_new_BH, dh_new_BH], axis=-1)
            prev, emitted = (mm(dgh_BG, w_hh_GH) + dh_new_BH * z,), dh_new_BH
        if skip is not None:
            prev = tuple(p + s for p, s in zip(prev, skip))
        # one contiguous [T, B, G] per direction for the matmuls after the loop
        return prev, (emitted if D is None else tuple(emitted[d] for d in range(D)))

    # dZ: each step's pre-activation gradient ([T, B, H] for the gru: dh' itself), per direction
    d_carry0, dZ = jax.lax.scan(body, tuple(d_final), (d_out if emit else None, mask, res[1:]),
                                reverse=True, unroll=unroll)
    if D is None:
        dx, dw_ih, dw_hh, db_ih, db_hh = _input_and_weight_grads(kind, x, res, dZ, w_ih)
        return dx, None, dw_ih, dw_hh, db_ih, db_hh, d_carry0
    per_direction = [_input_and_weight_grads(kind, x[:, d], tuple(r[:, d] for r in res), dZ[d], w_ih[d])
                     for d in range(D)]
    dx, dw_ih, dw_hh, db_ih, db_hh = zip(*per_direction)
    return (jnp.stack(dx, axis=1), None, jnp.stack(dw_ih), jnp.stack(dw_hh), jnp.stack(db_ih), jnp.stack(db_hh),
            d_carry0)


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


# --- the generic recurrence: any registered cell, the same shape of backward pass ----------------
#
# The forward loop saves each step's carry, input projection gx and recurrent projection gh. The
# reverse loop takes the step's local derivatives from ``jax.vjp`` of the cell's own ``combine``
# (recomputed from the saved arrays: elementwise work, no matmul) and carries only d(carry) through
# W_hh, as the fused loops do; the weight gradients are then one matmul each over all T*B rows.


def _generic_forward(cell, x, mask, weights, carry, emit, projection, unroll, save, step_matmul):
    """The masked scan forward of any registered ``cell`` (``x float32[T, (D,) B, F]``, ``mask
    bool[T, (D,) B] | None``, ``weights`` as :meth:`CellDef.param_names` with a leading ``D``
    for the direction axis): ``(out float32[T, (D,) B, H] | None, final carry, residuals)``, the
    residuals (with ``save``) ``(carry before each step, gx, gh)``, stacked over ``T``."""
    w_ih, w_hh, b_ih, b_hh, *extra = weights
    prepare, mm = _step_matmul(step_matmul)
    combine = cell.combine if step_matmul is None else jax.vmap(cell.combine)
    w_ih_T = prepare(jnp.swapaxes(w_ih, -1, -2))
    w_hh_T = prepare(jnp.swapaxes(w_hh, -1, -2)) if cell.recurrent == "matrix" else w_hh[..., None, :]
    b_x, b_h = b_ih[..., None, :], b_hh[..., None, :]  # [(D,) 1, G]
    if projection == "hoisted":
        if step_matmul is None:
            xs = x @ jnp.swapaxes(w_ih, -1, -2) + b_x[None]
        else:
            xs = _matmul_per_direction(x, _split_directions(jnp.swapaxes(w_ih, -1, -2))) + b_x[None]
    else:
        xs = x

    def body(c, xs_t):
        x_t, m_B = xs_t
        gx = x_t if projection == "hoisted" else mm(x_t, w_ih_T) + b_x
        if cell.recurrent == "matrix":  # mixed precision: the product in the weights' dtype
            gh = mm(c[0].astype(w_hh.dtype), w_hh_T) + b_h
        else:
            gh = jnp.tile(c[0], (1,) * (c[0].ndim - 1) + (cell.gates,)) * w_hh_T + b_h
        # ... and the cell's update in the carry's (float32: the LSTM's c sums over every step)
        new = tuple(combine(c, gx.astype(c[0].dtype), gh.astype(c[0].dtype), *extra))
        if m_B is not None:
            m_B1 = m_B[..., None]
            new = tuple(jnp.where(m_B1, n_, o_) for n_, o_ in zip(new, c))
            y = jnp.where(m_B1, new[0], 0.0).astype(x.dtype) if emit else None
        else:
            y = new[0].astype(x.dtype) if emit else None
        return new, (y, (c, gx, gh) if save else None)

    carry, (out, res) = jax.lax.scan(body, tuple(carry), (xs, mask), unroll=unroll)
    return out, carry, res


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3, 4))
def _generic_recurrence(kind, emit, projection, unroll, step_matmul, x, mask, weights, carry):
    out, carry, _ = _generic_forward(get_cell(kind), x, mask, weights, carry, emit, projection, unroll, False,
                                     step_matmul)
    return out, carry


def _generic_fwd(kind, emit, projection, unroll, step_matmul, x, mask, weights, carry):
    out, final, res = _generic_forward(get_cell(kind), x, mask, weights, carry, emit, projection, unroll, True,
                                       step_matmul)
    return (out, final), (x, mask, weights, res)


def _generic_bwd(kind, emit, projection, unroll, step_matmul, saved, cotangents):
    cell = get_cell(kind)
    x, mask, weights, res = saved
    w_ih, w_hh, b_ih, b_hh, *extra = weights
    d_out, d_final = cotangents
    prepare, mm = _step_matmul(step_matmul)
    combine = cell.combine if step_matmul is None else jax.vmap(cell.combine)
    D = None if step_matmul is None else w_ih.shape[0]
    w_hh_GH = prepare(w_hh) if cell.recurrent == "matrix" else w_hh[..., None, :]

    def body(state, xs):
        dc, d_extra = state
        dy, m_B, (c_prev, gx, gh) = xs
        d_new = ((dc[0] if dy is None else dc[0] + dy),) + tuple(dc[1:])
        if m_B is not None:  # past the length the carry passed through untouched
            m_B1 = m_B[..., None]
            d_new, skip = tuple(jnp.where(m_B1, d, 0.0) for d in d_new), tuple(jnp.where(m_B1, 0.0, d) for d in dc)
        _, vjp = jax.vjp(lambda c, a, b, *e: tuple(combine(c, a, b, *e)), c_prev, gx, gh, *extra)
        d_c, d_gx, d_gh, *d_e = vjp(d_new)
        if cell.recurrent == "matrix":
            dh = mm(d_gh, w_hh_GH)
        else:
            dh = (d_gh * w_hh_GH).reshape(d_gh.shape[:-1] + (cell.gates, -1)).sum(-2)
        prev = (d_c[0] + dh,) + tuple(d_c[1:])
        if m_B is not None:
            prev = tuple(p + s for p, s in zip(prev, skip))
        return (prev, tuple(a + b for a, b in zip(d_extra, d_e))), (d_gx, d_gh)

    zeros = tuple(jnp.zeros_like(e) for e in extra)
    (d_carry0, d_extra), (d_gx, d_gh) = jax.lax.scan(
        body, (tuple(d_final), zeros), (d_out if emit else None, mask, res), reverse=True, unroll=unroll)
    h_prev = res[0][0]
    if D is None:
        grads = _generic_weight_grads(cell, x, h_prev, d_gx, d_gh, w_ih)
    else:
        per = [_generic_weight_grads(cell, x[:, d], h_prev[:, d], d_gx[:, d], d_gh[:, d], w_ih[d]) for d in range(D)]
        grads = tuple(jnp.stack(g, axis=1 if i == 0 else 0) for i, g in enumerate(zip(*per)))
    dx, dw_ih, dw_hh, db_ih, db_hh = grads
    return dx, None, (dw_ih, dw_hh, db_ih, db_hh, *d_extra), d_carry0


_generic_recurrence.defvjp(_generic_fwd, _generic_bwd)


def _generic_weight_grads(cell, x_TBF, h_TBH, d_gx_TBG, d_gh_TBG, w_ih):
    """One direction's ``(dx float32[T, B, F], dw_ih [G, F], dw_hh [G, H] (or [G]), db_ih [G],
    db_hh [G])`` from the projections' gradients ``d_gx_TBG, d_gh_TBG``: matmuls over all
    ``N = T*B`` rows."""
    T, B, F = x_TBF.shape
    N = T * B
    d_gx_NG, d_gh_NG = d_gx_TBG.reshape(N, -1), d_gh_TBG.reshape(N, -1)
    if cell.recurrent == "matrix":
        dw_ih, dw_hh = _transposed(_rows_last(x_TBF) @ d_gx_NG, _rows_last(h_TBH) @ d_gh_NG)
    else:
        (dw_ih,) = _transposed(_rows_last(x_TBF) @ d_gx_NG)
        dw_hh = (d_gh_NG * jnp.tile(h_TBH.reshape(N, -1), (1, cell.gates))).sum(0)
    return (d_gx_NG @ w_ih).reshape(T, B, F), dw_ih, dw_hh, d_gx_NG.sum(0), d_gh_NG.sum(0)


def _input_and_weight_grads(kind, x_TBF, res, dZ_TBG, w_ih):
    """After the reverse loop, one direction's ``(dx float32[T, B, F], dw_ih [G, F], dw_hh
    [G, H], db_ih [G], db_hh [G])`` from its input ``x_TBF``, forward residuals ``res``
    (``hprev [T, B, H]`` first) and pre-activation gradients ``dZ_TBG``: matmuls over all
    ``N = T*B`` rows."""
    T, B, F = x_TBF.shape
    H = res[0].shape[-1]
    N = T * B
    x_FN, h_HN = _rows_last(x_TBF), _rows_last(res[0])
    if kind == "gru":  # dZ holds dh' [T, B, H]; the gate gradients follow from the saved coefficients
        coef_TBG, cn_TBH = res[1], res[2]
        d_gh_NG = (coef_TBG * jnp.tile(dZ_TBG, (1, 1, 3))).reshape(N, 3 * H)
        d_gx_NG = jnp.concatenate([d_gh_NG[:, :2 * H], (dZ_TBG * cn_TBH).reshape(N, H)], axis=1)
        dw_ih, dw_hh = _transposed(x_FN @ d_gx_NG, h_HN @ d_gh_NG)
        db_ih, db_hh = d_gx_NG.sum(0), d_gh_NG.sum(0)
    else:
        d_gx_NG = dZ_TBG.reshape(N, -1)
        dw_ih, dw_hh = _transposed(x_FN @ d_gx_NG, h_HN @ d_gx_NG)
        db_ih = db_hh = d_gx_NG.sum(0)
    dx_TBF = (d_gx_NG @ w_ih).reshape(T, B, F)
    return dx_TBF, dw_ih, dw_hh, db_ih, db_hh


def _transposed(*dW_KG: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """``[K, G] -> [G, K]`` (PyTorch's layout) after the product is computed. Without the
    barrier XLA folds the transpose into the matmul and runs ``[G, N] @ [N, K]``, which XLA:CPU
    runs slower at the char-LSTM's shapes; the backward pass this serves is timed by
    ``benchmarks/recurrence.py`` (results/benchmarks/recurrence.json)."""
    return tuple(d.T for d in jax.lax.optimization_barrier(dW_KG))


def _rows_last(a_TBK: jnp.ndarray) -> jnp.ndarray:
    """``[T, B, K] -> [K, N]`` (``N = T*B``), transposed explicitly: XLA:CPU runs the following
    ``[K, N] @ [N, G]`` faster from this layout than from ``a.reshape(N, K).T`` when ``K`` is
    narrow (the char-LSTM's input width 8), and as fast for wide ones; timed as part of the
    backward pass by ``benchmarks/recurrence.py`` (results/benchmarks/recurrence.json)."""
    T, B, K = a_TBK.shape
    return jnp.transpose(a_TBK, (2, 0, 1)).reshape(K, T * B)


class RNN(nn.Module):
    """A (stacked, optionally bidirectional) recurrence of any registered cell over padded batches.

    Attributes:
      hidden: ``H``. cell: a name in :data:`seqjax.nn.cells.CELLS` ("rnn", "lstm", "gru",
      "indrnn", or one registered with :func:`seqjax.nn.cells.register_cell`). num_layers: stack depth.
      bidirectional: run a reverse direction too; layer outputs concatenate ``[fwd, bwd]``.
      dropout: rate applied to each layer's output except the last (as PyTorch), when training.
      unroll: ``lax.scan`` unroll factor. dtype: compute dtype of the matmuls and the layer outputs
        (params stay float32); with ``bfloat16`` the carries (the LSTM's ``c``) and the cell's
        update stay float32, and the backward pass is JAX's autodiff (which keeps each product's
        dtype), whatever ``backward`` says: mixed precision.
      backward: ``"hoisted"`` (the custom backward pass), ``"generic"`` or ``"autodiff"``; projection: ``None``
      (by shape), ``"fused"``, ``"separate"`` or ``"hoisted"``; see :func:`scan_cell`.
      fuse_directions: with ``bidirectional``, True runs both directions of a layer in one loop
      (:func:`scan_bidirectional`); False runs two :func:`scan_cell` loops, the reverse one on the
      input reversed within each length; None (default): the backend's choice
      (:func:`seqjax.backend.fuse_directions`: two loops on a CPU, where they measured faster).
      Same parameters, same results.
      recurrence: ``"auto"`` (cuDNN's LSTM on a CUDA GPU where it fits, else the scan:
      :func:`seqjax.backend.recurrence`), ``"scan"``, ``"cudnn"``, or ``"reference"``
      (``jax.experimental.rnn.lstm_ref`` through the same weight mapping: the cuDNN path's
      stand-in on a CPU, for tests; :mod:`seqjax.nn.cudnn`).

    Call: ``(x float32[B, T, F], lengths int32[B] | None, initial=None, train=False,
    outputs=True)`` -> ``(outputs float32[B, T, 2H if bidirectional else H], finals)``, where
    ``finals`` is a list over ``num_layers`` x directions (PyTorch's order: l0, l0_reverse, l1,
    ...) of carries (``(h,)`` or ``(h, c)``, each ``float32[B, H]``). ``initial`` has the same
    structure as ``finals``.
    With ``outputs=False`` the last layer emits nothing and ``outputs`` is ``None`` (for
    encoders that read only ``finals``).
    """

    hidden: int
    cell: str = "lstm"
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    unroll: int = 1
    dtype: Any = jnp.float32
    backward: str = "hoisted"
    projection: str | None = None
    fuse_directions: bool | None = None
    recurrence: str = "auto"

    def _params(self, suffix: str, in_features: int):
        """The four parameters of direction ``suffix`` (``weight_ih_{suffix}``, ...; see
        :func:`seqjax.nn.cells.cell_params`)."""
        return cell_params(self, self.cell, self.hidden, in_features, f"_{suffix}")

    def directions(self) -> list[str]:
        """Parameter-name suffixes in PyTorch's order: ``l0, l0_reverse, l1, ...``."""
        return [f"l{k}{r}" for k in range(self.num_layers)
                for r in (("", "_reverse") if self.bidirectional else ("",))]

    @nn.compact
    def __call__(self, x_BTF, lengths=None, initial: Sequence[Carry] | None = None,
                 train: bool = False, outputs: bool = True):
        get_cell(self.cell)  # an unknown name is refused with the list
        B, T, _ = x_BTF.shape
        # no lengths: every step is real, and the scan skips the masking work
        mask_TB = None if lengths is None else sequence_mask(lengths, T).T
        # the layer's input, time-major: the embedded tokens, then each layer's outputs
        h_TBF = jnp.swapaxes(x_BTF, 0, 1)
        finals = []
        D = 2 if self.bidirectional else 1
        mixed = jnp.dtype(self.dtype) != jnp.float32
        backward = "autodiff" if mixed else self.backward  # the custom passes are float32 throughout
        between = self.dropout > 0 and train and self.num_layers > 1
        how = (self.recurrence if self.recurrence == "reference"
               else backend.recurrence(self.recurrence, self.cell, self.dtype, between))
        if how != "scan":  # cuDNN (or its reference): the whole stack in one call
            from seqjax.nn import cudnn  # it builds on this module

            params = {}
            for layer in range(self.num_layers):
                width = x_BTF.shape[-1] if layer == 0 else D * self.hidden
                for i in range(layer * D, (layer + 1) * D):
                    names = get_cell(self.cell).param_names()
                    params.update({f"{n}_{self.directions()[i]}": w
                                   for n, w in zip(names, self._params(self.directions()[i], width))})
            out_BTH, finals = cudnn.lstm(params, x_BTF.astype(jnp.float32), lengths, self.hidden, self.num_layers,
                                         self.bidirectional, initial, reference=how == "reference")
            return (out_BTH if outputs else None), finals
        fuse = backend.fuse_directions(self.fuse_directions)
        for layer in range(self.num_layers):
            emit = outputs or layer < self.num_layers - 1
            ids = range(layer * D, (layer + 1) * D)
            h_TBF = h_TBF.astype(self.dtype)
            weights = [tuple(p.astype(self.dtype) for p in self._params(self.directions()[i], h_TBF.shape[-1]))
                       for i in ids]
            carries = [tuple(initial[i]) if initial is not None else zero_carry(self.cell, B, self.hidden, jnp.float32)
                       for i in ids]
            if D == 2 and fuse:
                stacked = [jnp.stack(w) for w in zip(*weights)]
                outs_TBH, carry = scan_bidirectional(
                    self.cell, h_TBF, mask_TB, *stacked[:4], tuple(jnp.stack(c) for c in zip(*carries)), self.unroll,
                    emit, self.projection, backward, extra=tuple(stacked[4:]))
                finals += [tuple(c[d] for c in carry) for d in range(D)]
            else:
                outs_TBH = []
                for d in range(D):
                    inp_TBF = _reverse(h_TBF, lengths) if d else h_TBF
                    out_TBH, carry = scan_cell(self.cell, inp_TBF, mask_TB, *weights[d][:4], carries[d], self.unroll,
                                               emit, self.projection, backward, extra=weights[d][4:])
                    outs_TBH.append(_reverse(out_TBH, lengths) if (d and emit) else out_TBH)
                    finals.append(carry)
            if not emit:
                return None, finals
            h_TBF = jnp.concatenate(outs_TBH, axis=-1) if D == 2 else outs_TBH[0]
            if self.dropout and layer < self.num_layers - 1:
                h_TBF = nn.Dropout(self.dropout, deterministic=not train)(h_TBF)
        return jnp.swapaxes(h_TBF, 0, 1), finals

    def step(self, x_BF, carries: Sequence[Carry]) -> tuple[jnp.ndarray, list[Carry]]:
        """One timestep of a unidirectional stack (for sampling): ``x_BF float32[B, F]`` ->
        ``(h float32[B, H], carries)``; each layer is :func:`seqjax.nn.cells.cell_apply`.

        Needs initialised params (it reads them; it creates none).
        """
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional RNN")
        p = self.variables["params"]
        h_BF, new = x_BF.astype(self.dtype), []
        for layer, suffix in enumerate(self.directions()):
            weights = (p[f"{n}_{suffix}"].astype(self.dtype) for n in get_cell(self.cell).param_names())
            carry = cell_apply(self.cell, tuple(carries[layer]), h_BF, *weights)
            new.append(carry)
            h_BF = carry[0]
        return h_BF, new
