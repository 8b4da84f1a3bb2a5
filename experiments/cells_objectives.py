"""RNN vs GRU vs LSTM, last-char vs every-char training, at equal training time.

Runs ``seqjax charlm train`` for each cell x objective with the same ``--minutes`` of training,
two at a time, each pinned to its own core (so every run gets the same CPU), and writes
``results/workshop/<cell>_<objective>.json``; ``python experiments/report.py`` turns them into
the table. Checkpoints go to ``runs/workshop/`` (the gradient figure reads the ``last`` ones).

``SEQJAX_DATA_DIR=../shared/data python experiments/cells_objectives.py --minutes 5``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5.0, help="training time per run")
    ap.add_argument("--cells", default="rnn,gru,lstm")
    ap.add_argument("--text", default="", help="a UTF-8 file instead of Nietzsche")
    ap.add_argument("--objectives", default="last,every")
    ap.add_argument("--parallel", type=int, default=len(os.sched_getaffinity(0)),
                    help="runs at once, one core each")
    args = ap.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    todo = []
    for cell in args.cells.split(","):
        for obj in args.objectives.split(","):
            name = f"{cell}_{obj}"
            todo.append((name, ["charlm", "train", "--cell", cell, "--objective", obj, "--epochs", "1000",
                                "--minutes", str(args.minutes), "--markov-orders", "1,3,5",
                                *(["--text", args.text] if args.text else []),
                                "--out", f"runs/workshop/{name}", "--results", f"results/workshop/{name}.json"]))
    running: dict[int, tuple[str, subprocess.Popen]] = {}
    Path(ROOT / "runs" / "workshop").mkdir(parents=True, exist_ok=True)
    failed = []
    while todo or running:
        free = [c for c in cores[:args.parallel] if c not in running]
        while todo and free:
            core = free.pop(0)
            name, cmd = todo.pop(0)
            log = open(ROOT / "runs" / "workshop" / f"{name}.log", "w")
            print(f"core {core}: seqjax {' '.join(cmd)}", flush=True)
            running[core] = (name, subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-m", "seqjax.cli", *cmd],
                                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        time.sleep(2)
        for core, (name, p) in list(running.items()):
            if p.poll() is not None:
                print(f"{name}: {'done' if p.returncode == 0 else f'FAILED ({p.returncode}), see runs/workshop/{name}.log'}", flush=True)
                failed += [name] if p.returncode else []
                del running[core]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
