"""``seqjax <part> <verb>``: parse a config, call the library, print. Nothing else lives here.

Errors a user can fix (:class:`seqjax.SeqjaxError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

import numpy as np

from seqjax import SeqjaxError, configs


def _add_config(parser: argparse.ArgumentParser, cls) -> None:
    """Every field of dataclass ``cls`` becomes ``--field-name`` with its default. A field of
    type ``T | None`` with default ``None`` (ImdbConfig's model hyperparameters) takes a ``T``;
    left out, it stays ``None``, which the config fills from the ``--model`` preset."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        typ = hints[f.name]
        if f.default is None:
            typ = next(t for t in typing.get_args(typ) if t is not type(None))
        flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
        if typ is bool:
            parser.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            parser.add_argument(*flags, dest=f.name, type=typ, default=f.default,
                                help="default: the --model preset" if f.default is None else f"default: {f.default!r}")


def _config(cls, args: argparse.Namespace):
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


# ---- markov -----------------------------------------------------------------------------------
def run_markov(cfg: configs.MarkovConfig) -> dict:
    """The lab's Markov chain, then a held-out score.

    As the lab does, the counts, the distributions and the sample come from a chain fitted on
    the *whole* text ('a' -> 'b': 813 on Nietzsche). The held-out bits per symbol come from a
    second chain fitted on the first ``1 - valid_fraction`` of the text and scored on the rest
    (a chain that has seen the tail would score it unfairly)."""
    from seqjax import markov
    from seqjax.data import text as textdata

    text = textdata.read_text(cfg.text) if cfg.text else textdata.load_nietzsche(cfg.data_dir or None)
    syms = markov.symbols_of(text, cfg.unit)
    cut = len(syms) - int(round(len(syms) * cfg.valid_fraction))
    train, held = syms[:cut], syms[cut:]
    alphabet = sorted(set(syms)) if cfg.unit == "char" else None
    word = cfg.unit == "word"
    whole = markov.MarkovChain.fit(syms, cfg.order, cfg.beta, alphabet, unk=word)
    out: dict = {"order": cfg.order, "unit": cfg.unit, "symbols": whole.V}
    print(f"{cfg.unit}-level order-{cfg.order} Markov chain on the whole text: {len(syms):,} "
          f"symbols, {whole.V} distinct")
    if cfg.unit == "char" and cfg.order >= 1 and {"a", "b", "j"} <= set(alphabet):
        one = whole if cfg.order == 1 else markov.MarkovChain.fit(syms, 1, cfg.beta, alphabet)
        out["count_a_b"] = one.count(["a"], "b")
        print(f"transitions 'a' -> 'b': {out['count_a_b']}")
        p = one.next_distribution(["a"])
        top = np.argsort(-p)[:8]
        print("P(next | 'a'): " + ", ".join(f"{one.symbols[i]!r} {p[i]:.3f}" for i in top))
        pj = one.next_distribution(["j"])
        out["most_likely_after_j"] = one.symbols[int(np.argmax(pj))]
        print(f"most likely letter after 'j': {out['most_likely_after_j']!r} (p = {pj.max():.3f})")
    start = list(cfg.start) if cfg.unit == "char" else cfg.start.split()
    sample = whole.sample(cfg.sample, start, cfg.seed)
    joiner = "" if cfg.unit == "char" else " "
    print(f"\n--- {cfg.sample} sampled {cfg.unit}s (seed {cfg.seed}) ---\n{joiner.join(sample)}\n---")
    chain = markov.MarkovChain.fit(train, cfg.order, cfg.beta, alphabet, unk=word)
    out["held_out_bits"] = chain.bits_per_symbol(held, context=train)
    print(f"held-out cross-entropy: {out['held_out_bits']:.4f} bits per {cfg.unit} (a chain fitted on "
          f"the first {1 - cfg.valid_fraction:.0%}, {len(train):,} symbols, scored on the last "
          f"{cfg.valid_fraction:.0%}, {len(held):,}; smoothing beta={cfg.beta})")
    return out


# ---- embeddings --------------------------------------------------------------------------------
def run_embeddings(cfg: configs.EmbeddingsConfig, verb: str, words: list[str]) -> None:
    from seqjax import embeddings as emb
    from seqjax.data import glove

    if verb not in ("neighbours", "analogy", "evaluate", "similarity"):
        raise SeqjaxError(f"seqjax embeddings {verb!r}: choose neighbours, analogy, evaluate or similarity")
    if verb in ("evaluate", "similarity") and len(words) != 1:
        raise SeqjaxError(f"seqjax embeddings {verb} FILE: give one "
                          + ("questions-words file" if verb == "evaluate" else "word-pair file"))
    # evaluation ranks by cosine (3CosAdd), as gensim and the literature; the lab's exercises by distance
    metric = cfg.metric or ("cosine" if verb in ("evaluate", "similarity") else "euclidean")
    if metric not in ("euclidean", "cosine"):
        raise SeqjaxError(f"--metric {metric!r}: choose euclidean or cosine")
    if verb == "similarity" and metric != "cosine":
        raise SeqjaxError("seqjax embeddings similarity: word-pair scores use cosine similarity; drop --metric")
    if verb == "evaluate":
        sections = emb.read_questions(words[0])  # a bad file fails before the vectors load
        import jax

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


# ---- charlm ------------------------------------------------------------------------------------
def run_charlm(args) -> None:
    from seqjax.tasks import charlm

    if args.verb == "train":
        charlm.train(_config(configs.CharLMConfig, args))
    elif args.verb == "import-torch":
        if not (args.state_dict and args.vocab):
            raise SeqjaxError("seqjax charlm import-torch --state-dict FILE.pt --vocab CHARS.json --out RUN: "
                              "give the state_dict and the model's characters")
        charlm.import_torch(_config(configs.CharLMConfig, args), args.state_dict, args.vocab)
    else:
        ckpt = args.checkpoint or str(__import__("pathlib").Path(args.out) / "checkpoints")
        print(args.seed_text + charlm.sample_from_checkpoint(
            ckpt, args.seed_text, args.temperature, args.length, args.seed, args.method))


# ---- imdb ---------------------------------------------------------------------------------------
def run_imdb(args) -> None:
    from seqjax.tasks import imdb

    if args.verb == "train":
        imdb.train(_config(configs.ImdbConfig, args))
        return
    if args.texts and args.verb != "predict":
        raise SeqjaxError(f"seqjax imdb {args.verb} takes no texts (got {args.texts[0]!r}); only predict does")
    if args.verb == "import-torch":
        if not (args.state_dict and args.vocab):
            raise SeqjaxError("seqjax imdb import-torch --state-dict FILE.pt --vocab ITOS.json --model MODEL "
                              "--out RUN: give the state_dict and the PyTorch run's vocabulary")
        imdb.import_torch(_config(configs.ImdbConfig, args), args.state_dict, args.vocab, args.concat)
        return
    if args.verb == "evaluate":
        imdb.evaluate_run(args.run or args.out, _config(configs.ImdbConfig, args))
        return
    if not args.texts:
        raise SeqjaxError('seqjax imdb predict --checkpoint DIR "text" ...: give at least one text')
    ckpt = args.checkpoint or str(__import__("pathlib").Path(args.out) / "checkpoints")
    probs = imdb.Predictor(ckpt)(args.texts)
    for t, p in zip(args.texts, probs):
        print(f"{p:.4f}  {'positive' if p > 0.5 else 'negative'}  {t}")


# ---- word2vec -----------------------------------------------------------------------------------
def run_word2vec(cfg: configs.Word2VecConfig) -> None:
    import json
    from pathlib import Path

    from seqjax import word2vec

    docs = word2vec.load_corpus(cfg)
    corpus = word2vec.Corpus.build(docs, cfg.min_count)
    print(f"{len(docs):,} documents, {len(corpus.ids):,} words in a vocabulary of {len(corpus.words):,}")
    wv, stats = word2vec.train(corpus, cfg)
    word2vec.save_text(wv, Path(cfg.out) / "vectors.txt")
    (Path(cfg.out) / "stats.json").write_text(json.dumps({**stats, "config": dataclasses.asdict(cfg)}, indent=1))
    print(f"{stats['words_per_s']:,.0f} words/s, {stats['wall_time_s']:.0f} s; vectors in {Path(cfg.out) / 'vectors.txt'}")
    if cfg.results:
        from seqjax import embeddings as emb
        from seqjax.tasks.common import write_results

        index = emb.Index(wv, "cosine")
        near = {w: [n for n, _ in emb.closest_words(wv, emb.get_vector(wv, w), 5, "cosine", (w,), index)]
                for w in ("good", "awful", "actor", "funny") if w in wv}
        for w, ns in near.items():
            print(f"{w}: {', '.join(ns)}")
        write_results(cfg.results, cfg, **stats, neighbours=near)


# ---- lab ----------------------------------------------------------------------------------------
def run_lab(full: bool, data_dir: str, out: str) -> None:
    """The whole lab in order. Quick (default): Markov, GloVe, 1 epoch of the char-LSTM and of
    the CNN. ``--full``: the runs of results/ (10-epoch char-LSTMs, all five IMDB models)."""
    from pathlib import Path

    from seqjax.tasks import charlm, imdb

    res = Path(out)
    print("== 7.1 Markov chain baseline ==")
    run_markov(configs.MarkovConfig(data_dir=data_dir))
    print("\n== 7.2 word embeddings (GloVe 6B-50d) ==")
    emb = configs.EmbeddingsConfig(data_dir=data_dir, n=5)
    run_embeddings(emb, "analogy", ["man", "king", "woman"])
    run_embeddings(emb, "neighbours", ["korea", "india", "jaguar"])
    epochs = 10 if full else 1
    for layers in ((1, 2) if full else (1,)):
        print(f"\n== 7.1 char-LSTM, {layers} layer(s), {epochs} epoch(s) ==")
        charlm.train(configs.CharLMConfig(data_dir=data_dir, layers=layers, epochs=epochs,
                                          out=str(res / f"charlm_l{layers}"),
                                          results=str(res / f"charlm_l{layers}.json")))
    for model in (("rnn", "lstm", "bilstm", "fasttext", "cnn") if full else ("cnn",)):
        print(f"\n== 7.3/7.4 IMDB {model} ==")
        imdb.train(configs.ImdbConfig(model=model, data_dir=data_dir, epochs=5 if full else 1,
                                      out=str(res / f"imdb_{model}"), results=str(res / f"imdb_{model}.json")))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqjax", description=__doc__.splitlines()[0])
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="on a machine without accelerators, split the CPU into N devices for data "
                        "parallelism (default: $SEQJAX_CPU_DEVICES, else 1); see README")
    d = p.add_argument_group("more than one machine (see README)")
    d.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="address of process 0 of a multi-process run (with --num-processes, --process-id)")
    d.add_argument("--num-processes", type=int, default=None, metavar="N")
    d.add_argument("--process-id", type=int, default=None, metavar="I", help="0 .. N-1")
    d.add_argument("--distributed", action="store_true",
                   help="join a multi-process run; alone, the cluster is detected (TPU pod slice, SLURM, Open MPI)")
    d.add_argument("--heartbeat-timeout", type=int, default=30, metavar="S",
                   help="a process silent this long counts as dead and the others stop (default: 30)")
    sub = p.add_subparsers(dest="part", required=True)
    m = sub.add_parser("markov", help="n-order Markov chain baseline")
    _add_config(m, configs.MarkovConfig)
    e = sub.add_parser("embeddings", help="GloVe / word2vec analysis")
    e.add_argument("verb", choices=["neighbours", "analogy", "evaluate", "similarity"])
    e.add_argument("words", nargs="*")
    _add_config(e, configs.EmbeddingsConfig)
    c = sub.add_parser("charlm", help="char-level language model (train | sample | import-torch)")
    c.add_argument("verb", choices=["train", "sample", "import-torch"])
    _add_config(c, configs.CharLMConfig)
    c.add_argument("--checkpoint", default="", help="sample: a run's checkpoints directory")
    c.add_argument("--state-dict", default="", help="import-torch: torch.save(model.state_dict()) of the lab's CharPredictor")
    c.add_argument("--vocab", default="", help="import-torch: its characters, index -> char (.json list or .txt)")
    c.add_argument("--temperature", type=float, default=0.5)
    c.add_argument("--length", type=int, default=400)
    c.add_argument("--seed-text", default="supposing that truth is a woman--what th")
    c.add_argument("--method", choices=["window", "stateful"], default=None,
                   help="sample: 'window' re-reads the last --seq-len chars from a zero state for each "
                        "new char (the lab's way); 'stateful' carries the state from char to char. "
                        "Default: window for a model trained with --objective last (the lab's), "
                        "stateful for --objective every")
    i = sub.add_parser("imdb", help="IMDB sentiment classifiers (train | predict | evaluate | import-torch)")
    i.add_argument("verb", choices=["train", "predict", "evaluate", "import-torch"])
    i.add_argument("texts", nargs="*", help="predict: review texts")
    i.add_argument("--checkpoint", default="", help="predict: a run's checkpoints directory")
    i.add_argument("--run", default="", help="evaluate: a run folder (default: --out)")
    i.add_argument("--state-dict", default="", help="import-torch: torch.save(model.state_dict()) of a lab model")
    i.add_argument("--vocab", default="", help="import-torch: the PyTorch run's index -> token list (.json or .txt)")
    i.add_argument("--concat", default="forward-backward", choices=["forward-backward", "backward-forward"],
                   help="import-torch, bilstm: order of the final states before fc (the tutorial's newer "
                        "version: backward-forward)")
    _add_config(i, configs.ImdbConfig)
    w = sub.add_parser("word2vec", help="train word2vec (skip-gram / CBOW) in JAX")
    w.add_argument("verb", choices=["train"])
    _add_config(w, configs.Word2VecConfig)
    lab = sub.add_parser("lab", help="run the whole lab (quick by default)")
    lab.add_argument("--full", action="store_true", help="the full runs (hours on a CPU)")
    lab.add_argument("--data-dir", default="", help="offline data folder (else SEQJAX_DATA_DIR)")
    lab.add_argument("--out", default="runs/lab")
    return p


def compilation_cache() -> str | None:
    """Keep compiled XLA programs on disk, so a resumed or repeated run does not compile its
    length buckets again: ``$SEQJAX_COMPILE_CACHE``, else ``<download cache>/jax``; ``0``
    turns it off. Returns the folder in use (``None`` when off)."""
    import os

    where = os.environ.get("SEQJAX_COMPILE_CACHE", "")
    if where == "0":
        return None
    if not where:
        from seqjax.data.download import cache_dir

        where = str(cache_dir() / "jax")
    import jax

    jax.config.update("jax_compilation_cache_dir", where)
    return where


def cpu_devices(n: int | None) -> int:
    """Make the host platform ``n`` devices (``--cpu-devices``, else ``$SEQJAX_CPU_DEVICES``, else
    1), so the train step runs data-parallel over the cores: each device is a slice of the batch
    with its own thread, which suits small per-step matmuls better than one device whose ops
    each spread over all cores. Must run before JAX starts its backends; an explicit
    ``--xla_force_host_platform_device_count`` in ``$XLA_FLAGS`` wins. Returns the count asked for."""
    import os

    if n is None:
        raw = os.environ.get("SEQJAX_CPU_DEVICES", "1")
        try:
            n = int(raw)
        except ValueError:
            raise SeqjaxError(f"SEQJAX_CPU_DEVICES={raw!r}: give a whole number of devices, e.g. 2") from None
    if n < 1:
        raise SeqjaxError(f"--cpu-devices {n}: give at least 1")
    flags = os.environ.get("XLA_FLAGS", "")
    if n > 1 and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    return n


def distributed(args: argparse.Namespace) -> bool:
    """Join a multi-process run when the global flags ask for one (``--coordinator ...`` or
    ``--distributed``); before anything touches a device. Process 0 keeps stdout, the others'
    is silenced (their errors still reach stderr). Returns whether a run was joined."""
    asked = args.distributed or any(v is not None for v in (args.coordinator, args.num_processes, args.process_id))
    if not asked:
        return False
    import os

    from seqjax.train import parallel

    parallel.initialize(args.coordinator, args.num_processes, args.process_id, args.heartbeat_timeout)
    if not parallel.is_main():
        sys.stdout = open(os.devnull, "w")
    return True


def _leave(code: int) -> None:
    """End this process of a multi-process run now, without the runtime's exit barrier (which
    would hold it while the others wait for it in a collective); they are stopped by the
    missed heartbeat."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    from seqjax.runtime import tune_allocator

    tune_allocator()  # before any program runs: see seqjax/runtime.py
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # positional texts/words may follow the options: `seqjax imdb predict --checkpoint D "text"`
    if extra and args.part in ("imdb", "embeddings") and not any(e.startswith("-") for e in extra):
        if args.part == "imdb":
            args.texts += extra
        else:
            args.words += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    joined = False
    try:
        cpu_devices(args.cpu_devices)
        joined = distributed(args)
        if args.part != "markov":
            compilation_cache()
        if args.part == "markov":
            run_markov(_config(configs.MarkovConfig, args))
        elif args.part == "embeddings":
            run_embeddings(_config(configs.EmbeddingsConfig, args), args.verb, args.words)
        elif args.part == "charlm":
            run_charlm(args)
        elif args.part == "imdb":
            run_imdb(args)
        elif args.part == "word2vec":
            run_word2vec(_config(configs.Word2VecConfig, args))
        elif args.part == "lab":
            run_lab(args.full, args.data_dir, args.out)
    except SeqjaxError as err:
        print(f"seqjax: error: {err}", file=sys.stderr)
        return 2  # the same error on every process (config, data, NaN): a normal exit
    except KeyboardInterrupt:
        return 130  # all processes stop together (seqjax.train.loop agrees on it)
    except Exception as err:
        if not joined:
            raise
        import traceback

        import jax

        if not isinstance(err, jax.errors.JaxRuntimeError):  # a runtime failure (a peer gone) needs no trace
            traceback.print_exc()
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        print(f"seqjax: error: process {jax.process_index()} of {jax.process_count()} stopped: {first[:300]}; "
              f"if another process died, its log says why", file=sys.stderr)
        _leave(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
