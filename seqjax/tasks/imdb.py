"""The IMDB experiment: reviews -> tokens -> vocab -> bucketed batches -> ``fit`` -> test.

The test set is evaluated with the parameters of the epoch with the lowest validation loss
(as the tutorial does). Vocab and config are saved in every checkpoint, so
:func:`predict` needs only the checkpoint directory.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import SeqjaxError, configs
from seqjax.data import glove, imdb, tokenize
from seqjax.data.batching import BucketedBatches, default_boundaries, pad_batch
from seqjax.data.vocab import Vocab
from seqjax.nn.classifiers import Classifier, TextClassifier, bce_loss
from seqjax.tasks.common import write_results
from seqjax.train import loop
from seqjax.train.callbacks import KeepBest
from seqjax.train.checkpoint import Checkpointer, read_meta
from seqjax.train.state import TrainState, make_optimizer

def add_bigrams(tokens: list[str]) -> list[str]:
    """FastText input: the tokens followed by their distinct bigrams (sorted, so deterministic)."""
    return tokens + sorted({f"{a} {b}" for a, b in zip(tokens, tokens[1:])})


def preprocess(cfg, texts: list[str]) -> list[list[str]]:
    tok = tokenize.get_tokenizer(cfg.tokenizer)
    toks = [tok(t) for t in texts]
    return [add_bigrams(t) for t in toks] if cfg.model == "fasttext" else toks


def build_model(cfg, vocab_size: int, arch: dict | None = None) -> Classifier:
    """The classifier of ``cfg.model`` with ``cfg``'s sizes. ``arch``: further
    :func:`~seqjax.nn.classifiers.TextClassifier` arguments a run's meta may carry (an imported
    CNN's ``filters`` and ``n_filters``)."""
    extra = {k: tuple(v) if isinstance(v, list) else v for k, v in (arch or {}).items()}
    return TextClassifier(vocab_size, cfg.embed, cfg.model, cfg.cell, cfg.hidden, cfg.layers, cfg.dropout, **extra)


def boundaries(cfg, seqs) -> tuple[int, ...]:
    """The padded lengths of ``cfg``'s batches of ``seqs`` (``int32[len]`` arrays): growing by
    ``cfg.bucket_growth`` up to ``cfg.max_len``, or up to the longest of ``seqs``."""
    return default_boundaries(cfg.max_len or max(max(len(s) for s in seqs), 16), growth=cfg.bucket_growth)


def min_len(cfg) -> int:
    return 5 if cfg.model == "cnn" else 1  # the widest Kim filter


def init_state(cfg, model, vocab: Vocab, wv=None) -> TrainState:
    key = jax.random.PRNGKey(cfg.seed)
    params = model.init(key, jnp.ones((2, 8), jnp.int32), jnp.array([8, 3], jnp.int32))
    if wv is not None:
        if wv.dim != cfg.embed:
            raise SeqjaxError(f"--vectors {cfg.vectors}: {wv.dim}-d vectors but the model embeds in "
                              f"{cfg.embed} dimensions; pass --embed {wv.dim}")
        emb, found = glove.embedding_matrix(vocab, wv, cfg.seed)
        params["params"]["embedding"]["embedding"] = jnp.asarray(emb)
        print(f"embeddings: {found:,} of {len(vocab) - 2:,} vocab words found in {cfg.vectors}")
    else:  # <unk> and <pad> rows zero, as with pretrained vectors
        params["params"]["embedding"]["embedding"] = params["params"]["embedding"]["embedding"].at[:2].set(0.0)
    tx = make_optimizer(cfg.optimizer, cfg.lr, cfg.clip)
    return TrainState.create(params, tx, jax.random.fold_in(key, 1))


def prepare(cfg: configs.ImdbConfig):
    """Data for an IMDB run: ``(cfg, vocab, {"train", "valid", "test"} -> BucketedBatches, vectors)``.

    ``cfg`` comes back with ``embed`` = the vectors' dim.
    """
    data = imdb.load(cfg.source, cfg.data_dir or None)
    train_split, valid_split = imdb.train_valid_split(data["train"], cfg.valid_fraction, cfg.seed)
    test_split = data["test"]
    if cfg.train_limit:
        train_split = _limit(train_split, cfg.train_limit, cfg.seed)
    if cfg.eval_limit:
        valid_split = _limit(valid_split, cfg.eval_limit, cfg.seed)
        test_split = _limit(test_split, cfg.eval_limit, cfg.seed)
    t0 = time.time()
    toks = {name: preprocess(cfg, s.texts) for name, s in
            (("train", train_split), ("valid", valid_split), ("test", test_split))}
    print(f"tokenized {sum(map(len, toks.values())):,} reviews in {time.time() - t0:.1f}s")
    vocab = Vocab.build(toks["train"], cfg.max_vocab)
    wv = glove.load(cfg.vectors, cfg.data_dir or None) if cfg.vectors != "none" else None
    if wv is not None and wv.dim != cfg.embed:
        cfg = dataclasses.replace(cfg, embed=wv.dim)
    sets = {}
    for name, split in (("train", train_split), ("valid", valid_split), ("test", test_split)):
        seqs = [vocab.encode(t) if t else np.array([vocab.unk_id], np.int32) for t in toks[name]]
        sets[name] = BucketedBatches(seqs, split.labels, cfg.batch_size, boundaries(cfg, seqs),
                                     shuffle=name == "train", seed=cfg.seed, pad_id=vocab.pad_id,
                                     min_len=min_len(cfg))
    print(f"{len(train_split):,} train / {len(valid_split):,} valid / {len(test_split):,} test reviews; "
          f"vocab {len(vocab):,}; padded lengths {sets['train'].boundaries}")
    return cfg, vocab, sets, wv


def train(cfg: configs.ImdbConfig) -> dict:
    t_start = time.time()
    cfg, vocab, sets, wv = prepare(cfg)
    model = build_model(cfg, len(vocab))
    state = init_state(cfg, model, vocab, wv)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = Checkpointer(out / "checkpoints")
    state, start, history, partial = ckpt.start(state, cfg.resume)
    t_start -= loop.elapsed_before(history)  # a resumed run counts its earlier part too
    best = KeepBest("valid_loss", out / "best_params.msgpack")
    best.resume(state.params, history)
    loss = bce_loss(model)
    run = loop.Run(out, started=t_start, checkpointer=ckpt, time_budget_s=60 * cfg.minutes,
                   meta={"config": dataclasses.asdict(cfg), "vocab": vocab.itos, "kind": "imdb"})
    state, history = loop.fit(state, sets["train"], loss, cfg.epochs, valid=sets["valid"], run=run,
                              callbacks=[best], start=start, history=history, partial=partial,
                              desc=f"imdb-{cfg.model}")
    best_params = best.params if best.params is not None else jax.device_get(state.params)
    test = loop.evaluate(best_params, sets["test"], loss, desc="test")
    ckpt.close()
    print(f"test ({cfg.model}, best epoch {best.epoch}): loss {test['loss']:.4f}  accuracy {100 * test['accuracy']:.2f}%")
    curves = [{k: v for k, v in h.items() if k.endswith(("loss", "accuracy")) or k == "epoch"} for h in history]
    loop.plot_history(curves, out / "curves.png", f"IMDB {cfg.model}")
    result = {"test_loss": test["loss"], "test_accuracy": test["accuracy"], "best_epoch": best.epoch,
              "history": history, "wall_time_s": time.time() - t_start,
              "epoch_time_s": [h["train_time_s"] for h in history],
              "vectors": cfg.vectors, "vocab_size": len(vocab)}
    if cfg.results:
        loop.plot_history(curves, Path(cfg.results).with_suffix(".png"), f"IMDB {cfg.model}")
        write_results(cfg.results, cfg, **result)
    return result


def _limit(split: imdb.Split, n: int, seed: int) -> imdb.Split:
    """A seeded random ``n`` of ``split`` (both labels, unlike a prefix of the sorted records)."""
    keep = np.random.default_rng([seed, 1]).permutation(len(split))[:n]
    return split.subset(np.sort(keep))


class Predictor:
    """A trained classifier loaded from a checkpoint directory (vocab and config inside)."""

    def __init__(self, checkpoint: str):
        meta = read_meta(checkpoint)
        if meta.get("kind") != "imdb":
            raise SeqjaxError(f"{checkpoint}: not an IMDB checkpoint (kind {meta.get('kind')!r})")
        self.cfg = configs.ImdbConfig(**meta["config"])
        self.vocab = Vocab(meta["vocab"], [0] * len(meta["vocab"]))
        self.model = build_model(self.cfg, len(self.vocab), meta.get("arch"))
        ck = Checkpointer(Path(checkpoint).absolute())
        state, _ = ck.restore(init_state(self.cfg, self.model, self.vocab))
        self.step = ck.latest_step()
        ck.close()
        self.params = state.params
        self._apply = jax.jit(lambda p, ids, lens: jax.nn.sigmoid(self.model.apply(p, ids, lens)))

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Probabilities of *positive*: ``float32[len(texts)]``. Empty texts raise SeqjaxError."""
        toks = preprocess(self.cfg, texts)
        for t, tk in zip(texts, toks):
            if not tk:
                raise SeqjaxError(f"text {t!r} has no tokens; give a review with at least one word")
        seqs = [self.vocab.encode(t) for t in toks]
        longest = max(max(len(s) for s in seqs), min_len(self.cfg))
        b = pad_batch(seqs, np.zeros(len(seqs)), len(seqs), (longest,), self.vocab.pad_id, min_len(self.cfg))
        return np.asarray(self._apply(self.params, b["ids"], b["lengths"]))


def evaluate_run(run: str, cfg: configs.ImdbConfig) -> dict:
    """``seqjax imdb evaluate --run RUN``: test loss and accuracy of a run folder's classifier.

    ``run``: a run folder (``imdb train --out`` or ``imdb import-torch --out``) or its
    ``checkpoints`` directory. The params are ``RUN/best_params.msgpack`` where it exists (the
    lowest-validation-loss epoch, which ``imdb train`` tests), else the latest checkpoint's. The
    test reviews come from ``cfg.source`` / ``cfg.data_dir`` (all 25,000, or a seeded
    ``cfg.eval_limit`` of them) and are tokenized, encoded and padded as the run's config says.
    """
    import flax.serialization

    ckdir = Path(run) / "checkpoints" if (Path(run) / "checkpoints").is_dir() else Path(run)
    pred = Predictor(str(ckdir))
    params, which = pred.params, f"{ckdir} step {pred.step}"
    best = ckdir.parent / "best_params.msgpack"
    if best.is_file():
        params, which = flax.serialization.from_bytes(jax.device_get(params), best.read_bytes()), str(best)
    test = imdb.load(cfg.source, cfg.data_dir or None)["test"]
    if cfg.eval_limit:
        test = _limit(test, cfg.eval_limit, cfg.seed)
    toks = preprocess(pred.cfg, test.texts)
    seqs = [pred.vocab.encode(t) if t else np.array([pred.vocab.unk_id], np.int32) for t in toks]
    data = BucketedBatches(seqs, test.labels, cfg.batch_size, boundaries(pred.cfg, seqs),
                           pad_id=pred.vocab.pad_id, min_len=min_len(pred.cfg))
    m = loop.evaluate(params, data, bce_loss(pred.model), desc="test")
    print(f"test ({pred.cfg.model}, params {which}): loss {m['loss']:.4f}  accuracy "
          f"{100 * m['accuracy']:.2f}% on {len(test):,} reviews")
    out = {"run": str(run), "params": which, "test_loss": m["loss"], "test_accuracy": m["accuracy"],
           "test_reviews": len(test)}
    if cfg.results:
        write_results(cfg.results, pred.cfg, **out)
    return out


def import_torch(cfg: configs.ImdbConfig, state_dict: str, vocab: str,
                 concat: str = "forward-backward") -> Path:
    """``seqjax imdb import-torch``: a PyTorch classifier of the lab's -> a seqjax run folder.

    Args:
      cfg: ``model`` names the lab's model; ``out`` the run folder to write; ``tokenizer`` (and
        ``max_len``) how ``predict`` / ``evaluate`` will read texts. The architecture (``embed``,
        ``cell``, ``hidden``, ``layers``) is read off the state_dict; those of them given (not in
        ``cfg.from_preset``) must agree with it.
      state_dict: a ``torch.save(model.state_dict())`` file.
      vocab: the PyTorch run's index -> token list (``.json`` / ``.txt``, see
        :func:`seqjax.interop.torch.read_tokens`), ``<unk>`` / ``<pad>`` where it has them.
      concat: bilstm only, see :func:`seqjax.interop.torch.from_torch`.
    Returns the run folder: ``checkpoints/`` with the params, vocab and config, as training writes.
    """
    from seqjax.interop import torch as tt

    sd = tt.load_state_dict(state_dict)
    try:
        arch = tt.torch_arch(cfg.model, sd)
        params = tt.from_torch(cfg.model, sd, concat=concat)["params"]
    except SeqjaxError as err:
        raise SeqjaxError(f"--state-dict {state_dict}: {err}") from None
    itos = tt.read_tokens(vocab)
    voc, emb, notes = tt.seqjax_vocab(itos, params["embedding"]["embedding"], f"--vocab {vocab}")
    params["embedding"]["embedding"] = emb
    read = {"embed": arch["embed"], "cell": arch.get("cell", ""), "hidden": arch.get("hidden", 0),
            "layers": arch.get("layers", 0)}
    for k, v in read.items():
        if k not in cfg.from_preset and getattr(cfg, k) != v:
            raise SeqjaxError(f"--{k} {getattr(cfg, k)}: the state_dict {state_dict} has {k} {v}; leave "
                              f"--{k} out to take it from there")
    cfg = dataclasses.replace(cfg, vectors="none", **read)
    extra = {"filters": list(arch["filters"]), "n_filters": arch["n_filters"]} if cfg.model == "cnn" else {}
    model = build_model(cfg, len(voc), extra)
    template = init_state(cfg, model, voc)
    tt.check(params, template.params["params"], cfg.model)
    state = TrainState.create({"params": jax.tree.map(jnp.asarray, params)}, template.tx, template.rng)
    out = Path(cfg.out)
    if (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
        raise SeqjaxError(f"--out {out}: already holds a run; choose another folder")
    ckpt = Checkpointer(out / "checkpoints")
    meta = {"config": dataclasses.asdict(cfg), "vocab": voc.itos, "kind": "imdb", "arch": extra,
            "imported_from": {"state_dict": str(Path(state_dict).absolute()), "vocab": str(Path(vocab).absolute()),
                              "concat": concat, "torch_outputs": arch["outputs"]},
            "epoch": 0, "batch": 0, "history": []}
    ckpt.save(state, meta)
    ckpt.close()
    for line in notes:
        print(f"note: {line}")
    shape = ", ".join(f"{k} {v}" for k, v in {**read, **extra}.items() if v)
    print(f"imported {state_dict} as seqjax {cfg.model} ({shape}; vocab {len(voc):,}) into {out}")
    return out
