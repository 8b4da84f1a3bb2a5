"""One frozen dataclass per lab part; defaults are the lab's hyperparameters.

Every field is a command-line flag of ``seqjax <part> ...`` (``--field-name value``); the
docstring of each gives the command and what to expect.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MarkovConfig:
    """Markov baseline (lab 7.1, part 1).

    ``seqjax markov --order 1 --unit char --sample 1000 --start t`` prints the lab's
    statistics, 1000 sampled chars and the held-out bits/char (~3.4 for order 1 on Nietzsche).
    """

    order: int = 1
    unit: str = "char"  # char | word
    sample: int = 1000
    start: str = "t"
    seed: int = 0
    beta: float = 1.0
    valid_fraction: float = 0.1
    text: str = ""  # a UTF-8 file; empty = the Nietzsche corpus
    data_dir: str = ""


@dataclasses.dataclass(frozen=True)
class EmbeddingsConfig:
    """GloVe analysis (lab 7.2).

    ``seqjax embeddings analogy man king woman`` -> queen (GloVe 6B-50d).
    """

    vectors: str = "6B.50d"  # 6B.<dim>d or a GloVe / word2vec text file
    metric: str = "euclidean"  # euclidean (the lab) | cosine
    n: int = 10
    restrict: int = 300_000  # evaluate: only the most frequent words
    data_dir: str = ""
