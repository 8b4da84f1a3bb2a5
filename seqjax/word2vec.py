"""word2vec in JAX: skip-gram (or CBOW) with negative sampling, as Mikolov et al. (2013) and
their C tool define it.

* vocabulary: words with count >= ``min_count``, sorted by descending count;
* frequent-word subsampling with the C tool's keep probability
  ``p_keep(w) = (sqrt(c_w / (t N)) + 1) (t N) / c_w`` (``t`` = ``sample``, ``N`` = training words),
  redrawn every epoch;
* a dynamic window: each centre word uses ``b ~ U{1..window}`` words on each side (never across
  documents);
* ``negative`` noise words drawn from unigram counts ``^ 0.75``; a noise word equal to the word
  it stands against is skipped, as in the C tool;
* SGD with the learning rate decayed linearly from ``alpha`` to ``alpha * 1e-4`` over all
  epochs; input vectors initialised ``U(-0.5/dim, 0.5/dim)``, output vectors zero.

**Shared negatives per window (skip-gram).** The C tool predicts the centre word from each
context word of its window, each pair with its own ``negative`` noise words. Here the
``2b`` context words of one window share the window's noise words (Ji et al. 2016,
"Parallelizing word2vec in shared and distributed memory", *HogBatch*): per window one small
product ``[2b, D] x [D, 1 + negative]`` instead of ``2b`` separate ones, and per pair about two
embedding-row reads/writes instead of seven. On a CPU word2vec is bound by those row
gathers/scatters, not by arithmetic, so this is what makes it fast; the expected gradient is
unchanged (each pair still meets ``negative`` noise words drawn from the same distribution).
``benchmarks/word2vec.py`` checks that gensim, judging both with the same analogy test,
scores these vectors within a point of its own. CBOW windows already have one set of noise
words each (the C tool's definition).

**Batches.** Windows are grouped by their half-width ``b`` so every window of a batch has
exactly ``2b`` context slots (few padded slots: only at document edges), which gives
``window`` static shapes and no recompiles. A producer thread builds the next batches with
numpy (subsampling, windows, noise words) while the device trains on the current ones; one
jit call runs ``steps_per_call`` batches with ``lax.scan``. Each embedding row takes the sum
of its updates within a batch, capped at ``row_cap`` times their mean (see ``_capped_add``:
the plain sum diverges for frequent words in large batches). No Python loop runs per word.

Shapes: ``V`` vocabulary, ``E`` vector width (``dim``), ``N`` corpus tokens, ``B`` windows of
a batch, ``S`` context slots of a window (``2 * half``), ``K`` noise words (``negative``).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import queue
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from seqjax import SeqjaxError
from seqjax.configs import Word2VecConfig
from seqjax.data.glove import WordVectors, save_text_vectors


@dataclasses.dataclass
class Corpus:
    """Encoded documents: ``ids int32[N]`` (all documents concatenated), ``doc int32[N]``
    (document index of each token), the vocabulary ``words`` (``V``) and ``counts int64[V]``."""

    ids: np.ndarray
    doc: np.ndarray
    words: list[str]
    counts: np.ndarray

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]], min_count: int = 5) -> "Corpus":
        counter: collections.Counter = collections.Counter()
        for d in docs:
            counter.update(d)
        if not counter:
            raise SeqjaxError("--corpus: no tokens in it; give a text with words, one document a line")
        vocab = sorted((w for w, c in counter.items() if c >= min_count), key=lambda w: (-counter[w], w))
        if not vocab:
            raise SeqjaxError(f"--min-count {min_count} is above every word's count (the most frequent "
                              f"word occurs {counter.most_common(1)[0][1]} times); lower --min-count")
        if len(vocab) < 2:
            raise SeqjaxError(f"--corpus: one distinct word ({vocab[0]!r}) of count >= --min-count {min_count}; "
                              f"word vectors need two or more words that occur together: give a larger text or "
                              f"lower --min-count")
        index = {w: i for i, w in enumerate(vocab)}
        ids, doc = [], []
        for k, d in enumerate(docs):
            enc = [index[w] for w in d if w in index]
            ids.append(np.asarray(enc, np.int32))
            doc.append(np.full(len(enc), k, np.int32))
        if max(map(len, ids)) < 2:
            raise SeqjaxError(f"--corpus: no document holds two words of count >= --min-count {min_count}, so "
                              f"there is no (word, context) pair to train on; give documents of several words "
                              f"(one document a line) or lower --min-count")
        return cls(np.concatenate(ids), np.concatenate(doc), vocab,
                   np.array([counter[w] for w in vocab], np.int64))


def keep_probability(counts: np.ndarray, sample: float) -> np.ndarray:
    """The C tool's subsampling keep probability per word (clipped to 1): ``float64[V]``."""
    if sample <= 0:
        return np.ones(len(counts))
    tn = sample * counts.sum()
    return np.minimum((np.sqrt(counts / tn) + 1.0) * tn / counts, 1.0)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """Unigram counts raised to ``power``, normalised: ``float64[V]``."""
    p = counts.astype(np.float64) ** power
    return p / p.sum()


def window_offsets(n: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """Reduced window per position, as the C tool: ``b ~ U{1..window}``: ``int32[n]`` (``n`` positions)."""
    return rng.integers(1, window + 1, n).astype(np.int32)


def context_windows(ids: np.ndarray, doc: np.ndarray, centres: np.ndarray, half: int, pad: int
                    ) -> np.ndarray:
    """The ``2 * half`` context words around each centre position, left then right.

    Args:
      ids: ``int32[N]`` token ids; ``doc``: ``int32[N]`` document of each token.
      centres: ``int[B]`` positions in ``ids``. ``pad``: the id written into slots outside the
        text or in another document.
    Returns:
      ``int32[B, S]``, ``S = 2 * half``.
    """
    offs_S = np.concatenate([np.arange(-half, 0), np.arange(1, half + 1)])
    pos_BS = centres[:, None] + offs_S[None, :]
    inside_BS = (pos_BS >= 0) & (pos_BS < len(ids))
    pos_BS = np.clip(pos_BS, 0, len(ids) - 1)
    ok_BS = inside_BS & (doc[pos_BS] == doc[centres][:, None])
    return np.where(ok_BS, ids[pos_BS], pad).astype(np.int32)


class AliasSampler:
    """Draws from a discrete distribution in O(1) per draw (Walker's alias method).

    ``numpy.random.Generator.choice(p=...)`` does a binary search per draw; tens of millions of
    noise words per epoch make the difference. ``p``: ``float64[V]``, summing to 1.
    """

    def __init__(self, p: np.ndarray):
        V = len(p)
        scaled = np.asarray(p, np.float64) * V
        self.prob = np.ones(V)
        self.alias = np.arange(V, dtype=np.int32)
        small = [i for i in range(V) if scaled[i] < 1.0]
        large = [i for i in range(V) if scaled[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            self.prob[s], self.alias[s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)

    def __call__(self, rng: np.random.Generator, shape) -> np.ndarray:
        """``int32[*shape]`` draws."""
        i = rng.integers(0, len(self.prob), shape, dtype=np.int32)
        return np.where(rng.random(shape) < self.prob[i], i, self.alias[i])


@dataclasses.dataclass
class Chunk:
    """``steps`` batches of windows of half-width ``half`` for one jit call.

    ``centre int32[steps, B]``, ``context int32[steps, B, S]`` (``S = 2 * half``; padding = the
    vocabulary size, a spare row), ``noise int32[steps, B, K]``, ``lr float32[steps]``; ``epoch``,
    ``pairs`` (real context slots) and ``words`` (corpus words these windows stand for).
    """

    half: int
    centre: np.ndarray
    context: np.ndarray
    noise: np.ndarray
    lr: np.ndarray
    epoch: int
    pairs: int
    words: float


def chunks(corpus: Corpus, cfg: Word2VecConfig, rng: np.random.Generator, steps_per_call: int,
           segment: int = 1 << 20) -> Iterator[Chunk]:
    """All training windows of all epochs, in text order, as :class:`Chunk` s.

    Each epoch subsamples the corpus, draws every position's window half-width, then walks the
    text in segments of ``segment`` kept words; windows of each half-width ``h`` fill batches
    of ``max(1, batch_size // (2h))`` windows. Leftover windows carry to the next segment; the
    last chunk of an epoch is padded with empty windows (centre = padding row: no update).
    """
    V, N = len(corpus.words), len(corpus.ids)
    keep = keep_probability(corpus.counts, cfg.sample)
    sampler = AliasSampler(noise_distribution(corpus.counts))
    total = N * cfg.epochs
    for epoch in range(cfg.epochs):
        kept = rng.random(N) < keep[corpus.ids]
        ids, doc = corpus.ids[kept], corpus.doc[kept]
        n = len(ids)
        half = window_offsets(n, cfg.window, rng)
        same = doc[1:] == doc[:-1]  # a word alone in its document has no pairs: no window
        alone = ~np.r_[False, same] & ~np.r_[same, False]
        words_per_window = N / max(n - int(alone.sum()), 1)
        pending = {h: [] for h in range(1, cfg.window + 1)}
        for start in range(0, n, segment):
            last = start + segment >= n
            for h in range(1, cfg.window + 1):
                centres = start + np.flatnonzero(half[start:start + segment] == h)
                ctx = context_windows(ids, doc, centres, h, V)
                has = (ctx != V).any(axis=1)  # one-word documents have no pairs
                pending[h].append((ids[centres[has]], ctx[has], centres[has]))
                cen = np.concatenate([p[0] for p in pending[h]])
                ctx = np.concatenate([p[1] for p in pending[h]])
                pos = np.concatenate([p[2] for p in pending[h]])
                W = max(1, cfg.batch_size // (2 * h))
                per_call = W * steps_per_call
                full = len(cen) // per_call * per_call
                if last and len(cen) > full:  # pad the epoch's tail with empty windows
                    extra = -len(cen) % per_call
                    cen = np.concatenate([cen, np.full(extra, V, np.int32)])
                    ctx = np.concatenate([ctx, np.full((extra, 2 * h), V, np.int32)])
                    pos = np.concatenate([pos, np.full(extra, pos[-1] if len(pos) else start)])
                    full = len(cen)
                pending[h] = [(cen[full:], ctx[full:], pos[full:])]
                for s in range(0, full, per_call):
                    c, x, p = cen[s:s + per_call], ctx[s:s + per_call], pos[s:s + per_call]
                    frac = (epoch + p.reshape(steps_per_call, W).max(axis=1) / n) * N / total
                    lr = word_rate(cfg.alpha, cfg.lr_schedule, frac)
                    real = c != V
                    yield Chunk(h, c.reshape(steps_per_call, W), x.reshape(steps_per_call, W, 2 * h),
                                sampler(rng, (steps_per_call, W, cfg.negative)), lr, epoch,
                                int((x[real] != V).sum()), float(real.sum() * words_per_window))


def word_rate(alpha: float, schedule: str, frac: np.ndarray) -> np.ndarray:
    """The learning rate at ``frac`` (``float64[S]``, the share of the run's words seen, 0 -> 1) as
    ``float32[S]``: ``linear`` is the C tool's ``alpha * max(1 - frac, 1e-4)``; ``constant`` is
    ``alpha``; ``cosine`` is optax's cosine decay from ``alpha`` to ``alpha * 1e-4``."""
    if schedule == "linear":
        return (alpha * np.maximum(1.0 - frac, 1e-4)).astype(np.float32)
    if schedule == "constant":
        return np.full(frac.shape, alpha, np.float32)
    steps = 1_000_000  # optax counts steps: frac in millionths
    cosine = optax.cosine_decay_schedule(alpha, steps, alpha=1e-4)
    return np.asarray(cosine(np.clip(frac, 0.0, 1.0) * steps), np.float32)


def _capped_add(table, rows, grads, weights, lr, cap):
    """``table[rows] -= lr * grads`` summed per row, but a row hit more than ``cap`` times in
    the batch takes ``cap`` times the *mean* of its updates.

    ``table float32[V + 1, E]``, ``rows int32[N]``, ``grads float32[N, E]``, ``weights
    float32[N]`` (1 = a real hit, 0 = padding), ``N`` updates in all.

    The C tool applies a frequent word's updates one at a time, each seeing the last; a batch
    of thousands of pairs gives "the" hundreds at once, and their plain sum diverges (seen on
    IMDB: every neighbour became "the"). The pure mean (``cap = 1``) is stable but gives a word
    met k times in a batch 1/k of the C tool's learning, so mid-frequency words barely move
    (seen on IMDB: neighbours still noise after an epoch). Rows with at most ``cap`` hits get
    exactly the summed update, as sequential SGD would to first order.
    """
    hits_V = jnp.zeros(table.shape[0], table.dtype).at[rows].add(weights, mode="promise_in_bounds")
    scale_N = lr / jnp.maximum(hits_V.at[rows].get(mode="promise_in_bounds") / cap, 1.0)
    return table.at[rows].add(-grads * scale_N[:, None], mode="promise_in_bounds")


def _gather(table, rows):
    return table.at[rows].get(mode="promise_in_bounds")


def _sg_batch(syn0, syn1, centre, context, noise, lr, cap):
    """One batch of skip-gram windows, noise words shared by the window's context words.

    ``syn0, syn1 float32[V + 1, E]``, ``centre int32[B]``, ``context int32[B, S]``, ``noise
    int32[B, K]``; rows equal to the padding row ``V`` take no part. Returns the new tables and
    the summed loss. The output words of a window are its centre and its noise words (``1 + K``,
    written ``K1`` in names).
    """
    pad = syn0.shape[0] - 1
    ok_BS = (context != pad).astype(syn0.dtype)
    out_BK1 = jnp.concatenate([centre[:, None], noise], axis=1)
    ok_out_BK1 = jnp.concatenate([centre[:, None] != pad, noise != centre[:, None]], axis=1).astype(syn0.dtype)
    x_BSE = _gather(syn0, context)
    o_BK1E = _gather(syn1, out_BK1)
    s = jnp.einsum("wsd,wkd->wsk", x_BSE, o_BK1E)  # [B, S, 1 + K]
    label = (jnp.arange(out_BK1.shape[1]) == 0).astype(s.dtype)[None, None, :]
    weight = ok_BS[:, :, None] * ok_out_BK1[:, None, :]
    g = (jax.nn.sigmoid(s) - label) * weight  # d loss / d score, [B, S, 1 + K]
    loss = -(jax.nn.log_sigmoid(jnp.where(label > 0, s, -s)) * weight).sum()
    # The two gradient products as sums of K1 (resp. S) broadcast products, unrolled: S <= 2 *
    # window and K1 = 1 + negative are small and static. XLA's CPU batched dot runs these
    # [S, K1] x [K1, E] / [K1, S] x [S, E] shapes 1.5-8x slower than the fused elementwise
    # form (measured per op on 4,096 pairs); the score product above, a reduction over E, stays
    # a dot, which is faster there. Same sums, summed in another order.
    dx_BSE = sum(g[:, :, k, None] * o_BK1E[:, None, k, :] for k in range(out_BK1.shape[1]))
    do_BK1E = sum(g[:, j, :, None] * x_BSE[:, j, None, :] for j in range(context.shape[1]))
    E = syn0.shape[1]
    syn0 = _capped_add(syn0, context.reshape(-1), dx_BSE.reshape(-1, E), ok_BS.reshape(-1), lr, cap)
    hit_out_BK1 = ok_out_BK1 * (ok_BS.sum(1, keepdims=True) > 0)
    syn1 = _capped_add(syn1, out_BK1.reshape(-1), do_BK1E.reshape(-1, E), hit_out_BK1.reshape(-1), lr, cap)
    return syn0, syn1, loss


def _cbow_batch(syn0, syn1, centre, context, noise, lr, cap):
    """One batch of CBOW windows: the mean of the context vectors predicts the centre (arguments
    and result as :func:`_sg_batch`)."""
    pad = syn0.shape[0] - 1
    ok_BS = (context != pad).astype(syn0.dtype)
    n_B = ok_BS.sum(1)
    h_BE = (_gather(syn0, context) * ok_BS[:, :, None]).sum(1) / jnp.maximum(n_B, 1.0)[:, None]
    out_BK1 = jnp.concatenate([centre[:, None], noise], axis=1)
    ok_out_BK1 = jnp.concatenate([centre[:, None] != pad, noise != centre[:, None]], axis=1).astype(h_BE.dtype)
    ok_out_BK1 = ok_out_BK1 * (n_B > 0)[:, None]
    o_BK1E = _gather(syn1, out_BK1)
    s_BK1 = jnp.einsum("wd,wkd->wk", h_BE, o_BK1E)
    label = (jnp.arange(out_BK1.shape[1]) == 0).astype(s_BK1.dtype)[None, :]
    g_BK1 = (jax.nn.sigmoid(s_BK1) - label) * ok_out_BK1
    loss = -(jax.nn.log_sigmoid(jnp.where(label > 0, s_BK1, -s_BK1)) * ok_out_BK1).sum()
    dh_BE = jnp.einsum("wk,wkd->wd", g_BK1, o_BK1E)
    E = syn0.shape[1]
    syn1 = _capped_add(syn1, out_BK1.reshape(-1), (g_BK1[:, :, None] * h_BE[:, None, :]).reshape(-1, E),
                       ok_out_BK1.reshape(-1), lr, cap)
    # the C tool adds the whole neu1e to every context word
    dctx_BSE = jnp.broadcast_to(dh_BE[:, None, :], context.shape + (E,)) * ok_BS[:, :, None]
    syn0 = _capped_add(syn0, context.reshape(-1), dctx_BSE.reshape(-1, E), ok_BS.reshape(-1), lr, cap)
    return syn0, syn1, loss


@functools.partial(jax.jit, donate_argnums=(0, 1), static_argnames=("cbow",))
def train_chunk(syn0, syn1, centre, context, noise, lr, cap, cbow: bool = False):
    """Train on ``steps`` batches in a row (one ``lax.scan``).

    Args:
      syn0, syn1: ``float32[V + 1, E]`` input / output vectors (row ``V`` = padding); donated.
      centre: ``int32[steps, B]``; context: ``int32[steps, B, S]``; noise:
        ``int32[steps, B, K]``; lr: ``float32[steps]``; cap: ``float32[]`` (see ``_capped_add``).
    Returns:
      ``(syn0, syn1, summed loss float32[])``.
    """
    batch = _cbow_batch if cbow else _sg_batch

    def body(carry, xs):
        s0, s1, total = carry
        s0, s1, loss = batch(s0, s1, *xs, cap)
        return (s0, s1, total + loss), None

    (syn0, syn1, loss), _ = jax.lax.scan(body, (syn0, syn1, jnp.zeros((), syn0.dtype)),
                                         (centre, context, noise, lr))
    return syn0, syn1, loss


def _prefetch(it: Iterator, size: int) -> Iterator:
    """Run iterator ``it`` in a producer thread, ``size`` items ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=size)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as err:  # re-raised in the consumer
            q.put(err)

    t = threading.Thread(target=produce, daemon=True, name="word2vec-batches")
    t.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


def train(corpus: Corpus, cfg: Word2VecConfig = Word2VecConfig(), progress: bool = True,
          steps_per_call: int = 16) -> tuple[WordVectors, dict]:
    """Train word vectors on ``corpus``; returns the input vectors and run statistics.

    ``steps_per_call`` batches run in one jit call (fewer dispatches; the same updates).
    """
    V = len(corpus.words)
    rng = np.random.default_rng(cfg.seed)
    syn0 = np.zeros((V + 1, cfg.dim), np.float32)
    syn0[:V] = (rng.random((V, cfg.dim), np.float32) - 0.5) / cfg.dim
    syn0, syn1 = jnp.asarray(syn0), jnp.zeros((V + 1, cfg.dim), jnp.float32)
    cap = jnp.float32(cfg.row_cap)
    total_words = len(corpus.ids) * cfg.epochs
    losses = [[] for _ in range(cfg.epochs)]
    pairs = np.zeros(cfg.epochs)
    t0 = time.time()
    bar = tqdm(total=total_words, unit="w", unit_scale=True, desc="word2vec", disable=not progress)
    for c in _prefetch(chunks(corpus, cfg, rng, steps_per_call), 8):
        syn0, syn1, loss = train_chunk(syn0, syn1, c.centre, c.context, c.noise, c.lr, cap, cbow=cfg.cbow)
        losses[c.epoch].append(loss)  # summed on the host once at the end: no sync per chunk
        pairs[c.epoch] += c.pairs
        bar.update(c.words)
        bar.set_postfix(epoch=c.epoch + 1, lr=f"{c.lr[-1]:.5f}", refresh=False)
    vectors = np.asarray(syn0)[:V]
    bar.close()
    wall = time.time() - t0
    loss_per = [float(jnp.stack(l).sum()) / max(p, 1) if l else 0.0 for l, p in zip(losses, pairs)]
    stats = {"wall_time_s": wall, "words_per_s": total_words / wall, "vocab": V,
             "train_words": int(len(corpus.ids)), "epochs": cfg.epochs, "loss_per_example": loss_per}
    return WordVectors(corpus.words, vectors), stats


def load_corpus(cfg: Word2VecConfig) -> list[list[str]]:
    """Token lists of ``cfg.corpus``: ``imdb`` (all 50,000 reviews, seqjax tokenizer),
    ``imdb-train`` (the 25,000 training reviews only: vectors for a classifier tested on the test
    reviews, which must not have read their text) or a text file (one document per non-empty line)."""
    from seqjax.data import imdb, tokenize
    from seqjax.data.text import read_text

    tok = tokenize.get_tokenizer("regex")
    if cfg.corpus in ("imdb", "imdb-train"):
        d = imdb.load("auto", cfg.data_dir or None)
        splits = ("train", "test") if cfg.corpus == "imdb" else ("train",)
        return [tok(t) for name in splits for t in d[name].texts]
    if not Path(cfg.corpus).is_file():
        what = "a folder" if Path(cfg.corpus).is_dir() else "no such file"
        raise SeqjaxError(f"--corpus {cfg.corpus}: {what}; give imdb, imdb-train or a UTF-8 text file "
                          f"(one document a line)")
    text = read_text(cfg.corpus, lower=False, flag="--corpus")
    return [tok(line) for line in text.splitlines() if line.strip()]


def save_text(wv: WordVectors, path: str | os.PathLike) -> None:
    """Write the word2vec text format: ``count dim`` then ``word v1 ... vd`` lines
    (:func:`seqjax.data.glove.save_text_vectors`: atomic, finite values only)."""
    save_text_vectors(wv, path)
