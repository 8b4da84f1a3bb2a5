"""Character corpora: the Nietzsche text or any UTF-8 file, as the lab prepares it.

The lab lower-cases the text, builds a sorted char vocabulary and cuts 40-char windows every
3 chars, each labelled with the char that follows it. seqjax adds a held-out *tail*: the last
``valid_fraction`` of the text is never inside a training window (windows are cut from the
head only), so held-out bits/char are honest.

Bytes that are not valid UTF-8 raise :class:`SeqjaxError` naming the byte offset, unless
``errors="replace"`` is given, which maps each bad byte to U+FFFD (one extra vocab char).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from seqjax import SeqjaxError
from seqjax.data import download


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """A sorted char vocabulary.

    Attributes:
      chars: the characters, sorted; id ``i`` is ``chars[i]``.
    """

    chars: str

    @classmethod
    def build(cls, text: str) -> "CharVocab":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ids ``int32[T]`` (``T = len(text)``). Unknown chars raise SeqjaxError naming them."""
        table = np.full(max(map(ord, self.chars)) + 1, -1, np.int32)
        table[[ord(c) for c in self.chars]] = np.arange(len(self.chars), dtype=np.int32)
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32) if text else np.zeros(0, np.uint32)
        ids = np.where(codes < len(table), table[np.minimum(codes, len(table) - 1)], -1)
        if (ids < 0).any():
            bad = sorted({text[i] for i in np.flatnonzero(ids < 0)[:50]})
            raise SeqjaxError(
                f"text contains characters outside the vocabulary: {''.join(bad)!r}; "
                f"use only these {len(self)} characters: {self.chars!r}"
            )
        return ids.astype(np.int32)

    def decode(self, ids) -> str:
        """ids ``int[T]`` -> str."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))

    def to_json(self) -> str:
        return json.dumps({"chars": self.chars})

    @classmethod
    def from_json(cls, s: str) -> "CharVocab":
        return cls(json.loads(s)["chars"])


def read_text(path: str | os.PathLike, errors: str = "strict", lower: bool = True, flag: str = "--text",
              can_replace: bool = False) -> str:
    """Read a UTF-8 text file (lower-cased as in the lab unless ``lower=False``).

    Args:
      errors: ``"strict"`` raises SeqjaxError at the first invalid byte; ``"replace"`` maps
        each invalid byte to U+FFFD.
      flag: the command-line flag that named the file, for the error messages.
      can_replace: the command also takes ``--text-errors replace`` (its messages offer it).
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise SeqjaxError(f"{flag} {path}: {what}; give an existing UTF-8 text file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as err:
        raise SeqjaxError(
            f"{flag} {path}: byte {err.start} ({raw[err.start:err.start + 1]!r}) is not valid UTF-8; "
            f"convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
            + (" or pass --text-errors replace to map bad bytes to U+FFFD" if can_replace else "")
        ) from None
    if not text:
        raise SeqjaxError(f"{flag} {path}: the file is empty; give a text with at least a few hundred chars")
    return text.lower() if lower else text


def text_lines(data: bytes, source: str) -> list[str]:
    """The non-blank lines of ``data`` (a file's or standard input's bytes), one text each.

    Lines end at ``\n`` only (a ``\r`` before it is dropped: CRLF files read alike); form feeds,
    U+2028, U+0085 and the other characters Python's ``str.splitlines`` also breaks at stay
    inside their line, so outputs line up with input lines. A leading UTF-8 byte-order mark is
    dropped.

    Raises:
      SeqjaxError: ``data`` is not UTF-8 text or holds a NUL byte (binary data), naming ``source``.
    """
    fix = "give UTF-8 text, one text per line"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SeqjaxError(f"{source}: not UTF-8 text (byte {err.start}); {fix}") from None
    if "\0" in text:
        raise SeqjaxError(f"{source}: holds a NUL byte (binary data, at byte {data.index(0)}); {fix}")
    return [line.removesuffix("\r") for line in text.split("\n") if line.strip()]


def load_nietzsche(data_dir: str | None = None) -> str:
    """The lab's corpus, lower-cased: ``str`` of 600,901 chars."""
    return read_text(download.fetch("nietzsche", data_dir))


@dataclasses.dataclass(frozen=True)
class CharCorpus:
    """A char corpus split into a training head and a held-out tail.

    Attributes:
      vocab: chars of the whole text (so held-out chars are always encodable).
      train_ids: ``int32[n_train]``.
      valid_ids: ``int32[n_valid]``; no training window reads any of these.
    """

    vocab: CharVocab
    train_ids: np.ndarray
    valid_ids: np.ndarray

    @classmethod
    def from_text(cls, text: str, valid_fraction: float = 0.1) -> "CharCorpus":
        if not 0.0 <= valid_fraction < 1.0:
            raise SeqjaxError(f"--valid-fraction {valid_fraction:g}: give a fraction in [0, 1)")
        vocab = CharVocab.build(text)
        ids = vocab.encode(text)
        cut = len(ids) - int(round(len(ids) * valid_fraction))
        return cls(vocab, ids[:cut], ids[cut:])


def windows(ids: np.ndarray, maxlen: int = 40, step: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The lab's training pairs: windows of ``maxlen`` chars every ``step`` chars.

    Args:
      ids: the text, ``int32`` ids.
    Returns:
      ``x int32[N, T]`` (``T = maxlen``) and ``y int32[N]`` — the char after each window;
      ``N = (len(ids) - maxlen - 1) // step + 1`` (0 if the text is too short).
    """
    n = len(ids) - maxlen
    if n <= 0:
        return np.zeros((0, maxlen), np.int32), np.zeros((0,), np.int32)
    starts_N = np.arange(0, n, step)
    x_NT = np.lib.stride_tricks.sliding_window_view(ids, maxlen)[starts_N]
    return x_NT.astype(np.int32), ids[starts_N + maxlen].astype(np.int32)


def context_windows(ids: np.ndarray, context: np.ndarray, maxlen: int = 40):
    """Every char of ``ids`` with the ``maxlen`` chars before it (crossing into ``context``).

    Used for held-out evaluation: each held-out char is predicted from exactly the lab's
    context, so every model and objective is scored on the same rows.

    Args:
      ids: ``int32[N]`` held-out chars.
      context: ``int32`` ids of the text preceding ``ids`` (the training head), at least
        ``maxlen`` of them.
    Returns:
      ``x int32[N, T]`` (``T = maxlen``), ``y int32[N]``.
    """
    full = np.concatenate([context[-maxlen:], ids])
    x_NT = np.lib.stride_tricks.sliding_window_view(full, maxlen)[: len(ids)]
    return x_NT.astype(np.int32), ids.astype(np.int32)
