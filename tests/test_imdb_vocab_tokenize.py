import tarfile

import numpy as np
import pytest

from conftest import make_imdb_tar
from seqjax import SeqjaxError
from seqjax.data import imdb, tokenize, vocab


def test_archive_and_folder_give_same_records(tmp_path, tiny_reviews):
    tar = make_imdb_tar(tmp_path / "a.tar.gz", tiny_reviews)
    a = imdb.read_archive(tar)
    with tarfile.open(tar) as t:
        t.extractall(tmp_path / "x", filter="data")
    b = imdb.read_archive(tmp_path / "x")
    c = imdb.read_archive(tmp_path / "x" / "aclImdb")
    for d in (b, c):
        assert d["train"].texts == a["train"].texts
        np.testing.assert_array_equal(d["train"].labels, a["train"].labels)
    assert len(a["train"]) == 6 and len(a["test"]) == 2
    assert a["train"].labels.dtype == np.int32 and a["train"].labels.sum() == 3
    assert "loved it" in [t for t, l in zip(a["train"].texts, a["train"].labels) if l == 1]


def test_truncated_archive_is_a_clear_error(tmp_path, tiny_reviews):
    tar = make_imdb_tar(tmp_path / "a.tar.gz", {k: v * 50 for k, v in tiny_reviews.items()})
    data = tar.read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SeqjaxError, match=r"cut.tar.gz: the archive is truncated or corrupt"):
        imdb.read_archive(tmp_path / "cut.tar.gz")


def test_wrong_layout_and_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeqjaxError, match="give aclImdb_v1.tar.gz or a folder in the Stanford layout"):
        imdb.read_archive(tmp_path / "empty")
    with pytest.raises(SeqjaxError, match="no such IMDB archive"):
        imdb.read_archive(tmp_path / "nope.tar.gz")


def test_load_auto_uses_offline_folder(tmp_path, tiny_reviews, monkeypatch):
    (tmp_path / "d").mkdir()
    make_imdb_tar(tmp_path / "d" / "x.tar.gz", tiny_reviews)
    with tarfile.open(tmp_path / "d" / "x.tar.gz") as t:
        t.extractall(tmp_path / "d", filter="data")
    d = imdb.load("auto", str(tmp_path / "d"))
    assert len(d["train"]) == 6


def test_tfds_source_gives_same_record_format():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=7):
        d = imdb.read_tfds()
    assert len(d["train"]) == 7 and isinstance(d["train"].texts[0], str)
    assert d["train"].labels.dtype == np.int32 and set(d["train"].labels) <= {0, 1}


def test_seeded_train_valid_split():
    s = imdb.Split([str(i) for i in range(100)], np.arange(100, dtype=np.int32) % 2)
    tr, va = imdb.train_valid_split(s, 0.3, seed=1)
    tr2, va2 = imdb.train_valid_split(s, 0.3, seed=1)
    assert len(tr) == 70 and len(va) == 30 and tr.texts == tr2.texts
    assert not set(tr.texts) & set(va.texts)
    assert imdb.train_valid_split(s, 0.3, seed=2)[1].texts != va.texts


def test_regex_tokenizer():
    assert tokenize.regex_tokenize("I didn't like it!<br /><br />It's BAD.") == [
        "i", "did", "n't", "like", "it", "!", "it", "'s", "bad", "."]
    assert tokenize.regex_tokenize("Hello", lower=False) == ["Hello"]
    with pytest.raises(SeqjaxError, match="unknown"):
        tokenize.get_tokenizer("nope")


def test_vocab_order_specials_and_json(tmp_path):
    toks = [["b", "a", "c"], ["a", "b"], ["a"], ["d"]]
    v = vocab.Vocab.build(toks, max_size=3)
    assert v.itos == ["<unk>", "<pad>", "a", "b", "c"]  # ties alphabetical, d cut
    np.testing.assert_array_equal(v.encode(["a", "zzz", "d"]), [2, 0, 0])
    v.save(tmp_path / "v.json")
    assert vocab.Vocab.load(tmp_path / "v.json").itos == v.itos
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SeqjaxError, match="bad.json: not a seqjax vocab"):
        vocab.Vocab.load(tmp_path / "bad.json")
    with pytest.raises(SeqjaxError, match="no tokens"):
        vocab.Vocab.build([[]])


def test_spacy_tokenizer_agrees_with_regex_on_plain_text():
    spacy_tok = tokenize.get_tokenizer("spacy")  # spacy.blank("en"): no model download
    regex_tok = tokenize.get_tokenizer("regex")
    for text in ["I didn't like it!<br /><br />It's BAD.", "A great film, truly great.", "Why? Because we're here."]:
        assert spacy_tok(text) == regex_tok(text)
