"""The four lab notebooks run top to bottom in QUICK mode on the real data."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import real_data_dir

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("7_*.ipynb"))


def test_all_four_notebooks_exist():
    assert [p.name[:3] for p in NOTEBOOKS] == ["7_1", "7_2", "7_3", "7_4"]


@pytest.mark.realdata
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQJAX_QUICK", "1")
    monkeypatch.setenv("SEQJAX_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SEQJAX_DATA_DIR", str(real_data_dir()))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NB_DIR)}}).execute()  # raises on a failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
