"""The device-layout rule against real epochs: ``seqjax imdb train --epochs 2`` on one CPU device
(XLA's threads over every core) and on one device per core, per model, through the real command
on the real IMDB data, alternated run by run (ABAB...) so that a change in the machine's load
falls on both. The second epoch is timed: the first also loads or compiles a program per padded
length, which on this CPU took as long as the training of a 6,000-review LSTM epoch.
``projected_epoch_s`` scales the measured epoch to the lab's 17,500 training reviews (the
``--train-limit`` reviews are a seeded sample of the same split). ``experiments/report.py`` shows
each row beside the layout :mod:`seqjax.layout` picks for the model today.

These epochs decide the IMDB rows of the rule; its docstring quotes them.

``SEQJAX_DATA_DIR=../shared/data chrt -f 50 python benchmarks/layout.py [--models bilstm,lstm,cnn,fasttext]
[--repeats 2] [--train-limit N]`` -> results/benchmarks/layout.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile

from common import ROOT, one_epoch, write

from seqjax.layout import cores, cpu_device_count

TRAIN_REVIEWS = 17_500  # the lab's training split (70 % of 25,000)
# reviews per timed epoch: a minute or less of training each on the 2-core CPU of results/
DEFAULT_LIMIT = {"bilstm": 1000, "lstm": 6000, "rnn": 6000, "cnn": 8000, "fasttext": TRAIN_REVIEWS}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="bilstm,lstm,cnn,fasttext")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=0, help="reviews per epoch for every model (default: per model)")
    args = ap.parse_args()
    n = cores()
    if n < 2:
        raise SystemExit("benchmarks/layout.py compares 1 device with one per core: run it on a machine with 2+ cores")
    path = ROOT / "results" / "benchmarks" / "layout.json"
    rows = json.loads(path.read_text()).get("models", {}) if path.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            limit = args.train_limit or DEFAULT_LIMIT.get(model, 6000)
            flags = ["--model", model, "--train-limit", str(limit)]
            runs = {1: [], n: []}
            for r in range(args.repeats):
                for d in runs:
                    runs[d].append(one_epoch(flags, os.path.join(tmp, f"{model}_{r}_{d}"), devices=d, epochs=2))
            med = {d: statistics.median(x["train_time_s"] for x in v) for d, v in runs.items()}
            faster = min(med, key=med.get)
            rows[model] = {
                "train_limit": limit, "repeats": args.repeats,
                "epoch_s": {"1_device": round(med[1], 2), f"{n}_devices": round(med[n], 2)},
                "projected_epoch_s": {"1_device": round(med[1] * TRAIN_REVIEWS / limit, 1),
                                      f"{n}_devices": round(med[n] * TRAIN_REVIEWS / limit, 1)},
                "speedup_one_device_per_core": round(med[1] / med[n], 3), "faster_devices": faster,
                "runs": {f"{d}_device{'s' if d > 1 else ''}": v for d, v in runs.items()}}
            print(f"{model}: a steady epoch of {limit} reviews {med[1]:.1f} s on 1 device, {med[n]:.1f} s on {n} "
                  f"({med[1] / med[n]:.2f}x); seqjax picks {cpu_device_count('imdb', 'train', model)[0]}",
                  flush=True)
            write("layout", {"cores": n, "train_reviews": TRAIN_REVIEWS, "models": rows})


if __name__ == "__main__":
    main()
