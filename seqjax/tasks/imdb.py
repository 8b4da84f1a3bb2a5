"""The IMDB experiment: reviews -> tokens -> vocab -> bucketed batches -> ``fit`` -> test.

``run(cfg)`` is ``seqjax imdb train`` (through :func:`seqjax.tasks.experiment.run_experiment`);
:func:`load` / :class:`Predictor`, :func:`predict` and :func:`evaluate_run` read a trained run
back. The test set is evaluated with the parameters of the epoch with the lowest validation
loss (as the tutorial does). Vocab and config are saved in every checkpoint, so
:func:`predict` needs only the run folder.

The same experiment runs on labelled texts of one's own (``cfg.train_file`` / ``test_file`` /
``valid_file``, TSV or JSON lines: :mod:`seqjax.data.labelled`) with any number of classes:
two keep the lab's one logit, more get ``C`` logits and softmax cross-entropy; the class names
travel with the run, the results add the test confusion matrix and ``predict`` prints names.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import SeqjaxError, configs
from seqjax.data import download, glove, imdb, labelled, tokenize
from seqjax.data.batching import BucketedBatches, default_boundaries, pad_batch
from seqjax.data.vocab import Vocab
from seqjax.nn.classifiers import Classifier, TextClassifier, classification_loss
from seqjax import backend
from seqjax.train import precision
from seqjax.tasks.common import library_call, write_results
from seqjax.tasks.experiment import data_fingerprint, load_run, run_experiment, write_new_run
from seqjax.tasks.common import seed_results
from seqjax.train import loop, parallel, seeds
from seqjax.train.callbacks import KeepBest
from seqjax.train.state import TrainState, optimizer_of

def add_bigrams(tokens: list[str]) -> list[str]:
    """FastText input: the tokens followed by their distinct bigrams (sorted, so deterministic)."""
    return tokens + sorted({f"{a} {b}" for a, b in zip(tokens, tokens[1:])})


def preprocess(cfg, texts: list[str]) -> list[list[str]]:
    """Each text's tokens by ``cfg.tokenizer`` (and their bigrams for FastText)."""
    tok = tokenize.get_tokenizer(cfg.tokenizer)
    toks = [tok(t) for t in texts]
    return [add_bigrams(t) for t in toks] if cfg.model == "fasttext" else toks


IMDB_CLASSES = ["negative", "positive"]


def class_names(cfg) -> list[str]:
    """The classes of ``cfg``'s data, index = label: IMDB's negative and positive, or the labels of
    ``cfg.train_file`` (:func:`seqjax.data.labelled.load`)."""
    return labelled.load(cfg.train_file, "", fmt=cfg.data_format)[1] if cfg.train_file else list(IMDB_CLASSES)


def build_model(cfg, vocab_size: int, arch: dict | None = None, classes: int = 2, dtype=jnp.float32) -> Classifier:
    """The classifier of ``cfg.model`` with ``cfg``'s sizes and ``classes`` outputs, computing in
    ``dtype`` (the training step's, :func:`seqjax.train.precision.compute_dtype`; float32 for
    everything else). ``arch``: further :func:`~seqjax.nn.classifiers.TextClassifier` arguments a
    run's meta may carry (an imported CNN's ``filters`` and ``n_filters``)."""
    return TextClassifier(vocab_size, cfg.embed, cfg.model, cfg.cell, cfg.hidden, cfg.layers, cfg.dropout,
                          classes=classes, dtype=dtype, unroll=backend.unroll(getattr(cfg, "unroll", 0)),
                          recurrence=backend.checked_recurrence(cfg, dtype), **(arch or {}))


def boundaries(cfg, seqs) -> tuple[int, ...]:
    """The padded lengths of ``cfg``'s batches of ``seqs`` (``int32[len]`` arrays): growing by
    ``cfg.bucket_growth`` up to ``cfg.max_len``, or up to the longest of ``seqs``."""
    return default_boundaries(cfg.max_len or max(max(len(s) for s in seqs), 16), growth=cfg.bucket_growth)


def min_len(cfg) -> int:
    """The shortest padded length ``cfg.model`` accepts."""
    return 5 if cfg.model == "cnn" else 1  # the widest Kim filter


def seed_list(cfg) -> list[int]:
    """The seeds ``cfg`` trains (``--seeds``, else ``[--seed]``)."""
    return configs.seed_list(cfg.seeds, cfg.seed)


def seed_configs(cfg) -> list:
    """One config per seed of ``cfg``: the run ``--seed S --data-seed P`` each seed of a
    ``--seeds`` run is (``P``: the run's data seed, :func:`seqjax.configs.data_seed`)."""
    return [dataclasses.replace(cfg, seed=s, seeds="", data_seed=configs.data_seed(cfg)) for s in seed_list(cfg)]


OOV_STD = {"normal": 1.0, "zeros": 0.0, "match": "match"}  # --oov-init -> glove.embedding_matrix's oov_std


def init_state(cfg, model, vocab: Vocab, wv=None, quiet: bool = False, total_steps: int = 1) -> TrainState:
    """A fresh state from ``cfg.seed``; the embedding ``float32[V, E]`` from the vectors ``wv``
    where given (words not found: ``--oov-init``), its ``<unk>``/``<pad>`` rows zero; the
    optimizer's schedule spans ``total_steps``. With ``cfg.seeds``, each seed's state stacked
    (leaves ``[K, ...]``, :func:`seqjax.train.seeds.stack`)."""
    if cfg.seeds:
        return seeds.stack([init_state(c, model, vocab, wv, quiet=i > 0, total_steps=total_steps)
                            for i, c in enumerate(seed_configs(cfg))])
    key = jax.random.PRNGKey(cfg.seed)
    params = model.init(key, jnp.ones((2, 8), jnp.int32), jnp.array([8, 3], jnp.int32))
    if wv is not None:
        if wv.dim != cfg.embed:
            raise SeqjaxError(f"--vectors {cfg.vectors}: {wv.dim}-d vectors but the model embeds in "
                              f"{cfg.embed} dimensions; pass --embed {wv.dim}")
        emb, found = glove.embedding_matrix(vocab, wv, cfg.seed, OOV_STD[getattr(cfg, "oov_init", "normal")])
        params["params"]["embedding"]["embedding"] = jnp.asarray(emb)
        if not quiet:
            print(f"embeddings: {found:,} of {len(vocab) - 2:,} vocab words found in {cfg.vectors}")
    else:  # <unk> and <pad> rows zero, as with pretrained vectors
        params["params"]["embedding"]["embedding"] = params["params"]["embedding"]["embedding"].at[:2].set(0.0)
    return TrainState.create(params, optimizer_of(cfg, total_steps), jax.random.fold_in(key, 1))


def prepare(cfg: configs.ImdbConfig):
    """Data for an IMDB run: ``(cfg, vocab, {"train", "valid", "test"} -> BucketedBatches, vectors)``.

    ``cfg`` comes back with ``embed`` = the vectors' dim where ``--embed`` was not given (a given
    ``--embed`` that differs from the vectors' width is refused). The split (and so the vocab) and the
    order of the length-sorted training batches come from :func:`seqjax.configs.data_seed`; which
    reviews share a batch from ``cfg.seed``, or with ``cfg.seeds`` from each seed (``train`` is
    then a :class:`~seqjax.train.seeds.SeedBatches`).
    """
    if cfg.train_file:
        data, _ = labelled.load(cfg.train_file, cfg.test_file, cfg.valid_file, cfg.data_format)
    else:
        data = imdb.load(cfg.source, cfg.data_dir or None)
    data_seed = configs.data_seed(cfg)
    if "valid" in data:  # a validation file of one's own
        train_split, valid_split = data["train"], data["valid"]
    else:
        train_split, valid_split = imdb.train_valid_split(data["train"], cfg.valid_fraction, data_seed)
    test_split = data["test"]
    if cfg.train_limit:
        train_split = _limit(train_split, cfg.train_limit, data_seed)
    if cfg.eval_limit:
        valid_split = _limit(valid_split, cfg.eval_limit, data_seed)
        test_split = _limit(test_split, cfg.eval_limit, data_seed)
    if not len(train_split) or not len(valid_split):
        which = "training" if not len(train_split) else "validation"
        raise SeqjaxError(f"--valid-fraction {cfg.valid_fraction:g}: leaves no {which} reviews of the "
                          f"{len(data['train']):,}; give a fraction that leaves some of both (the lab's: 0.3)")
    t0 = time.time()
    toks = {name: preprocess(cfg, s.texts) for name, s in
            (("train", train_split), ("valid", valid_split), ("test", test_split))}
    print(f"tokenized {sum(map(len, toks.values())):,} reviews in {time.time() - t0:.1f}s")
    vocab = Vocab.build(toks["train"], cfg.max_vocab)
    wv = glove.load(cfg.vectors, cfg.data_dir or None) if cfg.vectors != "none" else None
    if wv is not None and wv.dim != cfg.embed:
        if "embed" not in getattr(cfg, "from_preset", ("embed",)):  # given: never overridden
            raise SeqjaxError(f"--embed {cfg.embed}: the vectors {cfg.vectors} are {wv.dim}-wide; pass --embed "
                              f"{wv.dim} (or leave --embed out to take the vectors' width), or give "
                              f"{cfg.embed}-wide vectors")
        print(f"embed {wv.dim}: the width of the vectors {cfg.vectors} (the {cfg.model} preset has {cfg.embed})")
        cfg = dataclasses.replace(cfg, embed=wv.dim)
    sets = {}
    for name, split in (("train", train_split), ("valid", valid_split), ("test", test_split)):
        seqs = [vocab.encode(t) if t else np.array([vocab.unk_id], np.int32) for t in toks[name]]
        def batches(seed, seqs=seqs, split=split, name=name):
            return BucketedBatches(seqs, split.labels, cfg.batch_size, boundaries(cfg, seqs),
                                   shuffle=name == "train", seed=seed, pad_id=vocab.pad_id, min_len=min_len(cfg),
                                   order_seed=data_seed)

        sets[name] = (seeds.SeedBatches([batches(s) for s in seed_list(cfg)], seed_list(cfg))
                      if cfg.seeds and name == "train" else batches(cfg.seed))
    print(f"{len(train_split):,} train / {len(valid_split):,} valid / {len(test_split):,} test reviews; "
          f"vocab {len(vocab):,}; padded lengths {sets['valid'].boundaries}")
    return cfg, vocab, sets, wv


def fingerprint(sets: dict, cfg=None) -> dict:
    """What a run trains on (:func:`seqjax.tasks.experiment.data_fingerprint`): the dataset and
    the sizes of its train / valid / test splits, from :func:`prepare`'s ``sets``; for files of
    one's own (``cfg.train_file``), also the training file's SHA-256."""
    def size(data):
        return len((data.datasets[0] if hasattr(data, "datasets") else data).seqs)

    sizes = dict(train=size(sets["train"]), valid=size(sets["valid"]), test=size(sets["test"]))
    if cfg is not None and cfg.train_file:
        return data_fingerprint(f"--train-file {cfg.train_file}", sha256=download.sha256sum(Path(cfg.train_file)),
                                **sizes)
    return data_fingerprint("IMDB", **sizes)


def run(cfg: configs.ImdbConfig, command: str | None = None) -> dict:
    """Train, keep the best epoch, test (``seqjax imdb train``); returns the run's results.

    Returns ``test_loss`` / ``test_accuracy`` (the params of the epoch with the lowest
    validation loss, on the test split), ``best_epoch``, ``history``, ``wall_time_s``,
    ``epoch_time_s``, ``vectors`` and ``vocab_size``; also written to ``cfg.results`` with
    ``command`` (default: this call, written as Python).
    """
    started = time.time()
    backend.checked_recurrence(cfg, precision.compute_dtype(cfg.precision))  # before the data is read
    several = seed_list(cfg) if cfg.seeds else []
    mesh = parallel.make_mesh(seeds=len(several))
    if cfg.batch_size % parallel.data_size(mesh):
        n = parallel.data_size(mesh)
        raise SeqjaxError(f"--batch-size {cfg.batch_size}: not divisible by the {n} devices a batch is split "
                          f"over; give a multiple of {n} or another --cpu-devices")
    cfg, vocab, sets, wv = prepare(cfg)
    names = class_names(cfg)
    model = build_model(cfg, len(vocab), classes=len(names))
    loss = classification_loss(model)
    train_loss = precision.train_in(cfg.precision, lambda dtype: classification_loss(
        build_model(cfg, len(vocab), classes=len(names), dtype=dtype)), loss)
    best = KeepBest("valid_loss", Path(cfg.out) / "best_params.msgpack")
    if several:
        print(f"seeds {', '.join(map(str, several))} at once (data seed {configs.data_seed(cfg)}): "
              f"mesh {dict(mesh.shape)}")

    def finish(position: loop.LoopState) -> dict:
        best_params = best.params if best.params is not None else jax.device_get(position.state.params)
        # the test metrics and the confusion matrix (rows: the true class) in one pass
        test = loop.evaluate(best_params, sets["test"], classification_loss(model, confusion=True), mesh=mesh,
                             desc="test")
        out = {"history": position.history, "wall_time_s": time.time() - position.started,
               "epoch_time_s": [h["train_time_s"] for h in position.history],
               "vectors": cfg.vectors, "vocab_size": len(vocab), "layout": {"mesh": dict(mesh.shape)},
               "classes": names}
        out["test_confusion"] = [t.pop("confusion") for t in test] if several else test.pop("confusion")
        if not several:
            print(f"test ({cfg.model}, best epoch {best.epoch}): loss {test['loss']:.4f}  "
                  f"accuracy {100 * test['accuracy']:.2f}%")
            return {"test_loss": test["loss"], "test_accuracy": test["accuracy"], "best_epoch": best.epoch, **out}
        rows = [{"test_loss": t["loss"], "test_accuracy": t["accuracy"], "best_epoch": e}
                for t, e in zip(test, best.epoch or [None] * len(test))]
        res = seed_results(several, rows, ("test_accuracy", "test_loss"))
        acc = res["aggregate"]["test_accuracy"]
        ci = acc["ci95"] or [acc["mean"], acc["mean"]]
        print(f"test ({cfg.model}, {len(several)} seeds, each its best epoch): accuracy "
              + " / ".join(f"{100 * r['test_accuracy']:.2f}%" for r in rows)
              + f"; mean {100 * acc['mean']:.2f}% ± {100 * acc['std']:.2f} (95% CI {100 * ci[0]:.2f} .. {100 * ci[1]:.2f})")
        return {"test_loss": res["aggregate"]["test_loss"]["mean"], "test_accuracy": acc["mean"],
                "best_epoch": best.epoch, **res, **out}

    return run_experiment(
        cfg, "imdb", init_state(cfg, model, vocab, wv, total_steps=cfg.epochs * len(sets["train"])), sets["train"],
        train_loss, started=started,
        command=command or library_call("seqjax.tasks.imdb.run", cfg), meta={"vocab": vocab.itos, "classes": names},
        data=fingerprint(sets, cfg),
        valid=sets["valid"], callbacks=[best], desc=f"imdb-{cfg.model}", finish=finish,
        curves=lambda k: k.endswith(("loss", "accuracy")),
        title=f"IMDB {cfg.model}" + (f", mean of {len(several)} seeds" if several else ""), mesh=mesh)


train = run  # the verb's name: ``seqjax imdb train``


def _limit(split: imdb.Split, n: int, seed: int) -> imdb.Split:
    """A seeded random ``n`` of ``split`` (both labels, unlike a prefix of the sorted records)."""
    keep = np.random.default_rng([seed, 1]).permutation(len(split))[:n]
    return split.subset(np.sort(keep))


def read_best(path: Path, template):
    """The best-validation parameters a run saved in ``path`` (``RUN/best_params.msgpack``),
    typed like ``template`` (the run's checkpointed parameters).

    Raises:
      SeqjaxError: the file is damaged or holds parameters of another model.
    """
    import flax.serialization

    try:
        return flax.serialization.from_bytes(jax.device_get(template), path.read_bytes())
    except Exception as err:  # noqa: BLE001 - msgpack and flax raise many kinds
        raise SeqjaxError(f"{path}: cannot be read as this run's parameters ({type(err).__name__}: "
                          f"{str(err)[:120]}); delete it to use the run's latest checkpoint instead") from None


class Predictor:
    """A trained classifier loaded from a run folder or its ``checkpoints`` directory (vocab and
    config inside): ``Predictor(checkpoint)(texts)`` -> probabilities of *positive*.

    The params are the run's best-validation ones (``RUN/best_params.msgpack``, the weights
    ``imdb train`` reports the test accuracy of) where the run has them, else the latest
    checkpoint's (an imported run); ``best=False`` always loads the latest checkpoint's (the last
    epoch's, for a finished run); ``which`` says which were loaded. For a run of several
    seeds, ``seed_index`` picks one seed's model (0-based), or with -1 (default) all of them as
    one :class:`Ensemble` (the mean of their probabilities).
    """

    def __init__(self, checkpoint: str, seed_index: int = -1, best: bool = True):
        saved = load_run(checkpoint, "imdb")
        self.directory, self.step = saved.directory, saved.step
        self.cfg = configs.ImdbConfig(**saved.meta["config"])
        self.vocab = Vocab(saved.meta["vocab"], [0] * len(saved.meta["vocab"]))
        self.names = list(saved.meta.get("classes") or IMDB_CLASSES)
        self.model = build_model(self.cfg, len(self.vocab), saved.meta.get("arch"), classes=len(self.names))
        self.params = saved.restore(init_state(self.cfg, self.model, self.vocab)).params
        self.which = f"{self.directory} step {self.step}"
        best_file = Path(self.directory).parent / "best_params.msgpack"
        if best and best_file.is_file():
            self.params, self.which = read_best(best_file, self.params), str(best_file)
        self.seeds = seed_list(self.cfg) if self.cfg.seeds else []
        if self.seeds:
            if not -1 <= seed_index < len(self.seeds):
                raise SeqjaxError(f"--seed-index {seed_index}: the run trained {len(self.seeds)} seeds "
                                  f"({', '.join(map(str, self.seeds))}); give 0 .. {len(self.seeds) - 1}, or -1 "
                                  f"for their ensemble")
            if seed_index >= 0:
                self.params = seeds.take(self.params, seed_index)
                self.which += f", seed {self.seeds[seed_index]}"
            else:
                self.model = Ensemble(self.model)
                self.which += f", ensemble of seeds {', '.join(map(str, self.seeds))}"
        elif seed_index > 0:
            raise SeqjaxError(f"--seed-index {seed_index}: the run trained one seed; leave --seed-index out")
        prob = jax.nn.sigmoid if len(self.names) == 2 else jax.nn.softmax
        self._apply = jax.jit(lambda p, ids, lens: prob(self.model.apply(p, ids, lens)))

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """Each text as the run's config reads it: ``int32[n_i]`` token ids. Empty texts raise
        SeqjaxError."""
        seqs = []
        for t, tk in zip(texts, preprocess(self.cfg, texts)):
            if not tk:
                raise SeqjaxError(f"text {t[:60]!r} has no tokens; give a review with at least one word")
            seqs.append(self.vocab.encode(tk))
        return seqs

    def scores(self, seqs: list[np.ndarray]) -> np.ndarray:
        """Probabilities of encoded texts (:meth:`encode`): of the second class (*positive*),
        ``float32[len(seqs)]``, for two classes; of each class, ``float32[len(seqs), C]``, for more."""
        longest = max(max(len(s) for s in seqs), min_len(self.cfg))
        b = pad_batch(seqs, np.zeros(len(seqs)), len(seqs), (longest,), self.vocab.pad_id, min_len(self.cfg))
        return np.asarray(self._apply(self.params, b["ids"], b["lengths"]))

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Probabilities as :meth:`scores`: ``float32[len(texts)]`` (two classes) or
        ``float32[len(texts), C]``. Empty texts raise SeqjaxError."""
        return self.scores(self.encode(texts))


class Ensemble:
    """The K models of a run of several seeds as one classifier: ``apply(params [K, ...], ids
    int32[B, T], lengths int32[B])`` -> ``float32[B]`` logits of the mean of the K models'
    probabilities (``log p - log(1 - p)``, each term a log-mean-exp of the models' log-sigmoids)."""

    def __init__(self, model):
        self.model = model

    @property
    def classes(self) -> int:
        return self.model.classes

    def apply(self, params, ids, lengths, train=False, rngs=None):
        logits_KB = jax.vmap(lambda p: self.model.apply(p, ids, lengths, False))(params)
        K = logits_KB.shape[0]
        if logits_KB.ndim == 3:  # C classes: the log of the mean of the K softmax probabilities
            return jax.nn.logsumexp(jax.nn.log_softmax(logits_KB), axis=0) - jnp.log(K)
        log_p = jax.nn.logsumexp(jax.nn.log_sigmoid(logits_KB), axis=0) - jnp.log(K)
        log_q = jax.nn.logsumexp(jax.nn.log_sigmoid(-logits_KB), axis=0) - jnp.log(K)
        return log_p - log_q


def load(checkpoint: str, seed_index: int = -1) -> Predictor:
    """The classifier of a run folder or its ``checkpoints`` directory, ready to predict
    (``seed_index``: see :class:`Predictor`)."""
    return Predictor(checkpoint, seed_index)


def predict(checkpoint: str, texts: list[str], as_json: bool = False, seed_index: int = -1) -> np.ndarray:
    """``seqjax imdb predict``: one line per text, ``P(positive)  label  text`` (or a JSON object
    with ``text``, ``p_positive``, ``label`` when ``as_json``); a warning on standard error for a
    text none of whose tokens the vocabulary knows. Returns ``float32[len(texts)]``."""
    import json
    import sys

    if not texts:
        raise SeqjaxError('seqjax imdb predict --run RUN "text" ... (or --file FILE, or - for standard input): '
                          'give at least one text')
    pred = load(checkpoint, seed_index)
    seqs = pred.encode(texts)  # tokenized once, for the scores and the unknown-word warning
    probs = pred.scores(seqs)
    for t, s in zip(texts, seqs):
        if not (s != pred.vocab.unk_id).any():
            print(f"warning: no token of {t[:60]!r} is in the model's vocabulary; its prediction is the "
                  f"model's answer to unknown words only", file=sys.stderr)
    if not np.isfinite(probs).all():
        raise SeqjaxError(f"{pred.which}: the model gives a non-finite probability (its parameters hold NaN or "
                          f"inf); retrain it, or import finite weights")
    if pred.names != IMDB_CLASSES:  # classes of one's own: the likeliest class and every probability
        each = probs if probs.ndim == 2 else np.stack([1 - probs, probs], axis=-1)
        for t, p in zip(texts, each):
            label = pred.names[int(np.argmax(p))]
            print(json.dumps({"text": t, "label": label, "p": {n: round(float(q), 6) for n, q in zip(pred.names, p)}},
                             allow_nan=False) if as_json else f"{float(np.max(p)):.4f}  {label}  {t}")
        return probs
    for t, p in zip(texts, probs):
        label = "positive" if p > 0.5 else "negative"
        print(json.dumps({"text": t, "p_positive": round(float(p), 6), "label": label}, allow_nan=False) if as_json
              else f"{p:.4f}  {label}  {t}")
    return probs


def evaluate_run(run: str, cfg: configs.ImdbConfig, command: str | None = None, seed_index: int = -1) -> dict:
    """``seqjax imdb evaluate --run RUN``: test loss and accuracy of a run folder's classifier.

    ``run``: a run folder (``imdb train --out`` or ``imdb import-torch --out``) or its
    ``checkpoints`` directory. The params are ``RUN/best_params.msgpack`` where it exists (the
    lowest-validation-loss epoch, which ``imdb train`` tests), else the latest checkpoint's. The
    test reviews come from ``cfg.source`` / ``cfg.data_dir`` (all 25,000, or a seeded
    ``cfg.eval_limit`` of them) and are tokenized, encoded and padded as the run's config says.
    """
    pred = load(run, seed_index)  # the best-validation params where the run saved them (Predictor)
    params, which = pred.params, pred.which
    if pred.cfg.train_file:
        test = labelled.load(pred.cfg.train_file, pred.cfg.test_file, fmt=pred.cfg.data_format)[0]["test"]
    else:
        test = imdb.load(cfg.source, cfg.data_dir or None)["test"]
    if cfg.eval_limit:
        test = _limit(test, cfg.eval_limit, cfg.seed)
    toks = preprocess(pred.cfg, test.texts)
    seqs = [pred.vocab.encode(t) if t else np.array([pred.vocab.unk_id], np.int32) for t in toks]
    data = BucketedBatches(seqs, test.labels, cfg.batch_size, boundaries(pred.cfg, seqs),
                           pad_id=pred.vocab.pad_id, min_len=min_len(pred.cfg))
    m = loop.evaluate(params, data, classification_loss(pred.model), desc="test")
    if not np.isfinite(m["loss"]):
        raise SeqjaxError(f"{which}: the test loss is not finite (the parameters hold NaN or inf); retrain the "
                          f"model, or import finite weights")
    print(f"test ({pred.cfg.model}, params {which}): loss {m['loss']:.4f}  accuracy "
          f"{100 * m['accuracy']:.2f}% on {len(test):,} reviews")
    out = {"run": str(run), "params": which, "test_loss": m["loss"], "test_accuracy": m["accuracy"],
           "test_reviews": len(test)}
    if cfg.results:
        write_results(cfg.results, pred.cfg, command or library_call("seqjax.tasks.imdb.evaluate_run", cfg, run), **out)
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
    classes = arch["outputs"] if arch["outputs"] > 2 else 2
    model = build_model(cfg, len(voc), extra, classes=classes)
    template = init_state(cfg, model, voc)
    tt.check(params, template.params["params"], cfg.model)
    state = TrainState.create({"params": jax.tree.map(jnp.asarray, params)}, template.tx, template.rng)
    out = Path(cfg.out)
    names = IMDB_CLASSES if classes == 2 else [str(c) for c in range(classes)]  # PyTorch's class indices
    meta = {"config": dataclasses.asdict(cfg), "vocab": voc.itos, "kind": "imdb", "arch": extra, "classes": names,
            "imported_from": {"state_dict": str(Path(state_dict).absolute()), "vocab": str(Path(vocab).absolute()),
                              "concat": concat, "torch_outputs": arch["outputs"]},
            "epoch": 0, "batch": 0, "history": []}
    write_new_run(out, state, meta)
    for line in notes:
        print(f"note: {line}")
    shape = ", ".join(f"{k} {v}" for k, v in {**read, **extra}.items() if v)
    print(f"imported {state_dict} as seqjax {cfg.model} ({shape}; vocab {len(voc):,}) into {out}")
    return out
