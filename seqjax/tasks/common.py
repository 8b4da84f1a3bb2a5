"""Helpers shared by the experiments: machine description, results JSON, run directories."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax


def machine() -> dict:
    """Where a run happened: host, CPU count, JAX backend, devices (of every process), processes,
    library versions."""
    import flax
    import optax

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
            "jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
            "date": time.strftime("%Y-%m-%d")}


def write_results(path: str | Path, cfg, **fields) -> None:
    """One JSON per run: config, command, machine and whatever the experiment measured.

    Written by process 0 only when several processes share a run.
    """
    if jax.process_index() != 0:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cli = sys.argv[0].endswith(("seqjax", "seqjax/cli.py"))  # the console script or python -m seqjax.cli
    record = {"command": "seqjax " + " ".join(sys.argv[1:]) if cli else " ".join(sys.argv),
              "config": dataclasses.asdict(cfg), "machine": machine(), **fields}
    path.write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(f"results written to {path}")
