"""Epoch time with batches prepared ahead on a background thread (the default) and without
(``SEQJAX_PREFETCH=0``: padded on the main thread when the step asks), through the real
``seqjax imdb train`` command on the real IMDB data, alternated run by run (ABAB...) so that a
change in the machine's load falls on both. The second epoch of each run is timed (the first
also loads a program per padded length).

``SEQJAX_DATA_DIR=../shared/data python benchmarks/prefetch.py [--models lstm,cnn] [--repeats 2]
[--train-limit 6000]`` -> results/benchmarks/prefetch.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from common import one_epoch, write


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="lstm,cnn")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=6000)
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            flags = ["--model", model, "--train-limit", str(args.train_limit)]
            runs = {0: [], 2: []}
            for r in range(args.repeats):
                for depth in (0, 2):
                    runs[depth].append(one_epoch(flags, os.path.join(tmp, f"{model}{r}{depth}"),
                                                 {"SEQJAX_PREFETCH": str(depth)}, epochs=2))
            med = {d: statistics.median(x["train_time_s"] for x in v) for d, v in runs.items()}
            rows[model] = {"epoch_s_without_prefetch": round(med[0], 2), "epoch_s_with_prefetch": round(med[2], 2),
                           "speedup": round(med[0] / med[2], 3), "runs": {str(k): v for k, v in runs.items()}}
            print(f"{model}: a steady epoch of {args.train_limit} reviews {med[0]:.2f} s without prefetch, "
                  f"{med[2]:.2f} s with ({med[0] / med[2]:.2f}x)")
    write("prefetch", {"train_limit": args.train_limit, "repeats": args.repeats, "models": rows})


if __name__ == "__main__":
    main()
