"""Length-bucketed, padded batches with static shapes.

Every batch is a dict of numpy arrays (``B = batch_size`` rows)::

    ids      int32[B, T]   token ids, padded with ``pad_id`` past each length
    lengths  int32[B]      true lengths (>= 1; 0 for padding rows)
    labels   float32[B]    targets (0 for padding rows)
    weights  float32[B]    1 for real examples, 0 for padding rows

``T`` is always one of ``boundaries`` (the smallest that fits the longest example of the
batch), and every batch has exactly ``B`` rows — the last one is filled with
weight-0 rows — so a jit-compiled step compiles at most ``len(boundaries)`` programs and
metrics summed with ``weights`` are exact. Examples longer than ``boundaries[-1]`` are
truncated to it (``max_len``).

Training order (``shuffle=True``, torchtext ``BucketIterator``-like): shuffle with the seed,
cut into pools of ``pool`` batches, sort each pool by length, cut into batches, shuffle the
batches. Evaluation order (``shuffle=False``): sorted by length; every example exactly once.

Several processes (one per host of a multi-host run) share each batch: every one computes the
same global order (index arrays only) and ``batches(epoch, start, rows=slice(a, b))`` yields
just rows ``[a, b)`` of each global batch, padded to the length the *whole* batch needs, so
each process pads and copies only what its own devices consume and the batches are those of a
one-process run.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from seqjax import SeqjaxError


def default_boundaries(max_len: int, smallest: int = 16, growth: float = 2**0.5) -> tuple[int, ...]:
    """Lengths growing by ``growth`` (rounded to multiples of 8) from ``smallest`` up to and
    including ``max_len``: ``(16, 24, 32, 48, 64, 96, 128, ..., max_len)``.

    A batch whose longest example just passes a boundary is padded to the next, so at most a
    share ``1 - 1/growth`` of its steps is padding: ~30 % for ``growth = sqrt(2)`` (lengths that
    double would allow 50 %), for about ``2 log2(max_len)`` compiled shapes.
    """
    b, out = float(smallest), []
    while int(8 * round(b / 8)) < max_len:
        v = int(8 * round(b / 8))
        if not out or v > out[-1]:
            out.append(v)
        b *= growth
    return tuple(out) + (max_len,)


def batch_order(lengths: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                epoch: int = 0, pool: int = 50, order_seed: int | None = None) -> list[np.ndarray]:
    """Index arrays ``int[<= B]``, one per batch, covering ``range(N)`` exactly once
    (``lengths int32[N]``, ``B = batch_size``).

    ``seed`` draws which examples share a pool and so a batch; the order in which the
    length-sorted batches are visited is the one ``order_seed`` (default ``seed``) draws. Runs of
    several seeds share one ``order_seed`` (:mod:`seqjax.train.seeds`): each seed's batch at a
    step then holds examples of the same length rank of its pool, so the seeds' padded lengths
    agree and padding all of them to the longest costs little: on IMDB's training split (batch 64,
    5 seeds) the longest of the 5 padded lengths is on average 1.03x a seed's own, against 2.07x
    with orders of their own."""
    N = len(lengths)
    if shuffle:
        rng = np.random.default_rng([seed, epoch])
        perm_N = rng.permutation(N)
        pools = [perm_N[i:i + pool * batch_size] for i in range(0, N, pool * batch_size)]
        batches = []
        for idx in pools:
            idx = idx[np.argsort(lengths[idx], kind="stable")]
            batches += [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
        if order_seed is not None and order_seed != seed:  # the draw that order_seed's own run makes
            rng = np.random.default_rng([order_seed, epoch])
            rng.permutation(N)
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]
    perm_N = np.argsort(lengths, kind="stable")
    return [perm_N[i:i + batch_size] for i in range(0, N, batch_size)]


def padded_length(lengths: np.ndarray, boundaries: Sequence[int], min_len: int = 1) -> int:
    """The padded length ``T`` of a batch of examples of ``lengths`` (``int[N]``): the smallest
    boundary that fits the longest (at least ``min_len``), else the last boundary."""
    longest = max(int(np.max(lengths)) if len(lengths) else 1, min_len, 1)
    return next((b for b in boundaries if b >= longest), boundaries[-1])


def pad_batch(seqs: Sequence[np.ndarray], labels: np.ndarray, batch_size: int,
              boundaries: Sequence[int], pad_id: int = 1, min_len: int = 1) -> dict:
    """Pad ``seqs`` (each ``int32[len_i]``) into one static-shape batch (see module docstring).

    ``min_len`` pads short examples up to a minimum padded length (e.g. the widest CNN filter).
    """
    if len(seqs) > batch_size:
        raise ValueError(f"{len(seqs)} sequences do not fit a batch of {batch_size}")
    lens_N = np.array([min(len(s), boundaries[-1]) for s in seqs], np.int32)
    T = padded_length(lens_N, boundaries, min_len)
    ids_BT = np.full((batch_size, T), pad_id, np.int32)
    for i, s in enumerate(seqs):
        ids_BT[i, : lens_N[i]] = s[: lens_N[i]]
    lengths_B = np.zeros(batch_size, np.int32)
    lengths_B[: len(seqs)] = lens_N
    labels_B = np.zeros(batch_size, np.float32)
    labels_B[: len(seqs)] = labels
    weights_B = np.zeros(batch_size, np.float32)
    weights_B[: len(seqs)] = 1.0
    return {"ids": ids_BT, "lengths": lengths_B, "labels": labels_B, "weights": weights_B}


class BucketedBatches:
    """An epoch-indexed iterable of padded batches over encoded sequences.

    Args:
      seqs: ``N`` arrays ``int32[len_i]`` (empty sequences are rejected).
      labels: ``float32[N]``.
      batch_size: rows per batch ``B`` (static).
      boundaries: allowed padded lengths, ascending; default :func:`default_boundaries` of the
        longest sequence (lengths growing by ``sqrt(2)``).
      shuffle, seed: training order per ``(seed, epoch)``; evaluation when ``shuffle=False``.
      order_seed: the seed of the order of the length-sorted batches (:func:`batch_order`;
        default ``seed``).

    ``batches(epoch, start=k)`` skips the first ``k`` batches (exact resume);
    ``batches(..., rows=slice(a, b))`` yields rows ``[a, b)`` of each batch (one process's share,
    see the module docstring): ``ids int32[b - a, T]`` with the ``T`` of the whole batch.
    Batches as the module docstring: ``ids int32[B, T]``, ``lengths``, ``labels``, ``weights``
    each ``[B]``.
    """

    def __init__(self, seqs: Sequence[np.ndarray], labels, batch_size: int,
                 boundaries: Sequence[int] | None = None, shuffle: bool = False, seed: int = 0,
                 pad_id: int = 1, min_len: int = 1, pool: int = 50, order_seed: int | None = None):
        if len(seqs) == 0:
            raise SeqjaxError("no examples to batch: the dataset is empty")
        self.seqs = list(seqs)
        self.labels = np.asarray(labels, np.float32)
        self.lengths = np.array([len(s) for s in self.seqs], np.int32)
        if (self.lengths == 0).any():
            i = int(np.flatnonzero(self.lengths == 0)[0])
            raise SeqjaxError(f"example {i} has no tokens; drop empty texts before batching")
        self.batch_size = batch_size
        self.boundaries = tuple(boundaries) if boundaries else default_boundaries(int(self.lengths.max()))
        self.shuffle, self.seed, self.pad_id, self.min_len, self.pool = shuffle, seed, pad_id, min_len, pool
        self.order_seed = order_seed

    def __len__(self) -> int:
        return -(-len(self.seqs) // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0, rows: slice | None = None) -> Iterator[dict]:
        order = batch_order(self.lengths, self.batch_size, self.shuffle, self.seed, epoch, self.pool, self.order_seed)
        for idx in order[start:]:
            if rows is None:
                yield pad_batch([self.seqs[i] for i in idx], self.labels[idx], self.batch_size,
                                self.boundaries, self.pad_id, self.min_len)
                continue
            T = padded_length(np.minimum(self.lengths[idx], self.boundaries[-1]), self.boundaries, self.min_len)
            mine = idx[rows]  # the rows past the real examples are padding
            size = len(range(*rows.indices(self.batch_size)))
            yield pad_batch([self.seqs[i] for i in mine], self.labels[mine], size, (T,), self.pad_id)

    def __iter__(self) -> Iterator[dict]:
        return self.batches(0)


class ArrayBatches:
    """Fixed-shape batches of equal-length rows (char windows): ``x int32[N, T]``, ``y int32[N, ...]``.

    Each batch: ``{"ids": int32[B, T], "labels": int32[B, ...], "weights": float32[B]}``;
    the last batch is filled with weight-0 rows. Shuffled per ``(seed, epoch)`` when ``shuffle``.
    ``batches(epoch, start, rows=slice(a, b))``: rows ``[a, b)`` of each batch only.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False,
                 seed: int = 0):
        if len(x) == 0:
            raise SeqjaxError("no examples to batch: the text is shorter than one window")
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0, rows: slice | None = None) -> Iterator[dict]:
        n, B = len(self.x), self.batch_size
        rows = rows if rows is not None else slice(0, B)
        perm = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        for b in range(start, len(self)):
            idx_B = perm[b * B:(b + 1) * B]
            k = len(idx_B)
            if k < B:
                idx_B = np.concatenate([idx_B, np.zeros(B - k, idx_B.dtype)])
            weights_B = np.zeros(B, np.float32)
            weights_B[:k] = 1.0
            idx_B, weights_B = idx_B[rows], weights_B[rows]
            yield {"ids": self.x[idx_B], "labels": self.y[idx_B], "weights": weights_B}

    def __iter__(self) -> Iterator[dict]:
        return self.batches(0)


class StreamBatches:
    """Contiguous chunks of ``B`` parallel streams through a text (truncated BPTT).

    The ids are cut into ``B = batch_size`` equal streams; batch ``k`` holds chars
    ``[k*T, (k+1)*T)`` of every stream as ``ids int32[B, T]`` and the next chars as
    ``labels int32[B, T]``. Row ``b`` of batch ``k+1`` continues row ``b`` of batch ``k``, so
    a model may carry its state from one batch to the next. The order never changes.
    ``batches(epoch, start, rows=slice(a, b))``: streams ``[a, b)`` only.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int):
        L = (len(ids) - 1) // batch_size
        self.n = L // seq_len
        if self.n == 0:
            raise SeqjaxError(f"the text ({len(ids)} chars) is too short for {batch_size} streams "
                              f"of --seq-len {seq_len}; lower --batch-size or --seq-len")
        self.x = ids[: batch_size * L].reshape(batch_size, L)
        self.y = ids[1: batch_size * L + 1].reshape(batch_size, L)
        self.batch_size, self.seq_len = batch_size, seq_len

    def __len__(self) -> int:
        return self.n

    def batches(self, epoch: int = 0, start: int = 0, rows: slice | None = None) -> Iterator[dict]:
        T = self.seq_len
        # int32[B, stream length] each (B: this process's streams)
        x, y = (self.x, self.y) if rows is None else (self.x[rows], self.y[rows])
        weights_B = np.ones(len(x), np.float32)
        for k in range(start, self.n):
            yield {"ids": x[:, k * T:(k + 1) * T], "labels": y[:, k * T:(k + 1) * T], "weights": weights_B}


def chunks(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping chunks for next-char training at every position.

    Returns ``x int32[N, T]`` and ``y int32[N, T]`` (``T = seq_len``) with ``y[i, t] = x[i, t+1]``
    (the last label is the char after the chunk); ``N = (len(ids) - 1) // T``.
    """
    N = (len(ids) - 1) // seq_len
    x_NT = ids[: N * seq_len].reshape(N, seq_len)
    y_NT = ids[1: N * seq_len + 1].reshape(N, seq_len)
    return x_NT.astype(np.int32), y_NT.astype(np.int32)
