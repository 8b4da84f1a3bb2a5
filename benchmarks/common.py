"""Shared timing helpers: interleaved rounds, median throughput, JSON output."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed_rounds(runners: dict, rounds: int = 3) -> dict:
    """``runners[name] = (fn, items_per_call, calls)``; each fn is warmed up once, then the
    runners are timed in interleaved rounds (so load on the machine hits all alike).
    Returns ``{name: median items/s}``."""
    for fn, _, _ in runners.values():
        fn()
    rates = {k: [] for k in runners}
    for _ in range(rounds):
        for name, (fn, items, calls) in runners.items():
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            rates[name].append(items * calls / (time.perf_counter() - t))
    return {k: statistics.median(v) for k, v in rates.items()}


def median_ms(f, *args, rounds: int = 5, calls: int = 3) -> float:
    """Median milliseconds per call of ``f(*args)`` (a jitted JAX function, warmed up once)
    over ``rounds`` timed groups of ``calls``."""
    import jax

    jax.block_until_ready(f(*args))
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            r = f(*args)
        jax.block_until_ready(r)
        out.append((time.perf_counter() - t) / calls * 1e3)
    return statistics.median(out)


def matmul_peak_gflops() -> float:
    """This process's float32 matmul rate in GFLOP/s: one ``[4096, 1024] @ [1024, 1024]`` product
    (the denominator of the benchmarks' share of matmul peak)."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((4096, 1024), jnp.float32)
    return 2 * 4096 * 1024 * 1024 / median_ms(jax.jit(lambda a, b: a @ b), a, a[:1024] * 1e-3) / 1e6


def isolated_rounds(script: str, workers, repeats: int, argv: list[str]) -> dict:
    """Run ``script --worker W *argv`` for each worker ``W`` in its own process, back to back,
    ``repeats`` times over; each prints one JSON line last. Returns ``{W: [records]}``."""
    out = {w: [] for w in workers}
    for _ in range(repeats):
        for w in workers:
            p = subprocess.run([sys.executable, script, "--worker", w, *argv], capture_output=True, text=True, check=False)
            if p.returncode:
                raise SystemExit(f"{script} --worker {w} failed:\n{p.stderr[-3000:]}")
            out[w].append(json.loads(p.stdout.strip().splitlines()[-1]))
    return out


def one_epoch(train_args: list[str], out: str, env: dict | None = None, devices: int | None = None,
              epochs: int = 1) -> dict:
    """One ``seqjax [--cpu-devices N] imdb train --epochs E --eval-limit 500 *train_args`` run in a
    process of its own, on the real IMDB data, timed on its last epoch; its compiled programs go to
    ``out/../jit`` (shared by the runs of one benchmark). A first
    epoch also loads (or compiles) one program per padded length, which on a CPU can take as long
    as the training itself: ``epochs=2`` times a steady epoch.

    Args:
      train_args: ``imdb train`` flags, e.g. ``["--model", "lstm", "--train-limit", "6000"]``.
      out: a fresh directory for the run's checkpoints and results JSON.
      env: variables added to the run's environment.
      devices: ``--cpu-devices``; ``None`` leaves the layout to seqjax (:mod:`seqjax.layout`).
      epochs: how many epochs the run trains (the last one is timed).
    Returns:
      ``{"train_time_s", "samples_per_s"}`` of its last epoch.
    """
    results = os.path.join(out, "r.json")
    cmd = [sys.executable, "-m", "seqjax.cli", *(["--cpu-devices", str(devices)] if devices else []),
           "imdb", "train", "--epochs", str(epochs), "--eval-limit", "500", *train_args,
           "--out", os.path.join(out, "run"), "--results", results]
    env = {**os.environ, "SEQJAX_COMPILE_CACHE": os.path.join(out, "..", "jit"), **(env or {})}
    r = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd[2:])} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    h = json.load(open(results))["history"][-1]
    return {"train_time_s": h["train_time_s"], "samples_per_s": h["train_samples_per_s"]}


def write(name: str, record: dict) -> None:
    from seqjax.tasks.common import machine

    path = ROOT / "results" / "benchmarks" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": "python " + " ".join(sys.argv), "machine": machine(),
              "torch_threads": os.cpu_count(), **record}
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"written {path}")
