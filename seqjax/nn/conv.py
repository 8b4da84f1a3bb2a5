"""Kim (2014) Conv1d + ReLU + max-over-time pooling, with a backward pass that uses its sparsity.

The gradient of a max over time reaches one window per (example, filter): the one that won.
Autodiff of ``max(relu(conv(x)))`` does not know that, and runs both transposed
convolutions (input and filter gradients) over every position of a ``[B, T, C]`` cotangent
that is zero except at those ``B * C`` places. :func:`conv_max_over_time` instead keeps the
winning position of each (example, filter) from the forward pass and, backward, gathers those
windows of ``x`` for the filter gradient and scatter-adds ``g * kernel`` back into them for
the input gradient: ``O(B C K E)`` work instead of ``O(B T C K E)``.

Decision: the Kim CNN uses this sparse backward. ``benchmarks/cnn_pool.py``
(results/benchmarks/cnn_pool.json) times it against autodiff of the dense
:func:`conv_max_over_time_dense` at the IMDB CNN's shapes and padded lengths: the sparse pass
wins at long lengths and is about even at the shortest, where the forward's argmax costs
about what the sparse backward saves.

Shapes: ``B`` batch, ``T`` padded length, ``E`` embedding width, ``K`` kernel width,
``C`` filters.

Ties (the same maximum at two positions, e.g. a repeated n-gram) send the whole gradient to
the first of them, as PyTorch's ``max_pool1d`` does; autodiff of ``jnp.max`` would split it.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def _conv(x_BTE, kernel_KEC, bias_C):
    """``x float[B, T, E]``, ``kernel float[K, E, C]``, ``bias float[C]`` ->
    ``float[B, T - K + 1, C]`` (VALID)."""
    y_BTC = jax.lax.conv_general_dilated(x_BTE, kernel_KEC, (1,), "VALID",
                                         dimension_numbers=("NWC", "WIO", "NWC"))
    return y_BTC + bias_C[None, None, :]


def conv_max_over_time_dense(x, kernel, bias, n_valid):
    """The textbook ``relu(conv) -> mask -> max`` (what ``nn.Conv`` + ``jnp.max`` give), whose
    gradient autodiff computes densely: the reference :func:`conv_max_over_time` is tested and
    benchmarked against. Same arguments and result."""
    h_BTC = jax.nn.relu(_conv(x, kernel, bias))
    ok_BT = jnp.arange(h_BTC.shape[1])[None, :] < n_valid[:, None]
    return jnp.where(ok_BT[:, :, None], h_BTC, -jnp.inf).max(axis=1)


def _forward(x_BTE, kernel_KEC, bias_C, n_valid_B):
    pre_BTC = _conv(x_BTE, kernel_KEC, bias_C)
    ok_BT = jnp.arange(pre_BTC.shape[1])[None, :] < n_valid_B[:, None]
    pre_BTC = jnp.where(ok_BT[:, :, None], pre_BTC, -jnp.inf)
    idx_BC = jnp.argmax(pre_BTC, axis=1)  # first maximum
    best_BC = jnp.take_along_axis(pre_BTC, idx_BC[:, None, :], axis=1)[:, 0]
    return jax.nn.relu(best_BC), idx_BC


@jax.custom_vjp
def conv_max_over_time(x, kernel, bias, n_valid):
    """``max_{t < n_valid[b]} relu(conv(x)[b, t, c])``.

    Args:
      x: ``float[B, T, E]`` (embedded tokens, batch-major).
      kernel: ``float[K, E, C]`` (flax ``nn.Conv`` layout); bias: ``float[C]``.
      n_valid: ``int32[B]``, windows that count per example, each in ``[1, T - K + 1]``.

    Returns ``float[B, C]`` (same dtype as ``x``). Equals ``nn.Conv(C, (K,), padding="VALID")``
    followed by ReLU, masking and ``max(axis=1)``; its gradient is computed sparsely (module
    docstring).
    """
    return _forward(x, kernel, bias, n_valid)[0]


def _fwd(x_BTE, kernel_KEC, bias_C, n_valid_B):
    out_BC, idx_BC = _forward(x_BTE, kernel_KEC, bias_C, n_valid_B)
    return out_BC, (x_BTE, kernel_KEC, idx_BC, out_BC)


def _bwd(res, d_out_BC):
    x_BTE, kernel_KEC, idx_BC, out_BC = res
    K = kernel_KEC.shape[0]
    g_BC = jnp.where(out_BC > 0, d_out_BC, 0.0)  # ReLU: a filter that never fired gets no gradient
    pos_BCK = idx_BC[:, :, None] + jnp.arange(K)[None, None, :]  # the winning window of each filter
    b_B11 = jnp.arange(x_BTE.shape[0])[:, None, None]
    d_kernel_KEC = jnp.einsum("bf,bfje->jef", g_BC, x_BTE[b_B11, pos_BCK])
    d_x_BTE = jnp.zeros_like(x_BTE).at[b_B11, pos_BCK].add(jnp.einsum("bf,jef->bfje", g_BC, kernel_KEC))
    return d_x_BTE, d_kernel_KEC.astype(kernel_KEC.dtype), g_BC.sum(0).astype(kernel_KEC.dtype), None


conv_max_over_time.defvjp(_fwd, _bwd)


class ConvMaxPool(nn.Module):
    """Conv1d of width ``width`` with ``features`` channels, ReLU, max over the valid windows.

    Params as ``nn.Conv``: ``kernel float32[K, E, C]``, ``bias float32[C]`` (``K = width``,
    ``C = features``). Call: ``(x float[B, T, E], n_valid int32[B]) -> float[B, C]``.
    """

    features: int
    width: int
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BTE, n_valid_B):
        kernel_KEC = self.param("kernel", self.kernel_init, (self.width, x_BTE.shape[-1], self.features))
        bias_C = self.param("bias", self.bias_init, (self.features,))
        x_BTE = x_BTE.astype(self.dtype)
        return conv_max_over_time(x_BTE, kernel_KEC.astype(self.dtype), bias_C.astype(self.dtype), n_valid_B)
