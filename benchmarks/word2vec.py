"""word2vec: seqjax against gensim on the same token lists and hyperparameters, back to back.

Skip-gram, dim 100, window 5, 5 negatives, min-count 5, sample 1e-3, alpha 0.025; gensim with
``workers`` = cores. Reports wall time, words/s, accuracy on gensim's questions-words.txt
restricted to the 30,000 most frequent words (3CosAdd, cosine), and the 5 nearest neighbours
of good / awful / actor / funny.
``SEQJAX_DATA_DIR=../shared/data python benchmarks/word2vec.py [--epochs 5] [--docs 0]``
-> results/benchmarks/word2vec.json
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from common import write
from gensim.models import Word2Vec
from gensim.test.utils import datapath

from seqjax import configs
from seqjax import embeddings as emb
from seqjax import word2vec as w2v
from seqjax.data.glove import WordVectors

WORDS = ("good", "awful", "actor", "funny")


def report(wv: WordVectors) -> dict:
    res = emb.evaluate_analogies(wv, emb.read_questions(datapath("questions-words.txt")), 30_000, "cosine")
    index = emb.Index(wv, "cosine")
    near = {w: [n for n, _ in emb.closest_words(wv, emb.get_vector(wv, w), 5, "cosine", (w,), index)] for w in WORDS}
    return {"analogy_accuracy": res.accuracy, "analogy_answered": res.answered, "neighbours": near}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--docs", type=int, default=0, help="use only the first N reviews (0 = all 50,000)")
    args = ap.parse_args()
    cfg = configs.Word2VecConfig(epochs=args.epochs)
    docs = w2v.load_corpus(cfg)
    if args.docs:
        docs = docs[: args.docs]
    corpus = w2v.Corpus.build(docs, cfg.min_count)
    n_words = len(corpus.ids) * cfg.epochs
    out = {}
    t = time.time()
    g = Word2Vec(docs, vector_size=cfg.dim, window=cfg.window, negative=cfg.negative, min_count=cfg.min_count,
                 sample=cfg.sample, alpha=cfg.alpha, min_alpha=cfg.alpha * 1e-4, sg=1, epochs=cfg.epochs,
                 workers=os.cpu_count(), seed=cfg.seed)
    wall = time.time() - t
    gwv = WordVectors(list(g.wv.index_to_key), np.asarray(g.wv.vectors))
    out["gensim"] = {"wall_time_s": wall, "words_per_s": n_words / wall, **report(gwv)}
    print("gensim", out["gensim"], flush=True)
    wv, stats = w2v.train(corpus, cfg)
    out["seqjax"] = {"wall_time_s": stats["wall_time_s"], "words_per_s": stats["words_per_s"], **report(wv)}
    print("seqjax", out["seqjax"], flush=True)
    write("word2vec", {**out, "epochs": cfg.epochs, "docs": len(docs), "train_words": len(corpus.ids),
                       "vocab": len(corpus.words), "targets": {"accuracy_gap_points": 1.0, "words_per_s_ratio": 1.0}})


if __name__ == "__main__":
    main()
