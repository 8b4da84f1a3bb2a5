"""A bidirectional stack's forward+backward: both directions in one loop against two loops.

``seqjax.nn.recurrent.RNN(bidirectional=True)`` runs each layer's two directions in one
``lax.scan`` (``fuse_directions=True``, :func:`seqjax.nn.recurrent.scan_bidirectional`) or in
two (``fuse_directions=False``, the default: forward, then the reverse direction on the input
reversed within each length). Variants, per shape:

- ``two scans``: ``fuse_directions=False``;
- ``one scan, batched``: one loop, one batched ``[2, B, K] @ [2, K, G]`` matmul per product
  and step (``step_matmul="batched"``, the default of the one loop);
- ``one scan, dots``: one loop, one ``[B, K] @ [K, G]`` matmul per direction (``"dots"``);
- ``one scan, batched, hoisted projection``: one loop, and both directions' ``X W_ih^T``
  before it (one matmul over all ``T*B`` rows per direction).

Every variant runs the default input projection of :func:`seqjax.nn.recurrent.default_projection`
(``separate`` at these shapes) unless named.

The loss is what the IMDB bi-LSTM classifier reads (``outputs=False``: the last layer's final
``h`` of both directions), on ragged lengths spread over ``[T/2, T]``; the timed function is the
jitted gradient w.r.t. the params and the input. Rounds are interleaved; each variant gets the
median and the best round of wall time and of the process's CPU time (all its threads). On one
pinned core the CPU time is the robust figure: it leaves out the time other work on the machine
takes from that core, which the wall time does not.

``nice -n 5 python benchmarks/bidirectional.py --cores 2`` -> results/benchmarks/bidirectional_c2.json;
``--cores 1`` pins the process to one core before JAX starts -> bidirectional_c1.json.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from unittest import mock

ap = argparse.ArgumentParser()
ap.add_argument("--cores", type=int, default=os.cpu_count())
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--shapes", default="all", help="comma-separated names from SHAPES (substrings)")
args = ap.parse_args()
if args.cores < os.cpu_count():  # before JAX sizes its thread pool
    os.sched_setaffinity(0, set(range(args.cores)))

import common  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from seqjax.nn import recurrent  # noqa: E402
from seqjax.runtime import tune_allocator  # noqa: E402

SHAPES = {  # name: (cell, layers, T, B, F, H); batch 32 is each core's half of 64 under seqjax's
    # default layout for the IMDB recurrent models (one CPU device per core, seqjax/layout.py)
    "IMDB bi-LSTM (embed 50, hidden 256, 2 layers, batch 64)": ("lstm", 2, 256, 64, 50, 256),
    "IMDB bi-LSTM (embed 50, hidden 256, 2 layers, batch 32)": ("lstm", 2, 256, 32, 50, 256),
    "IMDB bi-LSTM (embed 50, hidden 100, 2 layers, batch 64)": ("lstm", 2, 256, 64, 50, 100),
    "IMDB bi-LSTM (embed 50, hidden 100, 2 layers, batch 32)": ("lstm", 2, 256, 32, 50, 100),
}

VARIANTS = {  # name: (fuse_directions, step_matmul, projection)
    "two scans": (False, None, None),
    "one scan, batched": (True, "batched", None),
    "one scan, dots": (True, "dots", None),
    "one scan, batched, hoisted projection": (True, "batched", "hoisted"),
}


def loss_fn(cell, layers, H, fuse, step_matmul, projection, lengths):
    """``loss(params, x float32[B, T, F])``: the squared final ``h`` of the last layer's two
    directions, as the bi-LSTM classifier reads them."""
    model = recurrent.RNN(H, cell, layers, bidirectional=True, projection=projection, fuse_directions=fuse)
    scan = (functools.partial(recurrent.scan_bidirectional, step_matmul=step_matmul) if step_matmul
            else recurrent.scan_bidirectional)

    def loss(p, x):
        with mock.patch.object(recurrent, "scan_bidirectional", scan):
            _, finals = model.apply(p, x, lengths, outputs=False)
        return (finals[-2][0] ** 2).sum() + (finals[-1][0] ** 2).sum()
    return model, loss


def main() -> None:
    tune_allocator()
    rng = np.random.default_rng(0)
    table = {}
    for name, (cell, layers, T, B, F, H) in SHAPES.items():
        if args.shapes != "all" and not any(s in name for s in args.shapes.split(",")):
            continue
        x = jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
        lengths = jnp.asarray(rng.integers(T // 2, T + 1, B), jnp.int32)
        fns, params = {}, None
        for v, (fuse, step_matmul, projection) in VARIANTS.items():
            model, loss = loss_fn(cell, layers, H, fuse, step_matmul, projection, lengths)
            params = params or model.init(jax.random.PRNGKey(0), x[:, :2])
            fns[v] = jax.jit(jax.grad(loss, argnums=(0, 1)))
        ref = fns["two scans"](params, x)
        for v, f in fns.items():  # compile, and check every variant against the two scans
            g = f(params, x)
            err = max(float(jnp.abs(a - b).max() / (jnp.abs(b).max() + 1e-12))
                      for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref)))
            assert err < 1e-4, (v, err)
        wall, cpu = {v: [] for v in fns}, {v: [] for v in fns}
        for _ in range(args.rounds):
            for v, f in fns.items():
                t, c = time.perf_counter(), time.process_time()
                jax.block_until_ready(f(params, x))
                wall[v].append((time.perf_counter() - t) * 1e3)
                cpu[v].append((time.process_time() - c) * 1e3)
        base, base_cpu = statistics.median(wall["two scans"]), statistics.median(cpu["two scans"])
        rows = {v: {"ms": round(statistics.median(t), 1), "best_ms": round(min(t), 1),
                    "cpu_ms": round(statistics.median(cpu[v]), 1), "best_cpu_ms": round(min(cpu[v]), 1),
                    "rounds_ms": [round(r, 1) for r in t],
                    "speedup_vs_two_scans": round(base / statistics.median(t), 3),
                    "cpu_speedup_vs_two_scans": round(base_cpu / statistics.median(cpu[v]), 3)}
                for v, t in wall.items()}
        table[name] = {"shape": {"cell": cell, "layers": layers, "T": T, "B": B, "F": F, "H": H,
                                 "lengths": [int(n) for n in lengths]}, "variants": rows}
        print(f"\n{name}  ({cell}, {layers} layers, T {T}, B {B}, F {F}, H {H}, ragged lengths)")
        for v, r in sorted(rows.items(), key=lambda kv: kv[1]["ms"]):
            print(f"  {v:36s} median {r['ms']:7.1f} ms  best {r['best_ms']:7.1f} ms  {r['speedup_vs_two_scans']:.2f}x"
                  f"   CPU time: median {r['cpu_ms']:7.1f} ms  best {r['best_cpu_ms']:7.1f} ms  "
                  f"{r['cpu_speedup_vs_two_scans']:.2f}x", flush=True)
    common.write(f"bidirectional_c{args.cores}", {"rounds": args.rounds, "shapes": table})


if __name__ == "__main__":
    main()
