"""Labelled texts from TSV and JSON-lines files (seqjax.data.labelled)."""

import json

import numpy as np
import pytest

from seqjax import SeqjaxError
from seqjax.data import labelled


def test_tsv_and_jsonl_give_the_same_splits_and_sorted_class_names(tmp_path):
    rows = [("a fine day", "sports"), ("rain again", "weather"), ("goal!", "sports"), ("stocks fell", "business")]
    (tmp_path / "train.tsv").write_text("\ufeffid\tlabel\ttext\n" + "".join(
        f"{i}\t{y}\t{t}\r\n" for i, (t, y) in enumerate(rows)) + "\n", encoding="utf-8")
    (tmp_path / "test.tsv").write_text("text\tlabel\nsunny\tweather\n")
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in rows) + "\n\n")
    (tmp_path / "test.jsonl").write_text(json.dumps({"label": "weather", "text": "sunny"}) + "\n")
    for ext in ("tsv", "jsonl"):
        splits, names = labelled.load(tmp_path / f"train.{ext}", tmp_path / f"test.{ext}")
        assert names == ["business", "sports", "weather"]
        assert splits["train"].texts == [t for t, _ in rows]
        assert list(splits["train"].labels) == [1, 2, 1, 0] and splits["train"].labels.dtype == np.int32
        assert splits["test"].texts == ["sunny"] and list(splits["test"].labels) == [2]
        assert "valid" not in splits


def test_numeric_labels_sort_by_value(tmp_path):
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": str(i), "label": y}) + "\n"
                                              for i, y in enumerate([10, 2, 1, 2])))
    splits, names = labelled.load(tmp_path / "t.jsonl", "")
    assert names == ["1", "2", "10"] and list(splits["train"].labels) == [2, 1, 0, 1]


@pytest.mark.parametrize("name,content,says", [
    ("a.tsv", "words\tlabel\nhi\tx\n", r"a.tsv:1: the header row \['words', 'label'\] lacks 'text' or 'label'"),
    ("b.tsv", "text\tlabel\nhi\tx\nhi\tthere\tx\n", r"b.tsv:3: 3 tab-separated fields, the header has 2"),
    ("c.jsonl", '{"text": "hi", "label": "x"}\n{"text": "hi"\n', r"c.jsonl:2: not JSON"),
    ("d.jsonl", '{"text": "hi", "label": true}\n', r"d.jsonl:1: expected an object with a string \"text\""),
    ("e.jsonl", '{"text": "hi", "label": "x"}\n{"text": "ho", "label": "x"}\n', r"every example has the label 'x'"),
    ("f.txt", "hi\n", r"f.txt: cannot tell the format from the extension"),
    ("g.jsonl", "\n\n", r"g.jsonl: no examples"),
])
def test_bad_files_are_refused_naming_the_file_and_line(tmp_path, name, content, says):
    (tmp_path / name).write_text(content)
    with pytest.raises(SeqjaxError, match=says):
        labelled.load(tmp_path / name, "")


def test_a_label_the_training_file_lacks_is_refused(tmp_path):
    (tmp_path / "tr.tsv").write_text("text\tlabel\na\tx\nb\ty\n")
    (tmp_path / "te.tsv").write_text("text\tlabel\nc\tz\n")
    with pytest.raises(SeqjaxError, match=r"te.tsv: label 'z' is not among the training file's classes \(x, y\)"):
        labelled.load(tmp_path / "tr.tsv", tmp_path / "te.tsv")
    with pytest.raises(SeqjaxError, match="nope.tsv: no such file"):
        labelled.load(tmp_path / "nope.tsv", "")
