"""How many devices the CPU becomes for a command: the one place the device layout is decided.

XLA:CPU can run a program on one device whose matmuls spread over all cores (intra-op threads), or
on the CPU split into ``N`` devices (``--xla_force_host_platform_device_count``), one whole step
per core, the batch split over them (data parallel) or, for a run of several seeds, the seeds
laid on the devices (:func:`seqjax.train.parallel.make_mesh`). Which is faster depends on the
model and on the lengths of its batches. Measured on the 2-core CPU of ``results/`` (``chrt -f 50``;
results/benchmarks/), one training step at one shape (train samples/s):

=================================  ==========================  ============================
one step                           one device (XLA threads)    one device per core
=================================  ==========================  ============================
char-LSTM, [128, 40]               5,247                       6,960  (``charlm.py --cores 2``)
IMDB rnn, 4 batches, T 152-1,464   1,010                       1,089  (``imdb.py --cpu-devices``)
IMDB lstm, the same batches        282                         393
IMDB bilstm, the same batches      18.2                        18.4
IMDB cnn, the same batches         689                         524
IMDB fasttext, T 304-2,649         5,960                       4,260
=================================  ==========================  ============================

and steady epochs of ``seqjax imdb train`` (the second epoch of a run, seconds; every review
length, padded 16 to 2,770; ``benchmarks/layout.py``, alternated run by run):

=================================  ==========================  ============================
one epoch                          one device (XLA threads)    one device per core
=================================  ==========================  ============================
IMDB rnn, 6,000 reviews            4.5                         3.6    (1.25x)
IMDB lstm, 6,000 reviews           14.9                        10.8   (1.38x)
IMDB bilstm, 1,000 reviews         53.3                        49.0   (1.09x)
IMDB cnn, 8,000 reviews            6.6                         8.7    (0.76x)
IMDB fasttext, 17,500 reviews      1.8                         2.4    (0.73x)
=================================  ==========================  ============================

XLA's threads spread a recurrence's small per-step matmuls poorly over two cores, and the CNN's
and FastText's few large ops well. (A run's first epoch also loads or compiles one program per
padded length, which takes longer with two devices and can outweigh the training of a short
epoch: only the steady epochs decide.) So :func:`cpu_device_count` gives one device per core to
the recurrent models (``charlm train``; ``imdb`` rnn / lstm / bilstm, training and evaluation;
``seqjax lab``, whose char-LSTM epochs gain more than its CNN epoch loses) and to every ``imdb``
run whose seeds divide evenly over the cores (each core then trains whole seeds:
``results/benchmarks/seeds_commands.json``, the CNN's 2 and 4 seeds 1.8x and 2.8x faster than
one after another); one device to the rest: the CNN and FastText with one seed (or 5 seeds on 2
cores, which would split each batch again), embeddings, word2vec, sampling and prediction.
``--cpu-devices N`` or ``$SEQJAX_CPU_DEVICES`` override it; the choice and its reason are
recorded in every results JSON (``machine.layout``, :func:`chosen`).

The split happens before JAX starts its backends (an XLA flag), so it is decided from the
command line alone. On a GPU or TPU the flag only shapes the unused CPU platform.
"""

from __future__ import annotations

import os

RECURRENT_IMDB = ("rnn", "lstm", "bilstm")

_chosen: dict = {}


def cores() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_device_count(part: str, verb: str = "", model: str = "", seeds: int = 1,
                     n_cores: int | None = None) -> tuple[int, str]:
    """The default number of CPU devices for ``seqjax PART VERB`` and the reason, in words.

    Args:
      part, verb: the command (``charlm train``, ``imdb evaluate``, ...).
      model: ``imdb``'s ``--model`` (``rnn | lstm | bilstm | fasttext | cnn``).
      seeds: how many seeds the run trains at once (``--seeds``).
      n_cores: the cores to lay out (default: :func:`cores`).
    Returns:
      ``(devices, why)``: ``devices >= 1``.
    """
    n = cores() if n_cores is None else n_cores
    if n <= 1:
        return 1, "one core"
    trains = verb in ("train", "evaluate")
    if part == "charlm" and verb == "train":
        return n, "char-LM: a recurrence runs faster with one device per core"
    if part == "lab":
        return n, "the lab: its char-LSTM epochs gain more with one device per core than its CNN epoch loses"
    if part == "imdb" and trains and seeds > 1 and seeds % n == 0:
        return n, f"{seeds} seeds: each core trains whole seeds"
    if part == "imdb" and trains and model in RECURRENT_IMDB:
        return n, f"imdb {model}: a recurrence's epochs run faster with one device per core"
    if part == "imdb" and trains:
        return 1, f"imdb {model or 'cnn'}: one device, XLA's threads: its epochs measured faster than one per core"
    return 1, f"{part} {verb}".strip() + ": one device"


def choose(part: str, verb: str, model: str, seeds: int, flag: int | None) -> int:
    """The CPU device count for this process: ``flag`` (``--cpu-devices``), else
    ``$SEQJAX_CPU_DEVICES``, else :func:`cpu_device_count`; recorded for :func:`chosen`.

    Raises:
      SeqjaxError: a count below 1, or ``$SEQJAX_CPU_DEVICES`` not a whole number.
    """
    from seqjax import SeqjaxError

    if flag is not None:
        n, why = flag, "--cpu-devices"
    elif os.environ.get("SEQJAX_CPU_DEVICES"):
        raw = os.environ["SEQJAX_CPU_DEVICES"]
        try:
            n = int(raw)
        except ValueError:
            raise SeqjaxError(f"SEQJAX_CPU_DEVICES={raw!r}: give a whole number of devices, e.g. 2") from None
        why = "$SEQJAX_CPU_DEVICES"
    else:
        n, why = cpu_device_count(part, verb, model, seeds)
    if n < 1:
        raise SeqjaxError(f"--cpu-devices {n}: give at least 1")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        why = "$XLA_FLAGS (--xla_force_host_platform_device_count)"
    elif n > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    _chosen.clear()
    _chosen.update({"cpu_devices": n, "why": why})
    return n


def chosen() -> dict:
    """What :func:`choose` decided in this process (``cpu_devices``, ``why``); empty when the
    library runs without the CLI (a notebook: JAX's own default, one CPU device)."""
    return dict(_chosen)
