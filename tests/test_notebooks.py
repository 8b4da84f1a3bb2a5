"""The four lab notebooks, run the way Colab runs them, and the outputs committed with them.

Colab-style: one fresh virtual environment in which seqjax is *not* installed (only a Jupyter
kernel, as on a new Colab runtime), each notebook copied alone into an empty folder, and
``SEQJAX_SOURCE`` pointing at this checkout; the notebook's first cell installs seqjax (the first
notebook also pulls every dependency from PyPI; seqjax itself is uninstalled again before each
notebook, so every first cell does its own install), then every cell runs in QUICK mode on the
real data in ``SEQJAX_DATA_DIR``. The environment is shared by the four notebooks because
installing jax, flax, orbax and tensorflow-datasets afresh for each would cost minutes apiece.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import real_data_dir

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("7_*.ipynb"))
KERNEL = "seqjax-fresh"


def test_the_four_notebooks_are_valid_linked_from_the_readme_and_share_one_setup_cell():
    """Without running them (the Colab-style runs below are real-data tests): each notebook is a
    valid nbformat 4 document titled with its lab part, README links it and its Colab badge, and
    the four first code cells (where seqjax comes from, the install, QUICK) are one cell, so a fix
    made in one notebook's setup is not missing from another."""
    assert [p.name[:3] for p in NOTEBOOKS] == ["7_1", "7_2", "7_3", "7_4"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setups = []
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)  # raises on a notebook Jupyter or Colab would refuse
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# 7.{p.name[2]} "), p.name
        assert f"[7.{p.name[2]} " in readme and f"](notebooks/{p.name})" in readme, p.name
        assert f"colab.research.google.com/github/OWNER/seqjax/blob/main/notebooks/{p.name})" in readme, p.name
        setups.append(next(c.source for c in nb.cells if c.cell_type == "code"))
    differ = [p.name for p, s in zip(NOTEBOOKS, setups) if s != setups[0]]
    assert not differ, f"the first code cell of {differ} differs from {NOTEBOOKS[0].name}'s"
    assert 'f"{SRC}[glove]"' in setups[0] and "SEQJAX_SOURCE" in setups[0] and "QUICK =" in setups[0]


# ---- the fresh environment ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A new venv holding only ipykernel, registered as the Jupyter kernel ``seqjax-fresh``."""
    base = tmp_path_factory.mktemp("colab")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "ipykernel"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    spec = base / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(base / "jupyter")
    yield py
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


def _kernel_env(**extra: str) -> dict:
    """The test's environment without anything that would make this checkout importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "SEQJAX_SOURCE")}
    env.update(SEQJAX_QUICK="1", **extra)
    return env


def _importable(py: Path) -> bool:
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('seqjax') is None)"
    return subprocess.run([str(py), "-c", code], env=_kernel_env(), cwd="/").returncode == 0


def _uninstall(py: Path) -> None:
    subprocess.run([str(py), "-m", "pip", "uninstall", "-q", "-y", "seqjax"], env=_kernel_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert not _importable(py)


def _text(cell) -> str:
    return "".join(o.get("text", "") + "".join(o.get("traceback", []))
                   for o in cell.get("outputs", []))


def test_first_cell_without_a_source_says_what_to_set_and_stops(fresh, tmp_path):
    _uninstall(fresh)
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    nb.cells = nb.cells[:2] + [nbformat.v4.new_code_cell("print('reached the next cell')")]
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError):
        client.execute(env=_kernel_env())
    err = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert len(err) == 1 and len(err[0].traceback) == 1  # one line, no traceback
    assert "set SEQJAX_SOURCE" in err[0].traceback[0]
    assert not nb.cells[2].get("outputs") and not _importable(fresh)


def test_first_cell_installs_nothing_where_seqjax_is_importable(tmp_path):
    """In this test run's own environment seqjax is importable: the cell must not install, even
    with a SEQJAX_SOURCE that would fail."""
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    nb.cells = nb.cells[1:2]
    env = {**os.environ, "SEQJAX_SOURCE": str(tmp_path / "no-such-checkout"), "SEQJAX_QUICK": "1"}
    NotebookClient(nb, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    out = _text(nb.cells[0])
    assert "already installed: nothing to install" in out and "installed seqjax and" not in out


@pytest.mark.realdata
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_like_on_colab(path, fresh, tmp_path):
    _uninstall(fresh)
    work = tmp_path / "colab"
    work.mkdir()
    shutil.copy(path, work / path.name)  # the notebook alone, as Colab opens it
    nb = nbformat.read(work / path.name, as_version=4)
    env = _kernel_env(SEQJAX_SOURCE=str(ROOT), SEQJAX_DATA_DIR=str(real_data_dir()))
    NotebookClient(nb, kernel_name=KERNEL, timeout=900,
                   resources={"metadata": {"path": str(work)}}).execute(env=env)  # raises on a failing cell
    assert "installed seqjax and its dependencies" in _text(nb.cells[1])
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


# ---- the committed outputs -----------------------------------------------------------------------
MACHINE = re.compile(r"/(?:work|home|root|tmp|usr|opt|var)/|site-packages|\.venv|\\\\Users\\\\")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_are_a_clean_full_run(path):
    """Made top to bottom in one full (non-QUICK) run: every code cell ran once, in order; no
    errors; no paths of the machine; progress bars as one line each; plots inline."""
    nb = nbformat.read(path, as_version=4)
    assert not [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("ANSWER_")]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert "QUICK = False" in _text(code[0])
    for i, c in enumerate(code):
        for o in c.outputs:
            assert o.output_type != "error", f"cell {i}: {o.get('ename')}"
            text = o.get("text", "") + "".join(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
            m = MACHINE.search(text)
            assert not m, f"code cell {i} shows a path of this machine: ...{text[max(m.start() - 60, 0):m.end() + 60]}..."
            assert "\r" not in text, f"code cell {i}: a progress bar kept its redraws"
        if "plt.show()" in c.source or "display(Image" in c.source:
            assert any("image/png" in o.get("data", {}) for o in c.outputs), f"code cell {i}: no inline figure"


def test_lab_71_trains_in_the_notebook_with_samples_before_and_after_each_epoch():
    nb = nbformat.read(NB_DIR / "7_1_sequence_modelling.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    untrained = next(_text(c) for c in code if "untrained" in c.source)
    assert untrained.count("--- temperature") == 4
    train = next(_text(c) for c in code if c.source.strip() == "lstm = charlm.train(cfg)")
    assert "resumed" not in train
    epochs = [int(e) for e in re.findall(r"--- epoch (\d+):", train)]
    assert epochs == list(range(1, 11)) and train.count("--- temperature") == 40
