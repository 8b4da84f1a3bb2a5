"""`seqjax imdb|charlm import-torch` end to end: a small PyTorch model of the lab's, trained a few
steps on made-up data and saved with ``torch.save(model.state_dict())`` plus its vocabulary,
becomes a seqjax run folder whose ``predict`` / ``evaluate`` / ``sample`` agree with PyTorch;
bad inputs stop with one line and exit status 2."""

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import make_imdb_tar  # noqa: E402
from experiments.reference import models as ref  # noqa: E402

from seqjax import cli, configs  # noqa: E402
from seqjax.tasks import imdb as imdb_task  # noqa: E402

pytestmark = pytest.mark.usefixtures("highest_precision")  # parity to 1e-5, in this file only
POS = ["good", "great", "fine", "lovely", "superb"]
NEG = ["bad", "awful", "poor", "dull", "boring"]
FILLER = ["the", "film", "plot", "actor", "was", "is", "a", "and", "very"]
UNSEEN = "superb"  # left out of the vocabulary: maps to <unk>


def _texts(rng, n):
    """``n`` made-up reviews (lower-case words and spaces, so ``str.split`` tokenizes them as
    seqjax's regex tokenizer does) and their labels."""
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.integers(2))
        words = list(rng.choice(FILLER, rng.integers(1, 8))) + list(rng.choice(POS if y else NEG, rng.integers(1, 4)))
        texts.append(" ".join(rng.permutation(words)))
        labels.append(y)
    return texts, labels


def _bigrams(tokens):
    """The tutorial's ``generate_bigrams``: the tokens, then each distinct bigram once."""
    return tokens + sorted({f"{a} {b}" for a, b in zip(tokens, tokens[1:])})


# model -> (PyTorch factory(vocab, pad), how it reads a batch, vocab file, specials order)
CASES = {
    "cnn": (lambda v, pad: ref.CNN2d(v, 8, 6, (2, 3, 4), 0.5, pad_idx=pad, names="conv_i"), "alone", "itos.txt",
            ["<unk>", "<pad>"]),
    "bilstm": (lambda v, pad: ref.BiLSTM(v, 8, 6, 2, 0.5, pad_idx=pad), "packed", "itos.json", ["<pad>", "<unk>"]),
    "fasttext": (lambda v, pad: ref.FastText(v, 8, pad_idx=pad, outputs=2), "alone", "stoi.json", ["<unk>", "<pad>"]),
}


def _encode(tokens, stoi):
    return [stoi.get(t, stoi["<unk>"]) for t in tokens]


def _torch_probs(model, name, texts, stoi, how, min_len=1):
    """PyTorch's P(positive) for each text, read as the tutorial's ``predict_sentiment`` does."""
    model.eval()
    out = []
    with torch.no_grad():
        for t in texts:
            toks = _bigrams(t.split()) if name == "fasttext" else t.split()
            toks += ["<pad>"] * (min_len - len(toks))
            x = torch.tensor([_encode(toks, stoi)])
            z = model(x, torch.tensor([x.shape[1]])) if how == "packed" else model(x)
            out.append(float(torch.softmax(z, -1)[0, 1] if z.ndim == 2 else torch.sigmoid(z)[0]))
    return np.array(out)


def _train_torch(name, tmp_path):
    """A few Adam steps of the lab's ``name`` model on made-up reviews; saves the state_dict and
    the vocabulary. Returns ``(model, stoi, state_dict path, vocab path, min_len)``."""
    factory, how, vocab_file, specials = CASES[name]
    rng = np.random.default_rng(0)
    texts, labels = _texts(rng, 64)
    toks = [(_bigrams(t.split()) if name == "fasttext" else t.split()) for t in texts]
    words = sorted({w for ts in toks for w in ts} - {UNSEEN})
    itos = specials + words
    stoi = {w: i for i, w in enumerate(itos)}
    torch.manual_seed(0)
    model = factory(len(itos), stoi["<pad>"])
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(12):
        idx = rng.choice(len(texts), 16, replace=False)
        seqs = [_encode(toks[i], stoi) for i in idx]
        T = max(max(map(len, seqs)), 4)
        x = torch.full((16, T), stoi["<pad>"], dtype=torch.long)
        for r, s in enumerate(seqs):
            x[r, :len(s)] = torch.tensor(s)
        y = torch.tensor([labels[i] for i in idx])
        z = model(x, torch.tensor([len(s) for s in seqs])) if how == "packed" else model(x)
        loss = (torch.nn.functional.cross_entropy(z, y) if z.ndim == 2 else
                torch.nn.functional.binary_cross_entropy_with_logits(z, y.float()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    vocab_path = tmp_path / vocab_file
    if vocab_file.endswith(".txt"):
        vocab_path.write_text("\n".join(itos) + "\n")
    elif vocab_file.startswith("stoi"):
        vocab_path.write_text(json.dumps(stoi))
    else:
        vocab_path.write_text(json.dumps(itos))
    return model, stoi, tmp_path / "model.pt", vocab_path, (4 if name == "cnn" else 1)


NEW_TEXTS = ["a very good film", "the plot was awful and dull", "superb", "good", "the actor is boring boring poor",
             "lovely superb fine film and a great plot"]


@pytest.mark.parametrize("name", list(CASES))
def test_imported_model_predicts_what_pytorch_predicts(name, tmp_path, capsys):
    model, stoi, sd_path, vocab_path, min_len = _train_torch(name, tmp_path)
    run = tmp_path / "run"
    assert cli.main(["imdb", "import-torch", "--state-dict", str(sd_path), "--vocab", str(vocab_path),
                     "--model", name, "--out", str(run)]) == 0
    theirs = _torch_probs(model, name, NEW_TEXTS, stoi, CASES[name][1], min_len)
    assert theirs.max() - theirs.min() > 0.05  # trained: the texts get different probabilities
    ours = imdb_task.Predictor(str(run / "checkpoints"))(NEW_TEXTS)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    capsys.readouterr()
    assert cli.main(["imdb", "predict", "--out", str(run), *NEW_TEXTS]) == 0  # the CLI, unchanged
    printed = [float(line.split()[0]) for line in capsys.readouterr().out.splitlines() if line.strip()]
    np.testing.assert_allclose(printed, theirs, atol=6e-5)


def _data_dir(tmp_path, texts, labels):
    """An extracted ``aclImdb/`` with these test reviews (and two training ones)."""
    d = tmp_path / "data"
    d.mkdir()
    reviews = {("train", "pos"): ["good"], ("train", "neg"): ["bad"],
               ("test", "pos"): [t for t, y in zip(texts, labels) if y],
               ("test", "neg"): [t for t, y in zip(texts, labels) if not y]}
    make_imdb_tar(tmp_path / "a.tar.gz", reviews)
    with tarfile.open(tmp_path / "a.tar.gz") as t:
        t.extractall(d, filter="data")
    return d


def test_evaluate_gives_pytorch_accuracy_of_an_imported_model(tmp_path, capsys):
    model, stoi, sd_path, vocab_path, min_len = _train_torch("cnn", tmp_path)
    assert cli.main(["imdb", "import-torch", "--state-dict", str(sd_path), "--vocab", str(vocab_path),
                     "--model", "cnn", "--out", str(tmp_path / "run")]) == 0
    texts, labels = _texts(np.random.default_rng(7), 40)
    probs = _torch_probs(model, "cnn", texts, stoi, "alone", min_len)
    expect = np.mean((probs > 0.5) == np.array(labels, bool))
    assert 0.5 < expect < 1.0  # a few steps: better than chance, not perfect
    d = _data_dir(tmp_path, texts, labels)
    capsys.readouterr()
    out_json = tmp_path / "eval.json"
    assert cli.main(["imdb", "evaluate", "--run", str(tmp_path / "run"), "--data-dir", str(d),
                     "--results", str(out_json)]) == 0
    acc = float(re.search(r"accuracy (\d+\.\d+)% on 40 reviews", capsys.readouterr().out)[1])
    assert acc == pytest.approx(100 * expect, abs=0.005)
    assert json.loads(out_json.read_text())["test_accuracy"] == pytest.approx(expect)


def test_evaluate_reproduces_a_trained_runs_test_number(tmp_path):
    """On a run trained here, evaluate scores the best-validation epoch, as ``imdb train`` did
    (noisy labels make a later epoch worse, so the last checkpoint gives another number)."""
    rng = np.random.default_rng(3)
    texts, labels = _texts(rng, 40)
    d = _data_dir(tmp_path, texts, labels)
    train_texts, train_labels = _texts(rng, 60)
    for i, (t, y) in enumerate(zip(train_texts, train_labels)):
        y = y if rng.random() > 0.3 else 1 - y
        (d / "aclImdb" / "train" / ("pos" if y else "neg") / f"x{i}_5.txt").write_text(t)
    cfg = configs.ImdbConfig(model="fasttext", data_dir=str(d), vectors="none", epochs=5, batch_size=8,
                             lr=0.02, out=str(tmp_path / "run"))
    res = imdb_task.train(cfg)
    assert res["best_epoch"] < cfg.epochs
    ev = configs.ImdbConfig(data_dir=str(d), batch_size=8)
    got = imdb_task.evaluate_run(str(tmp_path / "run"), ev)
    assert got["params"].endswith("best_params.msgpack") and got["test_reviews"] == 40
    assert got["test_loss"] == pytest.approx(res["test_loss"], abs=1e-6)
    assert got["test_accuracy"] == res["test_accuracy"]
    (tmp_path / "run" / "best_params.msgpack").unlink()
    last = imdb_task.evaluate_run(str(tmp_path / "run" / "checkpoints"), ev)
    assert "step" in last["params"] and abs(last["test_loss"] - res["test_loss"]) > 1e-3


def test_charlm_import_samples_what_pytorch_predicts(tmp_path, capsys):
    text = "the cat sat on the mat. the dog sat on the log. " * 20
    chars = sorted(set(text))
    ix = {c: i for i, c in enumerate(chars)}
    torch.manual_seed(0)
    model = ref.CharPredictor(len(chars), 8, 32, layers=2)
    opt = torch.optim.RMSprop(model.parameters(), lr=0.01)
    ids = np.array([ix[c] for c in text])
    rng = np.random.default_rng(0)
    for _ in range(30):
        starts = rng.integers(0, len(ids) - 41, 32)
        x = torch.tensor(np.stack([ids[s:s + 40] for s in starts]))
        y = torch.tensor(ids[starts + 40])
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), tmp_path / "char.pt")
    (tmp_path / "chars.json").write_text(json.dumps(chars))
    assert cli.main(["charlm", "import-torch", "--state-dict", str(tmp_path / "char.pt"),
                     "--vocab", str(tmp_path / "chars.json"), "--out", str(tmp_path / "run")]) == 0
    seed, n = "the dog sat on", 30
    model.eval()
    greedy = seed
    with torch.no_grad():
        for _ in range(n):
            z = model(torch.tensor([[ix[c] for c in greedy]]))[0]  # seqjax carries the state from the seed's start
            top2 = torch.topk(z, 2).values
            assert top2[0] - top2[1] > 1e-2  # no near-tie for a tiny temperature to break either way
            greedy += chars[int(z.argmax())]
    capsys.readouterr()
    assert cli.main(["charlm", "sample", "--out", str(tmp_path / "run"), "--seed-text", seed,
                     "--temperature", "0.0001", "--length", str(n)]) == 0
    assert capsys.readouterr().out.rstrip("\n") == greedy


# ---- bad inputs: one line, exit status 2 -------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    words = ["<unk>", "<pad>", "good", "bad", "film"]
    torch.save(ref.CNN2d(len(words), 6, 4, names="convs").state_dict(), tmp_path / "cnn.pt")
    (tmp_path / "itos.json").write_text(json.dumps(words))
    (tmp_path / "short.json").write_text(json.dumps(words[:-1]))
    (tmp_path / "dup.txt").write_text("<unk>\n<pad>\ngood\ngood\nfilm\n")
    torch.save({"not": "tensors"}, tmp_path / "junk.pt")
    torch.save(ref.CharPredictor(3, 4, 8).state_dict(), tmp_path / "char.pt")
    (tmp_path / "chars.json").write_text(json.dumps(["a", "b"]))
    return tmp_path


BAD = {
    "missing state_dict": (["imdb", "import-torch", "--state-dict", "{d}/nope.pt", "--vocab", "{d}/itos.json",
                            "--model", "cnn", "--out", "{d}/r"], r"--state-dict \S*nope.pt: no such file"),
    "missing vocab": (["imdb", "import-torch", "--state-dict", "{d}/cnn.pt", "--vocab", "{d}/nope.json",
                       "--model", "cnn", "--out", "{d}/r"], r"--vocab \S*nope.json: no such file"),
    "wrong model": (["imdb", "import-torch", "--state-dict", "{d}/cnn.pt", "--vocab", "{d}/itos.json",
                     "--model", "bilstm", "--out", "{d}/r"],
                    r"cnn.pt: missing key 'rnn.weight_hh_l0': expected a tensor of shape \(\*, \*\) .*"
                    r"\(these weights fit the cnn model\)"),
    "vocab size mismatch": (["imdb", "import-torch", "--state-dict", "{d}/cnn.pt", "--vocab", "{d}/short.json",
                             "--model", "cnn", "--out", "{d}/r"],
                            r"--vocab \S*short.json: 4 tokens, but the state_dict's embedding has 5 rows"),
    "duplicate token": (["imdb", "import-torch", "--state-dict", "{d}/cnn.pt", "--vocab", "{d}/dup.txt",
                         "--model", "cnn", "--out", "{d}/r"], r"dup.txt: token 'good' appears twice \(index 2 and 3\)"),
    "not a state_dict": (["imdb", "import-torch", "--state-dict", "{d}/junk.pt", "--vocab", "{d}/itos.json",
                          "--model", "cnn", "--out", "{d}/r"], r"junk.pt: holds keys not, not a state_dict"),
    "flag against the weights": (["imdb", "import-torch", "--state-dict", "{d}/cnn.pt", "--vocab", "{d}/itos.json",
                                  "--model", "cnn", "--embed", "50", "--out", "{d}/r"],
                                 r"--embed 50: the state_dict \S*cnn.pt has embed 6"),
    "charlm given a cnn": (["charlm", "import-torch", "--state-dict", "{d}/cnn.pt", "--vocab", "{d}/chars.json",
                            "--out", "{d}/r"], r"cnn.pt: missing key 'emb.weight': expected a tensor of shape \(\*, \*\)"),
    "charlm chars mismatch": (["charlm", "import-torch", "--state-dict", "{d}/char.pt", "--vocab", "{d}/chars.json",
                               "--out", "{d}/r"],
                              r"--vocab \S*chars.json: 2 characters, but the state_dict's embedding has 3 rows"),
    "no state_dict flag": (["imdb", "import-torch", "--vocab", "{d}/itos.json"], r"give the state_dict"),
    "evaluate nothing": (["imdb", "evaluate", "--run", "{d}/nope"], r"nope\S*: no such run folder"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_inputs_one_line_exit_2(case, saved, capsys):
    argv, pattern = BAD[case]
    assert cli.main([a.format(d=saved) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("seqjax: error: "), err
    assert re.search(pattern, err), err
    assert not (saved / "r").exists()  # nothing half-written


def test_import_into_a_used_folder_and_from_a_shell(saved):
    argv = ["imdb", "import-torch", "--state-dict", f"{saved}/cnn.pt", "--vocab", f"{saved}/itos.json",
            "--model", "cnn", "--out", f"{saved}/r"]
    assert cli.main(argv) == 0
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", *argv], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"seqjax: error: --out {saved}/r: already holds a run; choose another folder"
