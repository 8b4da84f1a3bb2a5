"""Word vocabulary: the top ``max_size`` training tokens plus ``<unk>`` and ``<pad>``.

Ids follow torchtext's legacy ``Field.build_vocab`` that the lab used: ``<unk>`` = 0,
``<pad>`` = 1, then tokens by descending frequency, ties broken alphabetically. With
``max_size=25_000`` the lab's IMDB vocab has 25,002 entries. Build it on the training split only.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from seqjax import SeqjaxError, files

UNK, PAD = "<unk>", "<pad>"


@dataclasses.dataclass
class Vocab:
    """Attributes:
      itos: id -> token list; ``itos[0] == "<unk>"``, ``itos[1] == "<pad>"``.
      freqs: training counts aligned with ``itos`` (0 for the specials).
    """

    itos: list[str]
    freqs: list[int]

    def __post_init__(self):
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    unk_id = 0
    pad_id = 1

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], max_size: int | None = 25_000,
              min_freq: int = 1) -> "Vocab":
        counter: collections.Counter = collections.Counter()
        for toks in token_lists:
            counter.update(toks)
        counter.pop(UNK, None)
        counter.pop(PAD, None)
        items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        items = [kv for kv in items if kv[1] >= min_freq][:max_size]
        if not items:
            raise SeqjaxError("cannot build a vocabulary: the training texts contain no tokens; give texts with "
                              "words in them")
        return cls([UNK, PAD] + [w for w, _ in items], [0, 0] + [c for _, c in items])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """tokens -> ids ``int32[T]`` (``T = len(tokens)``); unknown tokens map to ``<unk>`` (0)."""
        get = self.stoi.get
        return np.fromiter((get(t, 0) for t in tokens), np.int32, count=len(tokens))

    def decode(self, ids) -> list[str]:
        return [self.itos[int(i)] for i in np.asarray(ids).reshape(-1)]

    def to_json(self) -> str:
        return json.dumps({"itos": self.itos, "freqs": self.freqs}, ensure_ascii=False)

    @classmethod
    def from_json(cls, s: str) -> "Vocab":
        d = json.loads(s)
        return cls(d["itos"], d["freqs"])

    def save(self, path: str | os.PathLike) -> None:
        files.write_atomic(path, self.to_json())  # whole or not at all

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        path = Path(path)
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError) as err:
            raise SeqjaxError(f"{path}: not a seqjax vocab JSON file ({err}); "
                              f"save one with Vocab.save") from None
