"""Masked recurrences over time with ``jax.lax.scan``: lengths, reverse, bidirectional, stacks.

Public arrays are batch-major (``x [batch, time, features]``, ``lengths int32[batch]``);
the scan runs time-major inside. For each direction of each layer:

1. ``lax.scan`` runs the cell over time; at ``t >= length`` the carry is frozen and the
   output is zero, so the final state is the state at ``length - 1`` — what PyTorch's
   ``pack_padded_sequence`` gives — and padding never reaches any output;
2. the reverse direction reverses each sequence *within its own length* (a gather), runs
   forward, and gathers back, so it starts at the last real token, not in the padding.

Parameter names follow ``torch.nn.{RNN,LSTM,GRU}``: ``weight_ih_l{k}[_reverse]`` etc., so a
PyTorch ``state_dict`` maps onto these params by name.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.nn.cells import COMBINE, GATES, Carry, cell_step, torch_uniform, zero_carry


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


def scan_cell(kind: str, x_TBF: jnp.ndarray, mask_TB: jnp.ndarray, w_ih, w_hh, b_ih, b_hh,
              carry: Carry, unroll: int = 1, emit: bool = True,
              fuse: bool | None = None) -> tuple[jnp.ndarray | None, Carry]:
    """Run cell ``kind`` over time-major inputs ``x [T, B, F]`` with ``mask bool[T, B]``.

    Returns ``outputs [T, B, H]`` (zero where masked; ``None`` with ``emit=False``, when only
    the final state is wanted — that saves a ``[T, B, H]`` write forward and its cotangent
    backward) and the final carry (frozen past each sequence's length).

    Each step projects ``x_t`` and ``h`` with two matmuls, ``x_t W_ih^T + h W_hh^T`` (rnn /
    lstm fold both biases into the first), except where the input is narrow (``8 F <= H``,
    the char-LSTM's 8-wide embedding): there rnn / lstm do one matmul of ``[x_t, h]`` with
    ``[W_ih | W_hh]^T``. ``fuse`` forces either way (gru never fuses). LSTM forward+backward,
    ``python benchmarks/input_projection.py`` (``results/benchmarks/input_projection.json``),
    fused / two matmuls / all steps' input
    projection hoisted before the scan (cuDNN's trick), ms: char-LSTM 37.7 / 39.4 / 53.1,
    its second layer (input 128) 48.9 / 52.3 / 56.9, IMDB LSTM 88.8 / 90.1 / 105.1, bi-LSTM
    layer 1 273 / 238 / 300, layer 2 439 / 350 / 399. Over eight runs the bi-LSTM's layer 2
    favoured two matmuls by 17-32 % and its layer 1 by 0-15 %, the char-LSTM the fused one by
    0-9 %; the input-128 and IMDB LSTM shapes went either way, by up to 13 %.
    On an earlier CPU without AVX-512 the fused matmul was also the faster one at the
    char-LSTM shape (71-75 ms against 88-99 ms). A hand-written backward pass measured no
    faster than autodiff of the scan.
    """
    combine = COMBINE[kind]
    if fuse is None:
        fuse = 8 * x_TBF.shape[-1] <= w_hh.shape[1]
    if kind != "gru" and fuse:
        W = jnp.concatenate([w_ih, w_hh], axis=1).T  # [F + H, G*H]
        b = (b_ih + b_hh)[None, :]

        def project(x, h):
            return jnp.concatenate([x, h], axis=1) @ W + b, 0.0
    else:  # gru needs W_hn h + b_hn on its own; rnn / lstm only the sum
        w_ih_T, w_hh_T = w_ih.T, w_hh.T  # [F, G*H], [H, G*H]
        b_x, b_h = ((b_ih + b_hh)[None, :], 0.0) if kind != "gru" else (b_ih[None, :], b_hh[None, :])

        def project(x, h):
            return x @ w_ih_T + b_x, h @ w_hh_T + b_h

    def body(carry, xs):
        x, m = xs
        new = combine(carry, *project(x, carry[0]))
        m = m[:, None]
        new = tuple(jnp.where(m, n, o) for n, o in zip(new, carry))
        return new, (jnp.where(m, new[0], jnp.zeros_like(new[0])) if emit else None)

    carry, out = jax.lax.scan(body, tuple(carry), (x_TBF, mask_TB), unroll=unroll)
    return out, carry


class RNN(nn.Module):
    """A (stacked, optionally bidirectional) rnn / lstm / gru over padded batches.

    Attributes:
      hidden: ``H``. cell: "rnn" | "lstm" | "gru". num_layers: stack depth.
      bidirectional: run a reverse direction too; layer outputs concatenate ``[fwd, bwd]``.
      dropout: rate applied to each layer's output except the last (as PyTorch), when training.
      unroll: ``lax.scan`` unroll factor. dtype: compute dtype (params stay float32).

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
        if lengths is None:
            lengths = jnp.full((B,), T, jnp.int32)
        mask_TB = sequence_mask(lengths, T).T
        h_TBF = jnp.swapaxes(x_BTF, 0, 1).astype(self.dtype)
        finals, i = [], 0
        D = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                suffix = self.directions()[i]
                w_ih, w_hh, b_ih, b_hh = (p.astype(self.dtype) for p in self._params(suffix, h_TBF.shape[-1]))
                inp = reverse_within_lengths(h_TBF, lengths) if d else h_TBF
                carry = tuple(initial[i]) if initial is not None else zero_carry(self.cell, B, self.hidden, self.dtype)
                emit = outputs or layer < self.num_layers - 1
                out, carry = scan_cell(self.cell, inp, mask_TB, w_ih, w_hh, b_ih, b_hh, carry, self.unroll, emit)
                outs.append(reverse_within_lengths(out, lengths) if (d and emit) else out)
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
