"""Training throughput on whatever backend JAX finds (CPU, GPU, TPU), float32 and bfloat16,
seqjax beside PyTorch on the same device where PyTorch is installed and can reach it.

Models at the lab's sizes: the char-LSTM (batch 128 windows of 40, LSTM 128), the IMDB LSTM
(batch 64, embedding 50, LSTM 100), the bi-LSTM (2 bidirectional layers of 256) and Kim's CNN
(widths 3/4/5 x 100), each one train step of seqjax's own engine (``make_train_step``, the
``--precision`` loss of ``seqjax.train.precision``) on batches of the lab's shapes (reviews
padded to ``--review-len`` tokens, lengths drawn between half and all of it), against the
reference PyTorch models (``experiments/reference/models.py``; bfloat16 through
``torch.autocast``). Median examples/s over ``--steps`` timed steps after two warm-up steps.

``python benchmarks/accelerator.py [--quick] [--models charlm,lstm,bilstm,cnn]``
-> results/benchmarks/<backend>.json (``--out`` elsewhere). ``--quick`` (short reviews, a few
steps) checks that every row runs; CI runs it (tests/test_benchmarks_quick.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from common import ROOT

from seqjax import backend, configs
from seqjax.nn.charlm import lm_loss
from seqjax.nn.classifiers import classification_loss
from seqjax.tasks import charlm as charlm_task
from seqjax.tasks import imdb as imdb_task
from seqjax.tasks.common import machine
from seqjax.train import precision
from seqjax.train.loop import make_train_step
from seqjax.train.state import TrainState, make_optimizer

CHARS, VOCAB = 59, 25_002


def batch_of(name: str, review_len: int, rng: np.random.Generator) -> dict:
    """One batch of model ``name``'s lab shape (numpy)."""
    if name == "charlm":
        return {"ids": rng.integers(0, CHARS, (128, 40)).astype(np.int32),
                "labels": rng.integers(0, CHARS, 128).astype(np.int32), "weights": np.ones(128, np.float32)}
    B, T = 64, review_len
    lengths = rng.integers(max(T // 2, 5), T + 1, B).astype(np.int32)
    ids = rng.integers(2, VOCAB, (B, T)).astype(np.int32) * (np.arange(T)[None] < lengths[:, None])
    return {"ids": ids, "lengths": lengths, "labels": rng.integers(0, 2, B).astype(np.float32),
            "weights": np.ones(B, np.float32)}


def seqjax_step(name: str, prec: str, batch: dict):
    """A function running one seqjax train step of ``name`` in ``prec`` on ``batch`` (on device)."""
    if name == "charlm":
        cfg = configs.CharLMConfig(precision=prec)
        model32 = charlm_task.build_model(cfg, CHARS)
        loss = precision.train_in(prec, lambda d: lm_loss(charlm_task.build_model(cfg, CHARS, d), "last"),
                                  lm_loss(model32, "last"))
        params = model32.init(jax.random.PRNGKey(0), jnp.asarray(batch["ids"]))
    else:
        cfg = configs.ImdbConfig(model=name, precision=prec)
        model32 = imdb_task.build_model(cfg, VOCAB)
        loss = precision.train_in(prec, lambda d: classification_loss(imdb_task.build_model(cfg, VOCAB, dtype=d)),
                                  classification_loss(model32))
        params = model32.init(jax.random.PRNGKey(0), jnp.asarray(batch["ids"][:2]), jnp.asarray(batch["lengths"][:2]))
    state = [TrainState.create(params, make_optimizer(cfg.optimizer, cfg.lr), jax.random.PRNGKey(1))]
    step = make_train_step(loss, None)
    dev = jax.device_put(batch)

    def run():
        state[0], sums = step(state[0], dev)
        jax.block_until_ready(sums["loss"])
    return run


def torch_step(name: str, prec: str, batch: dict, device: str):
    """The reference PyTorch model's train step on ``device`` (autocast for bfloat16)."""
    import torch

    from experiments.reference import models as ref

    torch.manual_seed(0)
    if name == "charlm":
        model = ref.CharPredictor(CHARS, 8, 128, 1).to(device)
        opt = torch.optim.RMSprop(model.parameters(), lr=0.01)
        x, y = (torch.from_numpy(batch[k].astype(np.int64)).to(device) for k in ("ids", "labels"))

        def loss():
            return torch.nn.functional.cross_entropy(model(x), y)
    else:
        kw = {"lstm": dict(embed=50, hidden=100, cell="lstm"), "bilstm": dict(embed=50, hidden=256, layers=2,
                                                                              dropout=0.5), "cnn": dict(embed=50)}[name]
        model = ref.build(name, VOCAB, **kw).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x = torch.from_numpy(batch["ids"].astype(np.int64)).to(device)
        lengths = torch.from_numpy(batch["lengths"].astype(np.int64))  # pack_padded_sequence wants them on the CPU
        y = torch.from_numpy(batch["labels"]).to(device)

        def loss():
            return torch.nn.functional.binary_cross_entropy_with_logits(model(x, lengths), y)

    def run():
        opt.zero_grad()
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=prec == "bfloat16"):
            value = loss()
        value.float().backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return run


def examples_per_s(run, batch_size: int, steps: int) -> float:
    """Median examples/s of ``run`` over ``steps`` timed calls, after two warm-up calls."""
    run()
    run()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return batch_size / statistics.median(times)


def torch_device() -> str | None:
    """PyTorch's device for the backend JAX found (None: PyTorch missing, or no way to the TPU)."""
    try:
        import torch
    except ImportError:
        return None
    plat = backend.platform()
    if plat == "cpu":
        return "cpu"
    if plat == "gpu" and torch.cuda.is_available():
        return "cuda"
    return None


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="reviews of 32 tokens, 3 timed steps: that every row runs")
    ap.add_argument("--models", default="charlm,lstm,bilstm,cnn")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--review-len", type=int, default=256, help="padded review length (IMDB's median is ~230)")
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    steps, review_len = (3, 32) if args.quick else (args.steps, args.review_len)
    plat = backend.platform()
    device = torch_device()
    rng = np.random.default_rng(0)
    rows = {}
    for name in args.models.split(","):
        batch = batch_of(name, review_len, rng)
        B = len(batch["weights"])
        for prec in configs.PRECISIONS:
            row = {"seqjax": round(examples_per_s(seqjax_step(name, prec, batch), B, steps), 1)}
            if device is not None:
                try:
                    row["pytorch"] = round(examples_per_s(torch_step(name, prec, batch, device), B, steps), 1)
                    row["ratio"] = round(row["seqjax"] / row["pytorch"], 3)
                except RuntimeError as err:  # an op without a bfloat16 kernel on this device
                    row["pytorch_error"] = str(err).splitlines()[0][:200]
            rows[f"{name} {prec}"] = row
            print(f"{plat} {name:7s} {prec:9s} " + "  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    record = {"command": "python " + " ".join(["benchmarks/accelerator.py", *(argv or sys.argv[1:])]),
              "machine": machine(), "backend": plat, "devices": [str(d) for d in jax.devices()],
              "pytorch_device": device, "quick": args.quick, "steps": steps, "review_len": review_len,
              "unit": "training examples per second (median step)", "rows": rows}
    if plat == "cpu":
        record["note"] = ("XLA:CPU runs bfloat16 slower than float32 (it does not use the CPU's bfloat16 "
                          "instructions for these ops, where PyTorch's oneDNN does): on a CPU the bfloat16 rows "
                          "check that mixed precision runs; train in float32 there")
    out = args.out or str(ROOT / "results" / "benchmarks" / f"{plat}.json")
    with open(out, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"written {out}")
    return record


if __name__ == "__main__":
    main()
