"""Ways to project an LSTM step's input and state, forward+backward of one direction:

- ``fused``: one matmul per step, ``[x_t, h] @ [W_ih | W_hh]^T`` (``scan_cell(fuse=True)``);
- ``separate``: two matmuls per step, ``x_t W_ih^T + h W_hh^T`` (``scan_cell(fuse=False)``,
  as flax's cells do);
- ``hoisted``: every step's ``x_t W_ih^T`` in one matmul before the scan (cuDNN's trick);
- ``seqjax``: :func:`seqjax.nn.recurrent.scan_cell` choosing by the input width,

at the lab's shapes: the char-LSTM (batch 128, 40 steps, input 8, hidden 128) and its second
layer (input 128), the IMDB LSTM (batch 64, 184 steps, input 50, hidden 100) and both layers of
the IMDB bi-LSTM (input 50 then 512, hidden 256); lengths drawn from half to all of the steps.
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

SHAPES = {"charlm": (128, 40, 8, 128), "charlm_layer2": (128, 40, 128, 128), "imdb_lstm": (64, 184, 50, 100),
          "bilstm_layer1": (64, 184, 50, 256), "bilstm_layer2": (64, 184, 512, 256)}


def hoisted(x_TBF, mask_TB, w_ih, w_hh, b_ih, b_hh, carry):
    """The one variant seqjax does not have: ``x_t W_ih^T + b`` of all steps first, ``[T*B, F] @ [F, 4H]``."""
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


VARIANTS = {"fused": lambda *a: scan_cell("lstm", *a, fuse=True),
            "separate": lambda *a: scan_cell("lstm", *a, fuse=False),
            "hoisted": hoisted,
            "seqjax": lambda *a: scan_cell("lstm", *a)}  # its own choice by the input width


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

        def grad_of(scan):
            def loss(p, x):
                out, carry = scan(x, mask, *p, zero_carry("lstm", B, H))
                return (out ** 2).mean() + carry[0].mean()
            return jax.jit(jax.grad(loss))

        fns = {k: grad_of(f) for k, f in VARIANTS.items()}
        ref = fns["fused"](p, x)
        for f in fns.values():  # all compute the same gradient
            diff = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a))) for a, b in zip(ref, f(p, x)))
            assert diff < 1e-3, (name, diff)
        rates = common.timed_rounds({k: (lambda f=f: jax.block_until_ready(f(p, x)), 1, 3) for k, f in fns.items()},
                                    rounds=7)  # interleaved, so load on the machine hits all alike
        ms = {f"{k}_ms": 1e3 / r for k, r in rates.items()}
        record[name] = {"batch": B, "steps": T, "input": F, "hidden": H, **ms}
        print(f"{name:14s} " + "   ".join(f"{k[:-3]} {v:6.1f} ms" for k, v in ms.items()), flush=True)
    common.write("input_projection", {"shapes": record})


if __name__ == "__main__":
    main()
