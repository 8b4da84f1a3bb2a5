"""Checks on the real corpora. A missing file is a failure, not a skip."""


import pytest

from conftest import real_data_dir
from seqjax.data import download, imdb, text

pytestmark = pytest.mark.realdata


def test_nietzsche_is_the_labs_corpus():
    d = real_data_dir()
    path = download.fetch("nietzsche", d)  # verifies the SHA-256
    t = text.read_text(path)
    assert len(t) == 600_901 and t == t.lower()
    corpus = text.CharCorpus.from_text(t)
    assert len(corpus.vocab) < 70 and len(corpus.valid_ids) == 60_090


def test_imdb_has_25000_train_and_25000_test():
    d = imdb.load("archive", str(real_data_dir()))
    assert len(d["train"]) == 25_000 and len(d["test"]) == 25_000
    assert d["train"].labels.sum() == 12_500 and d["test"].labels.sum() == 12_500
    tr, va = imdb.train_valid_split(d["train"], 0.3, seed=0)
    assert (len(tr), len(va)) == (17_500, 7_500)


def test_real_glove_answers_queen():
    from seqjax import embeddings as emb
    from seqjax.data import glove

    wv = glove.load("6B.50d")
    assert emb.analogy(wv, "man", "king", "woman")[0][0] == "queen"
