"""One forward+backward of a recurrence, every way seqjax can run it, at the lab's shapes.

Variants (``scan_cell``): the backward pass — ``hoisted`` (seqjax's hand-fused custom VJP: only
``dh, dc`` in the reverse loop, the weight gradients one matmul after it), ``generic`` (the same
shape of pass for any registered cell, each step's local derivatives from ``jax.vjp`` of the
cell's ``combine``) or ``autodiff`` (JAX's transpose of the scan, also with
``lax.scan(_split_transpose=True)``) — times the input projection —
``fused`` (one ``[x_t, h]`` matmul per step), ``separate`` (two), ``hoisted`` (all steps' ``x W_ih^T``
before the loop) — and ``unroll=2``; plus a plain flax ``nn.RNN(OptimizedLSTMCell)`` for the
LSTM shapes. Rounds are interleaved; the figure is the median. The share of peak divides the
matmul work of forward+backward (``3 * 2 T B (F + H) G H`` flops) by the time and by this core's
float32 matmul rate, measured here on one ``[4096, 1024] @ [1024, 1024]`` product.

``chrt -f 50 taskset -c 0 python benchmarks/recurrence.py`` (one core, real-time priority so
other work on the machine does not get in) -> results/benchmarks/recurrence.json; with
``--shapes`` only those rows are replaced (each then records its own command and peak).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
from unittest import mock

import common
from common import median_ms
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seqjax.nn.cells import get_cell, zero_carry
from seqjax.nn.recurrent import default_projection, scan_cell, sequence_mask
from seqjax.runtime import tune_allocator

SHAPES = {  # name: (cell, T, B, F, H, ragged) — ragged: lengths spread over [T/2, T], masked scan
    "char-LSTM layer 1": ("lstm", 40, 128, 8, 128, False),
    "char-LSTM layer 2": ("lstm", 40, 128, 128, 128, False),
    "char-GRU": ("gru", 40, 128, 8, 128, False),
    "char-RNN": ("rnn", 40, 128, 8, 128, False),
    "IMDB LSTM (embed 50, hidden 100)": ("lstm", 256, 64, 50, 100, True),
    "IMDB RNN (embed 50, hidden 100)": ("rnn", 256, 64, 50, 100, True),
    "bi-LSTM layer 1 (embed 50, hidden 256)": ("lstm", 128, 64, 50, 256, True),
    "bi-LSTM layer 2 (input 512, hidden 256)": ("lstm", 128, 64, 512, 256, True),
}


def peak_gflops() -> float:
    """The best float32 matmul rate of this process: one large product, and 64 products of the
    char-LSTM's per-step shape ``[128, 136] @ [136, 512]`` in one program."""
    a = jnp.ones((4096, 1024), jnp.float32)
    large = 2 * 4096 * 1024 * 1024 / median_ms(jax.jit(lambda a, b: a @ b), a, a[:1024] * 1e-3) / 1e6
    xs, w = jnp.ones((64, 128, 136)), jnp.full((136, 512), 1e-3)
    small = 64 * 2 * 128 * 136 * 512 / median_ms(jax.jit(lambda xs, w: jnp.einsum("nbk,kg->nbg", xs, w)), xs, w) / 1e6
    return max(large, small)


def variants(kind, T, B, F, H, mask, lengths, p):
    """``{name: (loss(params, x), params)}``; every loss reads the outputs and the final state."""
    c0 = zero_carry(kind, B, H)
    out = {}

    def seqjax_loss(backward, projection, unroll=1, split=False):
        def loss(p, x):
            scan = functools.partial(jax.lax.scan, _split_transpose=True) if split else jax.lax.scan
            with mock.patch.object(jax.lax, "scan", scan):
                y, c = scan_cell(kind, x, mask, *p, c0, unroll, projection=projection, backward=backward)
            return (y ** 2).sum() + (c[0] ** 2).sum()
        return loss

    projections = ("fused", "separate", "hoisted") if kind != "gru" else ("separate", "hoisted")
    for backward in ("hoisted", "autodiff"):
        for projection in projections:
            out[f"{backward} backward, {projection} projection"] = seqjax_loss(backward, projection), p
    for projection in ("separate", "hoisted"):  # the generic backward pass (any registered cell)
        out[f"generic backward, {projection} projection"] = seqjax_loss("generic", projection), p
    best = default_projection(kind, F, H)
    out[f"hoisted backward, {best} projection, unroll 2"] = seqjax_loss("hoisted", best, 2), p
    out[f"autodiff backward, {best} projection, unroll 2"] = seqjax_loss("autodiff", best, 2), p
    out[f"autodiff backward, {best} projection, split transpose"] = seqjax_loss("autodiff", best, split=True), p
    if kind == "lstm":
        rnn = nn.RNN(nn.OptimizedLSTMCell(H), time_major=True, return_carry=True)
        fp = rnn.init(jax.random.PRNGKey(0), jnp.zeros((T, B, F)))

        def flax_loss(fp, x):
            (c, h), y = rnn.apply(fp, x, seq_lengths=lengths)
            return (y ** 2).sum() + (h ** 2).sum()
        out["flax nn.RNN(OptimizedLSTMCell)"] = flax_loss, fp
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default="all", help="comma-separated names from SHAPES (substrings)")
    args = ap.parse_args()
    tune_allocator()
    peak = peak_gflops()
    print(f"float32 matmul peak {peak:.0f} GFLOP/s", flush=True)
    rng = np.random.default_rng(0)
    table = {}
    for name, (kind, T, B, F, H, ragged) in SHAPES.items():
        if args.shapes != "all" and not any(s in name for s in args.shapes.split(",")):
            continue
        G = get_cell(kind).gates
        k = jax.random.split(jax.random.PRNGKey(0), 5)
        p = [jax.random.normal(k[i], s) * 0.1 for i, s in enumerate([(G * H, F), (G * H, H), (G * H,), (G * H,)])]
        x = jax.random.normal(k[4], (T, B, F))
        lengths = jnp.asarray(rng.integers(T // 2, T + 1, B), jnp.int32) if ragged else jnp.full((B,), T, jnp.int32)
        mask = sequence_mask(lengths, T).T if ragged else None
        fns = {v: (jax.jit(jax.grad(f, argnums=(0, 1))), params)
               for v, (f, params) in variants(kind, T, B, F, H, mask, lengths, p).items()}
        times = {v: [] for v in fns}
        for v, (f, params) in fns.items():
            jax.block_until_ready(f(params, x))
        for _ in range(args.rounds):
            for v, (f, params) in fns.items():
                times[v].append(median_ms(f, params, x, rounds=1, calls=3))
        flops = 3 * 2 * T * B * (F + H) * G * H
        rows = {v: {"ms": round(statistics.median(t), 2),
                    "share_of_peak": round(flops / statistics.median(t) / 1e6 / peak, 3)} for v, t in times.items()}
        table[name] = {"shape": {"cell": kind, "T": T, "B": B, "F": F, "H": H, "ragged": ragged}, "variants": rows}
        print(f"\n{name}  ({kind}, T {T}, B {B}, F {F}, H {H}{', ragged lengths' if ragged else ''})")
        for v, r in sorted(rows.items(), key=lambda kv: kv[1]["ms"]):
            print(f"  {v:55s} {r['ms']:8.2f} ms  {100 * r['share_of_peak']:5.1f} % of peak", flush=True)
    if args.shapes != "all":  # a partial run updates its shapes and keeps the others' rows
        path = common.ROOT / "results" / "benchmarks" / "recurrence.json"
        if path.exists():
            for row in table.values():
                row.update(peak_gflops=round(peak, 1), command="python " + " ".join(sys.argv))
            table = {**json.loads(path.read_text())["shapes"], **table}
    common.write("recurrence", {"peak_gflops": round(peak, 1), "rounds": args.rounds, "shapes": table})


if __name__ == "__main__":
    main()
