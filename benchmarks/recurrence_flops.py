"""How close the IMDB recurrences run to this CPU's matmul peak, seqjax against plain flax.

For each recurrent shape of the IMDB models (batch 64), one forward+backward of the masked
scan (final state only, as the classifiers use it) in seqjax (``scan_cell``) and in flax
(``nn.RNN(OptimizedLSTMCell | SimpleCell, seq_lengths=...)``), with the matmul work both must
do: ``2 B (F + H) G H`` flops per step forward and twice that backward. The peak is one large
``[4096, 1024] @ [1024, 1024]`` float32 matmul. A recurrence at a large fraction of that peak
cannot be made much faster by any reorganisation of the same arithmetic.

``python benchmarks/recurrence_flops.py`` -> results/benchmarks/recurrence_flops.json
"""

from __future__ import annotations

import common
from common import median_ms as ms
import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.nn.cells import GATES, zero_carry
from seqjax.nn.recurrent import scan_cell

B = 64
SHAPES = {  # name: (cell, T, F, H) — T is a typical padded review length of the IMDB buckets
    "rnn (embed 50, hidden 100)": ("rnn", 256, 50, 100),
    "lstm (embed 50, hidden 100)": ("lstm", 256, 50, 100),
    "bilstm layer 2 (input 512, hidden 256)": ("lstm", 128, 512, 256),
}


def peak_gflops() -> float:
    a = jnp.ones((4096, 1024), jnp.float32)
    b = jnp.ones((1024, 1024), jnp.float32) * 1e-3
    t = ms(jax.jit(lambda a, b: a @ b), a, b)
    return 2 * 4096 * 1024 * 1024 / t / 1e6


def main() -> None:
    peak = peak_gflops()
    print(f"matmul peak: {peak:.1f} GFLOP/s", flush=True)
    rows = {}
    for name, (cell, T, F, H) in SHAPES.items():
        G = GATES[cell]
        ks = jax.random.split(jax.random.PRNGKey(0), 4)
        x = jax.random.normal(ks[0], (T, B, F))
        lengths = jax.random.randint(ks[3], (B,), T // 2, T + 1)
        mask = jnp.arange(T)[:, None] < lengths[None, :]
        p = (jax.random.normal(ks[1], (G * H, F)) * 0.1, jax.random.normal(ks[2], (G * H, H)) * 0.1,
             jnp.zeros(G * H), jnp.zeros(G * H))

        def ours(p, x, cell=cell, H=H, mask=mask):
            _, carry = scan_cell(cell, x, mask, *p, zero_carry(cell, B, H), emit=False)
            return (carry[0] ** 2).sum()

        rnn = nn.RNN(nn.OptimizedLSTMCell(H) if cell == "lstm" else nn.SimpleCell(H), return_carry=True)
        xb = jnp.swapaxes(x, 0, 1)
        fp = rnn.init(ks[0], xb, seq_lengths=lengths)

        def theirs(fp, x, cell=cell, rnn=rnn, lengths=lengths):
            c, _ = rnn.apply(fp, x, seq_lengths=lengths)
            return ((c[1] if cell == "lstm" else c) ** 2).sum()

        flops = 3 * T * 2 * B * (F + H) * G * H
        t_ours = ms(jax.jit(jax.grad(ours)), p, x)
        t_flax = ms(jax.jit(jax.grad(theirs)), fp, xb)
        rows[name] = {"T": T, "F": F, "H": H, "cell": cell, "gflop": flops / 1e9,
                      "seqjax_ms": t_ours, "flax_ms": t_flax,
                      "seqjax_fraction_of_peak": flops / t_ours / 1e6 / peak,
                      "flax_fraction_of_peak": flops / t_flax / 1e6 / peak}
        r = rows[name]
        print(f"{name}: {r['gflop']:.2f} GFLOP; seqjax {t_ours:.0f} ms ({100 * r['seqjax_fraction_of_peak']:.0f} % "
              f"of peak), flax {t_flax:.0f} ms ({100 * r['flax_fraction_of_peak']:.0f} %)", flush=True)
    common.write("recurrence_flops", {"batch": B, "peak_gflops": peak, "shapes": rows})


if __name__ == "__main__":
    main()
