import numpy as np
import pytest

from seqjax import SeqjaxError
from seqjax.data.batching import ArrayBatches, BucketedBatches, default_boundaries


def _data(n=203, seed=0):
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, 300, n)
    seqs = [np.full(l, i + 2, np.int32) for i, l in enumerate(lens)]  # id i+2 marks example i
    return seqs, (np.arange(n) % 2).astype(np.float32)


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_example_exactly_once_with_bounded_shapes(shuffle):
    seqs, labels = _data()
    bb = BucketedBatches(seqs, labels, 16, shuffle=shuffle, seed=3)
    seen, shapes = [], set()
    for b in bb.batches(epoch=1):
        assert b["ids"].shape[0] == 16 and b["ids"].dtype == np.int32
        shapes.add(b["ids"].shape[1])
        for row, L, w, y in zip(b["ids"], b["lengths"], b["weights"], b["labels"]):
            if w:
                i = row[0] - 2
                seen.append(i)
                assert L == len(seqs[i]) and (row[:L] == i + 2).all() and (row[L:] == 1).all()
                assert y == labels[i]
            else:
                assert L == 0 and y == 0
    assert sorted(seen) == list(range(len(seqs)))
    assert shapes <= set(default_boundaries(299)) and len(default_boundaries(299)) <= 12


def test_shuffle_is_seeded_and_epoch_dependent_and_resumable():
    seqs, labels = _data()
    bb = BucketedBatches(seqs, labels, 16, shuffle=True, seed=3)
    first = lambda e: [b["ids"][0, 0] for b in bb.batches(e)]
    assert first(0) == first(0) and first(0) != first(1)
    assert [b["ids"][0, 0] for b in bb.batches(2, start=5)] == first(2)[5:]


def test_truncation_and_min_len():
    seqs = [np.arange(2, 12, dtype=np.int32), np.array([5], np.int32)]
    b = next(iter(BucketedBatches(seqs, [1, 0], 4, boundaries=(8,))))
    assert b["ids"].shape == (4, 8) and list(b["lengths"][:2]) == [1, 8]
    b = next(iter(BucketedBatches([np.array([5], np.int32)], [1], 2, boundaries=(2, 8), min_len=5)))
    assert b["ids"].shape == (2, 8)


def test_empty_inputs_are_clear_errors():
    with pytest.raises(SeqjaxError, match="empty"):
        BucketedBatches([], [], 4)
    with pytest.raises(SeqjaxError, match="example 1 has no tokens"):
        BucketedBatches([np.array([3]), np.array([], np.int32)], [0, 1], 4)


def test_array_batches_cover_once():
    x = np.arange(50, dtype=np.int32)[:, None] * np.ones((1, 4), np.int32)
    y = np.arange(50, dtype=np.int32)
    ab = ArrayBatches(x, y, 8, shuffle=True, seed=1)
    got = np.concatenate([b["labels"][b["weights"] > 0] for b in ab.batches(0)])
    assert sorted(got) == list(range(50)) and len(ab) == 7
