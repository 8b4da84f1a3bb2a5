"""Batches prepared ahead on a background thread (seqjax.train.parallel.ahead / feed): same items
in the same order, the producer's errors raised where they happened, bounded run-ahead, a
stopped consumer stops the producer, and training is bitwise the same with and without it."""

import json
import threading
import time

import numpy as np
import pytest

from seqjax import SeqjaxError, configs
from seqjax.tasks import charlm
from seqjax.train import parallel


def _alive():
    return [t for t in threading.enumerate() if t.name == "seqjax-prefetch"]


@pytest.mark.parametrize("depth", [0, 1, 2, 5])
def test_the_same_items_in_order(depth):
    assert list(parallel.ahead(iter(range(50)), depth)) == list(range(50))
    assert list(parallel.ahead(iter([]), depth)) == []


def test_a_producer_error_is_raised_in_the_consumer_where_it_happened():
    def items():
        yield 0
        yield 1
        raise ValueError("bad batch 2")

    got = []
    with pytest.raises(ValueError, match="bad batch 2"):
        for x in parallel.ahead(items(), 2):
            got.append(x)
    assert got == [0, 1]


def test_run_ahead_is_bounded_and_a_stopped_consumer_stops_the_producer():
    made = []

    def items():
        for i in range(10_000):
            made.append(i)
            yield i

    it = parallel.ahead(items(), 2)
    assert next(it) == 0
    time.sleep(0.3)  # the producer fills the queue, then waits
    assert 2 <= len(made) <= 1 + 2 + 1  # the one taken, two queued, one waiting to be queued
    it.close()  # what a break or an exception in the training loop does
    time.sleep(0.3)
    assert not _alive() and len(made) <= 5


def test_a_bad_prefetch_setting_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("SEQJAX_PREFETCH", "two")
    with pytest.raises(SeqjaxError, match="SEQJAX_PREFETCH='two'"):
        parallel.prefetch_depth()
    monkeypatch.setenv("SEQJAX_PREFETCH", "0")
    assert parallel.prefetch_depth() == 0


def test_training_is_bitwise_the_same_with_and_without_prefetch(tmp_path, monkeypatch):
    (tmp_path / "t.txt").write_text("the quick brown fox jumps over the lazy dog. supposing truth is a woman. " * 30)
    runs = {}
    for depth in ("0", "2"):
        monkeypatch.setenv("SEQJAX_PREFETCH", depth)
        cfg = configs.CharLMConfig(text=str(tmp_path / "t.txt"), hidden=16, batch_size=32, epochs=2, optimizer="adam",
                                   lr=0.01, markov_orders="", sample_length=5, temperatures="0.5",
                                   out=str(tmp_path / depth), results=str(tmp_path / f"{depth}.json"))
        charlm.run(cfg)
        runs[depth] = (json.loads((tmp_path / f"{depth}.json").read_text())["history"],
                       charlm.load(cfg.out).params)
    (h0, p0), (h2, p2) = runs["0"], runs["2"]
    assert [h["train_loss"] for h in h0] == [h["train_loss"] for h in h2]
    assert [h["heldout_loss"] for h in h0] == [h["heldout_loss"] for h in h2]
    import jax

    for a, b in zip(jax.tree.leaves(p0), jax.tree.leaves(p2)):
        np.testing.assert_array_equal(a, b)
    assert not _alive()
