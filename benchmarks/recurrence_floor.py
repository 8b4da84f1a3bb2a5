"""Where a recurrent train step's time goes: ``scan_cell`` forward and forward+backward for each
cell against a scan that does only the per-step matmul (the cost floor), at the lab's
char-LSTM shape (batch 128, 40 steps, input 8, hidden 128). Prints milliseconds per call.

``taskset -c 0 python benchmarks/recurrence_floor.py`` (one core, quiet machine)
"""

from __future__ import annotations

import time

import common  # noqa: F401  (puts the repository on sys.path)
import jax
import jax.numpy as jnp

from seqjax.nn.cells import GATES, zero_carry
from seqjax.nn.recurrent import scan_cell

B, T, F, H = 128, 40, 8, 128


def ms_per_call(f, *args, n: int = 20) -> float:
    jax.block_until_ready(f(*args))
    t = time.perf_counter()
    for _ in range(n):
        r = f(*args)
    jax.block_until_ready(r)
    return (time.perf_counter() - t) / n * 1e3


def main() -> None:
    ks = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(ks[0], (T, B, F))
    mask = jnp.ones((T, B), bool)
    for kind, G in GATES.items():
        p = (jax.random.normal(ks[1], (G * H, F)) * 0.1, jax.random.normal(ks[2], (G * H, H)) * 0.1,
             jnp.zeros(G * H), jnp.zeros(G * H))

        def loss(p, x, kind=kind):
            _, carry = scan_cell(kind, x, mask, *p, zero_carry(kind, B, H))
            return (carry[0] ** 2).sum()

        print(f"{kind:4s} scan: forward {ms_per_call(jax.jit(loss), p, x):6.1f} ms   "
              f"forward+backward {ms_per_call(jax.jit(jax.grad(loss)), p, x):6.1f} ms", flush=True)
    for N in (H, 3 * H, 4 * H):
        W = jnp.full((F + H, N), 0.01)

        def matmul_only(W, x):
            def body(h, xt):
                return jnp.tanh((jnp.concatenate([xt, h], 1) @ W)[:, :H]), None
            h, _ = jax.lax.scan(body, jnp.zeros((B, H)), x)
            return (h ** 2).sum()

        print(f"matmul-only scan, [{B}x{F + H}]@[{F + H}x{N}] per step: forward+backward "
              f"{ms_per_call(jax.jit(jax.grad(matmul_only)), W, x):6.1f} ms", flush=True)


if __name__ == "__main__":
    main()
