import dataclasses
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seqjax import cli, configs


def test_markov_cli_on_a_user_text(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("abab acab jujube " * 50)
    assert cli.main(["markov", "--text", str(tmp_path / "t.txt"), "--sample", "20", "--start", "a"]) == 0
    out = capsys.readouterr().out
    assert "most likely letter after 'j': 'u'" in out
    assert re.search(r"held-out cross-entropy: \d\.\d+ bits per char", out)


def test_user_errors_exit_2_with_one_message(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe abc")
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", "markov", "--text", str(tmp_path / "bad.txt")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("seqjax: error:") and "bad.txt" in r.stderr


def test_embeddings_is_another_name_for_vectors():
    p = cli.build_parser()
    a = p.parse_args(["imdb", "train", "--model", "cnn", "--embeddings", "w2v/vectors.txt"])
    b = p.parse_args(["imdb", "train", "--model", "cnn", "--vectors", "w2v/vectors.txt"])
    assert cli._config(configs.ImdbConfig, a) == cli._config(configs.ImdbConfig, b)
    assert cli._config(configs.ImdbConfig, a).vectors == "w2v/vectors.txt"


def test_compiled_programs_are_kept_and_reused(tmp_path):
    """A second identical run finds every program it needs in the compilation cache."""
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 300)
    cache = tmp_path / "cc"
    # every program is cached, whatever its compile time (by default only those > 1 s, which
    # makes the set of files depend on the machine's load)
    env = {**__import__("os").environ, "SEQJAX_COMPILE_CACHE": str(cache),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}

    def run(out):
        r = subprocess.run([sys.executable, "-m", "seqjax.cli", "charlm", "train", "--text", str(text),
                            "--out", str(tmp_path / out), "--epochs", "1", "--hidden", "64",
                            "--sample-length", "5", "--markov-orders", "1"],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        return sorted(p.name for p in cache.iterdir())

    first = run("a")
    assert first, "nothing was written to the compilation cache"
    assert run("b") == first


def test_a_library_call_is_recorded_as_the_python_call_that_repeats_it(tmp_path, monkeypatch):
    """Results JSONs record the command passed in (the CLI's own argv), never ``sys.argv`` of
    whatever process called the library; a library call is written as Python that rebuilds the
    same config."""
    import json

    from seqjax.tasks.common import library_call, write_results

    cfg = configs.CharLMConfig(text="my text.txt", epochs=1, temperatures="0.5", dropout=0.25)
    call = library_call("seqjax.tasks.charlm.run", cfg)
    assert call.startswith("seqjax.tasks.charlm.run(CharLMConfig(") and "seq_len" not in call
    assert eval(call[len("seqjax.tasks.charlm.run("):-1], vars(configs)) == cfg
    monkeypatch.setattr(sys, "argv", ["/usr/bin/ipykernel_launcher.py", "-f", "kernel.json"])
    write_results(tmp_path / "r.json", cfg, call, value=1.0)
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["command"] == call and record["config"]["text"] == "my text.txt" and record["value"] == 1.0


def test_version_and_one_model_per_train_run():
    import seqjax

    r = subprocess.run([sys.executable, "-m", "seqjax.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"seqjax {seqjax.__version__}"
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", "imdb", "train", "--model", "rnn", "lstm"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "takes no texts (got 'lstm')" in r.stderr


def test_lab_parts_are_skipped_when_done_and_resumed_otherwise(tmp_path):
    import json
    import types

    from seqjax.tasks import lab

    calls = []

    def fake_run(cfg, command):  # writes its results as a finished part does
        calls.append(cfg.resume)
        Path(cfg.results).write_text(json.dumps({"config": dataclasses.asdict(cfg)}))

    task = types.SimpleNamespace(run=fake_run)
    cfg = configs.CharLMConfig(epochs=1, out=str(tmp_path / "c"), results=str(tmp_path / "c.json"))
    lab._train(task, cfg, "cmd")
    lab._train(task, cfg, "cmd")  # done: skipped
    lab._train(task, dataclasses.replace(cfg, epochs=3), "cmd")  # longer: resumed from the checkpoints
    assert calls == [True, True]


@pytest.mark.parametrize("verb", ["markov", "embeddings"])
def test_a_closed_standard_output_ends_the_command_quietly_with_sigpipes_status(verb, tmp_path):
    """`seqjax markov | head`: when the reader is gone, no message and status 141 (128 + SIGPIPE),
    what a shell reports for any Unix tool; for a command without JAX and one with it."""
    (tmp_path / "t.txt").write_text("abab acab jujube " * 50)
    (tmp_path / "v.txt").write_text("".join(f"w{i} {i % 7 * 0.1:.1f} {i % 5 * 0.2:.1f}\n" for i in range(300)))
    args = (["markov", "--text", str(tmp_path / "t.txt"), "--sample", "5000", "--start", "a"] if verb == "markov"
            else ["embeddings", "neighbours", *(f"w{i}" for i in range(40)), "--vectors", str(tmp_path / "v.txt")])
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write, as when `head` has had its lines
    try:
        r = subprocess.run([sys.executable, "-m", "seqjax.cli", *args], stdout=write, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "SEQJAX_COMPILE_CACHE": "0"})
    finally:
        os.close(write)
    assert (r.returncode, r.stderr) == (cli.SIGPIPE_STATUS, ""), r.stderr[-2000:]
    assert cli.SIGPIPE_STATUS == 128 + signal.SIGPIPE
