"""One frozen dataclass per lab part; defaults are the lab's hyperparameters.

Every field is a command-line flag of ``seqjax <part> ...`` (``--field-name value``); the
docstring of each gives the command and what to expect.
"""

from __future__ import annotations

import dataclasses
import math
import sys

# The recurrent cells shipped in :mod:`seqjax.nn.cells`, by ``--cell`` name. The names are kept
# here, not read from there, so that building the command line does not import JAX (1.4 s on
# every start); tests/test_cli_validation.py checks that the two lists agree. Cells registered
# later (seqjax.nn.cells.register_cell) are accepted too: see cell_names().
CELL_NAMES = ("rnn", "gru", "lstm", "indrnn")


# the optimizers and learning-rate schedules of seqjax.train.state.make_optimizer (kept here, without
# JAX, for the command line; make_optimizer reads them from here)
OPTIMIZERS = ("rmsprop", "adam", "sgd")
LR_SCHEDULES = ("constant", "cosine", "warmup-cosine")
W2V_SCHEDULES = ("linear", "constant", "cosine")
# --precision: the training step's compute dtype (seqjax.train.precision)
PRECISIONS = ("float32", "bfloat16")  # word2vec's, over the words seen (seqjax.word2vec)


def cell_names() -> tuple[str, ...]:
    """Every registered cell's name: :data:`seqjax.nn.cells.CELLS` once that module is imported
    (a cell registered from Python is then accepted by every config), else the shipped
    :data:`CELL_NAMES` (without importing JAX)."""
    cells = sys.modules.get("seqjax.nn.cells")
    return (*CELL_NAMES, *(n for n in cells.CELLS if n not in CELL_NAMES)) if cells is not None else CELL_NAMES


def _registered_encoders() -> dict:
    """The encoders registered beyond the five lab models (``name -> EncoderDef``), once
    :mod:`seqjax.nn.classifiers` is imported (by a ``--plugin`` module, or by Python code);
    else none, without importing JAX."""
    classifiers = sys.modules.get("seqjax.nn.classifiers")
    if classifiers is None:
        return {}
    return {name: enc for name, enc in classifiers.ENCODERS.items() if name not in IMDB_PRESETS}


def model_names() -> tuple[str, ...]:
    """Every ``--model`` of ``seqjax imdb``: the five lab presets, then each encoder registered
    with :func:`seqjax.nn.classifiers.register_encoder` (from a ``--plugin`` module or Python)."""
    return (*IMDB_PRESETS, *_registered_encoders())


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

    def __post_init__(self):
        validate(self)


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

    def __post_init__(self):
        validate(self)


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
    cell: str = "lstm"  # a registered cell: rnn | gru | lstm | indrnn | one of seqjax.nn.cells.register_cell
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
    lr_schedule: str = "constant"  # constant | cosine | warmup-cosine
    warmup_steps: int = 0  # with warmup-cosine: steps of linear warmup from 0
    weight_decay: float = 0.0  # AdamW's decoupled decay with adam; L2 added to the gradient with sgd, rmsprop
    beta1: float = 0.9  # Adam's betas (PyTorch's defaults)
    beta2: float = 0.999
    valid_fraction: float = 0.1
    seed: int = 0
    seeds: str = ""  # train several seeds at once: "0,1,2" or "5" (= 0..4); "" = --seed alone
    sample_length: int = 400
    temperatures: str = "0.2,0.5,1.0,1.2"
    markov_orders: str = "1,3"
    out: str = "runs/charlm"
    resume: bool = False
    ckpt_every: int = 0
    minutes: float = 0.0  # stop after this much training time (equal-time comparisons); 0 = none
    unroll: int = 0  # 0 = the backend's default (seqjax/backend.py: 1 on a CPU, 8 on a GPU or TPU)
    precision: str = "float32"  # float32 | bfloat16 (training's matmuls; params, state, loss, evaluation float32)
    recurrence: str = "auto"  # auto | scan | cudnn (auto: cuDNN's LSTM on a CUDA GPU where it fits)
    eval_batch_size: int = 1024
    tensorboard: bool = False  # also write TensorBoard scalars to OUT/tensorboard (pip install 'seqjax[tensorboard]')
    results: str = ""  # write a results JSON here

    def __post_init__(self):
        validate(self)


@dataclasses.dataclass(frozen=True)
class ImdbConfig:
    """IMDB sentiment (lab 7.3 and 7.4).

    ``seqjax imdb train --model {rnn,lstm,bilstm,fasttext,cnn}`` trains on 17,500 reviews,
    validates on 7,500 (seeded 70/30 split), tests the best-validation-loss epoch on 25,000.

    The model's hyperparameters (``vectors`` ... ``lr``, the fields whose default is ``None``)
    come from the preset of ``model`` (:data:`IMDB_PRESETS`: the lab's values; their docstrings
    give the command, the runtime here and the test accuracy) unless given, on the command line
    or here: ``ImdbConfig(model="cnn", lr=0.01)`` is the cnn preset with ``lr`` 0.01. ``None``
    means "not given" only while constructing: a config holds the values, never ``None``, and
    ``from_preset`` names the fields it took from the preset. Impossible values raise
    :class:`seqjax.SeqjaxError` naming the flag.
    """

    model: str = "lstm"  # rnn | lstm | bilstm | fasttext | cnn
    source: str = "auto"  # auto | archive | tfds
    data_dir: str = ""
    # labelled texts of one's own instead of IMDB (seqjax.data.labelled): TSV or JSON-lines files
    # with text and label fields; the validation file is optional (else --valid-fraction of train)
    train_file: str = ""
    valid_file: str = ""
    test_file: str = ""
    data_format: str = ""  # tsv | jsonl; "" = by the files' extension
    tokenizer: str = "regex"  # regex | spacy
    max_vocab: int = 25_000
    max_len: int = 0  # truncate reviews to this many tokens; 0 = keep whole reviews
    bucket_growth: float = 2**0.25  # padded lengths grow by this factor (smaller: less padding, more programs)
    vectors: str | None = dataclasses.field(  # none | 6B.50d | 6B.100d | a GloVe / word2vec text file
        default=None, metadata={"aliases": ("--embeddings",)})
    # the embedding rows of vocab words the vectors lack: normal (N(0, 1), the tutorial's unk_init=normal_)
    # | zeros | match (normal with the found vectors' std)
    oov_init: str = "normal"
    embed: int | None = None
    # a registered cell (rnn | gru | lstm | indrnn | ...; swaps the cell of rnn / lstm / bilstm); "" for fasttext, cnn
    cell: str | None = None
    hidden: int | None = None  # recurrent units per direction; 0 for fasttext, cnn
    layers: int | None = None  # bilstm's depth (rnn and lstm have 1 layer); 0 for fasttext, cnn
    dropout: float | None = None
    optimizer: str | None = None  # sgd | adam | rmsprop
    lr: float | None = None
    clip: float = 0.0  # global-norm gradient clipping; 0 = none
    lr_schedule: str = "constant"  # constant | cosine | warmup-cosine
    warmup_steps: int = 0  # with warmup-cosine: steps of linear warmup from 0
    weight_decay: float = 0.0  # AdamW's decoupled decay with adam; L2 added to the gradient with sgd, rmsprop
    beta1: float = 0.9  # Adam's betas (PyTorch's defaults)
    beta2: float = 0.999
    batch_size: int = 64
    epochs: int = 5
    minutes: float = 0.0  # also stop after this much training time; 0 = no limit
    seed: int = 0
    seeds: str = ""  # train several seeds at once: "0,1,2" or "5" (= 0..4); "" = --seed alone
    data_seed: int = -1  # seed of the train/valid split (so of the vocab) and of the order of the length-sorted
                         # batches; -1 = --seed, or the first of --seeds
    valid_fraction: float = 0.3
    train_limit: int = 0  # use a seeded random N of the training reviews (quick runs); 0 = all
    eval_limit: int = 0  # likewise for the valid and test sets; 0 = all
    out: str = "runs/imdb"
    resume: bool = False
    ckpt_every: int = 0  # also checkpoint every N training steps (a resume continues mid-epoch); 0 = epoch ends only
    precision: str = "float32"  # float32 | bfloat16 (training's matmuls; params, state, loss, evaluation float32)
    unroll: int = 0  # 0 = the backend's default (seqjax/backend.py: 1 on a CPU, 8 on a GPU or TPU)
    recurrence: str = "auto"  # auto | scan | cudnn (auto: cuDNN's LSTM on a CUDA GPU where it fits)
    tensorboard: bool = False  # also write TensorBoard scalars to OUT/tensorboard (pip install 'seqjax[tensorboard]')
    results: str = ""

    def __post_init__(self):
        from seqjax import SeqjaxError

        if self.model not in model_names():
            raise SeqjaxError(f"--model {self.model!r}: choose one of {', '.join(model_names())} (an encoder of "
                              f"one's own: register it in a module and load that with --plugin MODULE)")
        unset = [name for name in PRESET_FIELDS if getattr(self, name) is None]
        if unset:
            preset = imdb_preset(self.model)
            for name in unset:  # a frozen dataclass sets its own fields only while constructing
                object.__setattr__(self, name, getattr(preset, name))
        object.__setattr__(self, "from_preset", frozenset(unset))
        if (self.valid_file or self.test_file) and not self.train_file:
            raise SeqjaxError("--valid-file / --test-file without --train-file: give --train-file too "
                              "(or neither, for IMDB)")
        if self.train_file and not self.test_file:
            raise SeqjaxError(f"--train-file {self.train_file}: give --test-file too (the texts the run is "
                              f"tested on; same format and labels)")
        reads = model_flags()[self.model]
        if "cell" in reads and self.cell not in cell_names():
            raise SeqjaxError(f"--cell {self.cell!r}: choose {', '.join(cell_names()[:-1])} or {cell_names()[-1]}")
        if "cell" in reads:  # a recurrence: the lab's 1-layer rnn and lstm too
            for name in ("hidden", "layers"):
                if getattr(self, name) < 1:
                    raise SeqjaxError(f"--{name} {getattr(self, name)}: a {self.model} needs a whole number >= 1")
        validate(self)  # every other field's range


def imdb_rnn() -> ImdbConfig:
    """The lab's plain RNN (7.3): embedding 50 (random), tanh RNN 100, SGD 1e-3.

    ``seqjax imdb train --model rnn --out runs/imdb_rnn_l1 --results results/imdb/rnn.json``:
    84 s on a 2-core AMD EPYC CPU (one device per core), test accuracy 53.00 % (``results/imdb/rnn.json``).
    """
    return ImdbConfig(model="rnn", vectors="none", embed=50, cell="rnn", hidden=100, layers=1,
                      dropout=0.0, optimizer="sgd", lr=1e-3)


def imdb_lstm() -> ImdbConfig:
    """The lab's improved RNN (7.3): embedding 50 (random), LSTM 100, Adam 0.01.

    ``seqjax imdb train --model lstm --out runs/imdb_lstm_l1 --results results/imdb/lstm.json``:
    211 s on a 2-core AMD EPYC CPU (one device per core), test accuracy 86.96 % (``results/imdb/lstm.json``).
    """
    return ImdbConfig(model="lstm", vectors="none", embed=50, cell="lstm", hidden=100, layers=1,
                      dropout=0.0, optimizer="adam", lr=1e-2)


def imdb_bilstm() -> ImdbConfig:
    """The tutorial's bi-LSTM (7.3): GloVe 6B-50d, 2 bidirectional LSTM layers of 256, dropout
    0.5, Adam 1e-3.

    ``seqjax imdb train --model bilstm --clip 1 --out runs/imdb_bilstm_l1 --results
    results/imdb/bilstm.json`` (gradient norm clipped at 1): 3,916 s on a 2-core AMD EPYC CPU
    (one device per core), test accuracy 85.68 % (``results/imdb/bilstm.json``).
    """
    return ImdbConfig(model="bilstm", vectors="6B.50d", embed=50, cell="lstm", hidden=256, layers=2,
                      dropout=0.5, optimizer="adam", lr=1e-3)


def imdb_fasttext() -> ImdbConfig:
    """The tutorial's FastText (7.3): the mean of GloVe 6B-50d vectors of tokens and bigrams, Adam 1e-3.

    ``seqjax imdb train --model fasttext --out runs/imdb_fasttext_l1 --results
    results/imdb/fasttext.json``: 61 s on a 2-core AMD EPYC CPU (one device), test accuracy 87.27 %
    (``results/imdb/fasttext.json``).
    """
    return ImdbConfig(model="fasttext", vectors="6B.50d", embed=50, cell="", hidden=0, layers=0,
                      dropout=0.0, optimizer="adam", lr=1e-3)


def imdb_cnn() -> ImdbConfig:
    """Kim's CNN (7.4): GloVe 6B-50d, Conv1d widths 3/4/5 x 100 filters, dropout 0.5, Adam 1e-3.

    ``seqjax imdb train --model cnn --out runs/imdb_cnn_l1 --results results/imdb/cnn.json``:
    174 s on a 2-core AMD EPYC CPU (one device), test accuracy 87.24 % (``results/imdb/cnn.json``).
    """
    return ImdbConfig(model="cnn", vectors="6B.50d", embed=50, cell="", hidden=0, layers=0,
                      dropout=0.5, optimizer="adam", lr=1e-3)


# The five lab models by ``--model`` name; each gives its full config (see its docstring).
IMDB_PRESETS = {"rnn": imdb_rnn, "lstm": imdb_lstm, "bilstm": imdb_bilstm, "fasttext": imdb_fasttext,
                "cnn": imdb_cnn}
# The ImdbConfig fields a preset sets: those not given take the model's value.
PRESET_FIELDS = tuple(f.name for f in dataclasses.fields(ImdbConfig) if f.default is None)
# which model flags each lab model reads: its encoder's fields (seqjax.nn.classifiers.ENCODERS), kept
# here without importing JAX; tests/test_encoders.py checks that the two agree
IMDB_MODEL_FLAGS = {"cell": ("rnn", "lstm", "bilstm"), "hidden": ("rnn", "lstm", "bilstm"),
                    "layers": ("bilstm",), "dropout": ("bilstm", "cnn")}
# a registered encoder's preset: these values, under the ones its EncoderDef.preset gives
ENCODER_PRESET = dict(vectors="none", embed=50, cell="", hidden=0, layers=0, dropout=0.0, optimizer="adam", lr=1e-3)
# ... and for a recurrent one (its fields name "cell"), or one that reads "hidden", these
ENCODER_FIELD_PRESET = dict(cell="lstm", hidden=100, layers=1)


def imdb_preset(model: str) -> "ImdbConfig":
    """The full config of ``--model model``: a lab preset (:data:`IMDB_PRESETS`), or for an encoder
    registered with :func:`seqjax.nn.classifiers.register_encoder`, :data:`ENCODER_PRESET` with
    :data:`ENCODER_FIELD_PRESET` (for a recurrent encoder, or the flags it reads), under its
    ``EncoderDef.preset``."""
    if model in IMDB_PRESETS:
        return IMDB_PRESETS[model]()
    enc = _registered_encoders()[model]
    values = {**ENCODER_PRESET, **{k: v for k, v in ENCODER_FIELD_PRESET.items() if k in enc.fields or "cell" in enc.fields},
              **dict(enc.preset)}
    return ImdbConfig(model=model, **values)


def model_flags() -> dict[str, tuple[str, ...]]:
    """``model -> the model flags it reads`` (``cell``, ``hidden``, ``layers``, ``dropout``): the lab
    models' from :data:`IMDB_MODEL_FLAGS`, a registered encoder's from its fields."""
    out = {m: tuple(f for f, models in IMDB_MODEL_FLAGS.items() if m in models) for m in IMDB_PRESETS}
    for name, enc in _registered_encoders().items():
        out[name] = tuple(f for f in IMDB_MODEL_FLAGS if f in enc.fields)
    return out


def check_model_flags(cfg: ImdbConfig) -> None:
    """Refuse a model flag given for a model that does not read it (``--model fasttext --hidden
    64`` would train the same fasttext and say nothing). Only flags given, and set to another
    value than the preset's, count; called for ``seqjax imdb train``, not for saved configs.

    Raises:
      SeqjaxError: one line naming the flag, the model and the models that read it.
    """
    from seqjax import SeqjaxError

    preset = imdb_preset(cfg.model)
    reads = model_flags()
    for name in IMDB_MODEL_FLAGS:
        value = getattr(cfg, name)
        models = [m for m, flags in reads.items() if name in flags]
        if name not in cfg.from_preset and name not in reads[cfg.model] and value != getattr(preset, name):
            shown = f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else value
            raise SeqjaxError(f"--{name} {shown}: the {cfg.model} model does not use it (only "
                              f"{', '.join(models)} do); drop --{name} or choose one of those with --model")


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
    # the rate over the words seen: linear (the C tool's: alpha -> alpha * 1e-4) | constant | cosine (to
    # alpha * 1e-4); SGD on sparse rows, so no --weight-decay or betas
    lr_schedule: str = "linear"
    epochs: int = 5
    cbow: bool = False
    batch_size: int = 4096
    row_cap: float = 32.0  # a row hit more often in a batch gets row_cap x its mean update
    seed: int = 0
    results: str = ""  # also write a results JSON (stats + neighbours of a few words) here
    overwrite: bool = False  # replace the vectors already in --out (else refused)

    def __post_init__(self):
        validate(self)


# ---- range checks: one rule per field name, applied to every config when it is built -----------
def _positive(v):
    return v > 0


def _nonneg(v):
    return v >= 0


def _fraction(v):
    return 0.0 < v < 1.0


def _floats(v):
    try:
        return bool(v) and all(math.isfinite(float(t)) and float(t) > 0 for t in v.split(","))
    except ValueError:
        return False


def _ints(v):
    return v == "" or all(t.strip().isdigit() for t in v.split(","))


def seed_list(seeds: str, seed: int = 0) -> list[int]:
    """The seeds a run trains: ``--seeds`` "0,3,7" -> [0, 3, 7], "5" -> [0, 1, 2, 3, 4]; "" -> [``seed``].

    Raises:
      ValueError: not whole numbers >= 0, a count < 1, or a seed named twice.
    """
    if not str(seeds).strip():
        return [seed]
    if "," in seeds:
        out = [int(v) for v in seeds.split(",") if v.strip()]
    else:
        out = list(range(int(seeds)))
    if not out or min(out) < 0 or len(set(out)) != len(out):
        raise ValueError(seeds)
    return out


def seed_count(seeds: str) -> int:
    """How many seeds ``--seeds`` names (1 when it is empty or malformed: the config's own check
    refuses the latter)."""
    try:
        return len(seed_list(seeds or ""))
    except ValueError:
        return 1


def data_seed(cfg) -> int:
    """The seed of an IMDB run's train/valid split and of the order in which its length-sorted
    batches are visited (:func:`seqjax.data.batching.batch_order`'s ``order_seed``): ``--data-seed``,
    else ``--seed`` (the first of ``--seeds``)."""
    return cfg.data_seed if cfg.data_seed >= 0 else seed_list(cfg.seeds, cfg.seed)[0]


def _seeds_rule(v):
    seed_list(v)
    return True


class _Choice:
    """A closed set of values: ``options`` (``""`` among them = "not set"), or the keys of
    ``described`` (value -> one line of help); either may be a function, for sets that grow when a
    cell or an encoder is registered (read when the parser is built, after ``--plugin``). The CLI
    gives them to argparse as ``choices``, so ``--help`` lists them (with ``described``'s lines) and
    the parser refuses any other value."""

    def __init__(self, options=(), described=None):
        self._options, self._described = options, described

    @property
    def described(self) -> dict[str, str]:
        d = self._described
        return dict(d() if callable(d) else d or {})

    @property
    def options(self) -> tuple[str, ...]:
        if self._described is not None:
            return tuple(self.described)
        return tuple(self._options() if callable(self._options) else self._options)

    @property
    def allowed(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)

    def __call__(self, v) -> bool:
        return v in self.options


def _choice(*options, described=None) -> _Choice:
    """:class:`_Choice` of ``options`` or of ``described``'s keys."""
    return _Choice(options, described)


def _cell_choice(*blank) -> _Choice:
    """:class:`_Choice` of every registered cell (:func:`cell_names`) and ``blank``."""
    return _Choice(lambda: (*blank, *cell_names()))


def _model_descriptions() -> dict[str, str]:
    """``--model`` value -> one line: the lab presets' docstrings, registered encoders' ``doc``."""
    return {**{name: _summary(preset) for name, preset in IMDB_PRESETS.items()},
            **{name: enc.doc or "a registered encoder" for name, enc in _registered_encoders().items()}}


def _summary(fn) -> str:
    """The first paragraph of ``fn``'s docstring, on one line."""
    return " ".join(fn.__doc__.split("\n\n")[0].split())


_POSITIVE = "a number > 0"
RULES = {  # field -> (check, what is allowed)
    "order": (_nonneg, "a whole number >= 0"), "unit": (_choice("char", "word"), None),
    "sample": (_nonneg, "a number >= 0"), "beta": (_positive, _POSITIVE),
    "valid_fraction": (_fraction, "a fraction strictly between 0 and 1"),
    "metric": (_choice("", "euclidean", "cosine"), None), "n": (_positive, "a whole number >= 1"),
    "restrict": (_nonneg, "a whole number >= 0 (0 = every word)"),
    "text_errors": (_choice("strict", "replace"), None), "cell": (_cell_choice(""), None),
    "model": (_choice(described=_model_descriptions), None),
    "layers": (_nonneg, "a whole number >= 1"), "embed": (_positive, "a whole number >= 1"),
    "hidden": (_nonneg, "a whole number >= 1"), "dropout": (lambda v: 0.0 <= v < 1.0, "a rate in [0, 1)"),
    "objective": (_choice("last", "every"), None), "seq_len": (_positive, "a whole number >= 1"),
    "window_step": (_positive, "a whole number >= 1"), "batch_size": (_positive, "a whole number >= 1"),
    "epochs": (_positive, "a whole number >= 1"), "optimizer": (_choice(*OPTIMIZERS), None),
    "lr": (lambda v: math.isfinite(v) and v > 0, "a finite learning rate > 0"),
    "clip": (lambda v: math.isfinite(v) and v >= 0, "a gradient-norm bound >= 0 (0 = none)"),
    "lr_schedule": (_choice(*LR_SCHEDULES), None),
    "warmup_steps": (_nonneg, "a step count >= 0"),
    "weight_decay": (lambda v: math.isfinite(v) and v >= 0, "a decay rate >= 0 (0 = none)"),
    "beta1": (lambda v: 0 <= v < 1, "a number in [0, 1)"), "beta2": (lambda v: 0 <= v < 1, "a number in [0, 1)"), "sample_length": (_positive, "a whole number >= 1"),
    "temperatures": (_floats, "comma-separated temperatures > 0, e.g. 0.2,0.5,1.0"),
    "markov_orders": (_ints, "comma-separated whole numbers >= 0, e.g. 1,3"),
    "ckpt_every": (_nonneg, "a step count >= 0 (0 = at epoch ends only)"),
    "minutes": (lambda v: math.isfinite(v) and v >= 0, "minutes >= 0 (0 = no limit)"),
    "precision": (_choice(*PRECISIONS), None), "oov_init": (_choice("normal", "zeros", "match"), None), "recurrence": (_choice("auto", "scan", "cudnn"), None),
    "unroll": (_nonneg, "a whole number >= 0 (0 = the backend's default)"), "eval_batch_size": (_positive, "a whole number >= 1"),
    "source": (_choice("auto", "archive", "tfds"), None), "data_format": (_choice("", "tsv", "jsonl"), None), "tokenizer": (_choice("regex", "spacy"), None),
    "max_vocab": (_positive, "a whole number >= 1"), "max_len": (_nonneg, "a whole number >= 0 (0 = whole reviews)"),
    "train_limit": (_nonneg, "a whole number >= 0 (0 = all)"), "eval_limit": (_nonneg, "a whole number >= 0 (0 = all)"),
    "dim": (_positive, "a whole number >= 1"), "window": (_positive, "a whole number >= 1"),
    "negative": (_positive, "a whole number >= 1"), "min_count": (_positive, "a whole number >= 1"),
    "alpha": (lambda v: math.isfinite(v) and v > 0, "a finite learning rate > 0"),
    "row_cap": (lambda v: math.isfinite(v) and v >= 1, "a number >= 1"),
    "seed": (_nonneg, "a whole number >= 0"),
    "seeds": (_seeds_rule, "distinct seeds >= 0, comma-separated (0,1,2), or a count >= 1 (5 = seeds 0..4)"),
    "data_seed": (lambda v: v >= -1, "a whole number >= 0 (-1 = --seed)"),
    "bucket_growth": (lambda v: math.isfinite(v) and v > 1.0,
                      "a factor > 1 by which padded lengths grow (e.g. 1.19 or 1.41)"),
    "out": (bool, "a folder path"),
}
# a config's own rule for a field, where RULES' shared one does not fit it (ImdbConfig's hidden and
# layers may be 0, for fasttext and cnn; a char-LSTM's may not)
CLASS_RULES = {
    ("Word2VecConfig", "sample"): (lambda v: math.isfinite(v) and v >= 0, "a subsampling threshold >= 0 (0 = none)"),
    ("Word2VecConfig", "lr_schedule"): (_choice(*W2V_SCHEDULES), None),
    ("CharLMConfig", "hidden"): (_positive, "a whole number >= 1"),
    ("CharLMConfig", "layers"): (_positive, "a whole number >= 1"),
    ("CharLMConfig", "cell"): (_cell_choice(), None),
}


def rule(cls, name: str):
    """The ``(check, what is allowed)`` of field ``name`` of config class ``cls``
    (:data:`CLASS_RULES`, else :data:`RULES`), or ``None``; a closed set's check carries its
    ``options`` (see ``_choice``)."""
    return CLASS_RULES.get((cls.__name__, name)) or RULES.get(name)


def validate(cfg) -> None:
    """Range-check every field of ``cfg`` that has a rule (:data:`CLASS_RULES`, else :data:`RULES`), before any work.

    Raises:
      SeqjaxError: one line naming the flag, the value and what is allowed.
    """
    from seqjax import SeqjaxError

    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        found = rule(type(cfg), f.name)
        if found is None or v is None:
            continue
        check, allowed = found
        try:
            ok = bool(check(v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            shown = f"{v:g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)
            raise SeqjaxError(f"--{f.name.replace('_', '-')} {shown}: give {allowed or check.allowed}")
    if getattr(cfg, "seeds", "") and cfg.seed != 0:
        raise SeqjaxError(f"--seeds {cfg.seeds} with --seed {cfg.seed}: give one of them (--seeds {cfg.seed},... "
                          f"names the seeds of a run of several)")


# ---- one line of help per field (``seqjax <part> --help``); shared by every config with the field --
HELP = {
    "order": "how many previous symbols the chain conditions on", "unit": "model characters or words",
    "sample": "markov: symbols to sample; word2vec: subsampling threshold t of frequent words (0 = none)",
    "start": "the symbols the sample starts from", "seed": "seed of every random choice (init, order, dropout, sampling)",
    "seeds": "train several seeds in one run, each the model --seed S trains: 0,1,2 or a count (5 = 0..4)",
    "data_seed": "seed of the train/valid split (so of the vocab) and of the order of the length-sorted batches "
                 "(-1: --seed, or the first of --seeds); each seed still draws which reviews share a batch",
    "beta": "smoothing: weight of the lower-order distribution in the interpolation",
    "valid_fraction": "share of the data held out (the text's tail; IMDB: of the train reviews, seeded)",
    "text": "a UTF-8 text file to use instead of the Nietzsche corpus",
    "data_dir": "offline data folder (default: $SEQJAX_DATA_DIR, else download and cache)",
    "train_file": "labelled texts to train on instead of IMDB: a .tsv (header with text and label) or .jsonl file",
    "valid_file": "with --train-file: labelled texts to validate on (default: --valid-fraction of the training file)",
    "test_file": "with --train-file: labelled texts to test on",
    "data_format": "the format of --train-file etc. (default: by the files' extension)",
    "vectors": "word vectors: 6B.50d | 6B.100d | 6B.200d | 6B.300d | a GloVe / word2vec text file | none",
    "metric": "euclidean (the lab's nearest words) or cosine (3CosAdd; default for evaluate, similarity)",
    "n": "how many words to list", "restrict": "search only the N most frequent words (0 = all)",
    "text_errors": "what to do with bytes that are not UTF-8: stop (strict) or replace them",
    "cell": "the recurrent cell", "layers": "stacked recurrent layers", "embed": "embedding width",
    "hidden": "recurrent units (per direction)", "dropout": "dropout rate between layers and before the output",
    "objective": "last: score the char after each window (the lab); every: score every next char",
    "stateful": "with --objective every: carry the state across chunks (truncated BPTT)",
    "seq_len": "characters per window or chunk", "window_step": "start a new window every N chars",
    "batch_size": "examples per training step (global, over all devices)", "epochs": "passes over the training data",
    "optimizer": "the optimizer", "lr": "learning rate", "clip": "clip the gradient's global norm to this (0 = no clipping)",
    "lr_schedule": "constant; cosine decay to 0 over the run; or linear warmup (--warmup-steps), then cosine "
                   "(word2vec: linear, the C tool's, constant or cosine, over the words seen)",
    "warmup_steps": "with --lr-schedule warmup-cosine: steps of linear warmup from 0",
    "weight_decay": "weight decay: AdamW's (decoupled) with adam, added to the gradient with sgd and rmsprop",
    "beta1": "Adam's first-moment decay", "beta2": "Adam's second-moment decay", "sample_length": "chars sampled after each epoch",
    "temperatures": "sampling temperatures after each epoch, comma-separated",
    "markov_orders": "Markov chain orders to score beside the model, comma-separated",
    "out": "the run folder: checkpoints, log.jsonl, curves.png (and vectors.txt for word2vec)",
    "resume": "continue the run in --out from its newest readable checkpoint",
    "overwrite": "replace the vectors.txt already in --out (without it, an existing one is refused)",
    "ckpt_every": "also checkpoint every N training steps (0 = at epoch ends only)",
    "minutes": "stop after this much training time, for equal-time comparisons (0 = no limit)",
    "unroll": "time steps per scan iteration (lax.scan's unroll)",
    "oov_init": "embedding rows of words the --vectors lack: normal (std 1, the tutorial's), zeros, or match "
                "(normal with the found vectors' std)",
    "recurrence": "how recurrent layers run: auto (cuDNN's LSTM on a CUDA GPU for float32 LSTM layers without "
                  "dropout between them, else the scan), scan, or cudnn",
    "precision": "the training step's compute dtype: bfloat16 matmuls and activations with float32 params, "
                 "optimizer state, LSTM cell state, loss and sums (mixed precision); evaluation stays float32",
    "eval_batch_size": "examples per held-out evaluation step", "results": "also write a results JSON (and PNG) here",
    "model": "which of the lab's classifiers (its preset fills the model flags)",
    "source": "where IMDB comes from: the Stanford archive, tensorflow-datasets, or whichever is there",
    "tokenizer": "regex (fast) or spacy (spacy.blank('en'))", "max_vocab": "keep the N most frequent tokens",
    "max_len": "cut reviews to N tokens (0 = whole reviews)",
    "bucket_growth": "padded lengths grow by this factor (smaller: less padding, more compiled programs)",
    "train_limit": "train on a seeded random N reviews (0 = all)", "eval_limit": "evaluate on a seeded random N (0 = all)",
    "corpus": "imdb (50,000 reviews) | imdb-train (the 25,000 train reviews) | a text file, one document a line",
    "dim": "vector width", "window": "largest context window (each word draws 1..window)",
    "negative": "noise words per window", "min_count": "drop words seen fewer times",
    "alpha": "starting learning rate (decays linearly)", "cbow": "CBOW instead of skip-gram",
    "tensorboard": "also write TensorBoard scalars (per step and per epoch) to OUT/tensorboard; needs seqjax[tensorboard]",
    "row_cap": "a row hit more often in a batch gets row_cap x its mean update",
}
