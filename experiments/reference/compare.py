"""Train the lab's PyTorch model and seqjax back to back on the same data and seeds.

Both read seqjax's pipeline (same tokens, vocab, length buckets, batch order, initial
embedding matrix); only the framework differs. Prints one table (per-epoch loss and
accuracy for each, seconds per epoch, the ratio) and writes results/reference/<model>.json.

``SEQJAX_DATA_DIR=../shared/data python experiments/reference/compare.py --model cnn --epochs 5``
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
from seqjax.data import glove  # noqa: E402
from seqjax.tasks import imdb as imdb_task  # noqa: E402
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
    if wv is not None:
        emb, _ = glove.embedding_matrix(vocab, wv, cfg.seed)
        model.embedding.weight.data.copy_(torch.from_numpy(emb))
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    cfg = configs.ImdbConfig(model=args.model, epochs=args.epochs, seed=args.seed,
                             out=f"runs/reference_{args.model}")
    seq = imdb_task.train(cfg)
    cfg, vocab, sets, wv = imdb_task.prepare(cfg)
    tor = train_torch(cfg, vocab, sets, wv)
    print(f"\n{'epoch':>5} | {'seqjax loss':>11} {'acc':>6} {'s':>5} | {'pytorch loss':>12} {'acc':>6} {'s':>5} | speed ratio")
    for a, b in zip(seq["history"], tor["history"]):
        print(f"{a['epoch']:5d} | {a['valid_loss']:11.4f} {a['valid_accuracy']:6.3f} {a['train_time_s']:5.0f} | "
              f"{b['valid_loss']:12.4f} {b['valid_accuracy']:6.3f} {b['train_time_s']:5.0f} | "
              f"{b['train_time_s'] / a['train_time_s']:.2f}x")
    print(f"test accuracy: seqjax {100 * seq['test_accuracy']:.2f} %, pytorch {100 * tor['test_accuracy']:.2f} %")
    out = ROOT / "results" / "reference" / f"{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "config": dataclasses.asdict(cfg),
                               "machine": machine(), "seqjax": {k: seq[k] for k in ("history", "test_loss", "test_accuracy")},
                               "pytorch": tor}, indent=1) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
