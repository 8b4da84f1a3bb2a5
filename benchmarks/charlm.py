"""Char-LSTM training throughput: seqjax vs the lab's PyTorch model vs plain flax nn.RNN.

Same hyperparameters (embedding 8, LSTM 128, RMSprop 0.01, batch 128, 40-char windows) and
the same batches for all three; interleaved rounds; median samples/s.
``python benchmarks/charlm.py [--layers 2] [--steps 20]`` -> results/benchmarks/charlm_l{layers}.json
"""

from __future__ import annotations

import argparse
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from common import timed_rounds, write

from experiments.reference.models import CharPredictor
from seqjax.nn.charlm import CharLM, lm_loss
from seqjax.train.loop import make_train_step
from seqjax.train.state import TrainState, make_optimizer

V, B, T = 59, 128, 40


class FlaxCharLM(nn.Module):
    """The same model written the way a flax user would: nn.RNN(OptimizedLSTMCell)."""

    layers: int = 1

    @nn.compact
    def __call__(self, ids):
        h = nn.Embed(V, 8)(ids)
        for _ in range(self.layers):
            h = nn.RNN(nn.OptimizedLSTMCell(128))(h)
        return nn.Dense(V)(h[:, -1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (B, T)).astype(np.int32)
    y = rng.integers(0, V, B).astype(np.int32)
    batch = {"ids": x, "labels": y, "weights": np.ones(B, np.float32)}

    m = CharLM(V, layers=args.layers)
    st = [TrainState.create(m.init(jax.random.PRNGKey(0), jnp.asarray(x)), make_optimizer("rmsprop", 0.01),
                            jax.random.PRNGKey(1))]
    step = make_train_step(lm_loss(m, "last"))
    dev_batch = jax.device_put(batch)

    def seqjax_step():
        st[0], s = step(st[0], dev_batch)
        jax.block_until_ready(s["loss"])

    fm = FlaxCharLM(args.layers)
    tx = optax.rmsprop(0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False)
    fp = fm.init(jax.random.PRNGKey(0), jnp.asarray(x))
    fstate = [(fp, tx.init(fp))]

    @jax.jit
    def flax_update(p, o, x, y):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(fm.apply(p, x), y).mean()
        l, g = jax.value_and_grad(loss)(p)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, l

    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def flax_step():
        p, o, l = flax_update(*fstate[0], xj, yj)
        fstate[0] = (p, o)
        jax.block_until_ready(l)

    torch.manual_seed(0)
    tm = CharPredictor(V, 8, 128, args.layers)
    opt = torch.optim.RMSprop(tm.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64))

    def torch_step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tm(xt), yt).backward()
        opt.step()

    rates = timed_rounds({"seqjax": (seqjax_step, B, args.steps), "flax_nn_rnn": (flax_step, B, args.steps),
                          "pytorch": (torch_step, B, args.steps)}, args.rounds)
    for k, v in rates.items():
        print(f"{k:12s} {v:9.0f} samples/s")
    ratios = {"seqjax_vs_pytorch": rates["seqjax"] / rates["pytorch"],
              "seqjax_vs_flax": rates["seqjax"] / rates["flax_nn_rnn"]}
    print("  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    write(f"charlm_l{args.layers}", {"samples_per_s": rates, "ratios": ratios, "layers": args.layers,
                                     "batch": B, "window": T, "targets": {"vs_pytorch": 1.5, "vs_flax": 1.2}})


if __name__ == "__main__":
    main()
