"""Execute lab notebooks in place with full (non-QUICK) settings, keeping their outputs.

``SEQJAX_DATA_DIR=../shared/data python notebooks/execute.py notebooks/7_3_sequence_classification.ipynb``

Checkpoints go to ``$SEQJAX_RUNS`` (default ``runs/notebooks``); a re-run resumes them.
``--figures-only`` re-executes a copy (finished runs resume without training) and adds its
figures to the cells of the committed notebook that show none — e.g. after a new plot cell.
"""

import copy
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


BAR = re.compile(r"\d+%\|.*\||it/s|s/it|IProgress not found|from \.autonotebook import")


def drop_progress_bars(nb) -> None:
    """Remove stderr outputs that hold only progress-bar frames (tqdm redraws), in place."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        keep = []
        for o in cell.get("outputs", []):
            if o.output_type == "stream" and o.name == "stderr":
                lines = [ln for ln in re.split(r"[\r\n]", o.text) if ln.strip() and not BAR.search(ln)]
                if not lines:
                    continue
            keep.append(o)
        cell.outputs = keep


def _has_figure(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def main(argv: list[str]) -> None:
    figures_only = "--figures-only" in argv
    paths = [a for a in argv if a != "--figures-only"]
    if not paths:
        sys.exit("usage: python notebooks/execute.py [--figures-only] NOTEBOOK.ipynb [...]")
    os.environ["SEQJAX_QUICK"] = "0"
    os.environ.setdefault("SEQJAX_RUNS", str(Path("runs/notebooks").absolute()))
    os.environ.pop("MPLBACKEND", None)  # a non-inline backend would drop the figures from the outputs
    for p in map(Path, paths):
        nb = nbformat.read(p, as_version=4)
        run = copy.deepcopy(nb) if figures_only else nb
        print(f"executing {p} (full settings) ...", flush=True)
        NotebookClient(run, timeout=None, kernel_name="python3",
                       resources={"metadata": {"path": str(p.parent.absolute())}}).execute()
        if figures_only:
            for old, new in zip(nb.cells, run.cells):
                if old.cell_type == "code" and not _has_figure(old) and _has_figure(new):
                    old.outputs = list(old.outputs) + [o for o in new.outputs if "image/png" in o.get("data", {})]
        drop_progress_bars(nb)
        nbformat.write(nb, p)
        print(f"written {p}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
