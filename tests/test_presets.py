"""IMDB presets: the five lab models' hyperparameters, the flags that override them, the checks
on a config, and configs saved before still loading."""

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from seqjax import SeqjaxError, cli, configs

ROOT = Path(__file__).resolve().parents[1]
MODELS = list(configs.IMDB_PRESETS)


def _published(model: str) -> dict:
    """results/imdb/MODEL.json: the run the README reports for the model, with its command and config."""
    return json.loads((ROOT / "results" / "imdb" / f"{model}.json").read_text())


def test_the_five_lab_models_have_presets():
    assert MODELS == ["rnn", "lstm", "bilstm", "fasttext", "cnn"]


@pytest.mark.parametrize("model", MODELS)
def test_every_preset_holds_the_values_its_published_run_trained_with(model):
    """The model hyperparameters are checked against what the published run recorded (not against
    a copy of configs.py): a preset changed without a new run fails here, and so does a command
    line in a results file that today's CLI would turn into another config."""
    r = _published(model)
    preset = configs.IMDB_PRESETS[model]()
    assert preset.model == model
    assert {k: getattr(preset, k) for k in configs.PRESET_FIELDS} == {k: r["config"][k] for k in configs.PRESET_FIELDS}
    built = configs.ImdbConfig(model=model)  # by name: this model's values, not another model's
    assert built == preset and None not in dataclasses.astuple(built)
    assert built.from_preset == frozenset(configs.PRESET_FIELDS)
    args = cli.build_parser().parse_args(cli._globals_first(shlex.split(r["command"])[1:]))
    again = configs.ImdbConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(configs.ImdbConfig)})
    assert {k: getattr(again, k) for k in r["config"]} == r["config"]  # fields added since were not recorded


@pytest.mark.parametrize("model", MODELS)
def test_preset_docstring_gives_the_command_runtime_and_accuracy_of_its_results_file(model):
    r = _published(model)
    doc = " ".join(configs.IMDB_PRESETS[model].__doc__.split())
    assert f"``results/imdb/{model}.json``" in doc
    assert f"``{r['command']}``" in doc
    assert f"{r['wall_time_s']:,.0f} s" in doc and f"{100 * r['test_accuracy']:.2f} %" in doc


def test_a_given_field_overrides_the_preset_and_only_it():
    cfg = configs.ImdbConfig(model="bilstm", lr=0.01, dropout=0.0)  # 0.0 is a value, not "unset"
    assert cfg == dataclasses.replace(configs.imdb_bilstm(), lr=0.01, dropout=0.0)
    assert cfg.from_preset == frozenset(configs.PRESET_FIELDS) - {"lr", "dropout"}


def test_the_cli_takes_the_models_preset_and_a_given_flag_overrides_it():
    parser = cli.build_parser()

    def config(*flags):
        return cli._config(configs.ImdbConfig, parser.parse_args(["imdb", "train", *flags]))

    assert config() == configs.imdb_lstm()
    assert config("--model", "cnn") == configs.imdb_cnn()
    assert config("--model", "cnn", "--lr", "0.01") == dataclasses.replace(configs.imdb_cnn(), lr=0.01)
    assert config("--model", "bilstm", "--dropout", "0", "--hidden", "64", "--epochs", "2") == \
        dataclasses.replace(configs.imdb_bilstm(), dropout=0.0, hidden=64, epochs=2)


@pytest.mark.parametrize("fields, message", [
    (dict(dropout=-1.0), "--dropout -1: give a rate in [0, 1)"),
    (dict(embed=0), "--embed 0: give a whole number >= 1"),
    (dict(lr=0.0), "--lr 0: give a finite learning rate > 0"),
    (dict(model="bilstm", layers=0), "--layers 0: a bilstm needs a whole number >= 1"),
    # the lab's five, then any encoder registered in this process (other tests register some)
    (dict(model="gpt"), "--model 'gpt': choose one of rnn, lstm, bilstm, fasttext, cnn{registered} (an encoder of "
                        "one's own: register it in a module and load that with --plugin MODULE)"),
])
def test_impossible_values_are_refused_in_one_line_naming_the_flag(fields, message, capsys):
    message = message.format(registered="".join(f", {m}" for m in configs.model_names()[5:]))
    with pytest.raises(SeqjaxError) as err:
        configs.ImdbConfig(**fields)
    assert str(err.value) == message
    flags = [a for k, v in fields.items() for a in (f"--{k}", str(v))]
    try:
        code = cli.main(["imdb", "train", *flags])
    except SystemExit as stop:  # a value outside a closed set: the parser refuses it, with the help command
        code, message = stop.code, f"{message}; see `seqjax imdb --help`"
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert err in ([f"seqjax: error: {message}"], [f"seqjax imdb: error: {message}"]), err


def test_a_config_saved_before_loads_as_it_was():
    """The config a run's checkpoint meta (and results JSON) held before the presets: every model
    field filled in, fields added since (clip, minutes, bucket_growth, eval_limit) absent."""
    saved = {"model": "fasttext", "source": "auto", "data_dir": "", "tokenizer": "regex", "max_vocab": 25000,
             "max_len": 0, "vectors": "6B.50d", "embed": 50, "cell": "", "hidden": 0, "layers": 0,
             "dropout": 0.0, "optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 5, "seed": 0,
             "valid_fraction": 0.3, "train_limit": 0, "out": "runs/imdb_fasttext", "resume": False,
             "results": "results/imdb/fasttext.json"}
    cfg = configs.ImdbConfig(**saved)
    assert {k: getattr(cfg, k) for k in saved} == saved and cfg.from_preset == frozenset()
    assert (cfg.clip, cfg.minutes, cfg.eval_limit) == (0.0, 0.0, 0)
