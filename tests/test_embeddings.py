import re
import subprocess
import sys

import numpy as np
import pytest

from seqjax import SeqjaxError, cli
from seqjax import embeddings as emb
from seqjax import word2vec as w2v
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
    assert "total" in res.table() and "3CosAdd" in res.table() and "all 9 words" in res.table()
    res = emb.evaluate_analogies(_toy(), emb.read_questions(f), restrict=None, metric="euclidean")
    assert "Euclidean" in res.table()
    res = emb.evaluate_analogies(_toy(), emb.read_questions(f), restrict=4, metric="cosine")
    assert res.sections["capital"] == (0, 0, 2)
    assert "the 4 most frequent of 9 words" in res.table()


def test_bad_question_files(tmp_path):
    (tmp_path / "a.txt").write_text(": s\nman king woman\n")
    with pytest.raises(SeqjaxError, match=r"a.txt:2: expected 4 words, got 3"):
        emb.read_questions(tmp_path / "a.txt")
    (tmp_path / "b.txt").write_text("man king woman queen\n")
    with pytest.raises(SeqjaxError, match=r"b.txt:1: a question before any"):
        emb.read_questions(tmp_path / "b.txt")
    with pytest.raises(SeqjaxError, match="no such analogy file"):
        emb.read_questions(tmp_path / "c.txt")


def _planted(n=3000, dim=16, seed=0, questions=400):
    """Random vectors with analogy structure planted in some questions, and case variants."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n)]
    words[7], words[40], words[n - 5] = "Paris", "paris", "PARIS"  # one form, three spellings
    V = rng.normal(size=(n, dim)).astype(np.float32)
    quads = []
    for q in range(questions):
        a, b, c, d = rng.choice(n - 1, 4, replace=False) + 1
        if q % 3 == 1:  # planted: d = b - a + c (+ noise), so 3CosAdd often finds it
            V[d] = V[b] - V[a] + V[c] + 0.3 * rng.normal(size=dim)
        elif q % 3 == 2:  # b ~ a, so c itself is nearest to b - a + c: right only if c is excluded
            V[b] = V[a] + 0.05 * rng.normal(size=dim)
            V[d] = V[c] + 0.3 * rng.normal(size=dim)
        quads.append((words[a], words[b], words[c], words[d]))
    quads += [("paris", "w1", "w2", "w3"), ("w5", "w6", "PARIS", "w9"), ("w1", "w2", "w3", "absent")]
    return WordVectors(words, V), quads


def _question_file(tmp_path, quads):
    f = tmp_path / "q.txt"
    lines = [": first"] + [" ".join(q) for q in quads[:200]] + [": second"] + [" ".join(q) for q in quads[200:]]
    f.write_text("\n".join(lines) + "\n")
    return f


@pytest.mark.parametrize("restrict", [None, 2000])
def test_analogy_scores_equal_gensims(tmp_path, restrict):
    from gensim.models import KeyedVectors

    wv, quads = _planted()
    f = _question_file(tmp_path, quads)
    kv = KeyedVectors(wv.dim)
    kv.add_vectors(wv.words, wv.vectors)
    score, sections = kv.evaluate_word_analogies(str(f), restrict_vocab=restrict or len(wv))
    ours = emb.evaluate_analogies(wv, emb.read_questions(f, lower=False), restrict, "cosine", block=96, chunk=256)
    for s in sections[:-1]:
        assert ours.sections[s["section"]][:2] == (len(s["correct"]), len(s["correct"]) + len(s["incorrect"]))
    assert ours.accuracy == pytest.approx(score) and 0.2 < score < 0.8


def test_euclidean_evaluation_matches_brute_force(tmp_path):
    wv, quads = _planted(n=1000, questions=100)
    quads = [q for q in quads if all(w in wv for w in q)]
    f = _question_file(tmp_path, quads)
    ours = emb.evaluate_analogies(wv, emb.read_questions(f, lower=False), None, "euclidean",
                                  block=64, chunk=128, case_insensitive=False)
    E, correct = wv.vectors, 0
    for a, b, c, d in quads:
        i = [wv.index[w] for w in (a, b, c)]
        dist = np.linalg.norm(E - (E[i[1]] - E[i[0]] + E[i[2]]), axis=1)
        dist[i] = np.inf
        correct += wv.words[int(np.argmin(dist))] == d
    assert ours.correct == correct and ours.answered == len(quads)


def test_most_similar_matches_gensim():
    from gensim.models import KeyedVectors

    wv, _ = _planted(n=800)
    kv = KeyedVectors(wv.dim)
    kv.add_vectors(wv.words, wv.vectors)
    queries = [dict(positive=["w3", "w9"], negative=["w4"], topn=7),
               dict(positive="w10", topn=5),
               dict(positive=[("w1", 2.0), "w2"], negative=[("w3", -0.5)], topn=4),
               dict(positive=["w5"], negative=["w6", "w8"], topn=6, restrict_vocab=300),
               dict(positive=[wv.vectors[11]], topn=3)]
    for q in queries:
        ours, theirs = wv.most_similar(**q), kv.most_similar(**q)
        assert [w for w, _ in ours] == [w for w, _ in theirs], q
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wv.most_similar(["w3"], topn=None), kv.most_similar(["w3"], topn=None), atol=1e-6)
    assert wv.similarity("w1", "w2") == pytest.approx(float(kv.similarity("w1", "w2")), rel=1e-5)
    with pytest.raises(SeqjaxError, match="'nope' is not in the vocabulary"):
        wv.most_similar(["w1", "nope"])


def _pair_file(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_word_pairs_read_tab_or_space_and_skip_comments(tmp_path):
    f = _pair_file(tmp_path, "p.txt", "# Word 1\tWord 2\tHuman (mean)\nlove\tsex\t6.77\n\n"
                                      "tiger cat 7.35\n  # indented comment\nold\tnew york\t1.5\n")
    assert emb.read_word_pairs(f) == [("love", "sex", 6.77), ("tiger", "cat", 7.35), ("old", "new york", 1.5)]


@pytest.mark.parametrize("text, match", [
    ("", r"no word pairs"),
    ("# only a comment\n\n", r"no word pairs"),
    ("a b 1\nWord1 Word2 Score\n", r"p.txt:2: expected 'word1 word2 score'"),
    ("a b\n", r"p.txt:1: expected 'word1 word2 score'"),
    ("a\tb\t1\tx\n", r"p.txt:1: expected"),
])
def test_bad_word_pair_files(tmp_path, text, match):
    with pytest.raises(SeqjaxError, match=match):
        emb.read_word_pairs(_pair_file(tmp_path, "p.txt", text))


def test_word_pair_scores_equal_gensims(tmp_path):
    from gensim.models import KeyedVectors

    wv, _ = _planted(n=600)
    rng = np.random.default_rng(1)
    rows = [f"{wv.words[i]}\t{wv.words[j]}\t{s:.2f}" for i, j, s in
            zip(rng.integers(0, 600, 60), rng.integers(0, 600, 60), rng.uniform(0, 10, 60))]
    rows += ["zebra\tw1\t3.0", "PARIS\tw3\t8.0", "w1\tw599\t2.5"]  # unknown, another case, restricted out
    f = _pair_file(tmp_path, "pairs.tsv", "# made up\n" + "\n".join(rows) + "\n")
    kv = KeyedVectors(wv.dim)
    kv.add_vectors(wv.words, wv.vectors)
    pearson, spearman, oov = kv.evaluate_word_pairs(str(f), restrict_vocab=500)
    ours = emb.evaluate_word_pairs(wv, f, restrict=500)
    assert ours.spearman == pytest.approx(spearman[0], abs=1e-6)
    assert ours.pearson == pytest.approx(pearson[0], abs=1e-6)
    assert ours.spearman_p == pytest.approx(spearman[1], rel=1e-4)
    assert ours.oov_ratio == pytest.approx(oov) and ours.oov >= 2
    assert ours.pairs + ours.oov == len(rows)
    assert "the 500 most frequent of 600 words" in ours.table()


def test_all_pairs_out_of_vocabulary(tmp_path):
    f = _pair_file(tmp_path, "p.txt", "zebra giraffe 3\nlion tiger 5\n")
    with pytest.raises(SeqjaxError, match=r"p.txt: 2 of 2 pairs have a word outside the vocabulary"):
        emb.evaluate_word_pairs(_toy(), f)


def _vectors_file(tmp_path):
    wv, _ = _planted(n=300)
    w2v.save_text(wv, tmp_path / "v.txt")
    return wv, tmp_path / "v.txt"


def test_similarity_cli(tmp_path, capsys):
    wv, vec = _vectors_file(tmp_path)
    f = _pair_file(tmp_path, "p.txt", "w1 w2 1\nw3 w4 2\nw5 w6 3\nw10 zebra 4\nw8 w9 5\n")
    assert cli.main(["embeddings", "similarity", str(f), "--vectors", str(vec)]) == 0
    out = capsys.readouterr().out
    want = emb.evaluate_word_pairs(wv, f)
    rho, r = (float(re.search(rf"{name}\s+(-?\d\.\d{{4}})", out).group(1)) for name in ("Spearman rho", "Pearson r"))
    assert rho == pytest.approx(want.spearman, abs=1e-4) and r == pytest.approx(want.pearson, abs=1e-4)
    assert "pairs used    4 of 5; 1 out of vocabulary (20.00 %)" in out
    assert "cosine similarity" in out and "all 300 words" in out


def test_evaluate_cli_ranks_by_cosine_unless_told(tmp_path, capsys):
    wv, vec = _vectors_file(tmp_path)
    q = tmp_path / "q.txt"
    q.write_text(": s\nw1 w2 w3 w4\nw5 w6 w7 w8\n")
    assert cli.main(["embeddings", "evaluate", str(q), "--vectors", str(vec), "--restrict", "100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3CosAdd") and "the 100 most frequent of 300 words" in out
    assert cli.main(["embeddings", "evaluate", str(q), "--vectors", str(vec), "--metric", "euclidean"]) == 0
    assert "Euclidean distance" in capsys.readouterr().out


@pytest.mark.parametrize("text, match", [
    ("", "no word pairs"),
    ("w1 w2 high\n", "p.txt:1: expected 'word1 word2 score'"),
    ("zebra giraffe 3\nlion tiger 5\n", "2 of 2 pairs have a word outside the vocabulary"),
])
def test_similarity_cli_bad_inputs_exit_2_with_one_line(tmp_path, text, match):
    _, vec = _vectors_file(tmp_path)
    f = _pair_file(tmp_path, "p.txt", text)
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", "embeddings", "similarity", str(f), "--vectors", str(vec)],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("seqjax: error:") and match in r.stderr and len(r.stderr.strip().splitlines()) == 1
