"""Char-LSTM training throughput: seqjax vs the lab's PyTorch model vs plain flax nn.RNN.

Same hyperparameters (embedding 8, LSTM 128, RMSprop 0.01, batch 128, 40-char windows), the
same batches and the same process for all; rounds are interleaved and the figure is the median
samples/s. ``--cores 1`` pins the process to one core before JAX or PyTorch start (both then use
one thread); ``--cores 2`` uses both. The share of matmul peak divides the step's matmul work
(forward+backward of the recurrence, ``3 * 2 T (F + H) 4H`` flops a sample per layer, plus the
dense layer) by the time and by this process's float32 matmul rate, measured here on one
``[4096, 1024] @ [1024, 1024]`` product. The allocator setting of :mod:`seqjax.runtime` is
applied to the whole process, so all three frameworks run with it.

``chrt -f 50 python benchmarks/charlm.py --cores 1 --layers 1 --autodiff`` (real-time priority,
so other work on the machine does not get in) -> results/benchmarks/charlm_l1_c1.json;
``--cores 2`` also times seqjax as ``seqjax charlm train`` runs it by default: the layout of
:mod:`seqjax.layout` (one CPU device per core, data parallel; ``--cpu-devices N`` times N
instead) -> charlm_l1_c2.json
"""

from __future__ import annotations

import argparse
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=1)
ap.add_argument("--cores", type=int, default=os.cpu_count())
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--autodiff", action="store_true", help="also time seqjax with autodiff's backward pass")
ap.add_argument("--cpu-devices", type=int, default=None,
                help="also time seqjax data-parallel over this many CPU devices (seqjax --cpu-devices); "
                     "default: what seqjax charlm train picks on --cores cores (seqjax/layout.py)")
args = ap.parse_args()
if args.cores < os.cpu_count():  # before JAX / PyTorch size their thread pools
    os.sched_setaffinity(0, set(range(args.cores)))
if args.cpu_devices is None:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from seqjax.layout import cpu_device_count

    args.cpu_devices = cpu_device_count("charlm", "train", n_cores=args.cores)[0]
if args.cpu_devices > 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={args.cpu_devices}")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
from common import matmul_peak_gflops, timed_rounds, write  # noqa: E402

from experiments.reference.models import CharPredictor  # noqa: E402
from seqjax.nn.charlm import CharLM, lm_loss  # noqa: E402
from seqjax.runtime import tune_allocator  # noqa: E402
from seqjax.train.loop import make_train_step  # noqa: E402
from seqjax.train.parallel import make_mesh, replicate, shard_batch  # noqa: E402
from seqjax.train.state import TrainState, make_optimizer  # noqa: E402

V, B, T, E, H = 59, 128, 40, 8, 128


class FlaxCharLM(nn.Module):
    """The same model written the way a flax user would: nn.RNN(OptimizedLSTMCell)."""

    layers: int = 1

    @nn.compact
    def __call__(self, ids):
        h = nn.Embed(V, E)(ids)
        for _ in range(self.layers):
            h = nn.RNN(nn.OptimizedLSTMCell(H))(h)
        return nn.Dense(V)(h[:, -1])


def matmul_flops_per_sample(layers: int) -> int:
    rec = sum(3 * 2 * T * ((E if k == 0 else H) + H) * 4 * H for k in range(layers))
    return rec + 3 * 2 * H * V


def main():
    tune_allocator()
    torch.set_num_threads(args.cores)
    peak = matmul_peak_gflops()
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (B, T)).astype(np.int32)
    y = rng.integers(0, V, B).astype(np.int32)
    batch = jax.device_put({"ids": x, "labels": y, "weights": np.ones(B, np.float32)})
    runners = {}

    def seqjax_runner(backward, devices=1):
        m = CharLM(V, layers=args.layers, backward=backward)
        st = [TrainState.create(m.init(jax.random.PRNGKey(0), jnp.asarray(x)), make_optimizer("rmsprop", 0.01),
                                jax.random.PRNGKey(1))]
        mesh = make_mesh(jax.devices()[:devices]) if devices > 1 else None
        step = make_train_step(lm_loss(m, "last"), mesh)
        b = batch
        if mesh is not None:
            st[0], b = replicate(st[0], mesh), shard_batch(batch, mesh)

        def run():
            st[0], s = step(st[0], b)
            jax.block_until_ready(s["loss"])
        return run, B, args.steps

    runners["seqjax"] = seqjax_runner("hoisted")
    if args.cpu_devices > 1:
        runners[f"seqjax_{args.cpu_devices}_cpu_devices"] = seqjax_runner("hoisted", args.cpu_devices)
    if args.autodiff:
        runners["seqjax_autodiff_backward"] = seqjax_runner("autodiff")

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
    tm = CharPredictor(V, E, H, args.layers)
    opt = torch.optim.RMSprop(tm.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64))

    def torch_step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tm(xt), yt).backward()
        opt.step()

    runners["flax_nn_rnn"] = (flax_step, B, args.steps)
    runners["pytorch"] = (torch_step, B, args.steps)
    rates = timed_rounds(runners, args.rounds)
    flops = matmul_flops_per_sample(args.layers)
    share = {k: v * flops / 1e9 / peak for k, v in rates.items()}
    print(f"{args.layers} layer(s), {args.cores} core(s), float32 matmul peak {peak:.0f} GFLOP/s")
    for k, v in rates.items():
        print(f"{k:26s} {v:9.0f} samples/s  {100 * share[k]:5.1f} % of matmul peak")
    ratios = {"seqjax_vs_pytorch": rates["seqjax"] / rates["pytorch"],
              "seqjax_vs_flax": rates["seqjax"] / rates["flax_nn_rnn"]}
    if args.cpu_devices > 1:
        best = rates[f"seqjax_{args.cpu_devices}_cpu_devices"]
        ratios.update({"seqjax_cpu_devices_vs_pytorch": best / rates["pytorch"],
                       "seqjax_cpu_devices_vs_flax": best / rates["flax_nn_rnn"]})
    print("  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    write(f"charlm_l{args.layers}_c{args.cores}", {
        "samples_per_s": rates, "share_of_matmul_peak": share, "peak_gflops": peak,
        "matmul_flops_per_sample": flops, "ratios": ratios, "layers": args.layers, "cores": args.cores,
        "torch_threads": torch.get_num_threads(), "batch": B, "window": T, "rounds": args.rounds,
        "targets": {"vs_pytorch": 1.5, "vs_flax": 1.3}})


if __name__ == "__main__":
    sys.exit(main())
