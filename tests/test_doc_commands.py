"""Every ``seqjax ...`` command the documentation shows is one the CLI takes.

The README's lab table, docs/*.md, results/README.md and the notebooks' text quote commands
in backticks or in fenced blocks; each is parsed as ``seqjax`` parses it (global flags
anywhere, positionals after options) and its config is built, so a renamed flag, a removed
choice or an out-of-range value in the docs fails here instead of in a reader's shell.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path

import pytest

from seqjax import cli, configs

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"markov": configs.MarkovConfig, "embeddings": configs.EmbeddingsConfig,
           "charlm": configs.CharLMConfig, "imdb": configs.ImdbConfig, "word2vec": configs.Word2VecConfig}
PARTS = {*CONFIGS, "lab"}


def _texts() -> list[tuple[str, str]]:
    """``(source, text)`` of every document that quotes commands."""
    out = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"))
           for p in [ROOT / "README.md", ROOT / "results" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]]
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        out += [(str(nb.relative_to(ROOT)), "".join(c["source"])) for c in cells if c["cell_type"] == "markdown"]
    return out


def commands() -> list[tuple[str, str]]:
    """``(source, command)`` for each quoted command, placeholders (``<part>``, ``...``) left out."""
    found = []
    for source, text in _texts():
        quoted = re.findall(r"`(seqjax [^`\n]+)`", text)
        quoted += [line.strip() for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
                   for line in block.splitlines() if line.strip().startswith("seqjax ")]
        for cmd in quoted:
            cmd = cmd.split(" #")[0].split(" && ")[0].split(" | ")[0].removesuffix(" &").strip()
            if not set(shlex.split(cmd)) & PARTS:  # a global flag named alone, e.g. `seqjax --cpu-devices 2`
                continue
            if "<" in cmd or "..." in cmd or "…" in cmd or cmd.endswith(" N"):
                continue
            found.append((source, cmd))
    return sorted(set(found))


def test_the_docs_quote_commands():
    """The walk below must see the lab table (else it would pass on nothing)."""
    cmds = [c for _, c in commands()]
    assert "seqjax imdb train --model cnn" in cmds and "seqjax markov --order 1" in cmds
    assert len(cmds) >= 20


@pytest.mark.parametrize("source, command", commands())
def test_a_documented_command_parses_and_builds_its_config(source, command):
    argv = cli._globals_first(shlex.split(command)[1:])
    parser = cli.build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit:
        pytest.fail(f"{source}: `{command}` is refused by the CLI's parser")
    if args.part in ("imdb", "embeddings"):  # positional texts / words may follow the options
        extra = [e for e in extra if e.startswith("-") and e != "-"]
    assert not extra, f"{source}: `{command}`: unknown flags {extra}"
    cls = CONFIGS.get(args.part)
    if cls is not None:  # the values' ranges, as the CLI checks them before any work
        cfg = cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
        if args.part == "imdb" and args.verb == "train":
            configs.check_model_flags(cfg)
