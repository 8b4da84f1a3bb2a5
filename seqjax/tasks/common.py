"""Helpers shared by the experiments: machine description, the command of a run, results JSON."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

import jax

from seqjax import files


def machine() -> dict:
    """Where a run happened: host, CPU count, JAX backend, devices (of every process), processes,
    the CPU device layout and why it was chosen (:func:`seqjax.layout.chosen`), library versions,
    and ``load_avg``: the machine's 1-, 5- and 15-minute load averages when this was called (at
    the end of a run: a 15-minute load well above ``cores_used`` says other work shared the
    machine, so the run's times are upper bounds)."""
    import flax
    import optax

    from seqjax import layout

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "cores_used": usable, "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()], "processes": jax.process_count(),
            "python": sys.version.split()[0],
            "layout": layout.chosen(),
            "jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
            "date": time.strftime("%Y-%m-%d"),
            "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}


def library_call(function: str, cfg, *args) -> str:
    """The Python call that reproduces a run started from the library (a notebook, a script):
    ``function(Config(field=value, ...), *args)`` with the fields that differ from the defaults.
    The CLI passes its own command line instead."""
    fields = ", ".join(f"{f.name}={getattr(cfg, f.name)!r}" for f in dataclasses.fields(cfg)
                       if getattr(cfg, f.name) != f.default)
    rest = "".join(f", {a!r}" for a in args)
    return f"{function}({type(cfg).__name__}({fields}){rest})"


def write_results(path: str | Path, cfg, command: str, **fields) -> None:
    """One JSON per run: ``command`` (what produced it), config, machine and whatever the
    experiment measured; written atomically, valid JSON (a non-finite number is ``null``,
    :func:`seqjax.files.write_json`).

    Written by process 0 only when several processes share a run.
    """
    if jax.process_index() != 0:
        return
    path = Path(path)
    record = {"command": command, "config": dataclasses.asdict(cfg), "machine": machine(), **fields}
    files.write_json(path, record)
    print(f"results written to {path}")


def seed_results(run_seeds: list[int], per_seed: list[dict], keys) -> dict:
    """A run of several seeds' results: ``seeds``, ``per_seed`` (each seed's ``keys``, with its
    seed) and ``aggregate`` (:func:`seqjax.stats.aggregate`: mean, std, 95 % CI per key)."""
    from seqjax import stats

    rows = [{"seed": s, **{k: m[k] for k in keys if k in m}} for s, m in zip(run_seeds, per_seed)]
    return {"seeds": run_seeds, "per_seed": rows, "aggregate": stats.aggregate(rows, keys)}
