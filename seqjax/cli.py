"""``seqjax <part> <verb>``: parse a config, call its task (:mod:`seqjax.tasks`). Nothing else lives here.

Errors a user can fix (:class:`seqjax.SeqjaxError`) print one line and exit with status 2.

The parser is argparse, generated from the config dataclasses (:func:`_add_config`: each field's
help line from :data:`seqjax.configs.HELP`, its choices from :data:`seqjax.configs.RULES` — a
closed set becomes argparse ``choices``, listed by ``--help`` and refused by the parser in one
line — its real default). ``tyro`` / ``simple_parsing`` would generate the same from the dataclasses, but
the CLI needs things they do not give with less code: positional texts after the options
(``imdb predict --run R "text"``), global flags accepted after the part, ``T | None`` preset
fields left unset, ``--embeddings`` as another name of ``--vectors``, and a one-line error
with exit status 2 for every bad value — and a further dependency for every user.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import shlex
import sys
import typing

from seqjax import SeqjaxError, configs, first_line


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line ends in one line that says what to do (argparse's own
    ``error`` prints the whole usage block first); sub-parsers are of this class too."""

    def error(self, message: str) -> typing.NoReturn:
        bad = re.fullmatch(r"argument (\S+?)(?:/\S+)?: invalid (int|float) value: (.*)", message)
        if bad:  # argparse's "argument --order: invalid int value: 'x'"
            flag, typ, value = bad.groups()
            message = f"{flag} {value}: give a {'whole number' if typ == 'int' else 'number'}"
        bad = re.fullmatch(r"argument (\S+?)(?:/\S+)?: invalid choice: (.*) \(choose from (.*)\)", message)
        if bad:  # "argument --model: invalid choice: 'lstmm' (choose from 'rnn', 'lstm', ...)"
            flag, value, listed = bad.groups()
            quoted = re.findall(r"'((?:[^'\\]|\\.)*)'", listed)  # Python < 3.12.8 quotes each choice
            names = [c for c in (quoted if listed.startswith("'") else listed.split(", ")) if c]
            value = value if value.startswith(("'", '"')) else repr(value)
            message = f"{flag} {value}: choose one of {', '.join(names)}"
            if flag == "--model":  # as ImdbConfig says it
                message += " (an encoder of one's own: register it in a module and load that with --plugin MODULE)"
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _add_config(parser: argparse.ArgumentParser, cls, title: str | None = None) -> None:
    """Every field of dataclass ``cls`` becomes ``--field-name``: its help line
    (:data:`seqjax.configs.HELP`), its choices (:func:`seqjax.configs.rule`: argparse ``choices``;
    values described one per line go to the parser's epilog) and its real default.
    A field of type ``T | None`` with default ``None`` (ImdbConfig's model hyperparameters) takes
    a ``T``; left out, it stays ``None``, which the config fills from the ``--model`` preset."""
    group = parser.add_argument_group(title) if title else parser
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        typ = hints[f.name]
        if f.default is None:
            typ = next(t for t in typing.get_args(typ) if t is not type(None))
        flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
        check = (configs.rule(cls, f.name) or (None, None))[0]
        options = getattr(check, "options", None)  # a closed set: argparse refuses anything else
        shown = [c for c in options or () if c]  # "" (= not set) is accepted but not offered
        text = configs.HELP.get(f.name, "")
        text += f" ({' | '.join(shown)})" if shown else ""
        text += "; default: the --model preset" if f.default is None else f"; default: {f.default!r}"
        if getattr(check, "described", None):  # one line per value, below the flags
            width = max(map(len, check.described)) + 2
            parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep those lines as written
            parser.epilog = (parser.epilog + "\n\n" if parser.epilog else "") + f"{flags[0]} values:\n" + "\n".join(
                f"  {name:<{width}}{line}" for name, line in check.described.items())
        if typ is bool:
            group.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                               help=configs.HELP.get(f.name))
        else:
            group.add_argument(*flags, dest=f.name, type=typ, default=f.default, help=text.replace("%", "%%"),
                               metavar="{" + ",".join(shown) + "}" if options else typ.__name__.upper(),
                               choices=options)


GLOBAL_FLAGS = {"--plugin": 1, "--deterministic": 0, "--no-deterministic": 0, "--cpu-devices": 1, "--coordinator": 1, "--num-processes": 1, "--process-id": 1,
                "--distributed": 0, "--heartbeat-timeout": 1}  # flag -> values it takes


def _globals_first(argv: list[str]) -> list[str]:
    """Global flags may come anywhere (``seqjax markov --cpu-devices 2``): move them before the
    part, where argparse reads them."""
    front, rest, i = [], [], 0
    while i < len(argv):
        name = argv[i].split("=", 1)[0]
        if name in GLOBAL_FLAGS:
            n = 0 if "=" in argv[i] else GLOBAL_FLAGS[name]
            front += argv[i:i + 1 + n]
            i += 1 + n
        else:
            rest.append(argv[i])
            i += 1
    return front + rest


def _config(cls, args: argparse.Namespace):
    cfg = cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
    if getattr(cfg, "tensorboard", False):
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise SeqjaxError("--tensorboard needs tensorboardX: pip install 'seqjax[tensorboard]'") from None
    if getattr(cfg, "results", "") and pathlib.Path(cfg.results).is_dir():
        raise SeqjaxError(f"--results {cfg.results}: is a folder; give the path of a JSON file to write, e.g. "
                          f"{pathlib.Path(cfg.results) / 'results.json'}")
    for name in ("out", "results"):  # where a run will write: checked before any work
        if getattr(cfg, name, ""):
            _writable(f"--{name}", getattr(cfg, name), None if name == "out" else str(pathlib.Path(cfg.results).parent))
    return cfg


def _writable(flag: str, value: str, folder: str | None = None) -> None:
    """Refuse an output location (``flag value``, written in ``folder``, default ``value``) that
    cannot be created or written, in one line: a file is created and removed in its nearest
    existing folder (permission bits do not tell a read-only mount, or /proc, for root)."""
    import tempfile

    p = pathlib.Path(value if folder is None else folder or ".")
    existing = next((q for q in (p, *p.parents) if q.exists()), pathlib.Path("."))
    if not existing.is_dir():
        raise SeqjaxError(f"{flag} {value}: {existing} is a file, not a folder; choose another location")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise SeqjaxError(f"{flag} {value}: cannot write in {existing} ({err.strerror or type(err).__name__}); "
                          f"choose another location") from None


def run_charlm(args, command: str) -> None:
    """``seqjax charlm train | sample | import-torch``."""
    from seqjax.tasks import charlm

    if args.verb == "train":
        charlm.run(_config(configs.CharLMConfig, args), command)
    elif args.verb == "import-torch":
        if not (args.state_dict and args.vocab):
            raise SeqjaxError("seqjax charlm import-torch --state-dict FILE.pt --vocab CHARS.json --out RUN: "
                              "give the state_dict and the model's characters")
        charlm.import_torch(_config(configs.CharLMConfig, args), args.state_dict, args.vocab)
    else:
        import math

        if not (math.isfinite(args.temperature) and args.temperature > 0):
            raise SeqjaxError(f"--temperature {args.temperature:g}: give a finite temperature > 0 (e.g. 0.5)")
        if args.length < 1:
            raise SeqjaxError(f"--length {args.length}: give a number of characters >= 1")
        print(args.seed_text + charlm.sample_from_checkpoint(
            args.checkpoint or args.out, args.seed_text, args.temperature, args.length, args.seed, args.method,
            args.seed_index))


def _texts(texts: list[str], file: str) -> list[str]:
    """predict's texts: the arguments, ``-`` = standard input, and ``--file`` lines (one text per
    non-empty line); standard input and ``--file`` are read by the same rules
    (:func:`seqjax.data.text.text_lines`: lines end at ``\n``, binary data refused)."""
    from seqjax.data.text import text_lines

    out = []
    for t in texts:
        if t == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            out += text_lines(stdin.read() if stdin is not None else sys.stdin.read().encode("utf-8"),
                              "standard input")
        else:
            out.append(t)
    if file:
        try:
            data = pathlib.Path(file).read_bytes()
        except OSError as err:
            raise SeqjaxError(f"--file {file}: cannot be read ({err.strerror or type(err).__name__}); give a text "
                              f"file with one review per line") from None
        out += text_lines(data, f"--file {file}")
    return out


def run_imdb(args, command: str) -> None:
    """``seqjax imdb train | predict | evaluate | import-torch``."""
    from seqjax.tasks import imdb

    if args.texts and args.verb != "predict":
        raise SeqjaxError(f"seqjax imdb {args.verb} takes no texts (got {args.texts[0]!r}); only predict does "
                          f"(one model per run: --model rnn, then --model lstm)")
    if args.verb == "train":
        cfg = _config(configs.ImdbConfig, args)
        configs.check_model_flags(cfg)
        imdb.run(cfg, command)
        return
    if args.verb == "import-torch":
        if not (args.state_dict and args.vocab):
            raise SeqjaxError("seqjax imdb import-torch --state-dict FILE.pt --vocab ITOS.json --model MODEL "
                              "--out RUN: give the state_dict and the PyTorch run's vocabulary")
        imdb.import_torch(_config(configs.ImdbConfig, args), args.state_dict, args.vocab, args.concat)
    elif args.verb == "evaluate":
        imdb.evaluate_run(args.run or args.out, _config(configs.ImdbConfig, args), command, args.seed_index)
    else:
        imdb.predict(args.run or args.checkpoint or args.out, _texts(args.texts, args.file), args.json,
                     args.seed_index)


def dispatch(args: argparse.Namespace, command: str) -> None:
    """Call the task of ``args.part`` (:mod:`seqjax.tasks`) with the parsed config; ``command``
    is recorded in the results JSONs the task writes."""
    if args.part == "markov":
        from seqjax.tasks import markov

        markov.run(_config(configs.MarkovConfig, args))
    elif args.part == "embeddings":
        from seqjax.tasks import embeddings

        embeddings.run(_config(configs.EmbeddingsConfig, args), args.verb, args.words)
    elif args.part == "charlm":
        run_charlm(args, command)
    elif args.part == "imdb":
        run_imdb(args, command)
    elif args.part == "word2vec":
        from seqjax.tasks import word2vec

        word2vec.run(_config(configs.Word2VecConfig, args), command)
    elif args.part == "lab":
        from seqjax.tasks import lab

        _writable("--out", args.out)  # before the parts that run ahead of the first write
        lab.run(args.full, args.data_dir, args.out, command)


def plugins(argv: list[str]) -> list[str]:
    """The ``--plugin`` values in ``argv`` (anywhere in it), after ``$SEQJAX_PLUGINS``'s."""
    import os

    names = [n.strip() for n in os.environ.get("SEQJAX_PLUGINS", "").split(",") if n.strip()]
    for i, a in enumerate(argv):
        if a == "--plugin" and i + 1 < len(argv):
            names.append(argv[i + 1])
        elif a.startswith("--plugin="):
            names.append(a.split("=", 1)[1])
    return names


def load_plugins(names: list[str]) -> None:
    """Import each of ``names`` (a dotted module on ``sys.path`` or the current folder, or a ``.py``
    file), so that what it registers (:func:`seqjax.nn.cells.register_cell`,
    :func:`seqjax.nn.classifiers.register_encoder`) is known before the parser lists ``--cell`` and
    ``--model``. A module is imported once per process.

    Raises:
      SeqjaxError: a module that is not found, or that fails while importing (its error named).
    """
    import importlib
    import importlib.util

    for name in names:
        path = pathlib.Path(name)
        try:
            if name.endswith(".py"):
                key = f"seqjax_plugin_{path.resolve()}"
                if key in sys.modules:
                    continue
                if not path.is_file():
                    raise SeqjaxError(f"--plugin {name}: no such file; give a .py file or a module name")
                spec = importlib.util.spec_from_file_location(key, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[key] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[key]
                    raise
            else:
                if "" not in sys.path and "." not in sys.path:  # the console script leaves out the current folder
                    sys.path.append(".")
                importlib.import_module(name)
        except SeqjaxError:
            raise
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):
                raise SeqjaxError(f"--plugin {name}: no module {err.name!r} here; give a module on the Python "
                                  f"path, or the path of its .py file") from None
            raise SeqjaxError(f"--plugin {name}: failed while importing: {first_line(err)}") from err
        except Exception as err:
            raise SeqjaxError(f"--plugin {name}: failed while importing: {type(err).__name__}: "
                              f"{first_line(err)}") from err


def build_parser() -> argparse.ArgumentParser:
    from seqjax import __version__

    p = _Parser(  # no abbreviated global flags: "--n" is embeddings' --n, not --num-processes or --no-deterministic
        allow_abbrev=False, prog="seqjax", description="Sequence models in JAX: the COMP6248 lab 7 parts (Markov chains, a char-LSTM, "
        "word vectors, IMDB classifiers, word2vec). `seqjax PART --help` lists a part's flags.",
        epilog="Global flags may also follow the part: seqjax markov --cpu-devices 2.")
    p.add_argument("--version", action="version", version=f"seqjax {__version__}")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import this module (a dotted name, or a .py file) first: the cells and encoders it "
                        "registers become --cell and --model values; repeatable; also $SEQJAX_PLUGINS "
                        "(comma-separated). Give it again to predict, evaluate or sample from such a run")
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=True,
                   help="bitwise repeatable runs: on a GPU, XLA's deterministic kernels (scatter-adds of the "
                        "embedding and convolution gradients included; somewhat slower); CPUs and TPUs are "
                        "deterministic anyway (default: on)")
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="on a machine without accelerators, split the CPU into N devices (data parallel, or "
                        "seeds laid on them); default: $SEQJAX_CPU_DEVICES, else one per core for the "
                        "recurrent models and runs of several seeds, one for the rest (seqjax/layout.py)")
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
    _add_config(m, configs.MarkovConfig, "markov")
    e = sub.add_parser("embeddings", help="GloVe / word2vec analysis")
    e.add_argument("verb", choices=["neighbours", "analogy", "evaluate", "similarity"])
    e.add_argument("words", nargs="*",
                   help="neighbours: words; analogy: A B C (A : B :: C : ?); evaluate: a questions-words file or "
                        "questions-words (the standard set, downloaded once); similarity: a word-pair file, or "
                        "wordsim353 or simlex999")
    _add_config(e, configs.EmbeddingsConfig, "embeddings")
    c = sub.add_parser("charlm", help="char-level language model (train | sample | import-torch)")
    c.add_argument("verb", choices=["train", "sample", "import-torch"])
    _add_config(c, configs.CharLMConfig, "train (sample and import-torch read --out)")
    cs = c.add_argument_group("sample")
    cs.add_argument("--checkpoint", default="", help="a run's checkpoints directory (default: --out)")
    cs.add_argument("--temperature", type=float, default=0.5, help="> 0; lower: safer text (default: 0.5)")
    cs.add_argument("--length", type=int, default=400, help="characters to generate (default: 400)")
    cs.add_argument("--seed-text", default="supposing that truth is a woman--what th",
                    help="the text the sample continues")
    ci = c.add_argument_group("import-torch")
    ci.add_argument("--state-dict", default="", help="torch.save(model.state_dict()) of the lab's CharPredictor")
    ci.add_argument("--vocab", default="", help="its characters, index -> char (.json list or .txt)")
    cs.add_argument("--seed-index", type=int, default=0, metavar="I",
                    help="a run of several seeds (--seeds): sample from its I-th seed's model (default: 0, the first)")
    cs.add_argument("--method", choices=["window", "stateful"], default=None,
                   help="sample: 'window' re-reads the last --seq-len chars from a zero state for each "
                        "new char (the lab's way); 'stateful' carries the state from char to char. "
                        "Default: window for a model trained with --objective last (the lab's), "
                        "stateful for --objective every")
    i = sub.add_parser("imdb", help="IMDB sentiment classifiers (train | predict | evaluate | import-torch)")
    i.add_argument("verb", choices=["train", "predict", "evaluate", "import-torch"])
    i.add_argument("texts", nargs="*", help="predict: review texts")
    i.add_argument("--checkpoint", default="", help="predict: a run's checkpoints directory (or use --run)")
    i.add_argument("--run", default="", help="predict, evaluate: a run folder or its checkpoints (default: --out)")
    i.add_argument("--file", default="", help="predict: also read texts from this file, one per line ('-' as a "
                                             "text reads standard input)")
    i.add_argument("--json", action="store_true", help="predict: one JSON object per line")
    i.add_argument("--seed-index", type=int, default=-1, metavar="I",
                   help="predict, evaluate: a run of several seeds (--seeds): use its I-th seed's model; default "
                        "-1: the ensemble, the mean of the seeds' probabilities")
    i.add_argument("--state-dict", default="", help="import-torch: torch.save(model.state_dict()) of a lab model")
    i.add_argument("--vocab", default="", help="import-torch: the PyTorch run's index -> token list (.json or .txt)")
    i.add_argument("--concat", default="forward-backward", choices=["forward-backward", "backward-forward"],
                   help="import-torch, bilstm: order of the final states before fc (the tutorial's newer "
                        "version: backward-forward)")
    _add_config(i, configs.ImdbConfig, "train (evaluate and import-torch read --model, --tokenizer, --out)")
    w = sub.add_parser("word2vec", help="train word2vec (skip-gram / CBOW) in JAX")
    w.add_argument("verb", choices=["train"])
    _add_config(w, configs.Word2VecConfig, "word2vec train")
    lab = sub.add_parser("lab", help="run the whole lab (quick by default)")
    lab.add_argument("--full", action="store_true", help="the full runs (hours on a CPU)")
    lab.add_argument("--data-dir", default="", help="offline data folder (else SEQJAX_DATA_DIR)")
    lab.add_argument("--out", default="runs/lab")
    return p


def _has_run(out: str) -> bool:
    """Whether the run folder ``out`` holds a checkpoint to resume from."""
    from seqjax.train.checkpoint import has_checkpoint

    try:
        return has_checkpoint(pathlib.Path(out) / "checkpoints")
    except OSError:
        return False


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

        try:
            where = str(cache_dir() / "jax")
        except SeqjaxError as err:  # an unwritable cache: compile again each run rather than stop
            print(f"warning: {err}; compiled programs are not kept", file=sys.stderr)
            return None
    import jax

    jax.config.update("jax_compilation_cache_dir", where)
    return where


def cpu_devices(n: int | None, part: str = "", verb: str = "", model: str = "", seeds: int = 1) -> int:
    """Make the host platform ``n`` devices (``--cpu-devices``), else ``$SEQJAX_CPU_DEVICES``,
    else the count :func:`seqjax.layout.cpu_device_count` gives the command ``part verb``
    (``model``: imdb's ``--model``; ``seeds``: how many ``--seeds``). Must run before JAX starts
    its backends; an explicit ``--xla_force_host_platform_device_count`` in ``$XLA_FLAGS`` wins.
    Returns the count asked for."""
    from seqjax import layout

    return layout.choose(part, verb, model, seeds, n)


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


SIGPIPE_STATUS = 141  # 128 + SIGPIPE (13): what a shell reports for `yes | head`'s yes


def main(argv: list[str] | None = None) -> int:
    """``seqjax ARGV``; returns the exit status (argparse's own ``--help`` and usage errors exit).

    A closed standard output (``seqjax markov | head``) ends the command as it ends a Unix
    tool, which SIGPIPE kills: no message, status 141 (Python ignores SIGPIPE, so the write
    raises ``BrokenPipeError`` instead; restoring SIGPIPE's default would also turn a write to
    a closed socket into a silent kill). Standard output and error are pointed at /dev/null so
    that the interpreter's last flush does not complain; a run's checkpoints already written
    stay good, as after any interruption."""
    try:
        try:
            return _main(argv)
        finally:  # the output is block-buffered in a pipe: a closed reader shows at this flush
            sys.stdout.flush()
    except BrokenPipeError:
        import os

        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            except (OSError, ValueError):  # not a real file (a test's capture): nothing to silence
                pass
        return SIGPIPE_STATUS


def _main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = "seqjax " + shlex.join(argv)  # recorded in results JSONs
    try:
        load_plugins(plugins(argv))
    except SeqjaxError as err:
        print(f"seqjax: error: {err}", file=sys.stderr)
        return 2
    parser = build_parser()
    argv = _globals_first(argv)
    args, extra = parser.parse_known_args(argv)
    # positional texts/words may follow the options: `seqjax imdb predict --checkpoint D "text"`
    if extra and args.part in ("imdb", "embeddings") and not any(e.startswith("-") and e != "-" for e in extra):
        if args.part == "imdb":
            args.texts += extra
        else:
            args.words += extra
    elif extra:
        prog = f"seqjax {args.part}"
        print(f"{prog}: error: unrecognized arguments: {' '.join(extra)}; see `{prog} --help`", file=sys.stderr)
        return 2
    joined = False
    try:
        from seqjax import backend

        backend.deterministic(args.deterministic)  # before JAX starts its backends, as the device count
        cpu_devices(args.cpu_devices, args.part, getattr(args, "verb", ""), getattr(args, "model", "") or "",
                    configs.seed_count(getattr(args, "seeds", "")))
        joined = distributed(args)
        if args.part != "markov":  # the Markov chain is numpy alone
            from seqjax.runtime import tune_allocator

            if backend.on_cpu():
                tune_allocator()  # before any program runs: see seqjax/runtime.py
            compilation_cache()
        dispatch(args, command)
    except SeqjaxError as err:
        print(f"seqjax: error: {err}", file=sys.stderr)
        return 2  # the same error on every process (config, data, NaN): a normal exit
    except KeyboardInterrupt:
        return 130  # all processes stop together (seqjax.train.loop agrees on it)
    except BrokenPipeError:  # the reader of standard output is gone: see main
        raise
    except OSError as err:  # disk full, permission, a vanished folder: the checkpoints written stay good
        if joined:
            raise
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        resumable = args.part == "lab" or (args.part in ("charlm", "imdb") and args.verb == "train"
                                           and _has_run(args.out))
        fix = ("the run's last checkpoint is kept: free space or fix the permission, then run again with --resume"
               if resumable else "free space, fix the permission or choose another path, then run again")
        print(f"seqjax: error: {err.strerror or err}{where}; {fix}", file=sys.stderr)
        return 2
    except Exception as err:
        if not joined:
            raise
        import traceback

        import jax

        if not isinstance(err, jax.errors.JaxRuntimeError):  # a runtime failure (a peer gone) needs no trace
            traceback.print_exc()
        first = first_line(err)
        print(f"seqjax: error: process {jax.process_index()} of {jax.process_count()} stopped: {first[:300]}; "
              f"if another process died, its log says why", file=sys.stderr)
        _leave(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
