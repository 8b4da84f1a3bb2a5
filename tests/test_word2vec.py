"""word2vec: the C tool's subsampling and noise values, pair generation, single update steps,
planted structure, the text format, corpora."""

import collections
import tarfile

import numpy as np
import pytest

from seqjax import SeqjaxError, configs
from seqjax import embeddings as emb
from seqjax import word2vec as w2v
from seqjax.data import glove

from conftest import make_imdb_tar


def test_keep_probability_has_the_c_tools_values():
    """The C tool keeps a word of count c with (sqrt(c / (t N)) + 1) (t N) / c. For counts 64,
    36, 16, 4 (N = 120) and t = 1/30, t N = 4, so by hand: (4 + 1) 4/64 = 5/16,
    (3 + 1) 4/36 = 4/9, (2 + 1) 4/16 = 3/4, and (1 + 1) 4/4 = 2, kept always (1)."""
    counts = np.array([64, 36, 16, 4], np.int64)
    np.testing.assert_allclose(w2v.keep_probability(counts, 1 / 30), [5 / 16, 4 / 9, 3 / 4, 1], rtol=1e-12)
    np.testing.assert_array_equal(w2v.keep_probability(counts, 0), 1)  # sample 0: no subsampling


def test_noise_distribution_on_a_tiny_vocabulary():
    """Counts 81, 16, 1, 0 raised to 3/4 are 27, 8, 1, 0: probabilities 27/36, 8/36, 1/36, 0."""
    p = w2v.noise_distribution(np.array([81, 16, 1, 0], np.int64))
    np.testing.assert_allclose(p, [27 / 36, 8 / 36, 1 / 36, 0], rtol=1e-12)


def test_training_windows_are_subsampled_at_the_keep_probability():
    """One document of 6400 w0, 3600 w1, 1600 w2 and 400 w3 (N = 12000) with t = 1/30 (t N = 400):
    each word is a centre as often as it is kept, 5/16, 4/9, 3/4 and 1 of its count (by hand,
    as above); sampling error at these counts is below 0.01."""
    rng = np.random.default_rng(0)
    counts = np.array([6400, 3600, 1600, 400])
    ids = rng.permutation(np.repeat(np.arange(4), counts)).astype(np.int32)
    corpus = w2v.Corpus(ids, np.zeros(len(ids), np.int32), ["w0", "w1", "w2", "w3"], counts.astype(np.int64))
    cfg = configs.Word2VecConfig(window=1, sample=1 / 30, epochs=1, batch_size=64, negative=1)
    centres = np.concatenate([c.centre.ravel() for c in w2v.chunks(corpus, cfg, rng, steps_per_call=4)])
    kept = np.bincount(centres, minlength=5)[:4] / counts  # id 4 = padding windows
    np.testing.assert_allclose(kept, [5 / 16, 4 / 9, 3 / 4, 1], atol=0.03)


def test_window_sampler_is_uniform():
    rng = np.random.default_rng(0)
    b = w2v.window_offsets(200_000, 5, rng)
    freq = np.bincount(b, minlength=6)[1:] / len(b)
    np.testing.assert_allclose(freq, 0.2, atol=0.01)


def test_context_windows_stay_inside_their_document():
    ids = np.arange(10, dtype=np.int32) + 100
    doc = np.array([0] * 5 + [1] * 5, np.int32)
    ctx = w2v.context_windows(ids, doc, np.array([0, 4, 5, 7]), 2, pad=-1)
    np.testing.assert_array_equal(ctx, [[-1, -1, 101, 102], [102, 103, -1, -1],
                                        [-1, -1, 106, 107], [105, 106, 108, 109]])


def test_chunks_hold_every_window_of_the_c_tool_once_per_epoch():
    """Token ids = positions, so every window can be checked against the text it came from."""
    n, window = 3000, 3
    doc = np.repeat(np.arange(60), 50).astype(np.int32)
    doc[:7] = -1  # a document of 7 words, then one of a single word (no pairs)
    doc[7] = -2
    corpus = w2v.Corpus(np.arange(n, dtype=np.int32), doc, [f"w{i}" for i in range(n)], np.ones(n, np.int64))
    cfg = configs.Word2VecConfig(window=window, sample=0, epochs=2, batch_size=12, negative=3)
    seen = [collections.Counter() for _ in range(cfg.epochs)]
    halves, lrs, words = [], [], 0.0
    for c in w2v.chunks(corpus, cfg, np.random.default_rng(0), steps_per_call=4):
        assert c.context.shape == (4, max(1, 12 // (2 * c.half)), 2 * c.half) and c.noise.shape[-1] == 3
        for cen, ctx in zip(c.centre.reshape(-1), c.context.reshape(-1, 2 * c.half)):
            if cen == n:  # padding window
                assert (ctx == n).all()
                continue
            offs = np.r_[-c.half:0, 1:c.half + 1]
            want = np.where((cen + offs >= 0) & (cen + offs < n) & (doc[np.clip(cen + offs, 0, n - 1)] == doc[cen]),
                            cen + offs, n)
            np.testing.assert_array_equal(ctx, want)
            seen[c.epoch][cen] += 1
            halves.append(c.half)
        lrs.append(c.lr)
        words += c.words
    for epoch in seen:  # every centre that has a neighbour in its document, exactly once
        assert set(epoch) == set(range(n)) - {7} and set(epoch.values()) == {1}
    assert np.bincount(halves)[1:].min() > 0.3 * len(halves) / window
    lrs = np.concatenate(lrs)
    assert lrs[0] == pytest.approx(cfg.alpha, rel=0.01) and lrs[-1] < 0.01 * cfg.alpha
    assert words == pytest.approx(n * cfg.epochs)


def test_alias_sampler_draws_the_noise_distribution():
    p = np.array([27, 8, 1, 0, 0, 36]) / 72
    draws = w2v.AliasSampler(p)(np.random.default_rng(0), (200_000,))
    np.testing.assert_allclose(np.bincount(draws, minlength=6) / len(draws), p, atol=3e-3)
    assert not np.isin(draws, [3, 4]).any()  # probability 0: never drawn


@pytest.mark.parametrize("cbow", [False, True])
def test_one_update_step_by_hand(cbow):
    """Word 0 at [1, 2] predicts centre 1 against noise word 2; output vectors start at zero as
    in the C tool. Every score is 0, so sigmoid = 1/2: the gradient on a score is -1/2 for the
    centre and +1/2 for the noise word, and with lr 0.1 the output vectors become
    +-0.1 * 1/2 * [1, 2] = +-[0.05, 0.1]; the input vector does not move (its gradient is a sum
    of zero output vectors); the loss is 2 log 2. A second step then moves word 0 towards
    centre 1 and away from noise 2, and the loss falls."""
    import jax.numpy as jnp

    V, lr, cap = 3, jnp.float32(0.1), jnp.float32(100.0)
    syn0 = jnp.array([[1.0, 2.0], [0.3, -0.4], [0.5, 0.5], [0.0, 0.0]])  # row V = padding
    syn1 = jnp.zeros((V + 1, 2))
    centre, context, noise = jnp.array([1]), jnp.array([[0, V]]), jnp.array([[2]])
    step = w2v._cbow_batch if cbow else w2v._sg_batch
    s0, s1, loss = step(syn0, syn1, centre, context, noise, lr, cap)
    np.testing.assert_allclose(s1, [[0, 0], [0.05, 0.1], [-0.05, -0.1], [0, 0]], atol=1e-7)
    np.testing.assert_allclose(s0, syn0, atol=0)
    assert float(loss) == pytest.approx(2 * np.log(2), rel=1e-6)
    t0, t1, loss2 = step(s0, s1, centre, context, noise, lr, cap)
    score = lambda a, b, i, j: float(a[i] @ b[j])
    assert score(t0, t1, 0, 1) > score(s0, s1, 0, 1) and score(t0, t1, 0, 2) < score(s0, s1, 0, 2)
    assert float(loss2) < float(loss)
    np.testing.assert_allclose(t0[1:], syn0[1:], atol=0)  # only the context word's input vector moves
    # a noise word equal to the centre is skipped, as in the C tool: the centre alone, loss log 2
    _, u1, loss1 = step(syn0, syn1, centre, context, jnp.array([[1]]), lr, cap)
    np.testing.assert_allclose(u1, [[0, 0], [0.05, 0.1], [0, 0], [0, 0]], atol=1e-7)
    assert float(loss1) == pytest.approx(np.log(2), rel=1e-6)


def test_shared_negative_step_matches_a_loop_over_pairs():
    """One skip-gram batch against the C tool's pair-by-pair arithmetic, the noise words of a
    window shared by its context words and every update summed (a cap no row reaches)."""
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    V, D, lr = 12, 4, 0.1
    syn0, syn1 = rng.normal(size=(V + 1, D)), rng.normal(size=(V + 1, D))
    centre = np.array([1, 5, 7])
    context = np.array([[2, 3, V, 4], [6, 6, 1, 2], [V, V, V, V]])  # V = padding
    noise = np.array([[8, 1, 9], [5, 0, 3], [2, 2, 2]])  # 5 in window 2 is its own centre: skipped
    d0, d1, loss = np.zeros_like(syn0), np.zeros_like(syn1), 0.0
    for w in range(3):
        for x in context[w]:
            if x == V:
                continue
            for k, label in [(centre[w], 1)] + [(z, 0) for z in noise[w] if z != centre[w]]:
                s = syn0[x] @ syn1[k]
                g = 1 / (1 + np.exp(-s)) - label
                loss -= np.log(1 / (1 + np.exp(-s if label else s)))
                d0[x] += g * syn1[k]
                d1[k] += g * syn0[x]
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    s0, s1, l = w2v._sg_batch(f32(syn0), f32(syn1), jnp.asarray(centre), jnp.asarray(context),
                              jnp.asarray(noise), jnp.float32(lr), jnp.float32(100.0))
    np.testing.assert_allclose(np.asarray(s0), syn0 - lr * d0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(s1), syn1 - lr * d1, atol=1e-5)
    assert float(l) == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("cbow", [False, True])
def test_planted_groups_stay_together(cbow):
    """Words of group a only ever share documents with a-words, b with b: after training every
    word's 5 nearest neighbours are of its own group."""
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
    with pytest.raises(SeqjaxError, match="--corpus: no tokens in it"):
        w2v.Corpus.build([[], []])
    with pytest.raises(SeqjaxError, match=r"--min-count 9 is above every word's count"):
        w2v.Corpus.build([["a", "b", "a"]], 9)


def test_capped_update_sums_rare_rows_and_caps_frequent_ones():
    import jax.numpy as jnp

    table = jnp.zeros((3, 2))
    rows = jnp.array([0, 0, 0, 1, 2, 2])
    grads = jnp.array([[1.0, 0], [2, 0], [3, 0], [5, 5], [1, 1], [3, 3]])
    got = np.asarray(w2v._capped_add(table, rows, grads, jnp.ones(6), 1.0, 2.0))
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


def test_learning_rate_schedules_over_the_words_seen():
    """linear is the C tool's rule, unchanged; cosine is optax's, from alpha to alpha * 1e-4; each
    reaches the chunks a run trains on; an unknown schedule is refused naming the flag."""
    frac = np.linspace(0.0, 1.0, 101)
    alpha = 0.025
    np.testing.assert_array_equal(w2v.word_rate(alpha, "linear", frac),
                                  (alpha * np.maximum(1.0 - frac, 1e-4)).astype(np.float32))
    np.testing.assert_array_equal(w2v.word_rate(alpha, "constant", frac), np.float32(alpha))
    cos = w2v.word_rate(alpha, "cosine", frac)
    want = alpha * (1e-4 + (1 - 1e-4) * 0.5 * (1 + np.cos(np.pi * frac)))
    np.testing.assert_allclose(cos, want, rtol=1e-5, atol=1e-9)  # float32 near the end
    n = 400
    corpus = w2v.Corpus(np.arange(n, dtype=np.int32), np.zeros(n, np.int32), [f"w{i}" for i in range(n)],
                        np.ones(n, np.int64))
    for schedule in ("constant", "cosine"):
        cfg = configs.Word2VecConfig(window=2, sample=0, epochs=2, batch_size=8, negative=2, lr_schedule=schedule)
        lrs = np.concatenate([c.lr for c in w2v.chunks(corpus, cfg, np.random.default_rng(0), steps_per_call=4)])
        if schedule == "constant":
            assert (lrs == np.float32(cfg.alpha)).all()
        else:
            assert lrs[0] > 0.99 * cfg.alpha and lrs[-1] < 0.01 * cfg.alpha
    with pytest.raises(SeqjaxError, match="--lr-schedule"):
        configs.Word2VecConfig(lr_schedule="warmup-cosine")
