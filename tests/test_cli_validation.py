"""Every config field with a range is checked when the config is built, before any work: a bad
value on the command line ends in one line naming the flag, exit status 2, no traceback."""

import dataclasses
import typing

import pytest

from seqjax import cli, configs

PARTS = {configs.MarkovConfig: ["markov"], configs.EmbeddingsConfig: ["embeddings", "neighbours", "king"],
         configs.CharLMConfig: ["charlm", "train"], configs.ImdbConfig: ["imdb", "train"],
         configs.Word2VecConfig: ["word2vec", "train"]}


def _bad(cls, f) -> str:
    typ = typing.get_type_hints(cls)[f.name]
    if f.name in ("temperatures", "markov_orders"):
        return "x"
    if typ in (int, int | None):
        return "-1"
    if typ in (float, float | None):
        return "nan"
    return ""  if f.name == "out" else "bogus"


CASES = [(cls, f) for cls in PARTS for f in dataclasses.fields(cls)
         if f.name in configs.RULES or f.name == "sample"]


@pytest.mark.parametrize("cls,f", CASES, ids=[f"{c.__name__}.{f.name}" for c, f in CASES])
def test_every_bad_value_is_refused_up_front(cls, f, capsys, tmp_path):
    flag = "--" + f.name.replace("_", "-")
    bad = _bad(cls, f)
    # --out is also given a folder that must not be created: nothing may run before the check
    extra = [] if f.name == "out" or "out" not in {g.name for g in dataclasses.fields(cls)} else \
        ["--out", str(tmp_path / "never")]
    code = cli.main([*PARTS[cls], *extra, flag, bad])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"seqjax: error: {flag} "), err
    assert "Traceback" not in err and not (tmp_path / "never").exists()


def test_the_walk_covers_every_ranged_field():
    assert len(CASES) >= 60
    assert {f.name for _, f in CASES} >= {"batch_size", "hidden", "seq_len", "layers", "epochs", "temperatures",
                                           "alpha", "dropout", "markov_orders", "embed"}


@pytest.mark.parametrize("flag,value", [("--temperature", "0"), ("--temperature", "-1"), ("--temperature", "nan"),
                                        ("--length", "0")])
def test_sampling_flags_are_checked_before_the_checkpoint_is_read(flag, value, capsys, tmp_path):
    code = cli.main(["charlm", "sample", "--out", str(tmp_path / "no_run"), flag, value])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"seqjax: error: {flag} "), err


def test_an_output_path_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code = cli.main(["charlm", "train", "--out", str(tmp_path / "f" / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("seqjax: error: --out ") and "not a folder" in err, err


def test_results_are_written_when_a_plot_fails(tmp_path, monkeypatch, capsys):
    from seqjax.tasks import charlm
    from seqjax.train import loop

    def broken(*a, **k):
        raise RuntimeError("no display")

    monkeypatch.setattr(loop, "plot_history", broken)
    (tmp_path / "t.txt").write_text("the cat sat on the mat. " * 200)
    cfg = configs.CharLMConfig(text=str(tmp_path / "t.txt"), epochs=1, hidden=16, sample_length=5,
                               markov_orders="1", out=str(tmp_path / "run"), results=str(tmp_path / "r.json"))
    charlm.run(cfg)
    assert (tmp_path / "r.json").is_file()
    assert "warning: the plot" in capsys.readouterr().err


@pytest.mark.parametrize("cls", list(PARTS), ids=[c.__name__ for c in PARTS])
def test_every_flag_has_a_help_line_choices_and_its_default(cls, capsys):
    with pytest.raises(SystemExit):
        cli.main([PARTS[cls][0], "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for f in dataclasses.fields(cls):
        assert configs.HELP.get(f.name), f"{cls.__name__}.{f.name} has no help line"
        assert configs.HELP[f.name].split()[0] in out, f.name
    if cls is configs.CharLMConfig:
        assert "(rnn | gru | lstm)" in out and "default: 'lstm'" in out and "sample:" in out
    if cls is configs.ImdbConfig:
        assert "default: the --model preset" in out


def test_global_flags_are_accepted_after_the_part(capsys):
    assert cli.main(["markov", "--cpu-devices", "0"]) == 2  # parsed as the global flag, then refused
    assert "--cpu-devices 0: give at least 1" in capsys.readouterr().err


def test_an_io_failure_during_a_run_is_one_line_and_keeps_the_checkpoint(tmp_path, monkeypatch, capsys):
    import errno

    from seqjax.tasks import experiment

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r.json"))

    monkeypatch.setattr(experiment, "write_results", full)
    (tmp_path / "t.txt").write_text("the cat sat on the mat. " * 200)
    code = cli.main(["charlm", "train", "--text", str(tmp_path / "t.txt"), "--epochs", "1", "--hidden", "16",
                     "--sample-length", "5", "--markov-orders", "1", "--out", str(tmp_path / "run"),
                     "--results", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # above it: the progress bars
    assert code == 2 and "Traceback" not in err and last.startswith("seqjax: error: No space left on device"), err
    assert "--resume" in last
    assert any(p.name.isdigit() for p in (tmp_path / "run" / "checkpoints").iterdir())


def test_a_binary_questions_file_and_a_non_numeric_vector_are_one_line(tmp_path, capsys):
    (tmp_path / "q.bin").write_bytes(bytes(range(128, 256)) * 10)
    (tmp_path / "v.txt").write_text("2 3\nthe 0.1 x 0.3\nof 0.1 0.2 0.3\n")
    for args, what in ((["evaluate", str(tmp_path / "q.bin")], "not UTF-8"),
                       (["neighbours", "the", "--vectors", str(tmp_path / "v.txt")], "not a number")):
        code = cli.main(["embeddings", *args])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and what in err and "Traceback" not in err, err
