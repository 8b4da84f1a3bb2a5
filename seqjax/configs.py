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
    metric: str = ""  # euclidean | cosine; "" = cosine for evaluate/similarity (3CosAdd), euclidean (the lab) else
    n: int = 10
    restrict: int = 300_000  # evaluate: only the most frequent words
    data_dir: str = ""


@dataclasses.dataclass(frozen=True)
class CharLMConfig:
    """Char-level LSTM language model (lab 7.1, part 2).

    ``seqjax charlm train`` trains the lab's CharPredictor (embedding 8, LSTM 128, RMSprop
    0.01, batch 128, 40-char windows every 3) for 10 epochs on Nietzsche, prints samples at
    4 temperatures after each epoch and the held-out bits/char beside the Markov chains'.
    ``--layers 2`` is the lab's 2-layer variant. See results/README.md for the numbers.
    """

    text: str = ""  # any UTF-8 file; empty = Nietzsche
    text_errors: str = "strict"  # strict | replace
    data_dir: str = ""
    cell: str = "lstm"  # rnn | gru | lstm
    layers: int = 1
    embed: int = 8
    hidden: int = 128
    dropout: float = 0.0
    objective: str = "last"  # last (the lab) | every
    stateful: bool = False  # with every: carry state across chunks (truncated BPTT)
    seq_len: int = 40
    window_step: int = 3
    batch_size: int = 128
    epochs: int = 10
    optimizer: str = "rmsprop"
    lr: float = 0.01
    clip: float = 0.0
    lr_schedule: str = "constant"  # constant | cosine
    valid_fraction: float = 0.1
    seed: int = 0
    sample_length: int = 400
    temperatures: str = "0.2,0.5,1.0,1.2"
    markov_orders: str = "1,3"
    out: str = "runs/charlm"
    resume: bool = False
    ckpt_every: int = 0
    minutes: float = 0.0  # stop after this much training time (equal-time comparisons); 0 = none
    unroll: int = 1
    eval_batch_size: int = 1024
    results: str = ""  # write a results JSON here


@dataclasses.dataclass(frozen=True)
class ImdbConfig:
    """IMDB sentiment (lab 7.3 and 7.4).

    ``seqjax imdb train --model {rnn,lstm,bilstm,fasttext,cnn}`` trains on 17,500 reviews,
    validates on 7,500 (seeded 70/30 split), tests the best-validation-loss epoch on 25,000.
    Fields left at 0 / "" take the model's lab defaults (``seqjax.tasks.imdb.MODEL_DEFAULTS``).
    """

    model: str = "lstm"
    source: str = "auto"  # auto | archive | tfds
    data_dir: str = ""
    tokenizer: str = "regex"  # regex | spacy
    max_vocab: int = 25_000
    max_len: int = 0  # truncate reviews to this many tokens; 0 = keep whole reviews
    bucket_growth: float = 2**0.25  # padded lengths grow by this factor (smaller: less padding, more programs)
    vectors: str = dataclasses.field(  # none | 6B.50d | 6B.100d | a GloVe / word2vec text file
        default="", metadata={"aliases": ("--embeddings",)})
    embed: int = 0
    cell: str = ""  # rnn | gru | lstm (swaps the cell of rnn / lstm / bilstm)
    hidden: int = 0
    layers: int = 0
    dropout: float = -1.0
    optimizer: str = ""
    lr: float = 0.0
    clip: float = 0.0  # global-norm gradient clipping; 0 = none
    batch_size: int = 64
    epochs: int = 5
    minutes: float = 0.0  # also stop after this much training time; 0 = no limit
    seed: int = 0
    valid_fraction: float = 0.3
    train_limit: int = 0  # use a seeded random N of the training reviews (quick runs); 0 = all
    eval_limit: int = 0  # likewise for the valid and test sets; 0 = all
    out: str = "runs/imdb"
    resume: bool = False
    results: str = ""


@dataclasses.dataclass(frozen=True)
class Word2VecConfig:
    """word2vec (the workshop): skip-gram with negative sampling, the C tool's defaults.

    ``seqjax word2vec train --corpus imdb --out runs/w2v`` writes ``runs/w2v/vectors.txt``
    (word2vec text format), usable as ``seqjax embeddings neighbours good --vectors runs/w2v/vectors.txt``
    and ``seqjax imdb train --model cnn --vectors runs/w2v/vectors.txt``.
    """

    corpus: str = "imdb"  # imdb (50,000 reviews) | imdb-train (the 25,000 train reviews) | a UTF-8 text file
    out: str = "runs/word2vec"
    data_dir: str = ""
    dim: int = 100
    window: int = 5
    negative: int = 5
    min_count: int = 5
    sample: float = 1e-3
    alpha: float = 0.025
    epochs: int = 5
    cbow: bool = False
    batch_size: int = 4096
    row_cap: float = 32.0  # a row hit more often in a batch gets row_cap x its mean update
    seed: int = 0
    results: str = ""  # also write a results JSON (stats + neighbours of a few words) here
