"""A cell and an encoder of one's own, from the command line: ``seqjax --plugin FILE ...``.

The plugin is docs/examples/plugin.py; every command runs in its own process, as a user's would
(a registry is per process: a name registered here would stay registered for the other tests).
"""

import json
import subprocess
import shutil
import sys
from pathlib import Path


from conftest import make_imdb_dir, sentiment_reviews

PLUGIN = Path(__file__).resolve().parents[1] / "docs" / "examples" / "plugin.py"  # cifg, maxpool


def seqjax(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "seqjax.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_a_plugin_s_encoder_and_cell_train_predict_and_are_listed(tmp_path):
    plugin = tmp_path / "myplugin.py"
    shutil.copy(PLUGIN, plugin)
    make_imdb_dir(tmp_path / "data", sentiment_reviews(40, 20))

    listed = seqjax("--plugin", str(plugin), "imdb", "--help")
    assert listed.returncode == 0 and "maxpool" in listed.stdout and "max over time" in listed.stdout
    assert "cifg" in listed.stdout  # among --cell's values

    out = tmp_path / "run"
    r = seqjax("imdb", "train", "--model", "maxpool", "--plugin", str(plugin), "--data-dir", str(tmp_path / "data"),
               "--vectors", "none", "--batch-size", "16", "--epochs", "6", "--out", str(out),
               "--results", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    cfg = res["config"]
    assert (cfg["model"], cfg["embed"], cfg["lr"], cfg["optimizer"]) == ("maxpool", 32, 0.01, "adam")  # its preset
    assert res["test_accuracy"] > 0.8, res["test_accuracy"]  # chance is 0.5

    p = seqjax("--plugin", str(plugin), "imdb", "predict", "--run", str(out), "--json", "good great lovely",
               "awful poor dull")
    assert p.returncode == 0, p.stderr
    probs = [json.loads(line)["p_positive"] for line in p.stdout.splitlines()]
    assert probs[0] > 0.5 > probs[1]

    # without the plugin the run's model is unknown: one line that names the fix, exit 2
    bare = seqjax("imdb", "predict", "--run", str(out), "great")
    assert bare.returncode == 2 and "--plugin" in bare.stderr and "Traceback" not in bare.stderr, bare.stderr

    # the plugin's cell in the char LM, the module given by name from the current folder
    (tmp_path / "t.txt").write_text("the quick brown fox jumps over the lazy dog. " * 40)
    lm = seqjax("--plugin", "myplugin", "charlm", "train", "--cell", "cifg", "--text", "t.txt", "--epochs", "1",
                "--hidden", "16", "--batch-size", "32", "--markov-orders", "", "--sample-length", "5",
                "--out", "lm", "--results", "lm.json", cwd=tmp_path)
    assert lm.returncode == 0, lm.stderr
    assert json.loads((tmp_path / "lm.json").read_text())["config"]["cell"] == "cifg"


def test_a_bad_plugin_is_one_line_and_exit_2(tmp_path):
    r = seqjax("--plugin", "no_such_module_here", "markov")
    assert r.returncode == 2 and "--plugin no_such_module_here" in r.stderr and "Traceback" not in r.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('half written')\n")
    r = seqjax("--plugin", str(broken), "markov")
    assert r.returncode == 2 and "half written" in r.stderr and "Traceback" not in r.stderr
    r = seqjax("imdb", "train", "--model", "maxpool")
    assert r.returncode == 2 and "maxpool" in r.stderr and "Traceback" not in r.stderr
