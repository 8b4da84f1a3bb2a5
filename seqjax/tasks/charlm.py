"""The char-LM experiment: data, model, ``fit``, held-out bits/char, samples, results.

``run(cfg)`` is what ``seqjax charlm train`` runs (through
:func:`seqjax.tasks.experiment.run_experiment`); :func:`load` reads a trained model back and
:func:`sample_from_checkpoint` is ``seqjax charlm sample``. Held-out bits/char is measured
the same way for every model and objective: each char of the held-out tail predicted from the 40 chars before it (the lab's
context), and compared with Markov chains fitted on the same training head.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import SeqjaxError, configs, markov
from seqjax.data import batching, text as textdata
from seqjax.nn.charlm import CharLM, lm_loss, sample, sample_window
from seqjax import backend
from seqjax.train import precision
from seqjax.tasks.common import library_call, seed_results
from seqjax.tasks.experiment import data_fingerprint, load_run, run_experiment, write_new_run
from seqjax.train import loop, parallel, seeds
from seqjax.train.callbacks import ResetCarry, SampleText
from seqjax.train.state import TrainState, optimizer_of, step_of

LN2 = math.log(2.0)


def _check(cfg: configs.CharLMConfig) -> None:
    """What the config's own field rules cannot say (--cell and --objective are checked when the
    config is built: configs.CLASS_RULES, configs.RULES)."""
    if cfg.stateful and cfg.objective != "every":
        raise SeqjaxError("--stateful needs --objective every")
    n = parallel.data_size(parallel.make_mesh(seeds=len(seed_list(cfg)) if cfg.seeds else 0))
    if cfg.batch_size % n:
        raise SeqjaxError(f"--batch-size {cfg.batch_size}: not divisible by the {n} devices; give a multiple of "
                          f"{n} (e.g. {max(n, cfg.batch_size - cfg.batch_size % n)}) or another --cpu-devices")


def seed_list(cfg) -> list[int]:
    """The seeds ``cfg`` trains (``--seeds``, else ``[--seed]``)."""
    return configs.seed_list(cfg.seeds, cfg.seed)


def seed_configs(cfg) -> list:
    """One config per seed of ``cfg``: the ``--seed S`` run each seed of a ``--seeds`` run is."""
    return [dataclasses.replace(cfg, seed=s, seeds="") for s in seed_list(cfg)]


def build_model(cfg: configs.CharLMConfig, vocab_size: int, dtype=jnp.float32) -> CharLM:
    """The char-LM ``cfg`` describes over ``vocab_size`` chars, computing in ``dtype`` (the
    training step's, :func:`seqjax.train.precision.compute_dtype`; float32 for everything else)."""
    return CharLM(vocab_size, cfg.embed, cfg.hidden, cfg.layers, cfg.cell, cfg.dropout, backend.unroll(cfg.unroll),
                  dtype=dtype, recurrence=backend.checked_recurrence(cfg, dtype))


def init_state(cfg, model: CharLM, total_steps: int) -> TrainState:
    """A fresh state from ``cfg.seed``: params, optimizer (a cosine schedule spans
    ``total_steps``) and, for ``cfg.stateful``, a zero carry for ``cfg.batch_size`` streams.
    With ``cfg.seeds``, each seed's state stacked (:func:`seqjax.train.seeds.stack`: leaves ``[K, ...]``)."""
    if cfg.seeds:
        return seeds.stack([init_state(c, model, total_steps) for c in seed_configs(cfg)])
    key = jax.random.PRNGKey(cfg.seed)
    params = model.init(key, jnp.zeros((2, cfg.seq_len), jnp.int32))
    tx = optimizer_of(cfg, total_steps)
    carry = model.zero_state(cfg.batch_size) if cfg.stateful else None
    return TrainState.create(params, tx, jax.random.fold_in(key, 1), carry)


def _orders(cfg) -> list[int]:
    """The Markov chain orders of ``cfg.markov_orders`` ("1,3" -> [1, 3])."""
    return [int(k) for k in cfg.markov_orders.split(",") if k]


def load_corpus(cfg) -> textdata.CharCorpus:
    """``cfg.text`` (or Nietzsche), lower-cased into ids, its last ``cfg.valid_fraction`` held out."""
    text = (textdata.read_text(cfg.text, cfg.text_errors, can_replace=True) if cfg.text
            else textdata.load_nietzsche(cfg.data_dir or None))
    corpus = textdata.CharCorpus.from_text(text, cfg.valid_fraction)
    n = len(corpus.train_ids)
    if n <= cfg.seq_len + 1:
        fix = f"give --seq-len {n - 2} or less, or a longer --text" if n > 2 else "give a longer --text"
        raise SeqjaxError(f"--seq-len {cfg.seq_len}: the training text has {n} chars, too few for one window "
                          f"and its next char; {fix}")
    for k in _orders(cfg):  # the chains are fitted after training: a bad order must not cost the run
        if n <= k or float(len(corpus.vocab)) ** (k + 1) >= 2.0**62:
            top = min(n - 1, markov.max_order(len(corpus.vocab)))
            raise SeqjaxError(f"--markov-orders {cfg.markov_orders}: an order-{k} chain does not fit this text "
                              f"({n} training chars, {len(corpus.vocab)} distinct); give orders of at most {top}")
    return corpus


def fingerprint(cfg, corpus: textdata.CharCorpus) -> dict:
    """What a run trains on (:func:`seqjax.tasks.experiment.data_fingerprint`): the SHA-256 of the
    corpus as the model reads it (its chars and the ids of its training head and held-out tail)
    and its length; a ``--resume`` on a changed ``--text`` is refused."""
    import hashlib

    h = hashlib.sha256("".join(corpus.vocab.chars).encode("utf-8"))
    for ids in (corpus.train_ids, corpus.valid_ids):
        h.update(np.asarray(ids, np.int32).tobytes())
    return data_fingerprint(f"--text {cfg.text}" if cfg.text else "Nietzsche", sha256=h.hexdigest(),
                            chars=len(corpus.train_ids) + len(corpus.valid_ids))


def train_data(cfg, corpus):
    """Training batches for ``cfg.objective``: ``ids int32[B, T]`` with ``labels int32[B]``
    (``last``: windows every ``cfg.window_step``) or ``int32[B, T]`` (``every``: chunks, or
    contiguous streams when ``cfg.stateful``); ``T = cfg.seq_len``, ``B = cfg.batch_size``."""
    if cfg.seeds:
        return seeds.SeedBatches([train_data(c, corpus) for c in seed_configs(cfg)], seed_list(cfg))
    if cfg.objective == "last":
        x, y = textdata.windows(corpus.train_ids, cfg.seq_len, cfg.window_step)
        return batching.ArrayBatches(x, y, cfg.batch_size, shuffle=True, seed=cfg.seed)
    if cfg.stateful:
        return batching.StreamBatches(corpus.train_ids, cfg.batch_size, cfg.seq_len)
    x, y = batching.chunks(corpus.train_ids, cfg.seq_len)
    return batching.ArrayBatches(x, y, cfg.batch_size, shuffle=True, seed=cfg.seed)


def heldout_data(corpus, cfg, context: int = 40):
    """Every held-out char as a label ``int32[B]`` after its ``context`` chars ``int32[B, context]``
    (the first ones' context reaches into the training text); ``B`` a multiple of the devices."""
    x, y = textdata.context_windows(corpus.valid_ids, corpus.train_ids, context)
    bs = max(cfg.eval_batch_size - cfg.eval_batch_size % jax.device_count(), jax.device_count())
    return batching.ArrayBatches(x, y, bs)


def markov_bpc(corpus, orders) -> dict:
    """``markov_order{k}_bpc``: held-out bits/char of an order-``k`` chain fitted on the training
    text, for each ``k`` in ``orders``."""
    chars = list(corpus.vocab.chars)
    train = [chars[i] for i in corpus.train_ids]
    held = [chars[i] for i in corpus.valid_ids]
    out = {}
    for k in orders:
        chain = markov.MarkovChain.fit(train, k, alphabet=chars)
        out[f"markov_order{k}_bpc"] = chain.bits_per_symbol(held, context=train)
    return out


SAMPLE_METHODS = ("window", "stateful")


def default_sample_method(cfg) -> str:
    """``window`` (the lab's: re-read the last ``seq_len`` chars from a zero state) for a model
    trained on windows (``--objective last``); ``stateful`` (carry the state) for ``every``."""
    return "window" if cfg.objective == "last" else "stateful"


def make_generator(model: CharLM, vocab: textdata.CharVocab, length: int, method: str = "stateful",
                   window: int = 40):
    """``(params, seed_text, temperatures, key) -> list[str]``, one text per temperature.

    ``method``: ``window`` (:func:`seqjax.nn.charlm.sample_window`, context ``window`` chars)
    or ``stateful`` (:func:`seqjax.nn.charlm.sample`)."""
    if method not in SAMPLE_METHODS:
        raise SeqjaxError(f"--method {method!r}: choose window (the lab's) or stateful")

    def generate(params, seed_text, temperatures, key):
        ids = jnp.asarray(vocab.encode(seed_text))
        temps = jnp.asarray(temperatures, jnp.float32)
        if method == "window":
            out = sample_window(model, params, ids, length, temps, key, window)
        else:
            out = sample(model, params, ids, length, temps, key)
        return [vocab.decode(row) for row in np.asarray(out)]

    return generate


def lab_seed_text(corpus: textdata.CharCorpus, seed: int, epoch: int) -> str:
    """The lab's seed for the samples after ``epoch`` (0-based): a random 39-char window of the
    training text, drawn from ``(seed, epoch)``."""
    n_train = len(corpus.train_ids)
    i = np.random.default_rng([seed, epoch]).integers(0, n_train - 40)
    return corpus.vocab.decode(corpus.train_ids[i:i + 39])


def run(cfg: configs.CharLMConfig, command: str | None = None) -> dict:
    """Train, evaluate and sample (``seqjax charlm train``); returns the run's results.

    Returns ``heldout_bpc`` (bits/char of the last epoch on the held-out tail), the Markov
    chains' ``markov_order{k}_bpc`` on the same tail, ``history`` (one metrics dict per epoch,
    with the samples), ``wall_time_s`` and ``train_steps``; also written to ``cfg.results``
    with ``command`` (default: this call, written as Python).
    """
    started = time.time()
    _check(cfg)
    backend.checked_recurrence(cfg, precision.compute_dtype(cfg.precision))  # before the text is read
    corpus = load_corpus(cfg)
    data = train_data(cfg, corpus)
    held = heldout_data(corpus, cfg)
    model = build_model(cfg, len(corpus.vocab))
    print(f"{len(corpus.train_ids):,} training chars, {len(corpus.valid_ids):,} held out, "
          f"{len(corpus.vocab)} distinct; {len(data)} batches of {cfg.batch_size} per epoch; "
          f"devices: {jax.device_count()}")
    several = seed_list(cfg) if cfg.seeds else []
    mesh = parallel.make_mesh(seeds=len(several))
    if several:
        print(f"seeds {', '.join(map(str, several))} at once: mesh {dict(mesh.shape)}")
    eval_step = loop.make_eval_step(lm_loss(model, "last"), mesh)

    def heldout(m):
        return {"heldout_loss": m["loss"], "heldout_bpc": m["loss"] / LN2, "heldout_accuracy": m["accuracy"]}

    def valid_fn(state):
        m = loop.evaluate(state.params, held, mesh=mesh, eval_step=eval_step, desc="held-out")
        return [heldout(x) for x in m] if several else heldout(m)

    temps = [float(t) for t in cfg.temperatures.split(",")]
    generate = make_generator(model, corpus.vocab, cfg.sample_length, default_sample_method(cfg), cfg.seq_len)
    first = seed_list(cfg)[0]
    if several:  # the samples are the first seed's
        generate = (lambda g: lambda params, *a: g(seeds.take(params, 0), *a))(generate)
    callbacks = [SampleText(generate, lambda epoch: lab_seed_text(corpus, first, epoch), temps, first)]
    if cfg.stateful:
        callbacks.append(ResetCarry(lambda c: jax.tree.map(jnp.zeros_like, c)))

    def finish(position: loop.LoopState) -> dict:
        final = dict(position.history[-1]) if position.history else {}
        mk = markov_bpc(corpus, _orders(cfg))
        print("held-out bits/char: " + ", ".join(
            [f"{cfg.cell} {final.get('heldout_bpc', float('nan')):.4f}" + (" (mean of seeds)" if several else "")]
            + [f"{k.split('_')[1]} {v:.4f}" for k, v in mk.items()]))
        out = {"heldout_bpc": final.get("heldout_bpc"), **mk, "history": position.history,
               "wall_time_s": time.time() - position.started, "train_steps": step_of(position.state),
               "layout": {"mesh": dict(mesh.shape)}}
        if several and "seeds" in final:
            out.update(seed_results(several, final["seeds"], ("heldout_bpc", "heldout_loss", "heldout_accuracy",
                                                               "train_loss")))
        return out

    return run_experiment(
        cfg, "charlm", init_state(cfg, model, cfg.epochs * len(data)), data,
        precision.train_in(cfg.precision, lambda dtype: lm_loss(build_model(cfg, len(corpus.vocab), dtype),
                                                                cfg.objective), lm_loss(model, cfg.objective)),
        started=started, command=command or library_call("seqjax.tasks.charlm.run", cfg),
        meta={"vocab": corpus.vocab.chars}, data=fingerprint(cfg, corpus), valid_fn=valid_fn, callbacks=callbacks,
        desc="charlm", finish=finish, curves=lambda k: k in ("train_loss", "heldout_loss", "heldout_bpc"),
        title=f"char-{cfg.cell}, {cfg.layers} layer(s), objective {cfg.objective}"
              + (f", mean of {len(several)} seeds" if several else ""), mesh=mesh)


train = run  # the verb's name: ``seqjax charlm train``


class Trained(NamedTuple):
    """A char-LM loaded from a run: its config, vocab, model and parameters."""

    cfg: configs.CharLMConfig
    vocab: textdata.CharVocab
    model: CharLM
    params: dict


def load(checkpoint: str) -> Trained:
    """The char-LM of a run folder (``train --out`` / ``import-torch --out``) or its
    ``checkpoints`` directory, for sampling."""
    saved = load_run(checkpoint, "charlm")
    cfg = configs.CharLMConfig(**saved.meta["config"])
    vocab = textdata.CharVocab(saved.meta["vocab"])
    model = build_model(cfg, len(vocab))
    template = init_state(dataclasses.replace(cfg, stateful=False), model, 1)
    if cfg.stateful:
        carry = model.zero_state(cfg.batch_size)
        template = template.replace(carry=seeds.stack([carry] * len(seed_list(cfg))) if cfg.seeds else carry)
    return Trained(cfg, vocab, model, saved.restore(template).params)


def sample_from_checkpoint(checkpoint: str, seed_text: str, temperature: float, length: int,
                           seed: int = 0, method: str | None = None, seed_index: int = 0) -> str:
    """Generate ``length`` chars after ``seed_text`` with the model saved in ``checkpoint`` (``seqjax
    charlm sample``).

    ``method``: ``window`` or ``stateful``; ``None`` = the one that matches how the model was
    trained (:func:`default_sample_method`). ``seed_index``: which model of a run of several
    seeds (0 = its first seed)."""
    if not seed_text:
        raise SeqjaxError("--seed-text: give at least one character to start from")
    lm = load(checkpoint)
    lm = lm._replace(params=pick_seed(lm.params, lm.cfg, seed_index))
    seed_text = seed_text.lower()
    unknown = "".join(sorted(set(seed_text) - set(lm.vocab.chars)))
    if unknown:
        raise SeqjaxError(f"--seed-text {seed_text[:40]!r}: the characters {unknown!r} are not among the "
                          f"model's {len(lm.vocab)}; give a seed text of these: {lm.vocab.chars!r}")
    gen = make_generator(lm.model, lm.vocab, length, method or default_sample_method(lm.cfg), lm.cfg.seq_len)
    return gen(lm.params, seed_text, [temperature], jax.random.PRNGKey(seed))[0]


def pick_seed(params, cfg, index: int):
    """Seed number ``index`` (0-based) of a run of several seeds' stacked ``params``; a one-seed
    run's params for index 0.

    Raises:
      SeqjaxError: ``index`` out of range (the message lists the run's seeds).
    """
    run_seeds = seed_list(cfg)
    if not 0 <= index < len(run_seeds):
        raise SeqjaxError(f"--seed-index {index}: the run trained {len(run_seeds)} seed(s) "
                          f"({', '.join(map(str, run_seeds))}); give 0 .. {len(run_seeds) - 1}")
    return seeds.take(params, index) if cfg.seeds else params


def import_torch(cfg: configs.CharLMConfig, state_dict: str, chars: str) -> Path:
    """``seqjax charlm import-torch``: the lab's PyTorch ``CharPredictor`` -> a seqjax run folder.

    Args:
      cfg: ``out`` the run folder to write. ``embed``, ``hidden``, ``layers`` and ``cell`` are
        read off the state_dict (1 or 2 layers as the lab's, any depth); a value set on the
        command line that differs from both its default and the state_dict's is refused.
      state_dict: a ``torch.save(model.state_dict())`` file (keys ``emb``, ``lstm``, ``lin``).
      chars: the lab's ``chars`` (index -> character), ``.json`` or ``.txt`` (see
        :func:`seqjax.interop.torch.read_chars`).
    Returns the run folder; ``seqjax charlm sample --out RUN`` samples from it.
    """
    from seqjax.interop import torch as tt

    sd = tt.load_state_dict(state_dict)
    try:
        arch = tt.torch_arch("charlm", sd)
        params = tt.from_torch("charlm", sd)
    except SeqjaxError as err:
        raise SeqjaxError(f"--state-dict {state_dict}: {err}") from None
    vocab = textdata.CharVocab(tt.read_chars(chars))
    if len(vocab) != arch["vocab"]:
        raise SeqjaxError(f"--vocab {chars}: {len(vocab)} characters, but the state_dict's embedding has "
                          f"{arch['vocab']} rows; give the chars the model was trained with")
    read = {k: arch[k] for k in ("embed", "hidden", "layers", "cell")}
    for k, v in read.items():
        if getattr(cfg, k) not in (v, getattr(configs.CharLMConfig, k)):
            raise SeqjaxError(f"--{k} {getattr(cfg, k)}: the state_dict {state_dict} has {k} {v}; leave "
                              f"--{k} out to take it from there")
    cfg = dataclasses.replace(cfg, stateful=False, **read)
    _check(cfg)
    model = build_model(cfg, len(vocab))
    template = init_state(cfg, model, 1)
    tt.check(params["params"], template.params["params"], "charlm")
    state = TrainState.create(jax.tree.map(jnp.asarray, params), template.tx, template.rng)
    out = Path(cfg.out)
    write_new_run(out, state, {"config": dataclasses.asdict(cfg), "vocab": vocab.chars, "kind": "charlm",
                               "imported_from": {"state_dict": str(Path(state_dict).absolute()),
                                                 "vocab": str(Path(chars).absolute())},
                               "epoch": 0, "batch": 0, "history": []})
    print(f"imported {state_dict} as a seqjax char-{cfg.cell} ({cfg.layers} layer(s), embed {cfg.embed}, "
          f"hidden {cfg.hidden}; {len(vocab)} chars) into {out}")
    return out
