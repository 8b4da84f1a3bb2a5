"""The five IMDB classifiers: the encoders' contract, the params tree, shapes, padding invariance,
learning a separable toy task, predict."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import make_imdb_dir
from seqjax import SeqjaxError, configs
from seqjax.data.batching import BucketedBatches
from seqjax.nn.classifiers import (ENCODERS, BiRecurrentEncoder, CNNEncoder, MeanEncoder, RecurrentEncoder,
                                    TextClassifier, bce_loss)
from seqjax.tasks import imdb as imdb_task
from seqjax.train import loop
from seqjax.train.state import TrainState, make_optimizer

SMALL = {"rnn": dict(cell="rnn", hidden=16), "lstm": dict(hidden=16),
         "bilstm": dict(hidden=8, layers=2, dropout=0.5), "fasttext": {}, "cnn": dict(n_filters=8, dropout=0.5)}


def _model(enc):
    return TextClassifier(30, 12, enc, **SMALL[enc])


ENCODER_MODULES = {  # model -> (encoder, its feature width D with E = 12)
    "rnn": (RecurrentEncoder(16, "rnn"), 16), "lstm": (RecurrentEncoder(16, "lstm"), 16),
    "bilstm": (BiRecurrentEncoder(8, 2, "lstm", 0.5), 16),
    "fasttext": (MeanEncoder(), 12), "cnn": (CNNEncoder((3, 4, 5), 8, 0.5), 24)}


@pytest.mark.parametrize("name", list(ENCODER_MODULES))
def test_encoder_maps_a_padded_batch_to_features_and_ignores_the_padding(name):
    """``(x float32[B, T, E], lengths int32[B], train) -> float32[B, D]``; whatever stands past a
    row's length (here random vectors, not zeros) changes nothing."""
    enc, D = ENCODER_MODULES[name]
    rng = np.random.default_rng(0)
    lengths_B = jnp.array([7, 2, 4], jnp.int32)  # 2 and 4: shorter than the widest CNN filter
    real_BTE = rng.normal(size=(3, 7, 12)).astype(np.float32)
    p = jax.jit(enc.init, static_argnums=3)(jax.random.PRNGKey(0), jnp.asarray(real_BTE), lengths_B, False)
    apply = jax.jit(enc.apply, static_argnums=3)
    feats = []
    for T in (7, 11):
        x_BTE = rng.normal(size=(3, T, 12)).astype(np.float32)  # padding: other random vectors each time
        for b, n in enumerate(np.asarray(lengths_B)):
            x_BTE[b, :n] = real_BTE[b, :n]
        f_BD = apply(p, jnp.asarray(x_BTE), lengths_B, False)
        assert f_BD.shape == (3, D) and f_BD.dtype == jnp.float32
        feats.append(np.asarray(f_BD))
    assert np.abs(feats[0]).max() > 1e-3  # features of something
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-6)
    alone_BTE = jnp.asarray(real_BTE[1:2, :2])  # row 1 alone, unpadded
    np.testing.assert_allclose(apply(p, alone_BTE, lengths_B[1:2], False), feats[0][1:2], atol=1e-6)


# The params tree the PyTorch import (seqjax.interop.torch) and saved checkpoints rely on, written
# out: path -> shape, for the models of SMALL with vocab 30 and embed 12.
PARAMS = {
    "rnn": {"embedding/embedding": (30, 12), "rnn/weight_ih_l0": (16, 12), "rnn/weight_hh_l0": (16, 16),
            "rnn/bias_ih_l0": (16,), "rnn/bias_hh_l0": (16,), "fc/kernel": (16, 1), "fc/bias": (1,)},
    "lstm": {"embedding/embedding": (30, 12), "rnn/weight_ih_l0": (64, 12), "rnn/weight_hh_l0": (64, 16),
             "rnn/bias_ih_l0": (64,), "rnn/bias_hh_l0": (64,), "fc/kernel": (16, 1), "fc/bias": (1,)},
    "bilstm": {"embedding/embedding": (30, 12),
               "rnn/weight_ih_l0": (32, 12), "rnn/weight_hh_l0": (32, 8), "rnn/bias_ih_l0": (32,), "rnn/bias_hh_l0": (32,),
               "rnn/weight_ih_l0_reverse": (32, 12), "rnn/weight_hh_l0_reverse": (32, 8),
               "rnn/bias_ih_l0_reverse": (32,), "rnn/bias_hh_l0_reverse": (32,),
               "rnn/weight_ih_l1": (32, 16), "rnn/weight_hh_l1": (32, 8), "rnn/bias_ih_l1": (32,), "rnn/bias_hh_l1": (32,),
               "rnn/weight_ih_l1_reverse": (32, 16), "rnn/weight_hh_l1_reverse": (32, 8),
               "rnn/bias_ih_l1_reverse": (32,), "rnn/bias_hh_l1_reverse": (32,),
               "fc/kernel": (16, 1), "fc/bias": (1,)},
    "fasttext": {"embedding/embedding": (30, 12), "fc/kernel": (12, 1), "fc/bias": (1,)},
    "cnn": {"embedding/embedding": (30, 12), "conv3/kernel": (3, 12, 8), "conv3/bias": (8,),
            "conv4/kernel": (4, 12, 8), "conv4/bias": (8,), "conv5/kernel": (5, 12, 8), "conv5/bias": (8,),
            "fc/kernel": (24, 1), "fc/bias": (1,)},
}


@pytest.mark.parametrize("enc", ENCODERS)
def test_params_tree_keeps_its_paths(enc):
    p = jax.eval_shape(_model(enc).init, jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    got = {"/".join(k.key for k in path): tuple(v.shape) for path, v in jax.tree_util.tree_flatten_with_path(p)[0]}
    assert got == {f"params/{k}": v for k, v in PARAMS[enc].items()}


@pytest.mark.parametrize("enc", ENCODERS)
def test_shape_and_padding_invariance(enc):
    m = _model(enc)
    p = m.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    review = np.array([5, 9, 3], np.int32)  # shorter than the widest CNN filter
    logits = []
    for T, garbage in ((3, 1), (8, 1), (16, 7)):
        ids = np.full((2, T), garbage, np.int32)
        ids[0, :3] = review
        ids[1, :2] = [4, 4]
        out = m.apply(p, jnp.asarray(ids), jnp.array([3, 2]))
        assert out.shape == (2,) and out.dtype == jnp.float32
        logits.append(np.asarray(out))
    np.testing.assert_allclose(logits[0], logits[1], atol=1e-5)
    np.testing.assert_allclose(logits[0], logits[2], atol=1e-5)


@pytest.mark.parametrize("enc", ENCODERS)
def test_learns_a_separable_task(enc):
    rng = np.random.default_rng(0)
    seqs, labels = [], []
    for i in range(128):
        y = i % 2
        n = rng.integers(3, 12)
        s = rng.integers(4, 20, n)  # shared noise words
        s[rng.integers(0, n)] = 2 if y else 3  # one class word anywhere
        seqs.append(s.astype(np.int32))
        labels.append(y)
    data = BucketedBatches(seqs, labels, 32, boundaries=(8, 12), shuffle=True)
    m = _model(enc)
    p = m.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    st = TrainState.create(p, make_optimizer("adam", 0.03), jax.random.PRNGKey(1))
    st, hist = loop.fit(st, data, bce_loss(m), 30, valid=BucketedBatches(seqs, labels, 32, (8, 12)))
    assert hist[-1]["valid_accuracy"] == 1.0, hist[-1]


@pytest.mark.parametrize("classes", [2, 3])
def test_the_test_pass_counts_the_confusion_matrix_of_the_real_rows(classes):
    """``classification_loss(model, confusion=True)`` through :func:`loop.evaluate`: the counts of
    (true class, predicted class) that applying the model to each real row gives (padding rows,
    weight 0, count for nothing), summing to the example count, its trace to the accuracy."""
    from seqjax.nn.classifiers import classification_loss

    rng = np.random.default_rng(classes)
    seqs = [rng.integers(2, 30, rng.integers(2, 12)).astype(np.int32) for _ in range(50)]
    labels = rng.integers(0, classes, 50).astype(np.float32)
    data = BucketedBatches(seqs, labels, 16, boundaries=(8, 12))  # 50 = 3 x 16 + 2: padding rows
    m = TextClassifier(30, 12, "lstm", hidden=16, classes=classes)
    p = m.init(jax.random.PRNGKey(classes), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    got = loop.evaluate(p, data, classification_loss(m, confusion=True))
    want = np.zeros((classes, classes), np.int64)
    for b in data.batches(0):
        logits = np.asarray(m.apply(p, b["ids"], b["lengths"]))
        pred = (logits > 0).astype(np.int64) if classes == 2 else logits.argmax(-1)
        keep = b["weights"] > 0
        np.add.at(want, (b["labels"][keep].astype(np.int64), pred[keep]), 1)
    assert got["confusion"] == want.tolist() and want.sum() == 50 and 0 < np.trace(want) < 50
    assert np.trace(want) == round(got["accuracy"] * 50)
    assert "confusion" not in loop.evaluate(p, data, classification_loss(m))


def _imdb_dir(tmp_path):
    pos = ["a great wonderful film", "loved it great acting", "wonderful great fun", "great great movie"]
    neg = ["an awful boring film", "hated it bad acting", "boring awful mess", "bad bad movie"]
    return make_imdb_dir(tmp_path / "data", {("train", "pos"): pos * 8, ("train", "neg"): neg * 8,
                                             ("test", "pos"): pos, ("test", "neg"): neg})


@pytest.mark.parametrize("model", ["cnn", "fasttext"])
def test_train_then_predict_round_trips_through_the_checkpoint(tmp_path, model):
    d = _imdb_dir(tmp_path)
    cfg = configs.ImdbConfig(model=model, data_dir=str(d), vectors="none", epochs=12, batch_size=16,
                             lr=0.02, out=str(tmp_path / "run"))
    res = imdb_task.train(cfg)
    assert res["test_accuracy"] == 1.0
    pred = imdb_task.Predictor(str(tmp_path / "run" / "checkpoints"))
    p = pred(["great", "awful boring", "a great film"])
    assert p.shape == (3,) and p[0] > 0.5 and p[1] < 0.5 and p[2] > 0.5
    with pytest.raises(SeqjaxError, match="has no tokens"):
        pred(["  "])
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", "imdb", "predict", "--checkpoint",
                        str(tmp_path / "run" / "checkpoints"), "great fun"], capture_output=True, text=True)
    assert r.returncode == 0 and "positive" in r.stdout, r.stderr[-2000:]
    # the run folder, texts from arguments, standard input and a file, JSON lines, the best weights
    assert pred.which.endswith("best_params.msgpack")
    last = imdb_task.Predictor(str(tmp_path / "run"), best=False)  # the last epoch's weights instead
    assert last.step == res["history"][-1]["step"] and last.which.endswith(f"checkpoints step {last.step}")
    (tmp_path / "reviews.txt").write_text("awful boring\n\nzzzz qqqq\n")
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", "imdb", "predict", "--run", str(tmp_path / "run"),
                        "great fun", "-", "--file", str(tmp_path / "reviews.txt"), "--json"],
                       input="a great film\n", capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["text"] for x in rows] == ["great fun", "a great film", "awful boring", "zzzz qqqq"]
    want = pred(["great fun", "a great film", "awful boring", "zzzz qqqq"])
    assert np.allclose([x["p_positive"] for x in rows], want, atol=1e-6)
    assert [x["label"] for x in rows[:3]] == ["positive", "positive", "negative"]
    assert r.stderr.count("warning: no token of 'zzzz qqqq'") == 1


def test_bad_inputs(tmp_path):
    with pytest.raises(SeqjaxError, match="--model 'transformer'"):
        configs.ImdbConfig(model="transformer")
    with pytest.raises(SeqjaxError, match="--cell 'xyz'"):
        configs.ImdbConfig(model="lstm", cell="xyz")
    with pytest.raises(SeqjaxError, match=r"--bucket-growth 1: give a factor > 1"):
        configs.ImdbConfig(model="cnn", bucket_growth=1.0)
    with pytest.raises(SeqjaxError, match="no such run folder or checkpoints directory"):
        imdb_task.Predictor(str(tmp_path / "nope"))


def test_bigrams_added_as_in_training():
    assert imdb_task.add_bigrams(["a", "b", "a", "b"]) == ["a", "b", "a", "b", "a b", "b a"]
    cfg = configs.ImdbConfig(model="fasttext")
    assert imdb_task.preprocess(cfg, ["Good film"]) == [["good", "film", "good film"]]


def test_resumed_run_still_tests_the_best_epoch(tmp_path):
    d = _imdb_dir(tmp_path)
    base = dict(model="fasttext", data_dir=str(d), vectors="none", batch_size=16, lr=0.02, out=str(tmp_path / "run"))
    first = imdb_task.train(configs.ImdbConfig(epochs=3, **base))
    again = imdb_task.train(configs.ImdbConfig(epochs=3, resume=True, **base))  # nothing left to train
    assert again["best_epoch"] == first["best_epoch"]
    assert again["test_loss"] == pytest.approx(first["test_loss"], abs=1e-6)


def test_vectors_of_another_dimension_name_the_fix():
    from seqjax.data.glove import WordVectors
    from seqjax.data.vocab import Vocab

    cfg = configs.ImdbConfig(model="cnn", vectors="w2v/vectors.txt")
    vocab = Vocab.build([["good", "film"]], 10)
    wv = WordVectors(["good", "film"], np.ones((2, 100), np.float32))
    with pytest.raises(SeqjaxError, match=r"100-d vectors .* pass --embed 100"):
        imdb_task.init_state(cfg, imdb_task.build_model(cfg, len(vocab)), vocab, wv)


def test_ckpt_every_resumes_mid_epoch_to_the_same_run(tmp_path):
    """``--ckpt-every`` writes checkpoints inside an epoch; resuming from one ends as the
    uninterrupted run does (same losses to the bit)."""
    import json
    import shutil

    d = _imdb_dir(tmp_path)
    base = dict(model="fasttext", data_dir=str(d), vectors="none", batch_size=8, lr=0.02, epochs=1, ckpt_every=2)
    full = imdb_task.train(configs.ImdbConfig(out=str(tmp_path / "full"), **base))
    ck = tmp_path / "full" / "checkpoints"
    steps = sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit())
    assert len(steps) == 2 and steps[0] % 2 == 0 and steps[0] < steps[1], steps
    mid = json.loads((ck / str(steps[0]) / "meta" / "metadata").read_text())
    assert mid["epoch"] == 0 and 0 < mid["batch"], mid  # a checkpoint inside the epoch
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / str(steps[1]))  # as if killed after the mid-epoch save
    (tmp_path / "cut" / "log.jsonl").unlink(missing_ok=True)
    again = imdb_task.train(configs.ImdbConfig(out=str(tmp_path / "cut"), resume=True, **base))
    assert again["history"][-1]["train_loss"] == full["history"][-1]["train_loss"]
    assert again["test_loss"] == full["test_loss"]
