"""Masked recurrences over time with ``jax.lax.scan``: lengths, reverse, bidirectional, stacks.

Public arrays are batch-major (``x float32[B, T, F]``, ``lengths int32[B]``); the scan runs
time-major inside (``x_TBF``). For each direction of each layer:

1. ``lax.scan`` runs the cell over time, with a custom backward pass (``_recurrence``: only
   ``dh, dc`` in the reverse loop, the weight gradients one matmul after it); at
   ``t >= length`` the carry is frozen and the
   output is zero, so the final state is the state at ``length - 1`` — what PyTorch's
   ``pack_padded_sequence`` gives — and padding never reaches any output;
2. the reverse direction reverses each sequence *within its own length* (a gather), runs
   forward, and gathers back, so it starts at the last real token, not in the padding.

Parameter names follow ``torch.nn.{RNN,LSTM,GRU}``: ``weight_ih_l{k}[_reverse]`` etc., so a
PyTorch ``state_dict`` maps onto these params by name. They are declared by
:func:`seqjax.nn.cells.cell_params`, and ``RNN.step`` runs :func:`seqjax.nn.cells.cell_apply`:
the cell's equations exist once, in :mod:`seqjax.nn.cells` (``_forward`` below restates them
fused with the residuals its backward pass needs).

Shapes: ``G`` is the gate width (gates x ``H``: ``H`` rnn, ``4 H`` lstm, ``3 H`` gru).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.nn.cells import GATES, PARAM_NAMES, Carry, cell_apply, cell_params, zero_carry


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
              backward: str = "hoisted") -> tuple[jnp.ndarray | None, Carry]:
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
      backward: ``"hoisted"`` (default) — the custom backward pass of :func:`_recurrence`;
        ``"autodiff"`` — JAX's transpose of the same ``lax.scan`` (the reference in the tests).

    Returns:
      ``(outputs float32[T, B, H] | None, final carry)``: outputs are zero where masked and the
      carry is frozen past each sequence's length (the state at ``length - 1``).
    """
    projection = projection or default_projection(kind, x_TBF.shape[-1], w_hh.shape[1])
    if projection not in ("fused", "separate", "hoisted"):
        raise ValueError(f"projection {projection!r}: choose fused, separate or hoisted")
    if kind == "gru" and projection == "fused":
        projection = "separate"  # gru needs W_hn h + b_hn on its own
    if backward == "autodiff":
        out, carry, _ = _forward(kind, x_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, tuple(carry),
                                 emit, projection, unroll, save=False)
        return out, carry
    if backward != "hoisted":
        raise ValueError(f"backward {backward!r}: choose hoisted or autodiff")
    return _recurrence(kind, emit, projection, unroll, x_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, tuple(carry))


def default_projection(kind: str, features: int, hidden: int) -> str:
    """The input projection :func:`scan_cell` uses for an input of width ``features``: the
    fastest one at the lab's shapes in ``benchmarks/recurrence.py``
    (results/benchmarks/recurrence.json)."""
    return "fused" if 8 * features <= hidden and kind != "gru" else "separate"


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


def _forward(kind, x_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, carry, emit, projection, unroll, save):
    """The masked scan forward: ``(out float32[T, B, H] | None, final carry, residuals)``. With
    ``save``, the residuals are the stacked arrays the backward pass needs: ``hprev [T, B, H]``
    (the state each step read) and each cell's local derivatives; else ``None``.

    Inside the step the gates keep the bare symbols of the cell's equations (``i, f, g, o``).
    """
    if projection == "hoisted":
        T, B, F = x_TBF.shape
        b_x = b_ih + b_hh if kind != "gru" else b_ih
        xs_TB = (x_TBF.reshape(T * B, F) @ w_ih.T + b_x[None, :]).reshape(T, B, -1)  # gx [T, B, G]
        w_hh_T = w_hh.T

        def project(gx_BG, h_BH):
            if kind == "gru":
                return gx_BG, h_BH @ w_hh_T + b_hh[None, :]
            return gx_BG + h_BH @ w_hh_T, None
    elif projection == "fused":
        xs_TB = x_TBF
        W = jnp.concatenate([w_ih, w_hh], axis=1).T  # [F + H, G]
        b = (b_ih + b_hh)[None, :]

        def project(x_BF, h_BH):
            return jnp.concatenate([x_BF, h_BH], axis=1) @ W + b, None
    else:
        xs_TB = x_TBF
        w_ih_T, w_hh_T = w_ih.T, w_hh.T
        b_x = (b_ih + b_hh if kind != "gru" else b_ih)[None, :]

        def project(x_BF, h_BH):
            if kind == "gru":
                return x_BF @ w_ih_T + b_x, h_BH @ w_hh_T + b_hh[None, :]
            return x_BF @ w_ih_T + b_x + h_BH @ w_hh_T, None

    def body(c, xs):
        x_t, m_B = xs
        h_BH = c[0]
        a_BG, ah_BG = project(x_t, h_BH)
        if kind == "lstm":
            i, f, g, o = jnp.split(a_BG, 4, axis=-1)
            i, f, o, g = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jax.nn.sigmoid(o), jnp.tanh(g)
            c_new_BH = f * c[1] + i * g
            tc = jnp.tanh(c_new_BH)
            h_new_BH = o * tc
            new = (h_new_BH, c_new_BH)
            # dZ = coef * [dc', dc', dc', dh'] with dc' = dc + dh' * k;  dc_prev = dc' * f
            res = (jnp.concatenate([g * i * (1 - i), c[1] * f * (1 - f), i * (1 - g * g),
                                    tc * o * (1 - o)], axis=-1), o * (1 - tc * tc), f) if save else ()
        elif kind == "rnn":
            h_new_BH = jnp.tanh(a_BG)
            new = (h_new_BH,)
            res = (1 - h_new_BH * h_new_BH,) if save else ()  # dZ = dh' * coef
        else:
            xr, xz, xn = jnp.split(a_BG, 3, axis=-1)
            hr, hz, hn = jnp.split(ah_BG, 3, axis=-1)
            r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
            n = jnp.tanh(xn + r * hn)
            h_new_BH = (1 - z) * n + z * h_BH
            new = (h_new_BH,)
            # d(gx) = dh' * [cr, cz, cn], d(gh) = dh' * [cr, cz, cn * r], dh_prev = d(gh) W_hh + dh' z
            cn = (1 - z) * (1 - n * n)
            res = (jnp.concatenate([cn * hn * r * (1 - r), (h_BH - n) * z * (1 - z), cn * r], axis=-1),
                   cn, z) if save else ()
        if m_B is not None:
            m_B1 = m_B[:, None]
            new = tuple(jnp.where(m_B1, n_, o_) for n_, o_ in zip(new, c))
            y_BH = jnp.where(m_B1, h_new_BH, 0.0) if emit else None
        else:
            y_BH = h_new_BH if emit else None
        return new, (y_BH, (h_BH,) + res if save else None)

    carry, (out_TBH, res) = jax.lax.scan(body, carry, (xs_TB, mask_TB), unroll=unroll)
    return out_TBH, carry, res


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _recurrence(kind, emit, projection, unroll, x_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, carry):
    out_TBH, carry, _ = _forward(kind, x_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, carry, emit, projection, unroll,
                                 save=False)
    return out_TBH, carry


def _recurrence_fwd(kind, emit, projection, unroll, x_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, carry):
    out_TBH, final, res = _forward(kind, x_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, carry, emit, projection, unroll,
                                   save=True)
    return (out_TBH, final), (x_TBF, mask_TB, w_ih, w_hh, res)


def _recurrence_bwd(kind, emit, projection, unroll, saved, cotangents):
    x_TBF, mask_TB, w_ih, w_hh, res = saved
    d_out_TBH, d_final = cotangents
    T, B, F = x_TBF.shape
    H = w_hh.shape[1]

    def body(dc, xs):
        dy_BH, m_B, r = xs
        dh_BH = dc[0] if dy_BH is None else dc[0] + dy_BH
        if m_B is not None:  # past the length the state passed through untouched
            m_B1 = m_B[:, None]
            dh_new_BH, skip = jnp.where(m_B1, dh_BH, 0.0), tuple(jnp.where(m_B1, 0.0, d) for d in dc)
        else:
            dh_new_BH, skip = dh_BH, None
        if kind == "lstm":
            coef, k, f = r
            dc_new_BH = dh_new_BH * k + (dc[1] if m_B is None else jnp.where(m_B1, dc[1], 0.0))
            dz_BG = coef * jnp.concatenate([dc_new_BH, dc_new_BH, dc_new_BH, dh_new_BH], axis=-1)
            prev = (dz_BG @ w_hh, dc_new_BH * f)
            emitted = dz_BG
        elif kind == "rnn":
            dz_BG = dh_new_BH * r[0]
            prev, emitted = (dz_BG @ w_hh,), dz_BG
        else:
            coef, _, z = r
            dgh_BG = coef * jnp.concatenate([dh_new_BH, dh_new_BH, dh_new_BH], axis=-1)
            prev, emitted = (dgh_BG @ w_hh + dh_new_BH * z,), dh_new_BH
        if skip is not None:
            prev = tuple(p + s for p, s in zip(prev, skip))
        return prev, emitted

    # dZ_TBG: each step's pre-activation gradient ([T, B, H] for the gru: dh' itself)
    d_carry0, dZ_TBG = jax.lax.scan(body, tuple(d_final), (d_out_TBH if emit else None, mask_TB, res[1:]),
                                    reverse=True, unroll=unroll)
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
    return dx_TBF, None, dw_ih, dw_hh, db_ih, db_hh, d_carry0


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


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
    """A (stacked, optionally bidirectional) rnn / lstm / gru over padded batches.

    Attributes:
      hidden: ``H``. cell: "rnn" | "lstm" | "gru". num_layers: stack depth.
      bidirectional: run a reverse direction too; layer outputs concatenate ``[fwd, bwd]``.
      dropout: rate applied to each layer's output except the last (as PyTorch), when training.
      unroll: ``lax.scan`` unroll factor. dtype: compute dtype (params stay float32).
      backward: ``"hoisted"`` (the custom backward pass) or ``"autodiff"``; projection: ``None``
      (by shape), ``"fused"``, ``"separate"`` or ``"hoisted"``; see :func:`scan_cell`.

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
        if self.cell not in GATES:
            raise ValueError(f"cell {self.cell!r}: choose rnn, gru or lstm")
        B, T, _ = x_BTF.shape
        # no lengths: every step is real, and the scan skips the masking work
        mask_TB = None if lengths is None else sequence_mask(lengths, T).T
        # the layer's input, time-major: the embedded tokens, then each layer's outputs
        h_TBF = jnp.swapaxes(x_BTF, 0, 1).astype(self.dtype)
        finals, i = [], 0
        D = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            outs_TBH = []
            for d in range(D):
                suffix = self.directions()[i]
                w_ih, w_hh, b_ih, b_hh = (p.astype(self.dtype) for p in self._params(suffix, h_TBF.shape[-1]))
                inp_TBF = _reverse(h_TBF, lengths) if d else h_TBF
                carry = tuple(initial[i]) if initial is not None else zero_carry(self.cell, B, self.hidden, self.dtype)
                emit = outputs or layer < self.num_layers - 1
                out_TBH, carry = scan_cell(self.cell, inp_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, carry, self.unroll,
                                           emit, self.projection, self.backward)
                outs_TBH.append(_reverse(out_TBH, lengths) if (d and emit) else out_TBH)
                finals.append(carry)
                i += 1
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
            weights = (p[f"{n}_{suffix}"].astype(self.dtype) for n in PARAM_NAMES)
            carry = cell_apply(self.cell, tuple(carries[layer]), h_BF, *weights)
            new.append(carry)
            h_BF = carry[0]
        return h_BF, new
