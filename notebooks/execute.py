"""Execute lab notebooks in place with full (non-QUICK) settings, keeping their outputs.

``SEQJAX_DATA_DIR=../shared/data python notebooks/execute.py notebooks/7_3_sequence_classification.ipynb``

Checkpoints go to ``$SEQJAX_RUNS`` (default ``runs/notebooks``); a re-run resumes them.
"""

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(paths: list[str]) -> None:
    if not paths:
        sys.exit("usage: python notebooks/execute.py NOTEBOOK.ipynb [...]")
    os.environ["SEQJAX_QUICK"] = "0"
    os.environ.setdefault("SEQJAX_RUNS", str(Path("runs/notebooks").absolute()))
    os.environ.setdefault("MPLBACKEND", "Agg")
    for p in map(Path, paths):
        nb = nbformat.read(p, as_version=4)
        print(f"executing {p} (full settings) ...", flush=True)
        NotebookClient(nb, timeout=None, kernel_name="python3",
                       resources={"metadata": {"path": str(p.parent.absolute())}}).execute()
        nbformat.write(nb, p)
        print(f"written {p}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
