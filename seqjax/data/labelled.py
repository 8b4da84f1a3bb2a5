"""Labelled texts of your own, for every classifier: TSV or JSON-lines files with ``text`` and
``label`` fields, read into the record format of :mod:`seqjax.data.imdb` (:class:`Split`:
``texts``, ``labels int32[N]``).

* ``tsv``: a header row naming the columns (``text`` and ``label`` among them, in any order),
  then one example per line, fields separated by tabs (no quoting: a text holds no tab or
  newline);
* ``jsonl``: one JSON object per line with ``"text"`` (a string) and ``"label"`` (a string or a
  whole number).

Blank lines are skipped; a UTF-8 byte-order mark is accepted. Labels are class names: the
training file's distinct labels, sorted (numbers by value), are the classes ``0 .. C-1``; a
label in another file that the training file lacks is refused, naming the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seqjax import SeqjaxError
from seqjax.data.imdb import Split

FORMATS = ("tsv", "jsonl")


def data_format(path: str | Path, fmt: str = "") -> str:
    """``fmt``, or the format the file's extension names (``.tsv``, ``.jsonl`` / ``.json``)."""
    if fmt:
        if fmt not in FORMATS:
            raise SeqjaxError(f"--data-format {fmt!r}: choose {' or '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in (".tsv", ".jsonl", ".json"):
        return "tsv" if suffix == ".tsv" else "jsonl"
    raise SeqjaxError(f"{path}: cannot tell the format from the extension; name the file .tsv or .jsonl, "
                      f"or give --data-format tsv|jsonl")


def read(path: str | Path, fmt: str = "") -> tuple[list[str], list[str]]:
    """``(texts, labels)`` of one file, each a list of ``N`` strings (labels as written)."""
    path = Path(path)
    fmt = data_format(path, fmt)
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except FileNotFoundError:
        raise SeqjaxError(f"{path}: no such file; give a {fmt.upper()} file of labelled texts") from None
    except UnicodeDecodeError as err:
        raise SeqjaxError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    texts, labels = [], []
    if fmt == "tsv":
        header = lines[0].rstrip("\r").split("\t") if lines else []
        if "text" not in header or "label" not in header:
            raise SeqjaxError(f"{path}:1: the header row {header[:6]} lacks 'text' or 'label'; start the file "
                              f"with a tab-separated header naming both columns")
        ti, li = header.index("text"), header.index("label")
        for n, line in enumerate(lines[1:], start=2):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != len(header):
                raise SeqjaxError(f"{path}:{n}: {len(fields)} tab-separated fields, the header has {len(header)}; "
                                  f"a text may not contain a tab")
            texts.append(fields[ti])
            labels.append(fields[li].strip())
    else:
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise SeqjaxError(f"{path}:{n}: not JSON ({err.msg}); write one object per line") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str) or \
                    not isinstance(rec.get("label"), (str, int)) or isinstance(rec.get("label"), bool):
                raise SeqjaxError(f"{path}:{n}: expected an object with a string \"text\" and a \"label\" "
                                  f"(a string or a whole number)")
            texts.append(rec["text"])
            labels.append(str(rec["label"]))
    if not texts:
        raise SeqjaxError(f"{path}: no examples; give a file with at least one labelled text")
    return texts, labels


def _sort_key(name: str):
    try:
        return (0, int(name), name)
    except ValueError:
        return (1, 0, name)


def load(train: str | Path, test: str | Path, valid: str | Path = "", fmt: str = ""
         ) -> tuple[dict[str, Split], list[str]]:
    """The splits ``{"train", "test"[, "valid"]} -> Split`` and the class names (index = label).

    Raises: SeqjaxError for a missing or malformed file, fewer than two classes in ``train``,
    or a label in ``test`` / ``valid`` that ``train`` lacks.
    """
    texts, names = read(train, fmt)
    classes = sorted(set(names), key=_sort_key)
    if len(classes) < 2:
        raise SeqjaxError(f"{train}: every example has the label {classes[0]!r}; a classifier needs two or more")
    index = {c: i for i, c in enumerate(classes)}
    splits = {"train": Split(texts, np.array([index[c] for c in names], np.int32))}
    for name, path in (("test", test), ("valid", valid)):
        if not path:
            continue
        t, lab = read(path, fmt)
        unknown = sorted(set(lab) - set(index), key=_sort_key)
        if unknown:
            raise SeqjaxError(f"{path}: label {unknown[0]!r} is not among the training file's classes "
                              f"({', '.join(classes)}); give the same labels in every file")
        splits[name] = Split(t, np.array([index[c] for c in lab], np.int32))
    return splits, classes
