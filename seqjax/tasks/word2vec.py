"""word2vec in JAX (``seqjax word2vec train``): corpus -> vocabulary -> training -> vector file.

The model and its training are :mod:`seqjax.word2vec`; this is the experiment: it writes
``OUT/vectors.txt`` (word2vec text format, readable by ``seqjax embeddings --vectors``) and
``OUT/stats.json``, and with ``cfg.results`` a results JSON with the nearest words of a few
probes. Every file is written whole or not at all (:mod:`seqjax.files`); an ``OUT`` that already
holds ``vectors.txt`` is refused unless ``cfg.overwrite``, and ``OUT`` is held by one process at
a time.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from seqjax import SeqjaxError, configs, embeddings as emb, files, word2vec
from seqjax.tasks.common import library_call, write_results

PROBES = ("good", "awful", "actor", "funny")


def run(cfg: configs.Word2VecConfig, command: str | None = None) -> dict:
    """Train word2vec as ``cfg`` says and write the vectors; returns the training stats
    (``words_per_s``, ``wall_time_s``, ...), also in ``OUT/stats.json``. ``command``: what
    produced the run, for the results JSON (default: this call, written as Python)."""
    out = Path(cfg.out)

    def refuse_existing():
        if (out / "vectors.txt").exists() and not cfg.overwrite:
            raise SeqjaxError(f"--out {out}: already holds vectors.txt; pass --overwrite to replace it or choose "
                              f"another --out")

    refuse_existing()  # before the corpus is read and trained on
    docs = word2vec.load_corpus(cfg)  # a bad corpus is refused before --out is created
    corpus = word2vec.Corpus.build(docs, cfg.min_count)
    print(f"{len(docs):,} documents, {len(corpus.ids):,} words in a vocabulary of {len(corpus.words):,}")
    with files.locked(out):
        refuse_existing()  # written meanwhile by another process
        wv, stats = word2vec.train(corpus, cfg)
        word2vec.save_text(wv, out / "vectors.txt")
        files.write_json(out / "stats.json", {**stats, "config": dataclasses.asdict(cfg)})
        print(f"{stats['words_per_s']:,.0f} words/s, {stats['wall_time_s']:.0f} s; vectors in {out / 'vectors.txt'}")
        if cfg.results:
            index = emb.Index(wv, "cosine")
            near = {w: [n for n, _ in emb.closest_words(wv, emb.get_vector(wv, w), 5, "cosine", (w,), index)]
                    for w in PROBES if w in wv}
            for w, ns in near.items():
                print(f"{w}: {', '.join(ns)}")
            write_results(cfg.results, cfg, command or library_call("seqjax.tasks.word2vec.run", cfg),
                          **stats, neighbours=near)
    return stats
