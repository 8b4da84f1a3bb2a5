"""IMDB training throughput per model: seqjax vs the lab's PyTorch models (and plain flax).

All runners train on the same real IMDB batches (batch 64, seqjax's length buckets); the
recurrent models are also compared with a plain flax ``nn.RNN(OptimizedLSTMCell | SimpleCell,
seq_lengths=...)`` step. Each framework runs in a process of its own, back to back (in one
process JAX's and PyTorch's thread pools compete: PyTorch's packed LSTM measured 0.9
examples/s there, 3 on its own); median examples/s over ``--rounds`` passes x ``--repeats``
processes. Each model's row (with its own command and machine) replaces the old one in the JSON.
``--cpu-devices`` adds seqjax with the CPU split into two devices (``seqjax --cpu-devices 2``:
the engine's data-parallel step, one half-batch per core).
``--frameworks seqjax,flax_nn_rnn`` leaves PyTorch out of a row (its packed bi-LSTM was stopped unfinished
after 12 minutes, twice, on the bi-LSTM row's four batches); the row then keeps the earlier PyTorch rate, with its own
command and padded lengths, under ``pytorch_earlier``.
``SEQJAX_DATA_DIR=../shared/data python benchmarks/imdb.py [--models cnn,lstm] [--batches 4] [--cpu-devices] [--frameworks ...]``
-> results/benchmarks/imdb.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from common import ROOT, isolated_rounds, matmul_peak_gflops, timed_rounds, write

from experiments.reference import models as ref
from seqjax import configs
from seqjax.data import imdb
from seqjax.data.batching import BucketedBatches
from seqjax.data.vocab import Vocab
from seqjax.nn.classifiers import bce_loss
from seqjax.tasks.common import machine
from seqjax.tasks.imdb import boundaries, build_model, init_state, preprocess
from seqjax.cli import cpu_devices
from seqjax.train import parallel
from seqjax.train.loop import make_train_step


class FlaxClassifier(nn.Module):
    """What a flax user would write: nn.RNN over seq_lengths, final carry -> Dense."""

    vocab: int
    cell: str
    hidden: int
    layers: int = 1
    bidirectional: bool = False

    @nn.compact
    def __call__(self, ids, lengths):
        h = nn.Embed(self.vocab, 50)(ids)
        make = (lambda: nn.OptimizedLSTMCell(self.hidden)) if self.cell == "lstm" else (lambda: nn.SimpleCell(self.hidden))
        for _ in range(self.layers):
            if self.bidirectional:
                carry, h = nn.Bidirectional(nn.RNN(make()), nn.RNN(make()), return_carry=True)(h, seq_lengths=lengths)
                (cf, cb) = carry
                final = jnp.concatenate([cf[1] if self.cell == "lstm" else cf, cb[1] if self.cell == "lstm" else cb], -1)
            else:
                carry, h = nn.RNN(make(), return_carry=True)(h, seq_lengths=lengths)
                final = carry[1] if self.cell == "lstm" else carry
        return nn.Dense(1)(final)[:, 0]


FRAMEWORKS = ("seqjax", "pytorch", "flax_nn_rnn")
CPU2 = "seqjax_cpu_devices_2"  # seqjax with the CPU split into two devices (``seqjax --cpu-devices 2``)


def sample_batches(name: str, n_batches: int):
    """The same ``n_batches`` real IMDB batches (64 reviews, seqjax's length buckets) for every
    framework: a seeded 3,000-review sample of the training split. Returns (cfg, vocab, batches)."""
    data = imdb.load("auto")
    train, _ = imdb.train_valid_split(data["train"], 0.3, 0)
    train = train.subset(np.random.default_rng(0).permutation(len(train))[:3000])
    cfg = configs.ImdbConfig(model=name, vectors="none")
    toks = preprocess(cfg, train.texts)
    vocab = Vocab.build(toks, 25_000)
    seqs = [vocab.encode(t) for t in toks]
    bb = BucketedBatches(seqs, train.labels, 64, boundaries(cfg, seqs), shuffle=True, seed=0,
                         min_len=5 if name == "cnn" else 1)  # padded as training pads
    return cfg, vocab, [b for _, b in zip(range(n_batches), bb.batches(0))]


GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def recurrence_flops(cfg, padded_length: float) -> float:
    """Matmul flops of one training example of a recurrent ``cfg`` (forward + backward, so 3x the
    forward's ``2 T (F + H) G H`` a direction and layer; G gates, F the layer's input width), as
    run: every padded step is computed."""
    dirs = 2 if cfg.model == "bilstm" else 1
    g, h = GATES[cfg.cell], cfg.hidden
    return sum(3 * 2 * padded_length * ((cfg.embed if k == 0 else dirs * h) + h) * g * h * dirs
               for k in range(cfg.layers))


def runner(framework: str, name: str, cfg, vocab, batches):
    """A function that trains ``framework``'s version of model ``name`` on all ``batches`` once."""
    if framework.startswith("seqjax"):  # the engine's step, data-parallel over this process's devices
        model = build_model(cfg, len(vocab))
        mesh = parallel.make_mesh()
        st = [parallel.replicate(init_state(cfg, model, vocab), mesh)]
        step = make_train_step(bce_loss(model), mesh)
        dev = [parallel.shard_batch(b, mesh) for b in batches]

        def run():
            for b in dev:
                st[0], s = step(st[0], b)
            jax.block_until_ready(s["loss"])
        return run
    if framework == "pytorch":
        torch.set_num_threads(os.cpu_count())
        torch.manual_seed(0)
        kw = {"rnn": dict(embed=50, hidden=100, cell="rnn"), "lstm": dict(embed=50, hidden=100, cell="lstm"),
              "bilstm": dict(embed=50, hidden=256, layers=2, dropout=0.5), "fasttext": dict(embed=50),
              "cnn": dict(embed=50)}[name]
        tm = ref.build(name, len(vocab), **kw)
        topt = (torch.optim.SGD if cfg.optimizer == "sgd" else torch.optim.Adam)(tm.parameters(), lr=cfg.lr)
        tb = [(torch.from_numpy(b["ids"].astype(np.int64)), torch.from_numpy(np.maximum(b["lengths"], 1).astype(np.int64)),
               torch.from_numpy(b["labels"])) for b in batches]

        def run():
            for x, l, y in tb:
                topt.zero_grad()
                torch.nn.functional.binary_cross_entropy_with_logits(tm(x, l), y).backward()
                topt.step()
        return run
    fm = FlaxClassifier(len(vocab), cfg.cell, cfg.hidden, cfg.layers, name == "bilstm")
    fp = fm.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    tx = optax.sgd(cfg.lr) if cfg.optimizer == "sgd" else optax.adam(cfg.lr)
    fs = [(fp, tx.init(fp))]
    dev = [jax.device_put(b) for b in batches]

    @jax.jit
    def fupdate(p, o, ids, lengths, y, w):
        def loss(p):
            return (optax.sigmoid_binary_cross_entropy(fm.apply(p, ids, lengths), y) * w).sum() / w.sum()
        l, g = jax.value_and_grad(loss)(p)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, l

    def run():
        for b in dev:
            p, o, l = fupdate(*fs[0], b["ids"], b["lengths"], b["labels"], b["weights"])
            fs[0] = (p, o)
        jax.block_until_ready(l)
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="rnn,lstm,bilstm,fasttext,cnn")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3, help="timed passes over the batches per process")
    ap.add_argument("--repeats", type=int, default=2, help="back-to-back processes per framework")
    ap.add_argument("--cpu-devices", action="store_true",
                    help="also time seqjax with the CPU split into two devices (seqjax --cpu-devices 2)")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                    help="which of %(default)s to time (seqjax always runs)")
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == CPU2:
        cpu_devices(2)  # before JAX starts its backend
    if args.worker:  # one framework, one model, in a process of its own
        cfg, vocab, batches = sample_batches(args.models, args.batches)
        fn = runner(args.worker, args.models, cfg, vocab, batches)
        rate = timed_rounds({args.worker: (fn, 64 * len(batches), 1)}, args.rounds)[args.worker]
        print(json.dumps({"rate": rate, "padded_lengths": sorted({int(b["ids"].shape[1]) for b in batches}),
                          "mean_padded_length": float(np.mean([b["ids"].shape[1] for b in batches]))}))
        return
    path = ROOT / "results" / "benchmarks" / "imdb.json"
    out = json.loads(path.read_text()).get("models", {}) if path.exists() else {}
    old = dict(out)
    wanted = {"seqjax", *args.frameworks.split(",")}
    if wanted - set(FRAMEWORKS):
        raise SystemExit(f"--frameworks: unknown {sorted(wanted - set(FRAMEWORKS))}; choose from {', '.join(FRAMEWORKS)}")
    peak = matmul_peak_gflops()
    for name in args.models.split(","):  # each model's row replaces its old one as soon as it is measured
        fws = tuple(f for f in FRAMEWORKS if f in wanted and (f != "flax_nn_rnn" or name in ("rnn", "lstm", "bilstm")))
        fws += (CPU2,) if args.cpu_devices else ()
        res = isolated_rounds(__file__, fws, args.repeats,
                              ["--models", name, "--batches", str(args.batches), "--rounds", str(args.rounds)])
        rates = {fw: statistics.median(r["rate"] for r in res[fw]) for fw in fws}
        ratios = {"vs_pytorch": rates["seqjax"] / rates["pytorch"]} if "pytorch" in rates else {}
        if "flax_nn_rnn" in rates:
            ratios["vs_flax"] = rates["seqjax"] / rates["flax_nn_rnn"]
        if CPU2 in rates:
            if "pytorch" in rates:
                ratios["cpu_devices_2_vs_pytorch"] = rates[CPU2] / rates["pytorch"]
            if "flax_nn_rnn" in rates:
                ratios["cpu_devices_2_vs_flax"] = rates[CPU2] / rates["flax_nn_rnn"]
        out[name] = {"examples_per_s": rates, "ratios": ratios, "padded_lengths": res["seqjax"][0]["padded_lengths"],
                     "examples_per_s_each_process": {fw: [round(r["rate"], 2) for r in res[fw]] for fw in fws},
                     "batches": args.batches, "rounds": args.rounds, "repeats": args.repeats,
                     "command": "python " + " ".join(sys.argv), "machine": machine()}  # rows may come from different runs
        if name in ("rnn", "lstm", "bilstm"):  # the share of the matmul peak the step reaches
            flops = recurrence_flops(configs.ImdbConfig(model=name, vectors="none"),
                                     res["seqjax"][0]["mean_padded_length"])
            out[name].update(matmul_gflop_per_example=flops / 1e9, peak_gflops=peak,
                             share_of_matmul_peak={fw: r * flops / 1e9 / peak for fw, r in rates.items()
                                                   if fw != "pytorch"})  # packed: PyTorch skips the padding
        o = old.get(name, {})  # a row without PyTorch keeps the last PyTorch rate, labelled as such
        earlier = o.get("pytorch_earlier") if "pytorch" not in o.get("examples_per_s", {}) else {
            "examples_per_s": o["examples_per_s"]["pytorch"], "padded_lengths": o["padded_lengths"],
            "command": o["command"], "date": o["machine"]["date"]}
        if "pytorch" not in rates and earlier:
            out[name]["pytorch_earlier"] = earlier
        print(name, "  ".join(f"{k} {v:.0f}/s" for k, v in rates.items()), " ",
              "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()), flush=True)
        write("imdb", {"models": out, "batch_size": 64,
                       "method": "each framework in its own process, back to back, so thread pools never compete",
                       "targets": {"vs_pytorch": 1.5, "recurrent_vs_flax": 1.2}})


if __name__ == "__main__":
    main()
