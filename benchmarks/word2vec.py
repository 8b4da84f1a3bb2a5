"""word2vec: seqjax against gensim on the same token lists and hyperparameters, back to back.

Skip-gram, dim 100, window 5, 5 negatives, min-count 5, sample 1e-3, alpha 0.025, 5 epochs;
gensim with ``workers`` = cores, seqjax with its producer thread and XLA's threads (both use
both cores). Each is timed for building its vocabulary and for training, separately; words/s
= corpus words x epochs / training seconds (the ratio target), and also counting the
vocabulary build. **gensim judges both**: each set of vectors goes through gensim's
``KeyedVectors.evaluate_word_analogies`` on its ``questions-words.txt`` (3CosAdd, the 30,000
most frequent words); plus the 5 nearest neighbours of good / awful / actor / funny.

``SEQJAX_DATA_DIR=../shared/data python benchmarks/word2vec.py [--epochs 5] [--docs 0]``
-> results/benchmarks/word2vec.json

``python benchmarks/word2vec.py --profile 10000`` profiles seqjax alone on the first 10,000
reviews (1 epoch): where the host thread spends its time (cProfile), how long building the
batches takes on its own (the producer thread's work), and which XLA operations take the
device's time (a ``jax.profiler`` trace of the first 500 reviews). It prints a report.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import glob
import gzip
import io
import json
import os
import pstats
import tempfile
import time

import numpy as np
from common import write
from gensim.models import KeyedVectors, Word2Vec
from gensim.test.utils import datapath

from seqjax import configs
from seqjax import word2vec as w2v
from seqjax.data.glove import WordVectors

WORDS = ("good", "awful", "actor", "funny")
RESTRICT = 30_000


def report(wv: WordVectors) -> dict:
    kv = KeyedVectors(wv.dim)
    kv.add_vectors(wv.words, wv.vectors)
    score, sections = kv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=RESTRICT)
    total = sections[-1]
    near = {w: [n for n, _ in kv.most_similar(w, topn=5)] for w in WORDS}
    return {"analogy_accuracy": score, "analogy_answered": len(total["correct"]) + len(total["incorrect"]),
            "neighbours": near}


def xla_ops(trace_dir: str) -> tuple[dict, dict]:
    """Busy seconds per XLA thread and per operation kind, from a jax.profiler trace."""
    path = glob.glob(f"{trace_dir}/plugins/profile/*/*.trace.json.gz")[0]
    events = json.load(gzip.open(path))["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    busy, ops = collections.Counter(), collections.Counter()
    for e in events:
        thread = names.get((e.get("pid"), e.get("tid")), "")
        if e.get("ph") != "X" or not thread.startswith("tf_XLA"):
            continue
        if e["name"].startswith("ThunkExecutor::Execute"):
            if "wait" not in e["name"]:
                busy[thread] += e["dur"] / 1e6
        else:
            ops[e["name"].rstrip("0123456789.").split(".")[0]] += e["dur"] / 1e6
    return dict(busy), dict(ops)


def profile(docs: list[list[str]], cfg: configs.Word2VecConfig) -> None:
    import jax

    corpus = w2v.Corpus.build(docs, cfg.min_count)
    small = w2v.Corpus.build(docs[:500], cfg.min_count)
    w2v.train(small, cfg, progress=False)  # compile
    n = len(corpus.ids)
    print(f"profile: {len(docs):,} reviews, {n:,} words, 1 epoch, {os.cpu_count()} cores")
    if hasattr(w2v, "chunks"):
        t = time.perf_counter()
        count = sum(1 for _ in w2v.chunks(corpus, cfg, np.random.default_rng(0), 16))
        print(f"building the batches alone (producer thread's work): {time.perf_counter() - t:.2f} s "
              f"({count} chunks)")
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    w2v.train(corpus, cfg, progress=False)
    prof.disable()
    wall = time.perf_counter() - t
    print(f"training: {wall:.2f} s, {n / wall:,.0f} words/s")
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(12)
    print("host (main) thread, by own time:")
    print("\n".join(line for line in s.getvalue().splitlines()[4:] if line.strip()))
    with tempfile.TemporaryDirectory() as d:
        opts = jax.profiler.ProfileOptions()
        opts.python_tracer_level = 0
        jax.profiler.start_trace(d, profiler_options=opts)
        t = time.perf_counter()
        w2v.train(small, cfg, progress=False)
        wall = time.perf_counter() - t
        jax.profiler.stop_trace()
        busy, ops = xla_ops(d)
    print(f"XLA trace of the first 500 reviews ({len(small.ids):,} words, {wall:.2f} s wall):")
    for k, v in sorted(busy.items(), key=lambda kv: -kv[1]):
        print(f"  thread {k[:36]:36s} busy {v:6.2f} s")
    total = sum(ops.values())
    for k, v in sorted(ops.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {k[:40]:40s} {v:6.2f} s {100 * v / total:5.1f} %")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--docs", type=int, default=0, help="use only the first N reviews (0 = all 50,000)")
    ap.add_argument("--profile", type=int, default=0, help="profile seqjax alone on the first N reviews")
    args = ap.parse_args()
    cfg = configs.Word2VecConfig(epochs=1 if args.profile else args.epochs)
    docs = w2v.load_corpus(cfg)
    if args.profile:
        return profile(docs[: args.profile], cfg)
    if args.docs:
        docs = docs[: args.docs]
    out = {}
    t = time.perf_counter()
    g = Word2Vec(vector_size=cfg.dim, window=cfg.window, negative=cfg.negative, min_count=cfg.min_count,
                 sample=cfg.sample, alpha=cfg.alpha, min_alpha=cfg.alpha * 1e-4, sg=1,
                 workers=os.cpu_count(), seed=cfg.seed)
    g.build_vocab(docs)
    vocab_s = time.perf_counter() - t
    t = time.perf_counter()
    g.train(docs, total_examples=g.corpus_count, epochs=cfg.epochs)
    train_s = time.perf_counter() - t
    n_words = g.corpus_total_words * cfg.epochs
    gwv = WordVectors(list(g.wv.index_to_key), np.asarray(g.wv.vectors))
    out["gensim"] = {"vocab_s": vocab_s, "train_s": train_s, "words_per_s": n_words / train_s,
                     "words_per_s_with_vocab": n_words / (vocab_s + train_s), **report(gwv)}
    print("gensim", out["gensim"], flush=True)
    t = time.perf_counter()
    corpus = w2v.Corpus.build(docs, cfg.min_count)
    vocab_s = time.perf_counter() - t
    wv, stats = w2v.train(corpus, cfg, progress=False)
    n_words = len(corpus.ids) * cfg.epochs
    out["seqjax"] = {"vocab_s": vocab_s, "train_s": stats["wall_time_s"], "words_per_s": stats["words_per_s"],
                     "words_per_s_with_vocab": n_words / (vocab_s + stats["wall_time_s"]), **report(wv)}
    print("seqjax", out["seqjax"], flush=True)
    s, g = out["seqjax"], out["gensim"]
    ratio = s["words_per_s"] / g["words_per_s"]
    gap = 100 * (g["analogy_accuracy"] - s["analogy_accuracy"])
    print(f"seqjax / gensim words/s: {ratio:.2f}x (with vocabulary: "
          f"{s['words_per_s_with_vocab'] / g['words_per_s_with_vocab']:.2f}x); "
          f"analogy accuracy {100 * s['analogy_accuracy']:.2f} % vs {100 * g['analogy_accuracy']:.2f} %")
    write("word2vec", {**out, "epochs": cfg.epochs, "docs": len(docs), "train_words": len(corpus.ids),
                       "vocab": len(corpus.words), "words_per_s_ratio": ratio, "accuracy_gap_points": gap,
                       "judge": f"gensim evaluate_word_analogies, questions-words.txt, restrict_vocab={RESTRICT}",
                       "targets": {"accuracy_gap_points": 1.0, "words_per_s_ratio": 1.0},
                       "met": {"accuracy": gap <= 1.0, "words_per_s": ratio >= 1.0}})


if __name__ == "__main__":
    main()
