import numpy as np
import pytest

from seqjax import SeqjaxError
from seqjax.data import text


def test_read_text_lowercases_and_rejects_bad_utf8(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes("Hello Wörld".encode())
    assert text.read_text(p) == "hello wörld"
    p.write_bytes(b"abc\xffdef")
    with pytest.raises(SeqjaxError, match=r"--text \S*t.txt: byte 3 .* not valid UTF-8.*--text-errors replace"):
        text.read_text(p, can_replace=True)
    with pytest.raises(SeqjaxError, match=r"--corpus \S*t.txt: byte 3 .*-t utf-8\)$"):  # no flag it lacks
        text.read_text(p, flag="--corpus")
    assert text.read_text(p, errors="replace") == "abc\ufffddef"


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(SeqjaxError, match="nope.txt: no such file; give an existing UTF-8 text file"):
        text.read_text(tmp_path / "nope.txt")
    with pytest.raises(SeqjaxError, match="a folder, not a file"):
        text.read_text(tmp_path)
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(SeqjaxError, match="empty"):
        text.read_text(tmp_path / "e.txt")


def test_windows_are_the_labs():
    ids = np.arange(100, dtype=np.int32)
    x, y = text.windows(ids, maxlen=40, step=3)
    assert x.shape == ((100 - 40 - 1) // 3 + 1, 40) and x.dtype == np.int32
    np.testing.assert_array_equal(x[2], np.arange(6, 46))
    np.testing.assert_array_equal(y, x[:, -1] + 1)


def test_held_out_tail_untouched_by_training_windows():
    corpus = text.CharCorpus.from_text("abcdefghij" * 100, valid_fraction=0.1)
    assert len(corpus.valid_ids) == 100 and len(corpus.train_ids) == 900
    x, y = text.windows(corpus.train_ids)
    assert x.size and (x.max(initial=0) < len(corpus.vocab))
    # every window plus its target lies inside the head
    assert (len(x) - 1) * 3 + 40 < len(corpus.train_ids)


def test_vocab_round_trip_and_unknown_chars():
    v = text.CharVocab.build("hello world")
    ids = v.encode("hold")
    assert ids.dtype == np.int32 and v.decode(ids) == "hold"
    assert text.CharVocab.from_json(v.to_json()) == v
    with pytest.raises(SeqjaxError, match=r"outside the vocabulary: 'z'"):
        v.encode("zoo")


def test_context_windows_cross_the_split():
    train = np.arange(50, dtype=np.int32)
    valid = np.arange(50, 55, dtype=np.int32)
    x, y = text.context_windows(valid, train, maxlen=4)
    np.testing.assert_array_equal(x[0], [46, 47, 48, 49])
    np.testing.assert_array_equal(x[4], [50, 51, 52, 53])
    np.testing.assert_array_equal(y, valid)
