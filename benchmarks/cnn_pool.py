"""The Kim CNN's conv + ReLU + max-over-time: seqjax's sparse backward against autodiff.

One forward+backward (gradients for the embedded input, kernels and biases) of the three
convolutions of the IMDB CNN (batch 64, embed 50, 100 filters each of widths 3, 4, 5) at
padded lengths of the IMDB buckets: :func:`seqjax.nn.conv.conv_max_over_time` against
autodiff of ``relu(conv) -> mask -> max`` (what ``nn.Conv`` + ``jnp.max`` give), and the
forward pass alone. Median of 15 rounds of 3 calls, both cores (short lengths vary most between runs).

``python benchmarks/cnn_pool.py`` -> results/benchmarks/cnn_pool.json
"""

from __future__ import annotations

import common
import jax
import jax.numpy as jnp
from common import median_ms

from seqjax.nn.conv import conv_max_over_time, conv_max_over_time_dense

B, E, F, WIDTHS = 64, 50, 100, (3, 4, 5)


def main() -> None:
    rows = {}
    for T in (152, 256, 1464):
        ks = jax.random.split(jax.random.PRNGKey(T), 2 + len(WIDTHS))
        x = jax.random.normal(ks[0], (B, T, E))
        lengths = jax.random.randint(ks[1], (B,), int(T / 1.19), T + 1)
        params = [(jax.random.normal(k, (w, E, F)) * 0.05, jnp.full((F,), 0.01)) for k, w in zip(ks[2:], WIDTHS)]

        def loss(pool, x, params):
            return sum(pool(x, kern, b, lengths - kern.shape[0] + 1).sum() for kern, b in params)

        row = {}
        for name, pool in (("autodiff", conv_max_over_time_dense), ("seqjax", conv_max_over_time)):
            row[f"{name}_forward_ms"] = median_ms(jax.jit(lambda x, p, pool=pool: loss(pool, x, p)), x, params, rounds=15)
            row[f"{name}_forward_backward_ms"] = median_ms(
                jax.jit(jax.grad(lambda x, p, pool=pool: loss(pool, x, p), argnums=(0, 1))), x, params, rounds=15)
        row["speedup_forward_backward"] = row["autodiff_forward_backward_ms"] / row["seqjax_forward_backward_ms"]
        rows[f"T{T}"] = row
        print(f"T {T}: forward+backward autodiff {row['autodiff_forward_backward_ms']:.1f} ms, "
              f"seqjax {row['seqjax_forward_backward_ms']:.1f} ms ({row['speedup_forward_backward']:.2f}x); "
              f"forward {row['autodiff_forward_ms']:.1f} / {row['seqjax_forward_ms']:.1f} ms", flush=True)
    common.write("cnn_pool", {"batch": B, "embed": E, "filters": F, "widths": WIDTHS, "lengths": rows})


if __name__ == "__main__":
    main()
