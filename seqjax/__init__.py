"""seqjax: sequence models in JAX/Flax.

Layers (data flows down; nothing imports upward)::

    seqjax.data        corpora -> tokens -> ids -> bucketed batches (numpy only)
    seqjax.markov      n-order Markov chains (numpy)
    seqjax.embeddings  GloVe / word2vec analysis (nearest words, analogies, evaluation)
    seqjax.nn          cells, masked scans, char LM, classifiers (flax linen)
    seqjax.train       TrainState, the one fit/evaluate loop, data parallelism, checkpoints
    seqjax.cli         `seqjax <part> <verb>`
"""

__version__ = "0.1.0"


class SeqjaxError(Exception):
    """An error the user can fix; the CLI prints its message alone and exits with status 2."""
