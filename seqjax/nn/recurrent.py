"""Masked recurrences over time with ``jax.lax.scan``: lengths, reverse, bidirectional, stacks.

Public arrays are batch-major (``x [batch, time, features]``, ``lengths int32[batch]``);
the scan runs time-major inside. For each direction of each layer:

1. ``lax.scan`` runs the cell over time, with a custom backward pass (``_recurrence``: only
   ``dh, dc`` in the reverse loop, the weight gradients one matmul after it); at
   ``t >= length`` the carry is frozen and the
   output is zero, so the final state is the state at ``length - 1`` — what PyTorch's
   ``pack_padded_sequence`` gives — and padding never reaches any output;
2. the reverse direction reverses each sequence *within its own length* (a gather), runs
   forward, and gathers back, so it starts at the last real token, not in the padding.

Parameter names follow ``torch.nn.{RNN,LSTM,GRU}``: ``weight_ih_l{k}[_reverse]`` etc., so a
PyTorch ``state_dict`` maps onto these params by name.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.nn.cells import GATES, Carry, cell_step, torch_uniform, zero_carry


def sequence_mask(lengths: jnp.ndarray, maxlen: int) -> jnp.ndarray:
    """``bool[batch, maxlen]``: True at ``t < lengths[b]``. The one padding mask of seqjax."""
    return jnp.arange(maxlen)[None, :] < lengths[:, None]


def reverse_within_lengths(x_TB: jnp.ndarray, lengths: jnp.ndarray) -> jnp.ndarray:
    """Reverse each column ``b`` of a time-major ``[T, B, ...]`` over its first ``lengths[b]`` steps.

    Steps past the length stay in place. The map is its own inverse.
    """
    T = x_TB.shape[0]
    t = jnp.arange(T)[:, None]
    idx = jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # [T, B]
    idx = idx.reshape(idx.shape + (1,) * (x_TB.ndim - 2))
    return jnp.take_along_axis(x_TB, idx, axis=0)


def _reverse(x_TB: jnp.ndarray, lengths: jnp.ndarray | None) -> jnp.ndarray:
    """Time reversal within each length; a plain flip when every sequence is full."""
    return x_TB[::-1] if lengths is None else reverse_within_lengths(x_TB, lengths)


def scan_cell(kind: str, x_TBF: jnp.ndarray, mask_TB: jnp.ndarray | None, w_ih, w_hh, b_ih, b_hh,
              carry: Carry, unroll: int = 1, emit: bool = True, projection: str | None = None,
              backward: str = "hoisted") -> tuple[jnp.ndarray | None, Carry]:
    """Run cell ``kind`` over time-major inputs ``x float32[T, B, F]``.

    Args:
      mask_TB: ``bool[T, B]``, False past each sequence's length; ``None`` when every step of
        every row is real (the char models' full windows), which skips the masking work.
      w_ih, w_hh, b_ih, b_hh: ``[G*H, F]``, ``[G*H, H]``, ``[G*H]``, ``[G*H]`` (PyTorch layout).
      carry: the initial state, ``(h,)`` or ``(h, c)``, each ``[B, H]``.
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
    fastest one in ``python benchmarks/recurrence.py`` at the lab's shapes."""
    return "fused" if 8 * features <= hidden and kind != "gru" else "separate"


# --- the recurrence with a backward pass that keeps only the sequential part in the loop ----------
#
# Autodiff of a scan accumulates dW_ih, dW_hh and the biases inside the reverse loop: T small
# matmuls of [G*H, B] @ [B, F + H] and T read-modify-writes of the gradient. cuDNN and oneDNN do
# instead what _recurrence does: the reverse loop carries only (dh, dc) through W_hh and stores each
# step's pre-activation gradient dZ_t; after the loop the weight and bias gradients are one matmul
# over all T*B rows ([F + H, T*B] @ [T*B, G*H]) and the input gradient another ([T*B, G*H] @
# [G*H, F]), both near the CPU's matmul peak. The forward pass also stores, per step, the local
# derivatives that the backward step multiplies by (e.g. i * (1 - i) * g for the LSTM's input gate),
# computed in the same fused elementwise pass as the gates, so the reverse loop does one matmul and
# a few multiply-adds per step. Numbers: ``python benchmarks/recurrence.py``
# (results/benchmarks/recurrence.json).


def _forward(kind, x, mask, w_ih, w_hh, b_ih, b_hh, carry, emit, projection, unroll, save):
    """The masked scan forward. With ``save``, also the stacked residuals the backward pass needs:
    ``hprev [T, B, H]`` (the state each step read) and each cell's local derivatives."""
    if projection == "hoisted":
        T, B, F = x.shape
        b_x = b_ih + b_hh if kind != "gru" else b_ih
        x = (x.reshape(T * B, F) @ w_ih.T + b_x[None, :]).reshape(T, B, -1)  # [T, B, G*H]
        w_hh_T = w_hh.T

        def project(gx_t, h):
            if kind == "gru":
                return gx_t, h @ w_hh_T + b_hh[None, :]
            return gx_t + h @ w_hh_T, None
    elif projection == "fused":
        W = jnp.concatenate([w_ih, w_hh], axis=1).T  # [F + H, G*H]
        b = (b_ih + b_hh)[None, :]

        def project(x_t, h):
            return jnp.concatenate([x_t, h], axis=1) @ W + b, None
    else:
        w_ih_T, w_hh_T = w_ih.T, w_hh.T
        b_x = (b_ih + b_hh if kind != "gru" else b_ih)[None, :]

        def project(x_t, h):
            if kind == "gru":
                return x_t @ w_ih_T + b_x, h @ w_hh_T + b_hh[None, :]
            return x_t @ w_ih_T + b_x + h @ w_hh_T, None

    def body(c, xs):
        x_t, m = xs
        h = c[0]
        a, ah = project(x_t, h)
        if kind == "lstm":
            i, f, g, o = jnp.split(a, 4, axis=-1)
            i, f, o, g = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jax.nn.sigmoid(o), jnp.tanh(g)
            c_new = f * c[1] + i * g
            tc = jnp.tanh(c_new)
            h_new = o * tc
            new = (h_new, c_new)
            # dZ = coef * [dc', dc', dc', dh'] with dc' = dc + dh' * k;  dc_prev = dc' * f
            res = (jnp.concatenate([g * i * (1 - i), c[1] * f * (1 - f), i * (1 - g * g),
                                    tc * o * (1 - o)], axis=-1), o * (1 - tc * tc), f) if save else ()
        elif kind == "rnn":
            h_new = jnp.tanh(a)
            new = (h_new,)
            res = (1 - h_new * h_new,) if save else ()  # dZ = dh' * coef
        else:
            xr, xz, xn = jnp.split(a, 3, axis=-1)
            hr, hz, hn = jnp.split(ah, 3, axis=-1)
            r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
            n = jnp.tanh(xn + r * hn)
            h_new = (1 - z) * n + z * h
            new = (h_new,)
            # d(gx) = dh' * [cr, cz, cn], d(gh) = dh' * [cr, cz, cn * r], dh_prev = d(gh) W_hh + dh' z
            cn = (1 - z) * (1 - n * n)
            res = (jnp.concatenate([cn * hn * r * (1 - r), (h - n) * z * (1 - z), cn * r], axis=-1),
                   cn, z) if save else ()
        if m is not None:
            mm = m[:, None]
            new = tuple(jnp.where(mm, n_, o_) for n_, o_ in zip(new, c))
            y = jnp.where(mm, h_new, 0.0) if emit else None
        else:
            y = h_new if emit else None
        return new, (y, (h,) + res if save else None)

    carry, (out, res) = jax.lax.scan(body, carry, (x, mask), unroll=unroll)
    return out, carry, res


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _recurrence(kind, emit, projection, unroll, x, mask, w_ih, w_hh, b_ih, b_hh, carry):
    out, carry, _ = _forward(kind, x, mask, w_ih, w_hh, b_ih, b_hh, carry, emit, projection, unroll, save=False)
    return out, carry


def _recurrence_fwd(kind, emit, projection, unroll, x, mask, w_ih, w_hh, b_ih, b_hh, carry):
    out, final, res = _forward(kind, x, mask, w_ih, w_hh, b_ih, b_hh, carry, emit, projection, unroll, save=True)
    return (out, final), (x, mask, w_ih, w_hh, res)


def _recurrence_bwd(kind, emit, projection, unroll, saved, cotangents):
    x, mask, w_ih, w_hh, res = saved
    d_out, d_final = cotangents
    T, B, F = x.shape
    H = w_hh.shape[1]

    def body(dc, xs):
        dy, m, r = xs
        dh = dc[0] if dy is None else dc[0] + dy
        if m is not None:  # past the length the state passed through untouched
            mm = m[:, None]
            dh_new, skip = jnp.where(mm, dh, 0.0), tuple(jnp.where(mm, 0.0, d) for d in dc)
        else:
            dh_new, skip = dh, None
        if kind == "lstm":
            coef, k, f = r
            dc_new = dh_new * k + (dc[1] if m is None else jnp.where(mm, dc[1], 0.0))
            dz = coef * jnp.concatenate([dc_new, dc_new, dc_new, dh_new], axis=-1)
            prev = (dz @ w_hh, dc_new * f)
            emitted = dz
        elif kind == "rnn":
            dz = dh_new * r[0]
            prev, emitted = (dz @ w_hh,), dz
        else:
            coef, _, z = r
            dgh = coef * jnp.concatenate([dh_new, dh_new, dh_new], axis=-1)
            prev, emitted = (dgh @ w_hh + dh_new * z,), dh_new
        if skip is not None:
            prev = tuple(p + s for p, s in zip(prev, skip))
        return prev, emitted

    d_carry0, dZ = jax.lax.scan(body, tuple(d_final), (d_out if emit else None, mask, res[1:]),
                                reverse=True, unroll=unroll)
    N = T * B
    x_KN, h_KN = _rows_last(x), _rows_last(res[0])  # [F, N], [H, N]
    if kind == "gru":  # dZ holds dh' [T, B, H]; the gate gradients follow from the saved coefficients
        coef, cn = res[1], res[2]
        d_gh = (coef * jnp.tile(dZ, (1, 1, 3))).reshape(N, 3 * H)
        d_gx = jnp.concatenate([d_gh[:, :2 * H], (dZ * cn).reshape(N, H)], axis=1)
        dw_ih, dw_hh = _transposed(x_KN @ d_gx, h_KN @ d_gh)
        db_ih, db_hh = d_gx.sum(0), d_gh.sum(0)
    else:
        d_gx = dZ.reshape(N, -1)
        dw_ih, dw_hh = _transposed(x_KN @ d_gx, h_KN @ d_gx)
        db_ih = db_hh = d_gx.sum(0)
    dx = (d_gx @ w_ih).reshape(T, B, F)
    return dx, None, dw_ih, dw_hh, db_ih, db_hh, d_carry0


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def _transposed(*dW_KG: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """``[K, G*H] -> [G*H, K]`` (PyTorch's layout) after the product is computed: without the
    barrier XLA folds the transpose into the matmul and runs ``[G*H, N] @ [N, K]``, measured 1.5-3x
    slower for the char-LSTM's shapes."""
    return tuple(d.T for d in jax.lax.optimization_barrier(dW_KG))


def _rows_last(a_TBK: jnp.ndarray) -> jnp.ndarray:
    """``[T, B, K] -> [K, T*B]``, transposed explicitly: XLA:CPU runs ``[K, N] @ [N, G*H]`` from
    this layout several times faster than from ``a.reshape(N, K).T`` for narrow ``K`` (the
    char-LSTM's ``K = 8``: 14 ms against 1 ms), and as fast for wide ones."""
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

    Call: ``(x [B, T, F], lengths int32[B] | None, initial=None, train=False, outputs=True)``
    -> ``(outputs [B, T, D*H], finals)`` where ``D`` is 2 if bidirectional, and ``finals`` is a
    list over ``num_layers * D`` (PyTorch's order: l0, l0_reverse, l1, ...) of carries
    (``(h,)`` or ``(h, c)``, each ``[B, H]``). ``initial`` has the same structure as ``finals``.
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
        G, H = GATES[self.cell], self.hidden
        init = torch_uniform(H)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        shapes = ((G * H, in_features), (G * H, H), (G * H,), (G * H,))
        return [self.param(f"{n}_{suffix}", init, s) for n, s in zip(names, shapes)]

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
        h_TBF = jnp.swapaxes(x_BTF, 0, 1).astype(self.dtype)
        finals, i = [], 0
        D = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                suffix = self.directions()[i]
                w_ih, w_hh, b_ih, b_hh = (p.astype(self.dtype) for p in self._params(suffix, h_TBF.shape[-1]))
                inp = _reverse(h_TBF, lengths) if d else h_TBF
                carry = tuple(initial[i]) if initial is not None else zero_carry(self.cell, B, self.hidden, self.dtype)
                emit = outputs or layer < self.num_layers - 1
                out, carry = scan_cell(self.cell, inp, mask_TB, w_ih, w_hh, b_ih, b_hh, carry, self.unroll, emit,
                                       self.projection, self.backward)
                outs.append(_reverse(out, lengths) if (d and emit) else out)
                finals.append(carry)
                i += 1
            if not emit:
                return None, finals
            h_TBF = jnp.concatenate(outs, axis=-1) if D == 2 else outs[0]
            if self.dropout and layer < self.num_layers - 1:
                h_TBF = nn.Dropout(self.dropout, deterministic=not train)(h_TBF)
        return jnp.swapaxes(h_TBF, 0, 1), finals

    def step(self, x_BF, carries: Sequence[Carry]) -> tuple[jnp.ndarray, list[Carry]]:
        """One timestep of a unidirectional stack (for sampling): ``x [B, F]`` -> ``h [B, H]``.

        Needs initialised params (it reads them; it creates none).
        """
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional RNN")
        p = self.variables["params"]
        h, new = x_BF.astype(self.dtype), []
        for layer, suffix in enumerate(self.directions()):
            w_ih, w_hh, b_ih, b_hh = (p[f"{n}_{suffix}"].astype(self.dtype)
                                      for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            c = cell_step(self.cell, tuple(carries[layer]), h @ w_ih.T + b_ih[None, :], w_hh, b_hh)
            new.append(c)
            h = c[0]
        return h, new
