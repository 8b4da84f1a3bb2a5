"""word2vec: the C tool's formulas, pair generation, planted structure, the text format, corpora."""

import tarfile

import numpy as np
import pytest

from seqjax import SeqjaxError, configs
from seqjax import embeddings as emb
from seqjax import word2vec as w2v
from seqjax.data import glove

from conftest import make_imdb_tar


def test_keep_probability_and_noise_distribution_follow_their_formulas():
    counts = np.array([1000, 100, 10, 1], np.int64)
    t, N = 1e-2, counts.sum()
    expect = np.minimum((np.sqrt(counts / (t * N)) + 1) * (t * N) / counts, 1)
    np.testing.assert_allclose(w2v.keep_probability(counts, t), expect)
    assert w2v.keep_probability(counts, t)[0] < 0.5 and w2v.keep_probability(counts, t)[-1] == 1
    p = w2v.noise_distribution(counts)
    np.testing.assert_allclose(p, counts**0.75 / (counts**0.75).sum())


def test_window_sampler_is_uniform_and_pairs_respect_it():
    rng = np.random.default_rng(0)
    b = w2v.window_offsets(200_000, 5, rng)
    freq = np.bincount(b, minlength=6)[1:] / len(b)
    np.testing.assert_allclose(freq, 0.2, atol=0.01)
    ids = np.arange(10, dtype=np.int32)
    doc = np.array([0] * 5 + [1] * 5, np.int32)
    c, x = w2v.skipgram_pairs(ids, doc, 3, np.random.default_rng(1))
    assert (np.abs(c - x) <= 3).all() and (np.abs(c - x) >= 1).all()
    assert ((c < 5) == (x < 5)).all()  # never across documents
    c, x, m = w2v.cbow_windows(ids, doc, 2, np.random.default_rng(1))
    assert x.shape == (len(c), 4) and ((x < 5) == (c[:, None] < 5))[m > 0].all()


@pytest.mark.parametrize("cbow", [False, True])
def test_planted_groups_stay_together(cbow):
    rng = np.random.default_rng(0)
    A, B = [f"a{i}" for i in range(15)], [f"b{i}" for i in range(15)]
    docs = [list(rng.choice(A if k % 2 else B, 30)) for k in range(300)]
    corpus = w2v.Corpus.build(docs, 5)
    cfg = configs.Word2VecConfig(dim=16, epochs=10, batch_size=256, sample=0, cbow=cbow, alpha=0.05 if cbow else 0.025)
    wv, stats = w2v.train(corpus, cfg, progress=False)
    assert stats["loss_per_example"][-1] < stats["loss_per_example"][0]
    index = emb.Index(wv, "cosine")
    for w in A + B:
        near = emb.closest_words(wv, emb.get_vector(wv, w), 5, "cosine", exclude=(w,), index=index)
        assert all(n[0] == w[0] for n, _ in near), (w, near)


def test_text_format_round_trip(tmp_path):
    wv = glove.WordVectors(["good", "bad"], np.array([[1, 2, 3], [-1, 0.5, 2]], np.float32))
    w2v.save_text(wv, tmp_path / "v.txt")
    assert (tmp_path / "v.txt").read_text().splitlines()[0] == "2 3"
    back = glove.read_text_vectors(tmp_path / "v.txt")
    assert back.words == wv.words and np.allclose(back.vectors, wv.vectors)
    import gensim  # in the dev extras
    kv = gensim.models.KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"))
    assert np.allclose(kv["bad"], wv.vectors[1])


def test_bad_corpora():
    with pytest.raises(SeqjaxError, match="corpus is empty"):
        w2v.Corpus.build([[], []])
    with pytest.raises(SeqjaxError, match=r"--min-count 9 is above every word's count"):
        w2v.Corpus.build([["a", "b", "a"]], 9)


def test_capped_update_sums_rare_rows_and_caps_frequent_ones():
    import jax.numpy as jnp

    table = jnp.zeros((3, 2))
    rows = jnp.array([0, 0, 0, 1, 2, 2])
    grads = jnp.array([[1.0, 0], [2, 0], [3, 0], [5, 5], [1, 1], [3, 3]])
    got = np.asarray(w2v._capped_update(table, rows, grads, jnp.ones(6), 1.0, 2.0))
    np.testing.assert_allclose(got[0], [-2 * 6 / 3, 0])  # 3 hits > cap 2: twice the mean
    np.testing.assert_allclose(got[1], [-5, -5])  # one hit: the update itself
    np.testing.assert_allclose(got[2], [-4, -4])  # 2 hits <= cap: the plain sum


def test_imdb_train_corpus_reads_no_test_review(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    make_imdb_tar(d / "a.tar.gz", {("train", "pos"): ["good film"], ("train", "neg"): ["bad film"],
                                   ("test", "pos"): ["unseen praise"], ("test", "neg"): ["unseen scorn"]})
    with tarfile.open(d / "a.tar.gz") as t:
        t.extractall(d, filter="data")
    words = lambda corpus: {w for doc in w2v.load_corpus(configs.Word2VecConfig(corpus=corpus, data_dir=str(d)))
                            for w in doc}
    assert words("imdb-train") == {"good", "bad", "film"}
    assert words("imdb") == {"good", "bad", "film", "unseen", "praise", "scorn"}
