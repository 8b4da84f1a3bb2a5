"""Execute lab notebooks top to bottom with full (non-QUICK) settings and keep their outputs.

``SEQJAX_DATA_DIR=../shared/data python notebooks/execute.py notebooks/7_3_sequence_classification.ipynb``

Each run is clean: the kernel starts in an empty folder and ``SEQJAX_RUNS`` is a new empty
folder (unless set), so every model trains from scratch. ``--quick`` runs QUICK mode instead
and writes the executed copy to ``--out DIR`` (the committed notebooks keep full-run outputs).

Progress bars redraw a line with carriage returns; a notebook shows only the last state of each
line, and that is all that is kept (one line per bar), so the files hold no redraws.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def collapse_redraws(text: str) -> str:
    """What a terminal shows of ``text``: each line as it stands after its last ``\\r``; lines
    left blank by a cleared progress bar are dropped."""
    lines = []
    for line in text.split("\n"):
        shown = line.rstrip("\r").split("\r")[-1]
        if shown.strip() or not ("\r" in line):
            lines.append(shown.rstrip())
    return "\n".join(lines)


def tidy(nb) -> None:
    """Merge consecutive stream outputs of one name (as a notebook displays them), collapse their
    progress-bar redraws, drop streams left empty. In place."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for o in cell.get("outputs", []):
            if (o.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == o.name):
                merged[-1].text += o.text
            else:
                merged.append(o)
        keep = []
        for o in merged:
            if o.output_type == "stream":
                o.text = collapse_redraws(o.text)
                if not o.text.strip():
                    continue
                if not o.text.endswith("\n"):
                    o.text += "\n"
            keep.append(o)
        cell.outputs = keep


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    out_dir = None
    if "--out" in argv:
        out_dir = Path(argv[argv.index("--out") + 1])
        argv = argv[:argv.index("--out")] + argv[argv.index("--out") + 2:]
    paths = [Path(a) for a in argv if not a.startswith("--")]
    if not paths or (quick and out_dir is None):
        sys.exit("usage: python notebooks/execute.py [--quick --out DIR] NOTEBOOK.ipynb [...] "
                 "(QUICK outputs never replace the committed full-run ones: --quick needs --out)")
    os.environ["SEQJAX_QUICK"] = "1" if quick else "0"
    os.environ.pop("MPLBACKEND", None)  # a non-inline backend would drop the figures from the outputs
    if os.environ.get("SEQJAX_DATA_DIR"):
        os.environ["SEQJAX_DATA_DIR"] = str(Path(os.environ["SEQJAX_DATA_DIR"]).resolve())
    for p in paths:
        with tempfile.TemporaryDirectory(prefix="seqjax-nb-") as work:
            os.environ.setdefault("SEQJAX_RUNS", str(Path(work) / "runs"))
            nb = nbformat.read(p, as_version=4)
            print(f"executing {p} ({'QUICK' if quick else 'full'} settings) ...", flush=True)
            NotebookClient(nb, timeout=None, kernel_name="python3",
                           resources={"metadata": {"path": work}}).execute()
            if os.environ["SEQJAX_RUNS"].startswith(work):
                del os.environ["SEQJAX_RUNS"]
        tidy(nb)
        dest = (out_dir / p.name) if out_dir else p
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest)
        print(f"written {dest}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
