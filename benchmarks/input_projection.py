"""Fused per-step ``[x_t, h] @ [W_ih | W_hh]^T`` (what :func:`seqjax.nn.recurrent.scan_cell`
does) against cuDNN's trick of projecting every step's input in one matmul before the scan,
for an LSTM direction's forward+backward, at the lab's shapes: the char-LSTM (batch 128,
40 steps, input 8, hidden 128) and both layers of the IMDB bi-LSTM (batch 64, 184 steps,
input 50 then 512, hidden 256; lengths drawn from half to all of the steps).
Writes ``results/benchmarks/input_projection.json``.

``python benchmarks/input_projection.py`` (quiet machine)
"""

from __future__ import annotations

import common
import jax
import jax.numpy as jnp
import numpy as np

from seqjax.nn.cells import lstm_combine, zero_carry
from seqjax.nn.recurrent import scan_cell

SHAPES = {"charlm": (128, 40, 8, 128), "bilstm_layer1": (64, 184, 50, 256), "bilstm_layer2": (64, 184, 512, 256)}


def hoisted_scan(x_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, carry):
    """The LSTM scan with ``x W_ih^T`` of all ``T`` steps done first: ``[T*B, F] @ [F, 4H]``."""
    T, B, F = x_TBF.shape
    gx_TBG = (x_TBF.reshape(T * B, F) @ w_ih.T).reshape(T, B, -1) + (b_ih + b_hh)
    w_hh_T = w_hh.T

    def body(carry, xs):
        gx, m = xs
        new = lstm_combine(carry, gx, carry[0] @ w_hh_T)
        new = tuple(jnp.where(m[:, None], n, o) for n, o in zip(new, carry))
        return new, jnp.where(m[:, None], new[0], 0.0)

    carry, out = jax.lax.scan(body, carry, (gx_TBG, mask_TB))
    return out, carry


def main() -> None:
    rng = np.random.default_rng(0)
    record = {}
    for name, (B, T, F, H) in SHAPES.items():
        x = jnp.asarray(rng.normal(size=(T, B, F)), jnp.float32)
        lengths = jnp.asarray(rng.integers(T // 2, T + 1, B))
        mask = jnp.arange(T)[:, None] < lengths[None, :]
        bound = H ** -0.5
        p = tuple(jnp.asarray(rng.uniform(-bound, bound, s), jnp.float32)
                  for s in ((4 * H, F), (4 * H, H), (4 * H,), (4 * H,)))

        def loss(p, x, scan):
            out, carry = scan(x, mask, *p, zero_carry("lstm", B, H))
            return (out ** 2).mean() + carry[0].mean()

        fused = jax.jit(jax.grad(lambda p, x: loss(p, x, lambda *a: scan_cell("lstm", *a))))
        hoisted = jax.jit(jax.grad(lambda p, x: loss(p, x, hoisted_scan)))
        diff = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a)))
                   for a, b in zip(fused(p, x), hoisted(p, x)))
        assert diff < 1e-3, (name, diff)  # the two compute the same gradient
        ms = {"fused_ms": common.median_ms(fused, p, x), "hoisted_ms": common.median_ms(hoisted, p, x)}
        record[name] = {"batch": B, "steps": T, "input": F, "hidden": H, **ms,
                        "hoisted_vs_fused_speed": ms["fused_ms"] / ms["hoisted_ms"]}
        print(f"{name:14s} fused {ms['fused_ms']:7.1f} ms   hoisted {ms['hoisted_ms']:7.1f} ms", flush=True)
    common.write("input_projection", {"shapes": record})


if __name__ == "__main__":
    main()
