"""Length-bucketed, padded batches with static shapes.

Every batch is a dict of numpy arrays::

    ids      int32[batch, T]   token ids, padded with ``pad_id`` past each length
    lengths  int32[batch]      true lengths (>= 1; 0 for padding rows)
    labels   float32[batch]    targets (0 for padding rows)
    weights  float32[batch]    1 for real examples, 0 for padding rows

``T`` is always one of ``boundaries`` (the smallest that fits the longest example of the
batch), and every batch has exactly ``batch_size`` rows — the last one is filled with
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

    With ``growth = sqrt(2)`` a batch wastes at most ~30 % of its steps on padding (powers of
    two waste up to 50 %) for about 2 log2(max_len) compiled shapes.
    """
    b, out = float(smallest), []
    while int(8 * round(b / 8)) < max_len:
        v = int(8 * round(b / 8))
        if not out or v > out[-1]:
            out.append(v)
        b *= growth
    return tuple(out) + (max_len,)


def batch_order(lengths: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                epoch: int = 0, pool: int = 50) -> list[np.ndarray]:
    """Index arrays, one per batch, covering ``range(len(lengths))`` exactly once."""
    n = len(lengths)
    if shuffle:
        rng = np.random.default_rng([seed, epoch])
        perm = rng.permutation(n)
        chunks = [perm[i:i + pool * batch_size] for i in range(0, n, pool * batch_size)]
        batches = []
        for c in chunks:
            c = c[np.argsort(lengths[c], kind="stable")]
            batches += [c[i:i + batch_size] for i in range(0, len(c), batch_size)]
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]
    perm = np.argsort(lengths, kind="stable")
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def padded_length(lengths: np.ndarray, boundaries: Sequence[int], min_len: int = 1) -> int:
    """The padded length ``T`` of a batch of examples of ``lengths`` (``int[n]``): the smallest
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
    lens = np.array([min(len(s), boundaries[-1]) for s in seqs], np.int32)
    T = padded_length(lens, boundaries, min_len)
    ids = np.full((batch_size, T), pad_id, np.int32)
    for i, s in enumerate(seqs):
        ids[i, : lens[i]] = s[: lens[i]]
    out_lens = np.zeros(batch_size, np.int32)
    out_lens[: len(seqs)] = lens
    out_labels = np.zeros(batch_size, np.float32)
    out_labels[: len(seqs)] = labels
    weights = np.zeros(batch_size, np.float32)
    weights[: len(seqs)] = 1.0
    return {"ids": ids, "lengths": out_lens, "labels": out_labels, "weights": weights}


class BucketedBatches:
    """An epoch-indexed iterable of padded batches over encoded sequences.

    Args:
      seqs: ``n`` arrays ``int32[len_i]`` (empty sequences are rejected).
      labels: ``float32[n]``.
      batch_size: rows per batch (static).
      boundaries: allowed padded lengths, ascending; default powers of two up to the longest.
      shuffle, seed: training order per ``(seed, epoch)``; evaluation when ``shuffle=False``.

    ``batches(epoch, start=k)`` skips the first ``k`` batches (exact resume);
    ``batches(..., rows=slice(a, b))`` yields rows ``[a, b)`` of each batch (one process's share,
    see the module docstring): ``ids int32[b - a, T]`` with the ``T`` of the whole batch.
    """

    def __init__(self, seqs: Sequence[np.ndarray], labels, batch_size: int,
                 boundaries: Sequence[int] | None = None, shuffle: bool = False, seed: int = 0,
                 pad_id: int = 1, min_len: int = 1, pool: int = 50):
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

    def __len__(self) -> int:
        return -(-len(self.seqs) // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0, rows: slice | None = None) -> Iterator[dict]:
        order = batch_order(self.lengths, self.batch_size, self.shuffle, self.seed, epoch, self.pool)
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
    """Fixed-shape batches of equal-length rows (char windows): ``x int32[batch, T]``, ``y``.

    Each batch: ``{"ids": int32[batch, T], "labels": int32[batch, ...], "weights": float32[batch]}``;
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
            idx = perm[b * B:(b + 1) * B]
            k = len(idx)
            if k < B:
                idx = np.concatenate([idx, np.zeros(B - k, idx.dtype)])
            w = np.zeros(B, np.float32)
            w[:k] = 1.0
            idx, w = idx[rows], w[rows]
            yield {"ids": self.x[idx], "labels": self.y[idx], "weights": w}

    def __iter__(self) -> Iterator[dict]:
        return self.batches(0)


class StreamBatches:
    """Contiguous chunks of ``B`` parallel streams through a text (truncated BPTT).

    The ids are cut into ``batch_size`` equal streams; batch ``k`` holds chars
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
        x, y = (self.x, self.y) if rows is None else (self.x[rows], self.y[rows])
        w = np.ones(len(x), np.float32)
        for k in range(start, self.n):
            yield {"ids": x[:, k * T:(k + 1) * T], "labels": y[:, k * T:(k + 1) * T], "weights": w}


def chunks(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping chunks for next-char training at every position.

    Returns ``x int32[n, seq_len]`` and ``y int32[n, seq_len]`` with ``y[i, t] = x[i, t+1]``
    (the last label is the char after the chunk); ``n = (len(ids) - 1) // seq_len``.
    """
    n = (len(ids) - 1) // seq_len
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1: n * seq_len + 1].reshape(n, seq_len)
    return x.astype(np.int32), y.astype(np.int32)
