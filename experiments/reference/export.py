"""Train one of the lab's PyTorch IMDB models and save what its user would have: the weights
(``torch.save(model.state_dict())``), the vocabulary (index -> token JSON) and PyTorch's own
test accuracy — the input of ``seqjax imdb import-torch`` and the number ``seqjax imdb
evaluate`` should reproduce.

The data are seqjax's pipeline (tokens, vocab, GloVe 6B-50d rows, length buckets), the model
and its initialization PyTorch's (the embedding then takes the GloVe rows, ``<unk>``/``<pad>``
zero, as the tutorial does), trained with Adam 1e-3 and BCE-with-logits; the epoch with the
lowest validation loss is kept, as the tutorial keeps it. PyTorch's test accuracy is measured
twice: on the padded test batches (as the tutorial evaluates: FastText and the CNN pool over
the padding too) and on each review alone (the model's own function of a review, which is what
seqjax computes, padding masked).

``SEQJAX_DATA_DIR=../shared/data python experiments/reference/export.py --model cnn2d --epochs 2 --out runs/torch_cnn2d``
``seqjax imdb import-torch --state-dict runs/torch_cnn2d/model.pt --vocab runs/torch_cnn2d/itos.json --model cnn --out runs/imported_cnn2d``
``seqjax imdb evaluate --run runs/imported_cnn2d``
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

SEQJAX_MODEL = {"cnn2d": "cnn", "cnn2d_conv_i": "cnn", "cnn": "cnn", "fasttext": "fasttext"}


def build(name: str, vocab: int, embed: int) -> torch.nn.Module:
    if name == "cnn2d":
        return ref.CNN2d(vocab, embed, names="convs")
    if name == "cnn2d_conv_i":
        return ref.CNN2d(vocab, embed, names="conv_i")
    return ref.build(name, vocab, embed=embed)


def batches(data, epoch):
    for b in data.batches(epoch):
        keep = b["weights"] > 0  # a PyTorch iterator has no padding rows
        yield torch.from_numpy(b["ids"][keep].astype(np.int64)), torch.from_numpy(b["labels"][keep])


def evaluate_padded(model, data) -> tuple[float, float]:
    """Loss and accuracy on the padded batches (the tutorial's ``evaluate``)."""
    model.eval()
    loss = correct = n = 0.0
    with torch.no_grad():
        for x, y in batches(data, 0):
            out = model(x)
            loss += torch.nn.functional.binary_cross_entropy_with_logits(out, y, reduction="sum").item()
            correct += ((out > 0).float() == y).sum().item()
            n += len(y)
    return loss / n, correct / n


def evaluate_alone(model, data, min_len: int) -> float:
    """Accuracy with each review unpadded (reviews of one length batched together; shorter than
    ``min_len`` padded with ``<pad>`` as the tutorial's ``predict_sentiment`` does)."""
    model.eval()
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(data.seqs):
        by_len.setdefault(max(len(s), min_len), []).append(i)
    correct = 0
    with torch.no_grad():
        for L, idx in by_len.items():
            for k in range(0, len(idx), 256):
                rows = idx[k:k + 256]
                x = np.full((len(rows), L), 1, np.int64)
                for r, i in enumerate(rows):
                    x[r, :len(data.seqs[i])] = data.seqs[i]
                out = model(torch.from_numpy(x))
                correct += int(((out > 0).numpy() == (data.labels[rows] > 0.5)).sum())
    return correct / len(data.seqs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cnn2d", choices=list(SEQJAX_MODEL))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/torch_cnn2d")
    ap.add_argument("--results", default="", help="also write the numbers here (JSON)")
    args = ap.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(args.seed)
    cfg, vocab, sets, wv = imdb_task.prepare(configs.ImdbConfig(model=SEQJAX_MODEL[args.model], seed=args.seed))
    model = build(args.model, len(vocab), cfg.embed)
    emb, _ = glove.embedding_matrix(vocab, wv, cfg.seed)
    model.embedding.weight.data.copy_(torch.from_numpy(emb))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    history, best = [], float("inf")
    for epoch in range(args.epochs):
        model.train()
        t0 = time.time()
        for x, y in batches(sets["train"], epoch):
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(model(x), y).backward()
            opt.step()
        vl, va = evaluate_padded(model, sets["valid"])
        history.append({"epoch": epoch + 1, "valid_loss": vl, "valid_accuracy": va, "train_time_s": time.time() - t0})
        print(f"epoch {epoch + 1}: valid loss {vl:.4f} accuracy {100 * va:.2f}%  {time.time() - t0:.0f}s", flush=True)
        if vl < best:
            best = vl
            torch.save(model.state_dict(), out / "model.pt")
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    (out / "itos.json").write_text(json.dumps(vocab.itos, ensure_ascii=False))
    test_loss, padded = evaluate_padded(model, sets["test"])
    alone = evaluate_alone(model, sets["test"], imdb_task.min_len(cfg))
    print(f"PyTorch test accuracy: {100 * padded:.2f}% on padded batches, {100 * alone:.2f}% on each review alone "
          f"({len(sets['test'].seqs):,} reviews); saved {out / 'model.pt'} and {out / 'itos.json'}")
    record = {"command": "python " + " ".join(sys.argv), "model": args.model, "config": dataclasses.asdict(cfg),
              "history": history, "test_accuracy_padded_batches": padded, "test_accuracy_each_review": alone,
              "test_loss_padded_batches": test_loss, "torch_threads": torch.get_num_threads(), "machine": machine()}
    (out / "pytorch.json").write_text(json.dumps(record, indent=1) + "\n")
    if args.results:
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        Path(args.results).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
