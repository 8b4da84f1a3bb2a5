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
    if f.name == "data_seed":  # -1 means "the run's seed"
        return "-2"
    if typ in (int, int | None):
        return "-1"
    if typ in (float, float | None):
        return "nan"
    return ""  if f.name == "out" else "bogus"


CASES = [(cls, f) for cls in PARTS for f in dataclasses.fields(cls) if configs.rule(cls, f.name) is not None]
# Fields that take any text or a path, so have no rule; every other field must have one (booleans
# are --flag / --no-flag).
FREE_FORM = {"start", "text", "data_dir", "vectors", "corpus", "results", "train_file", "valid_file", "test_file"}


def _closed(cls, name: str) -> tuple | None:
    """The values a closed-set field takes on the command line ("" = not set is not offered)."""
    options = getattr(configs.rule(cls, name)[0], "options", None) if configs.rule(cls, name) else None
    return None if options is None else tuple(o for o in options if o)


@pytest.mark.parametrize("cls,f", CASES, ids=[f"{c.__name__}.{f.name}" for c, f in CASES])
def test_every_bad_value_is_refused_up_front(cls, f, capsys, tmp_path):
    """A value outside a closed set is refused by the parser (with the help command), any other bad
    value by the config's check; one line, exit status 2, nothing run."""
    flag = "--" + f.name.replace("_", "-")
    bad = _bad(cls, f)
    # --out is also given a folder that must not be created: nothing may run before the check
    extra = [] if f.name == "out" or "out" not in {g.name for g in dataclasses.fields(cls)} else \
        ["--out", str(tmp_path / "never")]
    try:
        code = cli.main([*PARTS[cls], *extra, flag, bad])
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2, err
    part = PARTS[cls][0]
    if _closed(cls, f.name):
        hint = " (an encoder of one's own: register it in a module and load that with --plugin MODULE)"
        assert err == (f"seqjax {part}: error: {flag} {bad!r}: choose one of {', '.join(_closed(cls, f.name))}"
                       f"{hint if f.name == 'model' else ''}; see `seqjax {part} --help`\n"), err
    else:
        assert err.count("\n") == 1 and err.startswith(f"seqjax: error: {flag} "), err
    assert "Traceback" not in err and not (tmp_path / "never").exists()


@pytest.mark.parametrize("cls", list(PARTS), ids=[c.__name__ for c in PARTS])
def test_every_field_is_checked_or_declared_free_form(cls):
    """A new field without a rule (so without the walk above) fails here until it gets one."""
    hints = typing.get_type_hints(cls)
    unchecked = {f.name for f in dataclasses.fields(cls)
                 if configs.rule(cls, f.name) is None and hints[f.name] not in (bool, bool | None)}
    assert unchecked <= FREE_FORM, f"{cls.__name__}: fields without a rule: {sorted(unchecked - FREE_FORM)}"


def test_the_cells_the_cli_lists_are_the_cells_shipped():
    """configs.CELL_NAMES (read without importing JAX) names the cells seqjax.nn.cells defines."""
    from seqjax.nn import cells

    shipped = {v.name for v in vars(cells).values() if isinstance(v, cells.CellDef)}
    assert set(configs.CELL_NAMES) == shipped and set(shipped) <= set(cells.CELLS)


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
    assert code == 2 and err.startswith("seqjax: error: --out ") and "a file, not a folder" in err, err


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
        if _closed(cls, f.name):  # in the usage line and in the flag's help line
            flag = "--" + f.name.replace("_", "-")
            assert f"[{flag} {{{','.join(_closed(cls, f.name))}}}]" in out, flag
            assert f"({' | '.join(_closed(cls, f.name))})" in out, flag
    if cls is configs.CharLMConfig:
        assert "(rnn | gru | lstm" in out and "default: 'lstm'" in out and "sample:" in out
    if cls is configs.ImdbConfig:
        assert "default: the --model preset" in out


def test_imdb_train_help_names_the_five_models_one_line_each(capsys):
    with pytest.raises(SystemExit):
        cli.main(["imdb", "train", "--help"])
    lines = capsys.readouterr().out.splitlines()
    listed = lines[lines.index("--model values:") + 1:]
    # the lab's five first, then any encoder registered in this process (tests/test_encoders.py adds some)
    assert [line.split()[0] for line in listed][:5] == ["rnn", "lstm", "bilstm", "fasttext", "cnn"]
    for line, preset in zip(listed, configs.IMDB_PRESETS.values()):
        assert " ".join(line.split()[1:]) == " ".join(preset.__doc__.split("\n\n")[0].split()), line
    assert "rnn" in listed[0] and "SGD 1e-3" in listed[0] and "Conv1d" in listed[4]


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


# ---- bad inputs that used to end in a traceback, a late failure or a message without its fix ------
def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    """``seqjax ARGS`` in this process: exit status, the last line of stderr (progress bars and
    warnings come above it) and the whole of stderr."""
    try:
        code = cli.main(args)
    except SystemExit as stop:  # argparse's own exits
        code = stop.code
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    return code, (lines[-1] if lines else ""), err


def _one_line(code, last, err, start: str, fix: str) -> None:
    assert code == 2 and "Traceback" not in err, err
    assert last.startswith(f"seqjax: error: {start}") or last.startswith(f"seqjax {start}"), err
    assert fix in last, last


def test_a_damaged_checkpoint_is_one_line_for_sample_predict_and_evaluate(tmp_path, capsys):
    step = tmp_path / "run" / "checkpoints" / "5"  # a step folder without its items (a half-copied run)
    step.mkdir(parents=True)
    (step / "junk").write_text("x")
    for args in (["charlm", "sample", "--out", str(tmp_path / "run")],
                 ["imdb", "predict", "--run", str(tmp_path / "run"), "good"],
                 ["imdb", "evaluate", "--run", str(tmp_path / "run")]):
        code, last, err = _cli(args, capsys)
        _one_line(code, last, err, str(step.parent), "no readable checkpoint (step 5")
        assert last.endswith(f"give another run or train a new one with `seqjax {args[0]} train`"), last


def test_a_damaged_newest_checkpoint_falls_back_to_an_older_one_for_inference(tmp_path, capsys):
    import jax
    import jax.numpy as jnp
    import optax

    from seqjax.tasks.experiment import load_run
    from seqjax.train.checkpoint import Checkpointer
    from seqjax.train.state import TrainState

    state = TrainState.create({"w": jnp.ones(3)}, optax.sgd(0.1), jax.random.PRNGKey(0))
    ckpt = Checkpointer(tmp_path / "checkpoints")
    ckpt.save(state, {"kind": "charlm", "config": {}})
    ckpt.close()
    (tmp_path / "checkpoints" / "7").mkdir()  # newer, damaged
    saved = load_run(tmp_path, "charlm")
    assert saved.step == 0 and saved.meta["kind"] == "charlm"
    assert "checkpoint step 7" in capsys.readouterr().err


def test_a_results_path_that_is_a_folder_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("the cat sat on the mat. " * 200)
    for args in (["charlm", "train", "--text", str(tmp_path / "t.txt")],
                 ["word2vec", "train", "--corpus", str(tmp_path / "t.txt")],
                 ["imdb", "evaluate", "--run", str(tmp_path / "none")]):
        out = tmp_path / "never"
        code, last, err = _cli([*args, "--out", str(out), "--results", str(tmp_path)], capsys)
        _one_line(code, last, err, f"--results {tmp_path}: is a folder", "give the path of a JSON file")
        assert not out.exists()


def test_lab_checks_its_out_folder_before_the_first_part(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    _one_line(*_cli(["lab", "--out", str(tmp_path / "f" / "lab")], capsys), f"--out {tmp_path / 'f' / 'lab'}",
              "a file, not a folder; choose another location")


def test_markov_orders_that_cannot_fit_are_refused_before_training(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("the cat sat on the mat. " * 200)
    out = tmp_path / "run"
    code, last, err = _cli(["charlm", "train", "--text", str(tmp_path / "t.txt"), "--markov-orders", "1,50",
                            "--out", str(out)], capsys)
    _one_line(code, last, err, "--markov-orders 1,50: an order-50 chain does not fit", "give orders of at most 16")
    assert not out.exists()  # nothing trained


def test_charlm_text_shorter_than_a_window_names_the_flag_and_the_fix(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("abc def")
    _one_line(*_cli(["charlm", "train", "--text", str(tmp_path / "t.txt"), "--out", str(tmp_path / "r")], capsys),
              "--seq-len 40: the training text has 6 chars", "give --seq-len 4 or less, or a longer --text")


def test_markov_start_and_order_name_the_flag_and_the_fix(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("abc abd abe " * 10)
    text = ["markov", "--text", str(tmp_path / "t.txt")]
    _one_line(*_cli([*text, "--start", "Q"], capsys), "--start 'Q': 'Q' does not occur", "e.g. --start a")
    _one_line(*_cli([*text, "--order", "200"], capsys), "--order 200: the training text has 120 symbols",
              "give a lower --order")
    _one_line(*_cli([*text, "--order", "40"], capsys), "--order 40: over 6 symbols", "give --order 22 or less")


def test_an_unknown_glove_width_is_refused_without_a_download(tmp_path, capsys, monkeypatch):
    from seqjax.data import download

    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("downloaded"))
    _one_line(*_cli(["embeddings", "neighbours", "king", "--vectors", "6B.77d"], capsys), "--vectors '6B.77d'",
              "one of 6B.50d, 6B.100d, 6B.200d, 6B.300d")


def test_tfds_source_without_a_working_tensorflow_datasets_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails as when not installed
    _one_line(*_cli(["imdb", "train", "--source", "tfds", "--out", str(tmp_path / "r")], capsys),
              "--source tfds: tensorflow-datasets cannot be imported", "pip install 'seqjax[tfds]'")


def test_tensorflow_datasets_is_an_extra_not_a_dependency():
    """`pip install seqjax` leaves it out (only --source tfds reads it); `seqjax[tfds]` and the
    dev extra (its reader's tests) bring it."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("tensorflow")]
    for extra in ("tfds", "dev"):
        assert any(d.startswith("tensorflow-datasets") for d in project["optional-dependencies"][extra]), extra


def test_a_valid_fraction_that_leaves_no_training_reviews_names_the_flag(tmp_path, capsys):
    from conftest import make_imdb_tar
    import tarfile

    make_imdb_tar(tmp_path / "a.tar.gz", {("train", "pos"): ["good film"] * 3, ("train", "neg"): ["bad film"] * 3,
                                          ("test", "pos"): ["good"], ("test", "neg"): ["bad"]})
    with tarfile.open(tmp_path / "a.tar.gz") as t:
        t.extractall(tmp_path / "data", filter="data")
    _one_line(*_cli(["imdb", "train", "--data-dir", str(tmp_path / "data"), "--valid-fraction", "0.99",
                     "--model", "cnn", "--vectors", "none", "--out", str(tmp_path / "r")], capsys),
              "--valid-fraction 0.99: leaves no training reviews of the 6", "give a fraction that leaves some")


@pytest.mark.parametrize("args,message", [
    (["markov", "--order", "x"], "markov: error: --order 'x': give a whole number; see `seqjax markov --help`"),
    (["markov", "--beta", "y"], "markov: error: --beta 'y': give a number; see `seqjax markov --help`"),
    (["markov", "--bogus", "1"], "markov: error: unrecognized arguments: --bogus 1; see `seqjax markov --help`"),
])
def test_a_malformed_command_line_is_one_line_with_the_help_command(args, message, capsys):
    code, last, err = _cli(args, capsys)
    assert code == 2 and err.count("\n") == 1 and last == f"seqjax {message}", err


def test_damaged_best_validation_weights_are_one_line_naming_the_file(tmp_path):
    """predict and evaluate read RUN/best_params.msgpack through read_best (was a msgpack traceback)."""
    import jax.numpy as jnp

    from seqjax import SeqjaxError
    from seqjax.tasks import imdb

    (tmp_path / "best_params.msgpack").write_text("junk")
    with pytest.raises(SeqjaxError, match=r"best_params.msgpack: cannot be read as this run's parameters .*; "
                                          r"delete it to use the run's latest checkpoint instead$") as got:
        imdb.read_best(tmp_path / "best_params.msgpack", {"params": {"w": jnp.ones(2)}})
    assert "\n" not in str(got.value)


def test_word2vec_corpus_and_word_pair_files_name_the_flag_or_file_and_the_fix(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    _one_line(*_cli(["word2vec", "train", "--corpus", str(missing), "--out", str(tmp_path / "w")], capsys),
              f"--corpus {missing}: no such file", "give imdb, imdb-train or a UTF-8 text file")
    assert not (tmp_path / "w").exists()
    latin = tmp_path / "pairs.txt"
    latin.write_bytes("caf\xe9 coffee 7.5\n".encode("latin-1"))
    _one_line(*_cli(["embeddings", "similarity", str(latin)], capsys),
              f"{latin}: not UTF-8 text", "give a file of 'word1 word2 score' lines")
    questions = tmp_path / "q.txt"
    questions.write_text("a b c\n")
    _one_line(*_cli(["embeddings", "evaluate", str(questions)], capsys),
              f"{questions}:1: expected 4 words", "give 4 words a line")


@pytest.mark.parametrize("args, start", [
    (["--model", "fasttext", "--hidden", "64"], "--hidden 64: the fasttext model does not use it"),
    (["--model", "lstm", "--layers", "2"], "--layers 2: the lstm model does not use it"),
    (["--model", "rnn", "--dropout", "0.5"], "--dropout 0.5: the rnn model does not use it"),
    (["--model", "cnn", "--cell", "gru"], "--cell 'gru': the cnn model does not use it"),
])
def test_a_model_flag_the_model_does_not_read_is_refused(args, start, tmp_path, capsys):
    out = tmp_path / "run"
    _one_line(*_cli(["imdb", "train", *args, "--out", str(out)], capsys), start, "choose one of those with --model")
    assert not out.exists()


def test_model_flags_the_model_reads_or_equal_to_its_preset_pass():
    parser = cli.build_parser()
    for flags, given in ((["--model", "bilstm", "--layers", "3", "--dropout", "0.2"], dict(layers=3, dropout=0.2)),
                         (["--model", "cnn", "--dropout", "0.1"], dict(dropout=0.1)),
                         (["--model", "lstm", "--cell", "gru", "--hidden", "32"], dict(cell="gru", hidden=32)),
                         (["--model", "lstm", "--layers", "1"], dict(layers=1))):
        cfg = cli._config(configs.ImdbConfig, parser.parse_args(["imdb", "train", *flags]))
        configs.check_model_flags(cfg)  # raises if refused
        preset = configs.IMDB_PRESETS[cfg.model]()
        assert cfg == dataclasses.replace(preset, **given)  # the flags given, the preset's values for the rest
