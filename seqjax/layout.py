"""How many devices the CPU becomes for a command: the one place the device layout is decided.

XLA:CPU can run a program on one device whose matmuls spread over all cores (intra-op threads), or
on the CPU split into ``N`` devices (``--xla_force_host_platform_device_count``), one whole step
per core, the batch split over them (data parallel) or, for a run of several seeds, the seeds
laid on the devices (:func:`seqjax.train.parallel.make_mesh`). Which is faster depends on the
model: XLA's threads use two cores poorly for the small matmuls of a recurrence, and well for the
CNN's and FastText's larger, few ops. Measured on the 2-core CPU of ``results/`` (train samples/s,
``chrt -f 50``; ``benchmarks/charlm.py --cores 2``, ``benchmarks/imdb.py --cpu-devices``,
``benchmarks/seeds.py``, results/benchmarks/):

=========================  ==========================  ============================
model, one seed            one device (XLA threads)    one device per core
=========================  ==========================  ============================
char-LSTM (lab)            3,772 / 5,503               6,654 / 6,468
IMDB lstm                  286                         356
IMDB bilstm                38                          45
IMDB cnn (T 256)           1,042 (earlier: 5,460)      1,063 (earlier: 4,458)
IMDB fasttext              741 (earlier run)           504 (earlier run)
=========================  ==========================  ============================

So :func:`cpu_device_count` gives one device per core to the recurrent models (charlm and the
IMDB rnn / lstm / bilstm, training and evaluation; ``seqjax lab``, whose CNN measured alike on
either layout) and to every run whose seeds divide evenly
over the cores (each core then trains whole seeds: ``results/benchmarks/seeds.json``; 5 seeds
on 2 cores would split each batch again, and follow the one-seed rule), and one device to the rest (the CNN
and FastText with one seed, embeddings, word2vec, sampling and prediction, which are latency- or
gather-bound). ``--cpu-devices N`` or ``$SEQJAX_CPU_DEVICES`` override it; the choice and its
reason are recorded in every results JSON (``machine.layout``, :func:`chosen`).

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
        return n, "the lab: its char-LSTM runs faster with one device per core, its CNN alike on either layout"
    if part == "imdb" and trains and seeds > 1 and seeds % n == 0:
        return n, f"{seeds} seeds: each core trains whole seeds"
    if part == "imdb" and trains and model in RECURRENT_IMDB:
        return n, f"imdb {model}: a recurrence runs faster with one device per core"
    if part == "imdb" and trains:
        return 1, f"imdb {model or 'lstm'}: one device, XLA's threads, measured faster than one per core"
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
