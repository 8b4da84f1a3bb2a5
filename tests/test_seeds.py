"""Several seeds in one run (--seeds), their statistics, and the device layout rule."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import make_imdb_dir

from seqjax import SeqjaxError, configs, layout, stats
from seqjax.tasks import charlm, imdb
from seqjax.train import seeds
from seqjax.train.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("the quick brown fox jumps over the lazy dog. " * 8 + "supposing that truth is a woman. ") * 12


def _cli(args, env=None):
    return subprocess.run([sys.executable, "-m", "seqjax.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "SEQJAX_COMPILE_CACHE": "0", **(env or {})})


def _charlm_cfg(tmp_path, name, **kw):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    base = dict(text=str(text), out=str(tmp_path / name), epochs=2, hidden=16, batch_size=32, sample_length=8,
                markov_orders="1", optimizer="adam", lr=0.003, results=str(tmp_path / f"{name}.json"))
    return configs.CharLMConfig(**{**base, **kw})


def _params(out, cfg):
    model = charlm.build_model(cfg, len(set(TEXT)))
    ck = Checkpointer(Path(out) / "checkpoints")
    state, meta = ck.restore(charlm.init_state(cfg, model, 1))
    ck.close()
    return jax.device_get(state.params), meta


def test_each_seed_of_a_run_is_the_run_of_that_seed(tmp_path):
    """Seed 2 of ``--seeds 0,2`` ends where ``--seed 2`` does, after 2 epochs of Adam (which,
    unlike the lab's RMSprop, does not amplify float32 rounding): params to 1e-5, held-out
    bits/char to 1e-5; and it is not seed 0's model (the comparison is not empty)."""
    several = _charlm_cfg(tmp_path, "k", seeds="0,2")
    charlm.run(several)
    one = _charlm_cfg(tmp_path, "one", seed=2)
    charlm.run(one)
    stacked, meta = _params(several.out, several)
    single, _ = _params(one.out, one)
    moved = max(float(np.max(np.abs(a[1] - a[0]))) for a in jax.tree.leaves(stacked))
    assert moved > 1e-2, "the two seeds trained the same model"
    for a, b in zip(jax.tree.leaves(stacked), jax.tree.leaves(single)):
        np.testing.assert_allclose(a[1], b, atol=1e-5, rtol=1e-5)
    r_k = json.loads((tmp_path / "k.json").read_text())
    r_1 = json.loads((tmp_path / "one.json").read_text())
    assert r_k["seeds"] == [0, 2] and [row["seed"] for row in r_k["per_seed"]] == [0, 2]
    assert abs(r_k["per_seed"][1]["heldout_bpc"] - r_1["heldout_bpc"]) < 1e-5
    assert len(r_k["history"][0]["seeds"]) == 2
    agg = r_k["aggregate"]["heldout_bpc"]
    assert agg["n"] == 2 and abs(agg["mean"] - np.mean([row["heldout_bpc"] for row in r_k["per_seed"]])) < 1e-12


def test_a_seeds_run_cut_mid_epoch_resumes_bitwise(tmp_path):
    """A multi-seed run stopped mid-epoch by its time budget and resumed ends with exactly the
    params and per-seed losses of an uninterrupted run."""
    straight = _charlm_cfg(tmp_path, "straight", seeds="3", ckpt_every=2)
    charlm.run(straight)
    cut = _charlm_cfg(tmp_path, "cut", seeds="3", ckpt_every=2, minutes=1e-9)
    charlm.run(cut)
    partial, meta = _params(cut.out, cut)
    assert meta["batch"] > 0 and meta["epoch"] == 0, "the budget did not cut the first epoch"
    charlm.run(_charlm_cfg(tmp_path, "cut", seeds="3", ckpt_every=2, resume=True))
    a, meta_a = _params(straight.out, straight)
    b, meta_b = _params(cut.out, cut)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.array_equal(x, y)
    assert ([[s["train_loss"] for s in h["seeds"]] for h in meta_a["history"]]
            == [[s["train_loss"] for s in h["seeds"]] for h in meta_b["history"]])


def test_sample_picks_a_seed(tmp_path):
    cfg = _charlm_cfg(tmp_path, "k", seeds="2", epochs=1)
    charlm.run(cfg)
    texts = [charlm.sample_from_checkpoint(cfg.out, "the quick", 0.01, 30, 0, "window", i) for i in (0, 1)]
    assert all(len(t) == 30 for t in texts)
    with pytest.raises(SeqjaxError, match="--seed-index 2: the run trained 2 seed"):
        charlm.sample_from_checkpoint(cfg.out, "the quick", 0.5, 10, 0, "window", 2)


@pytest.fixture
def imdb_dir(tmp_path):
    rng = np.random.default_rng(0)
    pos, neg = "good great fine lovely superb".split(), "bad awful poor dull boring".split()
    filler = "the a film movie plot actor it was and".split()

    def review(words):
        return " ".join(rng.choice(words + filler, int(rng.integers(3, 40))))

    return make_imdb_dir(tmp_path / "data", {
        ("train", "pos"): [review(pos) for _ in range(60)], ("train", "neg"): [review(neg) for _ in range(60)],
        ("test", "pos"): [review(pos) for _ in range(20)], ("test", "neg"): [review(neg) for _ in range(20)]})


def _imdb_cfg(tmp_path, data, name, **kw):
    base = dict(model="cnn", vectors="none", embed=8, data_dir=str(data), batch_size=16,
                epochs=2, optimizer="sgd", lr=0.5, out=str(tmp_path / name), results=str(tmp_path / f"{name}.json"),
                dropout=0.0)
    return configs.ImdbConfig(**{**base, **kw})


def test_imdb_seed_equals_its_single_run_and_predicts_as_an_ensemble(tmp_path, imdb_dir, capsys):
    """Seed 1 of ``--seeds 2`` is ``--seed 1 --data-seed 0`` (its own init and batch order on
    the run's shared split, bucketed batches padded to the longest of the seeds); the ensemble's
    probability is the mean of the seeds' probabilities."""
    several = _imdb_cfg(tmp_path, imdb_dir, "k", seeds="2")
    r_k = imdb.run(several)
    r_1 = imdb.run(_imdb_cfg(tmp_path, imdb_dir, "one", seed=1, data_seed=0))
    assert abs(r_k["per_seed"][1]["test_loss"] - r_1["test_loss"]) < 1e-5
    assert abs(r_k["per_seed"][0]["test_loss"] - r_1["test_loss"]) > 1e-4, "seed 0 trained seed 1's model"
    assert len(r_k["test_confusion"]) == 2 and r_k["test_confusion"][1] == r_1["test_confusion"]
    assert np.array(r_k["test_confusion"][0]).sum() == np.array(r_1["test_confusion"]).sum() > 0
    texts = ["good great film", "awful dull plot"]
    each = [imdb.load(several.out, i)(texts) for i in (0, 1)]
    np.testing.assert_allclose(imdb.load(several.out)(texts), (each[0] + each[1]) / 2, atol=1e-5)
    np.testing.assert_allclose(each[1], imdb.load(str(tmp_path / "one"))(texts), atol=1e-5)
    with pytest.raises(SeqjaxError, match="--seed-index 5"):
        imdb.load(several.out, 5)


def test_stack_batches_pads_each_seed_to_the_longest():
    a = {"ids": np.array([[5, 6, 1]], np.int32), "lengths": np.array([2], np.int32)}
    b = {"ids": np.array([[7, 8, 9, 4, 1]], np.int32), "lengths": np.array([4], np.int32)}
    out = seeds.stack_batches([a, b], pad_id=1)
    assert out["ids"].shape == (2, 1, 5)
    assert out["ids"][0].tolist() == [[5, 6, 1, 1, 1]] and out["lengths"].tolist() == [[2], [4]]


def test_aggregate_and_comparison_come_from_scipy():
    from scipy import stats as sps

    v = [0.871, 0.868, 0.875, 0.880, 0.866]
    s = stats.summarize(v)
    ref = sps.bootstrap((np.array(v),), lambda x, axis: np.mean(x, axis=axis), n_resamples=stats.RESAMPLES,
                        confidence_level=0.95, method="BCa", random_state=np.random.default_rng(0))
    assert s["ci95"] == [float(ref.confidence_interval.low), float(ref.confidence_interval.high)]
    assert s["ci95"][0] < s["mean"] < s["ci95"][1] and abs(s["std"] - np.std(v, ddof=1)) < 1e-15
    same = stats.compare(v, [x + 0.001 for x in v[::-1]])
    assert same["verdict"] == "matches" and same["ci95"][0] < 0 < same["ci95"][1]
    worse = stats.compare(v, [x + 0.02 for x in v])
    assert worse["verdict"] == "worse" and worse["ci95"][1] < 0
    assert worse["p_welch"] == pytest.approx(sps.ttest_ind(v, [x + 0.02 for x in v], equal_var=False).pvalue)
    assert stats.compare([0.5], v)["verdict"] == "too few seeds"


@pytest.mark.parametrize("flags, says", [
    (["--seeds", "0"], "--seeds '0'"), (["--seeds", "1,1"], "--seeds '1,1'"), (["--seeds", "x"], "--seeds 'x'"),
    (["--seeds", "2", "--seed", "3"], "give one of them")])
def test_bad_seeds_are_refused_in_one_line(tmp_path, flags, says):
    r = _cli(["charlm", "train", "--out", str(tmp_path / "r"), *flags])
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "r").exists()


def test_the_layout_rule_picks_per_command():
    two = dict(n_cores=2)
    assert layout.cpu_device_count("charlm", "train", **two)[0] == 2
    assert layout.cpu_device_count("lab", **two)[0] == 2
    for m in ("rnn", "lstm", "bilstm"):
        assert layout.cpu_device_count("imdb", "train", m, **two)[0] == 2
    for m in ("cnn", "fasttext"):
        assert layout.cpu_device_count("imdb", "train", m, **two)[0] == 1
        assert layout.cpu_device_count("imdb", "train", m, seeds=4, **two)[0] == 2
        assert layout.cpu_device_count("imdb", "train", m, seeds=5, **two)[0] == 1
    for part, verb in (("imdb", "predict"), ("charlm", "sample"), ("embeddings", "evaluate"), ("word2vec", "train")):
        assert layout.cpu_device_count(part, verb, **two)[0] == 1
    assert layout.cpu_device_count("charlm", "train", n_cores=1)[0] == 1


def test_the_flag_and_the_variable_override_the_rule(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.delenv("SEQJAX_CPU_DEVICES", raising=False)
    assert layout.choose("imdb", "train", "cnn", 1, 3) == 3 and layout.chosen()["why"] == "--cpu-devices"
    assert "device_count=3" in os.environ["XLA_FLAGS"]
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("SEQJAX_CPU_DEVICES", "4")
    assert layout.choose("imdb", "train", "cnn", 1, None) == 4 and layout.chosen()["why"] == "$SEQJAX_CPU_DEVICES"
    monkeypatch.setenv("SEQJAX_CPU_DEVICES", "two")
    with pytest.raises(SeqjaxError, match="SEQJAX_CPU_DEVICES='two'"):
        layout.choose("charlm", "train", "", 1, None)
    monkeypatch.delenv("SEQJAX_CPU_DEVICES")
    monkeypatch.setenv("XLA_FLAGS", "")
    n, why = layout.cpu_device_count("charlm", "train")
    assert layout.choose("charlm", "train", "", 1, None) == n and layout.chosen()["why"] == why


def test_a_run_records_the_layout_the_rule_chose(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    r = _cli(["charlm", "train", "--text", str(text), "--out", str(tmp_path / "r"), "--epochs", "1",
              "--hidden", "8", "--batch-size", "48", "--sample-length", "4", "--markov-orders", "1",
              "--results", str(tmp_path / "r.json")], env={"XLA_FLAGS": "", "SEQJAX_CPU_DEVICES": ""})
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "r.json").read_text())["machine"]
    assert m["layout"] == {"cpu_devices": layout.cores(), "why": layout.cpu_device_count("charlm", "train")[1]}
    assert len(m["devices"]) == layout.cores()
