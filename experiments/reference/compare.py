"""Train the lab's PyTorch model and seqjax back to back on the same data and seeds.

Both read seqjax's pipeline (same tokens, vocab, length buckets or windows, batch order) and
the PyTorch model starts from seqjax's initial weights (``to_torch``), so only the framework
differs. Prints one table (per-epoch held-out loss and accuracy or bits/char for each, seconds
per epoch, the ratio) and writes results/reference/<model>.json.

``SEQJAX_DATA_DIR=../shared/data python experiments/reference/compare.py --model cnn --epochs 5``
``SEQJAX_DATA_DIR=../shared/data python experiments/reference/compare.py --model charlm --epochs 2``

With ``--seeds N`` seqjax trains seeds 0..N-1 in one run (``--seeds``; IMDB on the split of seed
0) and PyTorch each of them in turn from the same initial weights and batch order, and the table
gives, per final metric, both means with their 95 % bootstrap CIs, the difference with its CI,
Welch's p and the verdict (:func:`seqjax.stats.compare`: "matches" only when the difference's CI
contains 0) -> results/reference/<model>_seeds<N>.json. ``--seqjax-results FILE`` reuses a
finished ``--seeds`` run's results JSON (same config) instead of training seqjax again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments.reference import models as ref  # noqa: E402
from seqjax import configs  # noqa: E402
from seqjax.interop.torch import to_torch  # noqa: E402
from seqjax.tasks import charlm as charlm_task, imdb as imdb_task  # noqa: E402
from seqjax.tasks.common import machine  # noqa: E402


def torch_batches(data, epoch):
    for b in data.batches(epoch):
        keep = b["weights"] > 0  # the PyTorch iterator has no padding rows
        yield (torch.from_numpy(b["ids"][keep].astype(np.int64)), torch.from_numpy(b["lengths"][keep].astype(np.int64)),
               torch.from_numpy(b["labels"][keep]))


def torch_eval(model, data):
    model.eval()
    loss = correct = n = 0.0
    with torch.no_grad():
        for x, l, y in torch_batches(data, 0):
            out = model(x, l)
            loss += torch.nn.functional.binary_cross_entropy_with_logits(out, y, reduction="sum").item()
            correct += ((out > 0).float() == y).sum().item()
            n += len(y)
    return loss / n, correct / n


def train_torch(cfg, vocab, sets, wv):
    torch.manual_seed(cfg.seed)
    kw = {"rnn": dict(embed=cfg.embed, hidden=cfg.hidden, cell=cfg.cell), "lstm": dict(embed=cfg.embed, hidden=cfg.hidden, cell=cfg.cell),
          "bilstm": dict(embed=cfg.embed, hidden=cfg.hidden, layers=cfg.layers, dropout=cfg.dropout),
          "fasttext": dict(embed=cfg.embed), "cnn": dict(embed=cfg.embed, dropout=cfg.dropout)}[cfg.model]
    model = ref.build(cfg.model, len(vocab), **kw)
    init = imdb_task.init_state(cfg, imdb_task.build_model(cfg, len(vocab)), vocab, wv).params
    model.load_state_dict(_tensors(to_torch(cfg.model, init)))
    opt = (torch.optim.SGD if cfg.optimizer == "sgd" else torch.optim.Adam)(model.parameters(), lr=cfg.lr)
    history, best, best_state = [], float("inf"), None
    for epoch in range(cfg.epochs):
        model.train()
        t0, loss_sum, correct, n = time.time(), 0.0, 0.0, 0
        for x, l, y in torch_batches(sets["train"], epoch):
            opt.zero_grad()
            out = model(x, l)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out, y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += ((out > 0).float() == y).sum().item()
            n += len(y)
        dt = time.time() - t0
        vl, va = torch_eval(model, sets["valid"])
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": correct / n,
                        "valid_loss": vl, "valid_accuracy": va, "train_time_s": dt})
        print(f"pytorch epoch {epoch + 1}: train {loss_sum / n:.4f} / {correct / n:.4f}  valid {vl:.4f} / {va:.4f}  {dt:.0f}s", flush=True)
        if vl < best:
            best, best_state = vl, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    tl, ta = torch_eval(model, sets["test"])
    return {"history": history, "test_loss": tl, "test_accuracy": ta}


def _tensors(state_dict) -> dict:
    return {k: torch.from_numpy(np.array(v, np.float32)) for k, v in state_dict.items()}


def train_torch_charlm(cfg: configs.CharLMConfig):
    """The lab's CharPredictor with torch RMSprop on seqjax's windows, batch order and init."""
    corpus = charlm_task.load_corpus(cfg)
    data = charlm_task.train_data(cfg, corpus)
    held = charlm_task.heldout_data(corpus, cfg)
    init = charlm_task.init_state(cfg, charlm_task.build_model(cfg, len(corpus.vocab)), 1).params
    model = ref.CharPredictor(len(corpus.vocab), cfg.embed, cfg.hidden, cfg.layers)
    model.load_state_dict(_tensors(to_torch("charlm", init)))
    opt = torch.optim.RMSprop(model.parameters(), lr=cfg.lr)  # PyTorch defaults: alpha .99, eps 1e-8

    def rows(data, epoch):
        for b in data.batches(epoch):
            keep = b["weights"] > 0
            yield torch.from_numpy(b["ids"][keep].astype(np.int64)), torch.from_numpy(b["labels"][keep].astype(np.int64))

    history = []
    for epoch in range(cfg.epochs):
        model.train()
        t0, loss_sum, n = time.time(), 0.0, 0
        for x, y in rows(data, epoch):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            n += len(y)
        dt = time.time() - t0
        model.eval()
        hl = hn = 0.0
        with torch.no_grad():
            for x, y in rows(held, 0):
                hl += torch.nn.functional.cross_entropy(model(x), y, reduction="sum").item()
                hn += len(y)
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / n, "valid_loss": hl / hn,
                        "valid_bpc": hl / hn / charlm_task.LN2, "train_time_s": dt})
        print(f"pytorch epoch {epoch + 1}: train {loss_sum / n:.4f}  held-out {hl / hn / charlm_task.LN2:.4f} bits/char  {dt:.0f}s", flush=True)
    return {"history": history, "heldout_bpc": history[-1]["valid_bpc"]}


def _seqjax_run(train, cfg, reuse: str):
    """seqjax's run of ``cfg`` (``train(cfg)``), or the results JSON ``reuse`` of the same config."""
    if not reuse:
        return train(cfg)
    saved = json.loads(Path(reuse).read_text())
    mine = dataclasses.asdict(cfg)
    differ = [k for k in ("model", "epochs", "seeds", "layers", "embed", "hidden", "optimizer", "lr", "vectors")
              if k in mine and k in saved["config"] and saved["config"][k] != mine[k]]
    if differ:
        raise SystemExit(f"--seqjax-results {reuse}: its config differs in {', '.join(differ)}")
    return saved


def compare_seeds(args):
    """seqjax's N-seed run beside N PyTorch runs of the same seeds; the statistics of the difference."""
    from seqjax import stats

    n, charlm = args.seeds, args.model == "charlm"
    if charlm:
        cfg = configs.CharLMConfig(text=args.text, layers=args.layers, epochs=args.epochs, seeds=str(n),
                                   markov_orders="", out=args.out or f"runs/reference_charlm_l{args.layers}_seeds{n}")
        seq = _seqjax_run(charlm_task.train, cfg, args.seqjax_results)
        tor = [train_torch_charlm(c) for c in charlm_task.seed_configs(cfg)]
        metrics = {"heldout_bpc": False}
    else:
        cfg = configs.ImdbConfig(model=args.model, epochs=args.epochs, seeds=str(n),
                                 out=args.out or f"runs/reference_{args.model}_seeds{n}")
        seq = _seqjax_run(imdb_task.train, cfg, args.seqjax_results)
        tor = []
        for c in imdb_task.seed_configs(cfg):
            c, vocab, sets, wv = imdb_task.prepare(c)
            tor.append(train_torch(c, vocab, sets, wv))
        metrics = {"test_accuracy": True, "test_loss": False}
    table = {}
    for m, higher in metrics.items():
        ours, theirs = [r[m] for r in seq["per_seed"]], [r[m] for r in tor]
        table[m] = {"seqjax": stats.summarize(ours), "pytorch": stats.summarize(theirs),
                    **stats.compare(ours, theirs, higher_is_better=higher)}
        a, b, d = table[m]["seqjax"], table[m]["pytorch"], table[m]
        ci = lambda c: f"[{c[0]:.4f}, {c[1]:.4f}]" if c else "—"  # noqa: E731
        print(f"{m}: seqjax {a['mean']:.4f} ± {a['std']:.4f} {ci(a['ci95'])}, pytorch {b['mean']:.4f} ± {b['std']:.4f} "
              f"{ci(b['ci95'])}; difference {d['difference']:+.4f} {ci(d['ci95'])}, Welch p "
              f"{d['p_welch'] if d['p_welch'] is None else round(d['p_welch'], 4)}: {d['verdict']} (n = {n} seeds each)")
    name = (f"charlm_l{args.layers}" if charlm else args.model) + f"_seeds{n}"
    out = ROOT / "results" / "reference" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "model": args.model,
                               "config": dataclasses.asdict(cfg), "pytorch_init": "seqjax (to_torch), per seed",
                               "torch_threads": torch.get_num_threads(), "machine": machine(), "seeds": list(range(n)),
                               "comparison": table, "seqjax": {"per_seed": seq["per_seed"], "command": seq.get("command")},
                               "pytorch": {"per_seed": [{k: v for k, v in r.items()} for r in tor]}}, indent=1) + "\n")
    print(f"written {out}")


def compare_charlm(args):
    cfg = configs.CharLMConfig(text=args.text, layers=args.layers, epochs=args.epochs, seed=args.seed, markov_orders="",
                               out=args.out or f"runs/reference_charlm_l{args.layers}")
    seq = charlm_task.train(cfg)
    for h in seq["history"]:
        h["valid_loss"], h["valid_bpc"] = h["heldout_loss"], h["heldout_bpc"]
    return cfg, seq, train_torch_charlm(cfg)


def compare_imdb(args):
    cfg = configs.ImdbConfig(model=args.model, epochs=args.epochs, seed=args.seed,
                             out=args.out or f"runs/reference_{args.model}")
    seq = imdb_task.train(cfg)
    cfg, vocab, sets, wv = imdb_task.prepare(cfg)
    return cfg, seq, train_torch(cfg, vocab, sets, wv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cnn", help="charlm, rnn, lstm, bilstm, fasttext or cnn")
    ap.add_argument("--layers", type=int, default=1, help="charlm only: 1 or 2 LSTM layers")
    ap.add_argument("--text", default="", help="charlm only: a UTF-8 file instead of Nietzsche")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="seqjax's checkpoint folder (default runs/reference_MODEL); "
                                              "must not hold an earlier run")
    ap.add_argument("--seeds", type=int, default=0, help="train seeds 0..N-1 on both sides and compare statistically")
    ap.add_argument("--seqjax-results", default="", help="with --seeds: a finished seqjax --seeds run's results JSON")
    args = ap.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    if args.seeds:
        compare_seeds(args)
        return
    cfg, seq, tor = (compare_charlm if args.model == "charlm" else compare_imdb)(args)
    metric = "valid_bpc" if args.model == "charlm" else "valid_accuracy"
    print(f"\n{'epoch':>5} | {'seqjax loss':>11} {metric[6:]:>8} {'s':>5} | {'pytorch loss':>12} {metric[6:]:>8} {'s':>5} | speed ratio")
    for a, b in zip(seq["history"], tor["history"]):
        print(f"{a['epoch']:5d} | {a['valid_loss']:11.4f} {a[metric]:8.4f} {a['train_time_s']:5.0f} | "
              f"{b['valid_loss']:12.4f} {b[metric]:8.4f} {b['train_time_s']:5.0f} | "
              f"{b['train_time_s'] / a['train_time_s']:.2f}x")
    final = "heldout_bpc" if args.model == "charlm" else "test_accuracy"
    print(f"{final}: seqjax {seq[final]:.4f}, pytorch {tor[final]:.4f}")
    name = f"charlm_l{args.layers}" if args.model == "charlm" else args.model
    out = ROOT / "results" / "reference" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "model": args.model,
                               "config": dataclasses.asdict(cfg), "pytorch_init": "seqjax (to_torch)",
                               "torch_threads": torch.get_num_threads(), "machine": machine(),
                               "seqjax": {k: seq[k] for k in ("history", final)}, "pytorch": tor}, indent=1) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
