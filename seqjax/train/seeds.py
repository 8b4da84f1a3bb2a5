"""Several seeds in one run: K independent models trained by one compiled step.

A run of ``--seeds 0,1,2`` holds the K train states that ``--seed 0``, ``--seed 1``, ``--seed
2`` would start from, stacked leaf by leaf (:func:`stack`: every leaf ``[K, ...]``), and feeds
each seed its own batches (:class:`SeedBatches`: seed ``k``'s own shuffle, bucketing and padding,
stacked to ``[K, B, ...]``). The train step (:func:`seqjax.train.loop.make_train_step` on a mesh
with a ``"seed"`` axis, :func:`seqjax.train.parallel.make_mesh`) lays the seeds on the devices:
each device trains whole seeds — its local seeds one after another (``lax.map``: whole matmuls
per seed; a ``vmap`` turns them into batched small matmuls, which XLA:CPU runs slower,
``benchmarks/seeds.py``) — and splits their rows with the devices of its ``"data"`` row. So seed
``k`` of a run is the model ``--seed k`` trains on the same number of ``"data"`` devices: the
same initial state, data order, dropout keys (a function of the seed, the step and the data
device) and updates, up to float32 rounding of sums taken in another order.

Batches of one step must share one shape: where the seeds' bucketed batches have different
padded lengths, every seed's batch is padded to the longest (``pad_id`` tokens past each
length). Padding never reaches a seqjax model's output (masked recurrences, pools and means), so
each seed's results stay its own; only the compute spent on padding grows. To keep that small,
IMDB seeds visit their length-sorted batches in one shared order (``--data-seed``,
:func:`seqjax.data.batching.batch_order`), while each seed draws which reviews share a batch:
the step's padded length is then 1.03x a seed's own on average, against 2.07x with fully
independent orders (5 seeds).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import SeqjaxError


def stack(trees: Sequence):
    """K pytrees of equal structure -> one pytree whose leaves are ``[K, ...]`` (a
    :class:`~seqjax.train.state.TrainState`'s static ``tx`` is the first one's)."""
    if hasattr(trees[0], "tx"):  # one optimizer for all (each seed's is an equal, separate object)
        trees = [t.replace(tx=trees[0].tx) for t in trees]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def take(tree, k: int):
    """Seed ``k`` of a stacked pytree (every leaf ``[K, ...]`` -> ``[...]``)."""
    return jax.tree.map(lambda x: x[k], tree)


def put(tree, k: int, value):
    """A host copy of stacked ``tree`` with seed ``k`` replaced by ``value`` (numpy leaves)."""
    return jax.tree.map(lambda x, v: np.concatenate([np.asarray(x[:k]), np.asarray(v)[None], np.asarray(x[k + 1:])]),
                        tree, value)


class SeedBatches:
    """One batch per seed at every step, from K datasets of the same length and batch size.

    Args:
      datasets: one per seed (e.g. :class:`~seqjax.data.batching.BucketedBatches` shuffled with
        that seed), each with ``len()``, ``batch_size`` and ``batches(epoch, start[, rows])``.
      seeds: the seeds, in the same order (recorded; ``seeds`` also marks the dataset as one of
        several seeds for :func:`seqjax.train.parallel.feed`).

    ``batches(epoch, start, rows=None)`` yields ``{name: [K, B, ...]}``: seed ``k``'s batch in
    row ``k``; arrays of different lengths on axis 1 (bucketed ``ids int32[B, T_k]``) padded to
    the longest with the dataset's ``pad_id`` (0 where it has none).
    """

    def __init__(self, datasets: Sequence, seeds: Sequence[int]):
        if len(datasets) != len(seeds) or not datasets:
            raise SeqjaxError("SeedBatches: give one dataset per seed")
        n = {len(d) for d in datasets}
        if len(n) != 1 or len({d.batch_size for d in datasets}) != 1:
            raise SeqjaxError(f"the seeds' datasets differ in batches per epoch {sorted(n)} or batch size; "
                              f"they must share both")
        self.datasets, self.seeds = list(datasets), list(seeds)
        self.batch_size = datasets[0].batch_size
        self.pad_id = getattr(datasets[0], "pad_id", 0)

    def __len__(self) -> int:
        return len(self.datasets[0])

    def batches(self, epoch: int = 0, start: int = 0, rows: slice | None = None) -> Iterator[dict]:
        kw = {} if rows is None else {"rows": rows}
        for group in zip(*(d.batches(epoch, start, **kw) for d in self.datasets)):
            yield stack_batches(group, self.pad_id)


def stack_batches(group: Sequence[dict], pad_id: int = 0) -> dict:
    """K batch dicts -> one dict of ``[K, ...]`` arrays; ``ids`` (and any array whose axis 1
    differs) padded on axis 1 to the longest, with ``pad_id`` for ``ids``, 0 elsewhere."""
    out = {}
    for name in group[0]:
        vs = [g[name] for g in group]
        if vs[0] is None or not isinstance(vs[0], np.ndarray):
            out[name] = vs[0]
            continue
        if vs[0].ndim >= 2 and len({v.shape[1] for v in vs}) > 1:
            T = max(v.shape[1] for v in vs)
            fill = pad_id if name == "ids" else 0
            vs = [np.pad(v, [(0, 0), (0, T - v.shape[1])] + [(0, 0)] * (v.ndim - 2), constant_values=fill)
                  for v in vs]
        out[name] = np.stack(vs)
    return out
