"""word2vec in JAX: skip-gram (or CBOW) with negative sampling, as Mikolov et al. (2013) and
their C tool define it.

* vocabulary: words with count >= ``min_count``, sorted by descending count;
* frequent-word subsampling with the C tool's keep probability
  ``p_keep(w) = (sqrt(c_w / (t N)) + 1) (t N) / c_w`` (``t`` = ``sample``, ``N`` = training words),
  redrawn every epoch;
* a dynamic window: each centre word uses ``b ~ U{1..window}`` words on each side (never across
  documents);
* ``negative`` noise words per pair drawn from unigram counts ``^ 0.75`` (inverse-CDF on device);
* SGD with the learning rate decayed linearly from ``alpha`` to ``alpha * 1e-4`` over all
  epochs; input vectors initialised ``U(-0.5/dim, 0.5/dim)``, output vectors zero.

Pairs (or CBOW windows) are generated with numpy array operations per epoch and trained in
jit-compiled batches; each embedding row takes the sum of its updates within a batch, capped at
``row_cap`` times their mean (see ``_capped_update``: the plain sum diverges for frequent words
in large batches). No Python loop runs per word.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from seqjax import SeqjaxError
from seqjax.configs import Word2VecConfig
from seqjax.data.glove import WordVectors


@dataclasses.dataclass
class Corpus:
    """Encoded documents: ``ids int32[N]`` (all documents concatenated), ``doc int32[N]``
    (document index of each token), the vocabulary ``words`` and ``counts int64[V]``."""

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
            raise SeqjaxError("the corpus is empty: no tokens to train word2vec on")
        vocab = sorted((w for w, c in counter.items() if c >= min_count), key=lambda w: (-counter[w], w))
        if not vocab:
            raise SeqjaxError(f"--min-count {min_count} is above every word's count (the most frequent "
                              f"word occurs {counter.most_common(1)[0][1]} times); lower --min-count")
        index = {w: i for i, w in enumerate(vocab)}
        ids, doc = [], []
        for k, d in enumerate(docs):
            enc = [index[w] for w in d if w in index]
            ids.append(np.asarray(enc, np.int32))
            doc.append(np.full(len(enc), k, np.int32))
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
    """Reduced window per position, as the C tool: ``b ~ U{1..window}``: ``int32[n]``."""
    return rng.integers(1, window + 1, n).astype(np.int32)


def skipgram_pairs(ids: np.ndarray, doc: np.ndarray, window: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """All (centre, context) pairs of one pass: ``centre int32[P]``, ``context int32[P]``."""
    eff = window_offsets(len(ids), window, rng)
    centres, contexts = [], []
    for d in range(1, window + 1):  # `window` vector ops, not a loop over words
        i = np.arange(len(ids) - d)
        for a, b in ((i, i + d), (i + d, i)):  # right and left neighbours of the centre a
            ok = (eff[a] >= d) & (doc[a] == doc[b])
            centres.append(ids[a[ok]])
            contexts.append(ids[b[ok]])
    return np.concatenate(centres), np.concatenate(contexts)


def cbow_windows(ids: np.ndarray, doc: np.ndarray, window: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CBOW examples: ``centre int32[n]``, ``context int32[n, 2*window]``, ``mask float32[n, 2*window]``."""
    n = len(ids)
    eff = window_offsets(n, window, rng)
    offs = np.concatenate([-np.arange(window, 0, -1), np.arange(1, window + 1)])
    pos = np.arange(n)[:, None] + offs[None, :]
    inside = (pos >= 0) & (pos < n)
    posc = np.clip(pos, 0, n - 1)
    ok = inside & (np.abs(offs)[None, :] <= eff[:, None]) & (doc[posc] == doc[:, None])
    keep = ok.any(axis=1)
    return ids[keep], ids[posc[keep]], ok[keep].astype(np.float32)


def _capped_update(table, rows, grads, weights, lr, cap):
    """``table[rows] -= lr * grads`` summed per row, but a row hit more than ``cap`` times in
    the batch takes ``cap`` times the *mean* of its updates.

    The C tool applies a frequent word's updates one at a time, each seeing the last; a batch
    of thousands of pairs gives "the" hundreds at once, and their plain sum diverges (seen on
    IMDB: every neighbour became "the"). The pure mean (``cap = 1``) is stable but gives a word
    met k times in a batch 1/k of the C tool's learning, so mid-frequency words barely move
    (seen on IMDB: neighbours still noise after an epoch). Rows with at most ``cap`` hits get
    exactly the summed update, as sequential SGD would to first order.
    """
    hits = jnp.zeros(table.shape[0], table.dtype).at[rows].add(weights)
    scale = 1.0 / jnp.maximum(hits[rows] / cap, 1.0)
    return table.at[rows].add(-lr * grads * scale[:, None])


def _negative_sampling(syn1, x, centre, valid, cdf, key, negative: int):
    """Score input vectors ``x [B, D]`` against the centre and ``negative`` noise words.

    Returns ``(out int32[B, 1+K], dx [B, D], du [B, 1+K, D], summed loss)``: the output rows
    touched and the loss gradients for the inputs and for those rows.
    """
    B = centre.shape[0]
    negs = jnp.searchsorted(cdf, jax.random.uniform(key, (B, negative)) * cdf[-1])
    negs = jnp.minimum(negs, syn1.shape[0] - 1).astype(jnp.int32)
    out = jnp.concatenate([centre[:, None], negs], axis=1)  # [B, 1+K]
    u = syn1[out]  # [B, 1+K, D]
    s = jnp.einsum("bd,bkd->bk", x, u)
    label = jnp.zeros_like(s).at[:, 0].set(1.0)
    g = (jax.nn.sigmoid(s) - label) * valid[:, None]  # d loss / d score
    loss = -(jax.nn.log_sigmoid(s[:, 0]) + jax.nn.log_sigmoid(-s[:, 1:]).sum(1)) @ valid
    return out, jnp.einsum("bk,bkd->bd", g, u), g[:, :, None] * x[:, None, :], loss


def _update_outputs(syn1, out, du, valid, lr, cap):
    return _capped_update(syn1, out.reshape(-1), du.reshape(-1, du.shape[-1]),
                          jnp.repeat(valid, out.shape[1]), lr, cap)


@functools.partial(jax.jit, donate_argnums=(0, 1), static_argnames=("negative",))
def _sg_step(syn0, syn1, centre, context, valid, cdf, key, lr, cap, negative: int):
    """One batch of skip-gram pairs; returns updated tables and the summed loss."""
    v = syn0[context]  # input vector of the context word, as the C tool
    out, dv, du, loss = _negative_sampling(syn1, v, centre, valid, cdf, key, negative)
    syn0 = _capped_update(syn0, context, dv, valid, lr, cap)
    return syn0, _update_outputs(syn1, out, du, valid, lr, cap), loss


@functools.partial(jax.jit, donate_argnums=(0, 1), static_argnames=("negative",))
def _cbow_step(syn0, syn1, centre, context, mask, cdf, key, lr, cap, negative: int):
    """One batch of CBOW windows (mean of the context vectors predicts the centre)."""
    n = jnp.maximum(mask.sum(1, keepdims=True), 1.0)
    h = (syn0[context] * mask[:, :, None]).sum(1) / n
    valid = (mask.sum(1) > 0).astype(h.dtype)
    out, dh, du, loss = _negative_sampling(syn1, h, centre, valid, cdf, key, negative)
    syn1 = _update_outputs(syn1, out, du, valid, lr, cap)
    dctx = dh[:, None, :] * mask[:, :, None]  # the C tool adds the whole neu1e to every context word
    syn0 = _capped_update(syn0, context.reshape(-1), dctx.reshape(-1, dctx.shape[-1]), mask.reshape(-1), lr, cap)
    return syn0, syn1, loss


def train(corpus: Corpus, cfg: Word2VecConfig = Word2VecConfig(), progress: bool = True
          ) -> tuple[WordVectors, dict]:
    """Train word vectors on ``corpus``; returns the input vectors and run statistics."""
    V = len(corpus.words)
    rng = np.random.default_rng(cfg.seed)
    key = jax.random.PRNGKey(cfg.seed)
    syn0 = jnp.asarray((rng.random((V, cfg.dim), np.float32) - 0.5) / cfg.dim)
    syn1 = jnp.zeros((V, cfg.dim), jnp.float32)
    cdf = jnp.asarray(np.cumsum(noise_distribution(corpus.counts)), jnp.float32)
    keep = keep_probability(corpus.counts, cfg.sample)
    total_words = len(corpus.ids) * cfg.epochs
    done_words, losses, t0 = 0, [], time.time()
    bar = tqdm(total=total_words, unit="w", unit_scale=True, desc="word2vec", disable=not progress)
    step = _cbow_step if cfg.cbow else _sg_step
    for epoch in range(cfg.epochs):
        kept = rng.random(len(corpus.ids)) < keep[corpus.ids]
        ids, doc = corpus.ids[kept], corpus.doc[kept]
        if cfg.cbow:
            centre, context, mask = cbow_windows(ids, doc, cfg.window, rng)
            extra = mask
        else:
            centre, context = skipgram_pairs(ids, doc, cfg.window, rng)
            extra = np.ones(len(centre), np.float32)
        perm = rng.permutation(len(centre))
        n_batches = -(-len(centre) // cfg.batch_size)
        words_per_batch = len(corpus.ids) / max(n_batches, 1)
        ep_loss = []
        for b in range(n_batches):
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            pad = cfg.batch_size - len(idx)
            c, x, e = centre[idx], context[idx], extra[idx]
            if pad:  # static shapes: pad with weight-0 rows
                c = np.concatenate([c, np.zeros(pad, c.dtype)])
                x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
                e = np.concatenate([e, np.zeros((pad,) + e.shape[1:], e.dtype)])
            progress_frac = done_words / total_words
            lr = max(cfg.alpha * (1 - progress_frac), cfg.alpha * 1e-4)
            syn0, syn1, loss = step(syn0, syn1, jnp.asarray(c), jnp.asarray(x), jnp.asarray(e), cdf,
                                    jax.random.fold_in(key, epoch * 1_000_003 + b), jnp.float32(lr),
                                    jnp.float32(cfg.row_cap), negative=cfg.negative)
            ep_loss.append(loss)  # summed on the host once per epoch: no sync per batch
            done_words += words_per_batch
            bar.update(words_per_batch)
            bar.set_postfix(epoch=epoch + 1, lr=f"{lr:.5f}")
        losses.append(float(jnp.stack(ep_loss).sum()) / max(len(centre), 1) if ep_loss else 0.0)
    bar.close()
    wall = time.time() - t0
    stats = {"wall_time_s": wall, "words_per_s": total_words / wall, "vocab": V,
             "train_words": int(len(corpus.ids)), "epochs": cfg.epochs, "loss_per_example": losses}
    return WordVectors(corpus.words, np.asarray(syn0)), stats


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
    text = read_text(cfg.corpus, lower=False)
    return [tok(line) for line in text.splitlines() if line.strip()]


def save_text(wv: WordVectors, path: str | os.PathLike) -> None:
    """Write the word2vec text format: ``count dim`` then ``word v1 ... vd`` lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{len(wv)} {wv.dim}\n")
        for w, v in zip(wv.words, wv.vectors):
            f.write(w + " " + " ".join(f"{x:.6f}" for x in v) + "\n")
