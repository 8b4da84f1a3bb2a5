"""Lab 7.2: word vectors — nearest words, analogies, benchmark scores (``seqjax embeddings``).

The maths is :mod:`seqjax.embeddings`; the vectors come from :mod:`seqjax.data.glove`.
Prints its answers; writes no files.
"""

from __future__ import annotations

import jax

from seqjax import SeqjaxError, configs, embeddings as emb
from seqjax.data import download, glove


def run(cfg: configs.EmbeddingsConfig, verb: str, words: list[str]) -> None:
    """``seqjax embeddings VERB WORDS``: print ``neighbours`` of each word, the ``analogy``
    A : B :: C : ?, or the scores of an ``evaluate`` (questions-words file) or ``similarity``
    (word-pair file) run, with ``cfg.vectors`` (GloVe or a word2vec text file).

    Raises:
      SeqjaxError: an unknown verb, the wrong number of words, a metric the verb cannot use.
    """
    if verb not in ("neighbours", "analogy", "evaluate", "similarity"):
        raise SeqjaxError(f"seqjax embeddings {verb!r}: choose neighbours, analogy, evaluate or similarity")
    if verb in ("evaluate", "similarity"):  # a file, or a standard set by name (fetched, checksummed, cached)
        names = download.ANALOGY_SETS if verb == "evaluate" else download.WORD_PAIR_SETS
        what = "a questions-words file" if verb == "evaluate" else "a word-pair file"
        if len(words) != 1:
            raise SeqjaxError(f"seqjax embeddings {verb} FILE: give one {what[2:]}, or one of {', '.join(names)}")
        words = [str(download.file_or_set(words[0], names, what, cfg.data_dir or None))]
    # evaluation ranks by cosine (3CosAdd), as gensim and the literature; the lab's exercises by distance
    metric = cfg.metric or ("cosine" if verb in ("evaluate", "similarity") else "euclidean")
    if metric not in ("euclidean", "cosine"):
        raise SeqjaxError(f"--metric {metric!r}: choose euclidean or cosine")
    if verb == "similarity" and metric != "cosine":
        raise SeqjaxError("seqjax embeddings similarity: word-pair scores use cosine similarity; drop --metric")
    if verb == "evaluate":
        sections = emb.read_questions(words[0])  # a bad file fails before the vectors load
        if jax.config.jax_compilation_cache_dir:  # keep the scoring program however fast it
            # compiles (by default only programs over 1 s are kept): a repeated evaluation scores at once
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    elif verb == "similarity":
        emb.read_word_pairs(words[0])
    wv = glove.load(cfg.vectors, cfg.data_dir or None)
    if verb == "neighbours":
        if not words:
            raise SeqjaxError("seqjax embeddings neighbours WORD [WORD ...]: give at least one word")
        index = emb.Index(wv, metric)
        for w in words:
            print(f"nearest to {w!r} ({metric}):")
            print(emb.format_tuples(emb.closest_words(wv, emb.get_vector(wv, w), cfg.n,
                                                      metric, exclude=(w,), index=index)))
    elif verb == "analogy":
        if len(words) != 3:
            raise SeqjaxError("seqjax embeddings analogy A B C: give exactly three words "
                              "(A : B :: C : ?), e.g. man king woman")
        a, b, c = words
        print(f"{a} : {b} :: {c} : ?  ({metric})")
        print(emb.format_tuples(emb.analogy(wv, a, b, c, cfg.n, metric)))
    elif verb == "evaluate":
        print(emb.evaluate_analogies(wv, sections, cfg.restrict or None, metric).table())
    else:
        print(emb.evaluate_word_pairs(wv, words[0], cfg.restrict or None).table())
