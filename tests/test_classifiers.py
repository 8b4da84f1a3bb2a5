"""The five IMDB classifiers: shapes, padding invariance, learning a separable toy task, predict."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import make_imdb_tar
from seqjax import SeqjaxError, configs
from seqjax.data.batching import BucketedBatches
from seqjax.nn.classifiers import ENCODERS, TextClassifier, bce_loss
from seqjax.tasks import imdb as imdb_task
from seqjax.train import loop
from seqjax.train.state import TrainState, make_optimizer

SMALL = {"rnn": dict(cell="rnn", hidden=16), "lstm": dict(hidden=16),
         "bilstm": dict(hidden=8, layers=2, dropout=0.5), "fasttext": {}, "cnn": dict(n_filters=8, dropout=0.5)}


def _model(enc):
    return TextClassifier(30, 12, enc, **SMALL[enc])


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


def _imdb_dir(tmp_path):
    pos = ["a great wonderful film", "loved it great acting", "wonderful great fun", "great great movie"]
    neg = ["an awful boring film", "hated it bad acting", "boring awful mess", "bad bad movie"]
    d = tmp_path / "data"
    d.mkdir()
    make_imdb_tar(d / "aclImdb_v1.tar.gz", {("train", "pos"): pos * 8, ("train", "neg"): neg * 8,
                                             ("test", "pos"): pos, ("test", "neg"): neg})
    import tarfile
    with tarfile.open(d / "aclImdb_v1.tar.gz") as t:
        t.extractall(d, filter="data")
    (d / "aclImdb_v1.tar.gz").unlink()  # the folder form; the archive's checksum would not match
    return d


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


def test_bad_inputs(tmp_path):
    with pytest.raises(SeqjaxError, match="--model 'transformer'"):
        imdb_task.resolve(configs.ImdbConfig(model="transformer"))
    with pytest.raises(SeqjaxError, match="--cell 'xyz'"):
        imdb_task.resolve(configs.ImdbConfig(model="lstm", cell="xyz"))
    with pytest.raises(SeqjaxError, match=r"--bucket-growth 1: give a factor > 1"):
        imdb_task.resolve(configs.ImdbConfig(model="cnn", bucket_growth=1.0))
    with pytest.raises(SeqjaxError, match="no such checkpoint directory"):
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

    cfg = imdb_task.resolve(configs.ImdbConfig(model="cnn", vectors="w2v/vectors.txt"))
    vocab = Vocab.build([["good", "film"]], 10)
    wv = WordVectors(["good", "film"], np.ones((2, 100), np.float32))
    with pytest.raises(SeqjaxError, match=r"100-d vectors .* pass --embed 100"):
        imdb_task.init_state(cfg, imdb_task.build_model(cfg, len(vocab)), vocab, wv)
