"""Nothing lost, nothing silent: interrupted writes, a second process, changed data, non-finite
values, flags overridden, lines that are not lines, and messages that name the real cause.

Each test builds its own tiny data; subprocesses only where a process must die or exit (a
SIGKILL mid-write, a lock held by another process, what reaches a terminal at exit). New APIs
are imported inside the tests, so each test fails on its own on code without them.
"""

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_imdb_dir

from seqjax import SeqjaxError, cli, configs

ROOT = Path(__file__).resolve().parents[1]
POS = ["a great wonderful film", "loved it great acting", "wonderful great fun", "great great movie"]
NEG = ["an awful boring film", "hated it bad acting", "boring awful mess", "bad bad movie"]


def _strict_json(text: str):
    """``json.loads`` that refuses ``NaN`` / ``Infinity`` (not JSON)."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _one_line(err: str) -> str:
    err = err.split("\r")[-1]  # after a progress bar's last redraw
    assert err.count("\n") == 1 and err.startswith("seqjax: error: ") and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def imdb_dir(tmp_path_factory):
    return make_imdb_dir(tmp_path_factory.mktemp("imdb") / "data", {
        ("train", "pos"): POS * 4, ("train", "neg"): NEG * 4, ("test", "pos"): POS, ("test", "neg"): NEG})


def _save_imdb_run(out: Path, nan: bool = False) -> Path:
    """A small LSTM classifier run folder (Adam state and all), saved as training saves it;
    with ``nan``, every parameter NaN."""
    from seqjax.data.vocab import Vocab
    from seqjax.tasks import imdb as imdb_task
    from seqjax.train.checkpoint import Checkpointer

    itos = ["<unk>", "<pad>", "great", "awful", "film", "boring"]
    cfg = configs.ImdbConfig(model="lstm", vectors="none", embed=8, hidden=8, out=str(out))
    model = imdb_task.build_model(cfg, len(itos))
    state = imdb_task.init_state(cfg, model, Vocab(itos, [0] * len(itos)))
    if nan:
        state = state.replace(params=jax.tree.map(lambda x: x * jnp.nan, state.params))
    ck = Checkpointer(out / "checkpoints")
    ck.save(state, {"config": dataclasses_asdict(cfg), "vocab": itos, "kind": "imdb", "epoch": 0, "batch": 0,
                    "history": []})
    ck.close()
    return out


def dataclasses_asdict(cfg):
    import dataclasses

    return dataclasses.asdict(cfg)


@pytest.fixture(scope="module")
def imdb_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    return _save_imdb_run(d / "good"), _save_imdb_run(d / "nan", nan=True)


# ---- 1. every interruptible write is atomic; existing outputs are refused unless told --------------
def test_vectors_killed_mid_write_leave_the_old_file(tmp_path):
    target = tmp_path / "vectors.txt"
    target.write_text("2 2\na 0.1 0.2\nb 0.3 0.4\n")
    child = subprocess.Popen([sys.executable, "-c", """
import sys, numpy as np
from seqjax import word2vec
from seqjax.data.glove import WordVectors
wv = WordVectors([f"w{i}" for i in range(60_000)], np.random.default_rng(0).random((60_000, 100), np.float32))
print("writing", flush=True)
word2vec.save_text(wv, sys.argv[1])
""", str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "writing\n"
    time.sleep(0.5)  # well inside the write (several seconds for 6 M numbers)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert target.read_text() == "2 2\na 0.1 0.2\nb 0.3 0.4\n"  # whole: the old vectors


def test_word2vec_refuses_existing_vectors_unless_overwrite(tmp_path):
    from seqjax.tasks import word2vec as w2v_task

    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 5)
    out = tmp_path / "w"
    out.mkdir()
    (out / "vectors.txt").write_text("old")
    cfg = dict(corpus=str(corpus), out=str(out), dim=4, min_count=1, epochs=1, batch_size=64)
    with pytest.raises(SeqjaxError, match=r"already holds vectors.txt; pass --overwrite"):
        w2v_task.run(configs.Word2VecConfig(**cfg))
    assert (out / "vectors.txt").read_text() == "old"
    w2v_task.run(configs.Word2VecConfig(**cfg, overwrite=True))
    assert (out / "vectors.txt").read_text().startswith("7 4\n")
    assert "NaN" not in (out / "stats.json").read_text()


def test_a_corpus_of_one_word_is_refused():
    from seqjax import word2vec

    with pytest.raises(SeqjaxError, match=r"one distinct word \('ok'\)"):
        word2vec.Corpus.build([["ok", "ok", "ok"], ["ok"]], min_count=1)
    with pytest.raises(SeqjaxError, match="no document holds two words"):
        word2vec.Corpus.build([["yes"], ["no"], ["yes"]], min_count=1)


def test_an_unfinished_checkpoint_save_is_named_and_cleaned(tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    sys.path.insert(0, str(ROOT))
    from experiments.reference import models as ref

    torch.manual_seed(0)
    torch.save(ref.FastText(5, 6, pad_idx=1).state_dict(), tmp_path / "ft.pt")
    (tmp_path / "itos.json").write_text(json.dumps(["<unk>", "<pad>", "great", "awful", "film"]))
    out = tmp_path / "r"
    (out / "checkpoints" / "0.orbax-checkpoint-tmp-1733491200").mkdir(parents=True)  # a kill mid-save
    assert cli.main(["imdb", "predict", "--run", str(out), "great"]) == 2
    assert "holds only an unfinished checkpoint save (0.orbax-checkpoint-tmp-1733491200)" in _one_line(
        capsys.readouterr().err)
    argv = ["imdb", "import-torch", "--state-dict", str(tmp_path / "ft.pt"), "--vocab", str(tmp_path / "itos.json"),
            "--model", "fasttext", "--out", str(out)]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert not list((out / "checkpoints").glob("*.orbax-checkpoint-tmp*"))
    assert cli.main(["imdb", "predict", "--run", str(out), "great"]) == 0
    assert cli.main(argv) == 2  # a completed run is still refused
    assert "already holds a run" in capsys.readouterr().err


# ---- 2. a run knows its data; one process per run folder -------------------------------------------
TEXT = ("the quick brown fox jumps over the lazy dog.\n" * 6 + "supposing that truth is a woman.\n") * 6


def _charlm(text: Path, out: Path, **kw) -> configs.CharLMConfig:
    return configs.CharLMConfig(text=str(text), out=str(out), epochs=1, embed=4, hidden=8, seq_len=8,
                                batch_size=16, sample_length=4, temperatures="0.5", markov_orders="1", **kw)


@pytest.fixture(scope="module")
def charlm_run(tmp_path_factory):
    from seqjax.tasks import charlm

    d = tmp_path_factory.mktemp("charlm")
    (d / "t.txt").write_text(TEXT)
    charlm.run(_charlm(d / "t.txt", d / "run"))
    return d


def test_resume_on_changed_text_or_alphabet_is_refused(charlm_run, tmp_path):
    from seqjax.tasks import charlm

    lines = TEXT.splitlines(keepends=True)
    text, out = charlm_run / "t.txt", charlm_run / "run"
    before = (out / "log.jsonl").read_text()
    try:
        text.write_text("".join(lines[1:] + lines[:1]))  # the same file, lines moved: the same chars
        with pytest.raises(SeqjaxError, match=r"--resume: the run in \S+ was trained on --text \S+t.txt \(sha256 "
                                              r"\w+, chars 1,818\), this is --text \S+t.txt \(sha256 "):
            charlm.run(dataclasses_replace(_charlm(text, out, resume=True), epochs=2))
        text.write_text(TEXT.replace("q", "!").replace("z", "#"))  # '!' and '#' new, 'q' and 'z' gone
        with pytest.raises(SeqjaxError, match=r"the data's alphabet changed .*new '!#', gone 'qz'"):
            charlm.run(dataclasses_replace(_charlm(text, out, resume=True), epochs=2))
    finally:
        text.write_text(TEXT)
    assert (out / "log.jsonl").read_text() == before  # nothing trained


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_imdb_resume_of_a_charlm_run_names_the_kind(charlm_run, imdb_dir):
    from seqjax.tasks import imdb as imdb_task

    cfg = configs.ImdbConfig(model="fasttext", data_dir=str(imdb_dir), vectors="none", batch_size=8, epochs=1,
                             out=str(charlm_run / "run"), resume=True)
    with pytest.raises(SeqjaxError, match=r"holds a `seqjax charlm` run, not a `seqjax imdb` one"):
        imdb_task.run(cfg)


_HOLD = """
import sys, time
from seqjax import files
with files.locked(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_process_is_refused_and_a_dead_ones_lock_is_not(charlm_run):
    from seqjax.tasks import charlm

    out = charlm_run / "run"
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "held\n"
        before = (out / "log.jsonl").read_text()
        with pytest.raises(SeqjaxError, match=rf"another process \(pid {child.pid}\) is using this run folder"):
            charlm.run(_charlm(charlm_run / "t.txt", out, resume=True))
        assert (out / "log.jsonl").read_text() == before  # no epoch logged twice
    finally:
        child.send_signal(signal.SIGKILL)  # a crash: the kernel releases the lock
        child.wait()
    from seqjax import files

    with files.locked(out):  # the stale lock file does not block
        pass


# ---- 3. non-finite values never pass ------------------------------------------------------------
def test_nan_or_inf_weights_are_refused_at_import(tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    sys.path.insert(0, str(ROOT))
    from experiments.reference import models as ref

    sd = ref.FastText(5, 6, pad_idx=1).state_dict()
    sd["fc.weight"][0, 1] = float("inf")
    torch.save(sd, tmp_path / "inf.pt")
    (tmp_path / "itos.json").write_text(json.dumps(["<unk>", "<pad>", "great", "awful", "film"]))
    assert cli.main(["imdb", "import-torch", "--state-dict", str(tmp_path / "inf.pt"), "--vocab",
                     str(tmp_path / "itos.json"), "--model", "fasttext", "--out", str(tmp_path / "r")]) == 2
    assert "'fc.weight' holds 1 non-finite value(s)" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_a_model_with_nan_parameters_predicts_and_evaluates_nothing(imdb_runs, imdb_dir, capsys):
    good, nan = imdb_runs
    assert cli.main(["imdb", "predict", "--run", str(good), "--json", "great film"]) == 0
    _strict_json(capsys.readouterr().out)
    assert cli.main(["imdb", "predict", "--run", str(nan), "--json", "great film"]) == 2
    got = capsys.readouterr()
    assert "NaN" not in got.out and "non-finite probability" in _one_line(got.err)
    assert cli.main(["imdb", "evaluate", "--run", str(nan), "--data-dir", str(imdb_dir)]) == 2
    assert "the test loss is not finite" in _one_line(capsys.readouterr().err)


def test_results_and_logs_are_valid_json(tmp_path):
    from seqjax.tasks.common import write_results
    from seqjax.train.callbacks import Log

    write_results(tmp_path / "r.json", configs.MarkovConfig(), "seqjax markov", bpc=float("nan"),
                  curve=[1.0, float("inf")], x=np.float32("nan"))
    got = _strict_json((tmp_path / "r.json").read_text())
    assert got["bpc"] is None and got["curve"] == [1.0, None] and got["x"] is None
    Log(tmp_path / "log.jsonl").on_epoch_end(None, {"epoch": 1, "valid_loss": float("nan")})
    assert _strict_json((tmp_path / "log.jsonl").read_text()) == {"epoch": 1, "valid_loss": None}


def test_vectors_with_non_finite_values_are_refused_with_the_line(tmp_path):
    from seqjax.data import glove

    p = tmp_path / "v.txt"
    p.write_text("3 2\nking 0.1 0.2\n\nqueen nan 0.3\nman 0.5 0.6\n")
    with pytest.raises(SeqjaxError, match=r"v.txt:4: the vector of 'queen' holds a value that is not a finite"):
        glove.read_text_vectors(p)
    p.write_text("king 0.1 0.2\nqueen 0.2 1e39\n")  # beyond float32
    with pytest.raises(SeqjaxError, match=r"v.txt:2: the vector of 'queen'"):
        glove.read_text_vectors(p)


def test_word_pair_files_with_non_finite_or_constant_scores_are_refused(tmp_path, capsys):
    from seqjax import embeddings as emb

    (tmp_path / "v.txt").write_text("a 1 0\nb 0 1\nc 1 1\nd 2 1\n")
    (tmp_path / "p.tsv").write_text("a\tb\t1.0\na\tc\tnan\nb\td\t3\n")
    with pytest.raises(SeqjaxError, match=r"p.tsv:2: the score 'nan' of 'a' 'c' is not a finite number"):
        emb.read_word_pairs(tmp_path / "p.tsv")
    assert cli.main(["embeddings", "similarity", str(tmp_path / "p.tsv"), "--vectors", str(tmp_path / "v.txt")]) == 2
    _one_line(capsys.readouterr().err)
    (tmp_path / "same.tsv").write_text("a b 5\na c 5\nb d 5\n")
    with pytest.raises(SeqjaxError, match="human scores of the 3 pairs in the vocabulary are all equal"):
        emb.evaluate_word_pairs(emb.WordVectors(list("abcd"), np.eye(4, 2) + 0.5), tmp_path / "same.tsv")


def test_a_diverging_loss_stops_the_run_and_says_no_checkpoint_exists_yet(tmp_path):
    from seqjax.data.batching import ArrayBatches
    from seqjax.nn.charlm import CharLM, lm_loss
    from seqjax.train import loop
    from seqjax.train.checkpoint import Checkpointer
    from seqjax.train.state import TrainState, make_optimizer

    m = CharLM(10, hidden=8)
    st = TrainState.create(m.init(jax.random.PRNGKey(0), jnp.zeros((2, 4), jnp.int32)),
                           make_optimizer("sgd", 1e4), jax.random.PRNGKey(1))
    x = np.random.default_rng(0).integers(0, 10, (64, 4)).astype(np.int32)
    ck = Checkpointer(tmp_path / "ck")
    run = loop.Run(tmp_path, log_every=2, checkpointer=ck)
    with pytest.raises(SeqjaxError) as err:
        loop.fit(st, ArrayBatches(x, x[:, 0], 8), lm_loss(m, "last"), 3, run=run)
    msg = str(err.value)
    assert ("diverged" in msg or "non-finite" in msg) and "no checkpoint was written yet" in msg, msg
    assert "last good checkpoint" not in msg and ck.all_steps() == []


def test_a_loss_grown_a_thousandfold_stops_the_run(tmp_path):
    from tqdm import tqdm

    from seqjax.train import loop

    host = {"loss": np.float32(8 * 5000.0), "count": np.float32(8), "nonfinite": np.float32(0)}
    position = loop.LoopState(state=None, history=[{"epoch": 1, "train_loss": 2.0}])
    position.state = type("S", (), {"step": 9})()
    with pytest.raises(SeqjaxError, match=r"the training loss has diverged \(5e\+03, first 2"):
        loop._check_finite(host, position, loop.Run(), tqdm(disable=True), 0.0)


# ---- 4. explicit flags are never overridden -----------------------------------------------------
def test_embed_that_disagrees_with_the_vectors_is_refused(tmp_path, imdb_dir):
    from seqjax.tasks import imdb as imdb_task

    vec = tmp_path / "v16.txt"
    vec.write_text("".join(f"{w} " + " ".join(["0.1"] * 16) + "\n" for w in ("great", "awful", "film")))
    base = dict(model="cnn", data_dir=str(imdb_dir), vectors=str(vec), batch_size=8, out=str(tmp_path / "r"))
    with pytest.raises(SeqjaxError, match=r"--embed 50: the vectors \S+v16.txt are 16-wide; pass --embed 16"):
        imdb_task.prepare(configs.ImdbConfig(**base, embed=50))
    cfg, *_ = imdb_task.prepare(configs.ImdbConfig(**base))  # left out: the vectors' width
    assert cfg.embed == 16


# ---- 5. input lines are lines -------------------------------------------------------------------
def test_texts_split_at_newlines_only_and_stdin_reads_as_the_file_does(tmp_path, monkeypatch):
    data = "\ufeffone\x0cstill one\r\ntwo\u2028still two\n\nthree\x85still three\n".encode()
    (tmp_path / "f.txt").write_bytes(data)
    want = ["one\x0cstill one", "two\u2028still two", "three\x85still three"]
    assert cli._texts([], str(tmp_path / "f.txt")) == want
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert cli._texts(["-"], "") == want
    binary = bytes(range(256)) * 3
    (tmp_path / "b.bin").write_bytes(binary)
    with pytest.raises(SeqjaxError, match=r"--file \S+b.bin: not UTF-8 text \(byte 128\)"):
        cli._texts([], str(tmp_path / "b.bin"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(binary)))
    with pytest.raises(SeqjaxError, match=r"standard input: not UTF-8 text \(byte 128\)"):
        cli._texts(["-"], "")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\x00\x01\x02\n")))
    with pytest.raises(SeqjaxError, match=r"standard input: holds a NUL byte"):
        cli._texts(["-"], "")


def test_a_byte_order_mark_is_accepted_in_pairs_questions_and_vectors(tmp_path):
    from seqjax import embeddings as emb
    from seqjax.data import glove

    bom = "\ufeff"
    (tmp_path / "p.tsv").write_text(bom + "king\tqueen\t8.5\nman\twoman\t8.3\n", encoding="utf-8")
    assert emb.read_word_pairs(tmp_path / "p.tsv")[0] == ("king", "queen", 8.5)
    (tmp_path / "q.txt").write_text(bom + ": capital\nathens greece paris france\n", encoding="utf-8")
    assert emb.read_questions(tmp_path / "q.txt")[0].name == "capital"
    (tmp_path / "v.txt").write_text(bom + "2 3\n, 0.1 0.2 0.3\nthe 0.4 0.5 0.6\n", encoding="utf-8")
    assert glove.read_text_vectors(tmp_path / "v.txt").words == [",", "the"]


# ---- 6. one line, the right one -----------------------------------------------------------------
def test_an_unwritable_cache_names_its_variable(tmp_path, monkeypatch, capsys):
    from seqjax.data import download

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SEQJAX_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(SeqjaxError, match=r"^SEQJAX_CACHE=\S+: cannot use \S+ as the cache folder .*set SEQJAX_CACHE"):
        download.cache_dir()
    monkeypatch.delenv("SEQJAX_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "file"))
    with pytest.raises(SeqjaxError, match=r"^HOME=\S+file: cannot use"):
        download.cache_dir()
    monkeypatch.delenv("SEQJAX_COMPILE_CACHE", raising=False)
    assert cli.compilation_cache() is None  # compiled programs are not kept; the command goes on
    assert "warning: HOME=" in capsys.readouterr().err


def test_a_truncated_array_file_gives_one_line_and_no_traceback(imdb_runs, tmp_path, monkeypatch):
    import shutil

    import gc

    from seqjax.tasks import imdb as imdb_task

    good, _ = imdb_runs
    runs = []
    for keep in (4, 10):
        runs.append(tmp_path / f"damaged{keep}")
        shutil.copytree(good, runs[-1])
        for f in (runs[-1] / "checkpoints" / "0" / "state" / "d").iterdir():
            f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // keep])
    # in this process: the reads orbax left in flight call back into its closed event loop
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(str(u.exc_value)))
    with pytest.raises(SeqjaxError, match="the arrays of checkpoint step 0 cannot be read"):
        imdb_task.Predictor(str(runs[0]))
    gc.collect()
    time.sleep(0.3)
    assert "Event loop is closed" not in seen
    # and in a command, up to its exit
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", "imdb", "predict", "--run", str(runs[1]), "great"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "cannot be read" in _one_line(r.stderr), r.stderr[-3000:]
