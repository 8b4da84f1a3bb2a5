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


def _four_class_files(tmp_path, rng):
    topics = {"sport": "goal match team score", "weather": "rain sunny cloud storm",
              "money": "stocks bank market price", "food": "bread soup cheese apple"}
    filler = "the a today it was and very".split()

    def rows(n):
        out = []
        for i in range(n):
            name = list(topics)[i % 4]
            words = list(rng.choice(filler, int(rng.integers(2, 8)))) + list(rng.choice(topics[name].split(), 2))
            rng.shuffle(words)
            out.append((" ".join(words), name))
        return out

    for split, n in (("train", 160), ("test", 40)):
        (tmp_path / f"{split}.tsv").write_text("label\ttext\n" + "".join(f"{y}\t{t}\n" for t, y in rows(n)))
    return tmp_path / "train.tsv", tmp_path / "test.tsv"


def test_a_four_class_dataset_of_ones_own_trains_tests_and_predicts_by_name(tmp_path, capsys):
    """``imdb train --train-file --test-file`` on 4 classes: 4 logits, test accuracy far above
    chance, a confusion matrix over the test texts, and ``predict`` names the class."""
    from seqjax import configs
    from seqjax.tasks import imdb

    train, test = _four_class_files(tmp_path, np.random.default_rng(0))
    cfg = configs.ImdbConfig(model="cnn", vectors="none", embed=16, train_file=str(train), test_file=str(test),
                             batch_size=16, epochs=6, optimizer="adam", lr=0.01, dropout=0.0,
                             out=str(tmp_path / "run"), results=str(tmp_path / "r.json"))
    r = imdb.run(cfg)
    assert r["classes"] == ["food", "money", "sport", "weather"]
    assert r["test_accuracy"] > 0.8, r["test_accuracy"]  # chance: 0.25
    conf = np.array(r["test_confusion"])
    assert conf.shape == (4, 4) and conf.sum() == 40 and np.trace(conf) == round(40 * r["test_accuracy"])
    capsys.readouterr()
    probs = imdb.predict(cfg.out, ["rain storm cloud", "bank stocks price"], as_json=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert probs.shape == (2, 4) and [row["label"] for row in lines] == ["weather", "money"]
    assert abs(sum(lines[0]["p"].values()) - 1) < 1e-4
    assert imdb.evaluate_run(cfg.out, cfg)["test_accuracy"] == r["test_accuracy"]


def test_a_four_class_pytorch_head_imports_and_predicts_as_pytorch(tmp_path):
    """``import-torch`` of a FastText whose head has 4 outputs: seqjax's class probabilities are
    PyTorch's softmax, text by text."""
    torch = pytest.importorskip("torch")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from experiments.reference import models as ref
    from seqjax import configs
    from seqjax.tasks import imdb

    words = "rain sunny goal match bank stocks bread soup the a".split()
    itos = ["<unk>", "<pad>"] + words
    torch.manual_seed(0)
    model = ref.FastText(len(itos), 8, pad_idx=1, outputs=4)
    with torch.no_grad():
        model.embedding.weight.mul_(3.0)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    (tmp_path / "itos.txt").write_text("\n".join(itos) + "\n")
    cfg = configs.ImdbConfig(model="fasttext", out=str(tmp_path / "run"))
    imdb.import_torch(cfg, str(tmp_path / "model.pt"), str(tmp_path / "itos.txt"))
    texts = ["rain sunny", "goal match the", "bank stocks", "bread soup a"]
    pred = imdb.load(str(tmp_path / "run"))
    ours = pred(texts)
    stoi = {w: i for i, w in enumerate(itos)}
    with torch.no_grad():
        theirs = [torch.softmax(model(torch.tensor([[stoi.get(w, 0) for w in imdb.preprocess(cfg, [t])[0]]])), -1)
                  [0].numpy() for t in texts]
    assert pred.names == ["0", "1", "2", "3"] and ours.shape == (4, 4)
    assert np.ptp(np.array(theirs)[:, 0]) > 0.05  # the texts get different probabilities
    np.testing.assert_allclose(ours, np.array(theirs), atol=1e-5)
