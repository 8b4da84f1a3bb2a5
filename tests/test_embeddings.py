import numpy as np
import pytest

from seqjax import SeqjaxError
from seqjax import embeddings as emb
from seqjax.data.glove import WordVectors


def _toy():
    # gender along x, royalty along y, plus distractors; "queen" = king - man + woman exactly
    words = ["man", "woman", "king", "queen", "apple", "paris", "france", "rome", "italy"]
    V = np.array([[1, 0, 0], [-1, 0, 0], [1, 1, 0], [-1, 1, 0], [0, 0, 5],
                  [0, -3, 1], [0, -3, 2], [1, -3, 1], [1, -3, 2]], np.float32)
    return WordVectors(words, V)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_analogy_excludes_inputs(metric):
    wv = _toy()
    assert emb.analogy(wv, "man", "king", "woman", metric=metric)[0][0] == "queen"


def test_closest_words_match_brute_force():
    rng = np.random.default_rng(0)
    wv = WordVectors([f"w{i}" for i in range(1000)], rng.normal(size=(1000, 8)).astype(np.float32))
    q = rng.normal(size=8).astype(np.float32)
    for metric in ("euclidean", "cosine"):
        got = emb.closest_words(wv, q, 5, metric, index=emb.Index(wv, metric, chunk=64))
        if metric == "euclidean":
            ref = np.argsort(np.linalg.norm(wv.vectors - q, axis=1))[:5]
            np.testing.assert_allclose([d for _, d in got],
                                       np.linalg.norm(wv.vectors[ref] - q, axis=1), rtol=1e-4)
        else:
            u = wv.vectors / np.linalg.norm(wv.vectors, axis=1, keepdims=True)
            ref = np.argsort(-(u @ (q / np.linalg.norm(q))))[:5]
        assert [w for w, _ in got] == [f"w{i}" for i in ref]


def test_unknown_word_error():
    with pytest.raises(SeqjaxError, match=r"'zebra' is not in the vocabulary"):
        emb.get_vector(_toy(), "zebra")


def test_evaluate_analogy_file(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text(": royalty\nman king woman queen\nMan King Woman Apple\n"
                 ": capital\nparis france rome italy\nparis france rome zebra\n")
    res = emb.evaluate_analogies(_toy(), emb.read_questions(f), restrict=None, metric="cosine", block=2)
    assert res.sections == {"royalty": (1, 2, 0), "capital": (1, 1, 1)}
    assert res.accuracy == pytest.approx(2 / 3) and res.oov == 1
    assert "total" in res.table()
    res = emb.evaluate_analogies(_toy(), emb.read_questions(f), restrict=4, metric="cosine")
    assert res.sections["capital"] == (0, 0, 2)


def test_bad_question_files(tmp_path):
    (tmp_path / "a.txt").write_text(": s\nman king woman\n")
    with pytest.raises(SeqjaxError, match=r"a.txt:2: expected 4 words, got 3"):
        emb.read_questions(tmp_path / "a.txt")
    (tmp_path / "b.txt").write_text("man king woman queen\n")
    with pytest.raises(SeqjaxError, match=r"b.txt:1: a question before any"):
        emb.read_questions(tmp_path / "b.txt")
    with pytest.raises(SeqjaxError, match="no such analogy file"):
        emb.read_questions(tmp_path / "c.txt")
