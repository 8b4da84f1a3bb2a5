"""K seeds in one run against the same K seeds one after another: samples/s over all seeds.

For each model (the lab's char-LSTM; the IMDB Kim CNN, FastText and LSTM at their presets, batch
64, one padded length), on one core (``taskset``, one device) and on both cores, each layout runs
in a process of its own (the CPU's device count is fixed when JAX starts), back to back:

* ``one seed`` with one device (the default before the layout rule, XLA's threads over the
  cores) and, on two cores, with one device per core (data parallel): the rate of K seeds run
  one after another, compile excluded (each seed trains the same steps at the same rate);
* ``K seeds at once`` (``--seeds``: :mod:`seqjax.train.seeds`) with the default layout of
  :mod:`seqjax.layout` (one device per core, the seeds laid on them), each device training its
  seeds one after another (``map``) or batched (``vmap``).

Median samples/s over ``--rounds`` timed groups of ``--steps`` steps after a warm-up step; peak
RSS of each process. ``python benchmarks/seeds.py [--models charlm,cnn] [--ks 1,2,4,8]``
-> results/benchmarks/seeds.json

``--commands`` times whole commands instead (start-up, data, compilation, training, evaluation):
``seqjax charlm train --seeds K`` on the first 240,000 chars of Nietzsche (1 epoch) and ``seqjax imdb
train --model cnn --seeds K`` on 5,000 training reviews (1 epoch), against the same K seeds run one
after another with ``--cpu-devices 1`` (the default before the layout rule) and with the best
one-seed layout -> results/benchmarks/seeds_commands.json
(``SEQJAX_DATA_DIR=../shared/data python benchmarks/seeds.py --commands``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from common import ROOT, write

MODELS = ("charlm", "cnn", "fasttext", "lstm")
IMDB_T = {"cnn": 256, "fasttext": 512, "lstm": 256}  # a common padded length of each model's batches


def worker(model: str, k: int, devices: int, within: str, steps: int, rounds: int) -> dict:

    import jax
    import numpy as np

    from seqjax import configs
    from seqjax.train import parallel, seeds
    from seqjax.train.loop import make_train_step

    rng = np.random.default_rng(0)
    if model == "charlm":
        from seqjax.nn.charlm import lm_loss
        from seqjax.tasks import charlm

        cfg = configs.CharLMConfig(seeds=str(k) if k > 1 else "")
        net = charlm.build_model(cfg, 57)
        state = charlm.init_state(cfg, net, 1000)
        loss = lm_loss(net, "last")
        B = cfg.batch_size

        def batch():
            return {"ids": rng.integers(0, 57, (B, 40)).astype(np.int32),
                    "labels": rng.integers(0, 57, (B,)).astype(np.int32), "weights": np.ones(B, np.float32)}
    else:
        from seqjax.data.vocab import Vocab
        from seqjax.nn.classifiers import bce_loss
        from seqjax.tasks import imdb

        cfg = configs.ImdbConfig(model=model, vectors="none", seeds=str(k) if k > 1 else "")
        V = 25_002 if model != "fasttext" else 25_002
        vocab = Vocab(["<unk>", "<pad>"] + [f"w{i}" for i in range(V - 2)], [0] * V)
        net = imdb.build_model(cfg, V)
        state = imdb.init_state(cfg, net, vocab)
        loss = bce_loss(net)
        B, T = cfg.batch_size, IMDB_T[model]

        def batch():
            lens = rng.integers(T // 2, T + 1, B).astype(np.int32)
            return {"ids": rng.integers(2, V, (B, T)).astype(np.int32), "lengths": lens,
                    "labels": rng.integers(0, 2, B).astype(np.float32), "weights": np.ones(B, np.float32)}

    several = k > 1
    mesh = parallel.make_mesh(seeds=k if several else 0)
    step = make_train_step(loss, mesh, within)
    state = parallel.place_state(state, mesh)
    pool = [seeds.stack_batches([batch() for _ in range(k)]) if several else batch() for _ in range(4)]
    fed = [parallel.shard_batch(b, mesh, seeds=several) for b in pool]
    state, sums = step(state, fed[0])  # compile + warm-up
    jax.block_until_ready(sums)
    rates = []
    for _ in range(rounds):
        t = time.perf_counter()
        last = None
        for i in range(steps):
            state, sums = step(state, fed[i % len(fed)])
            if last is not None:  # at most two steps in flight, as the loop keeps them (loop._Pace)
                jax.block_until_ready(last)
            last = sums
        jax.block_until_ready(sums)
        rates.append(k * B * steps / (time.perf_counter() - t))
    return {"model": model, "k": k, "devices": jax.device_count(), "mesh": dict(mesh.shape), "within": within,
            "samples_per_s": statistics.median(rates), "rounds": rates,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(model, k, devices, within, cores, steps, rounds) -> dict:
    env = dict(os.environ, SEQJAX_CPU_DEVICES=str(devices), XLA_FLAGS="")
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    cmd = [sys.executable, __file__, "--worker", model, str(k), str(devices), within, str(steps), str(rounds)]
    if cores == 1:
        cmd = ["taskset", "-c", "0"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if p.returncode:
        err = "\n".join(line for line in p.stderr.splitlines() if not line.startswith("    @"))
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def commands(ks, models=("charlm", "cnn")) -> dict:
    """Wall seconds of whole ``seqjax`` commands: K seeds at once vs one after another."""
    import tempfile

    data = os.path.abspath(os.environ.get("SEQJAX_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    tmp = tempfile.mkdtemp()
    text = os.path.join(tmp, "nietzsche_head.txt")
    with open(os.path.join(data, "nietzsche.txt"), encoding="utf-8") as f:
        open(text, "w", encoding="utf-8").write(f.read()[:240_000])
    common = {"charlm": ["charlm", "train", "--text", text, "--epochs", "1", "--sample-length", "1",
                         "--markov-orders", "", "--temperatures", "1"],
              "cnn": ["imdb", "train", "--model", "cnn", "--epochs", "1", "--train-limit", "5000",
                      "--eval-limit", "1000", "--data-dir", data]}
    env = dict(os.environ, XLA_FLAGS="", SEQJAX_COMPILE_CACHE="0")
    env.pop("SEQJAX_CPU_DEVICES", None)

    def wall(args) -> float:
        out = tempfile.mkdtemp(dir=tmp)
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "seqjax.cli", *args, "--out", out], cwd=ROOT, env=env,
                           capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"seqjax {' '.join(args)} failed:\n{p.stderr[-2000:]}")
        return time.perf_counter() - t

    rows = []
    for model, args in common.items():
        if model not in models:
            continue
        one = {d: wall(["--cpu-devices", str(d), *args]) for d in (1, 2)}
        for k in ks:
            if k == 1:
                continue
            at_once = wall([*args, "--seeds", str(k)])
            row = {"model": model, "k": k, "at_once_s": at_once, "one_after_another_1_device_s": k * one[1],
                   "one_after_another_2_devices_s": k * one[2]}
            row["speedup_vs_1_device"] = row["one_after_another_1_device_s"] / at_once
            row["speedup_vs_best_one_seed"] = min(k * one[1], k * one[2]) / at_once
            rows.append(row)
            print(f"{model} --seeds {k}: {at_once:.1f} s at once; one after another {k * one[1]:.1f} s (1 device), "
                  f"{k * one[2]:.1f} s (2 devices): {row['speedup_vs_1_device']:.2f}x, "
                  f"{row['speedup_vs_best_one_seed']:.2f}x the best")
    return {"rows": rows, "one_seed_s": "K x one --seed 0 command (the seeds train the same steps)"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commands", action="store_true", help="time whole seqjax commands (see the docstring)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--ks", default="1,2,4,8")
    ap.add_argument("--cores", default="1,2")
    ap.add_argument("--steps", type=int, default=0, help="steps per timed group (default: per model)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--within", default="map,vmap", help="how a device trains its seeds: map, vmap or both")
    ap.add_argument("--worker", nargs=6, default=None)
    args = ap.parse_args()
    if args.worker:
        m, k, d, w, s, r = args.worker
        os.environ.setdefault("SEQJAX_COMPILE_CACHE", "0")
        sys.path.insert(0, str(ROOT))
        print(json.dumps(worker(m, int(k), int(d), w, int(s), int(r))))
        return
    if args.commands:
        old = ROOT / "results" / "benchmarks" / "seeds_commands.json"  # rows of other models are kept
        new = commands([int(k) for k in args.ks.split(",")], args.models.split(","))
        kept = [r for r in (json.loads(old.read_text())["rows"] if old.exists() else [])
                if r["model"] not in {r["model"] for r in new["rows"]}]
        write("seeds_commands", {**new, "rows": kept + new["rows"]})
        return
    steps_of = {"charlm": 40, "cnn": 10, "fasttext": 10, "lstm": 4}
    ks = [int(k) for k in args.ks.split(",")]
    rows = []
    for model in args.models.split(","):
        steps = args.steps or steps_of[model]
        for cores in [int(c) for c in args.cores.split(",")]:
            layouts = [(1, "map")] if cores == 1 else [(1, "map"), (cores, "map")]
            one = {d: run(model, 1, d, w, cores, steps * 2, args.rounds) for d, w in layouts}
            for d, r in one.items():
                rows.append({**r, "cores": cores, "case": f"one seed, {d} device(s)"})
                print(f"{model} {cores} core(s), one seed, {d} device(s): {r['samples_per_s']:,.0f} samples/s")
            for k in ks:
                if k == 1:
                    continue
                for within in args.within.split(","):
                    r = run(model, k, cores, within, cores, max(1, steps // k * 2), args.rounds)
                    r.update(cores=cores, case=f"{k} seeds at once, {within}",
                             vs_one_device=r["samples_per_s"] / one[1]["samples_per_s"],
                             vs_best_one_seed=r["samples_per_s"] / max(o["samples_per_s"] for o in one.values()))
                    rows.append(r)
                    print(f"{model} {cores} core(s), {k} seeds {within} mesh {r['mesh']}: "
                          f"{r['samples_per_s']:,.0f} samples/s = {r['vs_one_device']:.2f}x one seed on one device, "
                          f"{r['vs_best_one_seed']:.2f}x the best one-seed layout; peak RSS {r['peak_rss_mb']:.0f} MB")
    old = ROOT / "results" / "benchmarks" / "seeds.json"  # rows of the models not timed now are kept
    kept = [r for r in (json.loads(old.read_text()).get("rows", []) if old.exists() else [])
            if r["model"] not in {r["model"] for r in rows}]
    write("seeds", {"rows": kept + rows})


if __name__ == "__main__":
    main()
