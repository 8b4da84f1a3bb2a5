"""A trained run's life, written once for every experiment: start or resume, train, finish, reload.

:func:`run_experiment` owns the run folder (``OUT/checkpoints``, ``OUT/log.jsonl``,
``OUT/curves.png``), the :class:`~seqjax.train.checkpoint.Checkpointer`, where the run
starts (:meth:`~seqjax.train.loop.LoopState.start`: new, or resumed from the latest
checkpoint), its elapsed time and time budget, the :func:`~seqjax.train.loop.fit` call,
closing, the plots and the results JSON. An experiment (``seqjax.tasks.charlm``,
``seqjax.tasks.imdb``) supplies the data, the fresh state, the loss, its callbacks and a
``finish`` that measures what the run is for (held-out bits/char, test accuracy).

:func:`load_run` is the one way back: a run folder (or its ``checkpoints``) -> its saved
meta (config, vocab, kind) and, given a template state, its parameters.

Everything a run does at its start or end — checks of a resumed run's config against the new
one, a fallback past a damaged checkpoint, which hooks save and when — belongs here or in
:class:`~seqjax.train.loop.LoopState` / :class:`~seqjax.train.loop.Run`, not in a task.

A run folder is held by one process while it trains (:func:`seqjax.files.locked`: a second
``train`` on it is refused; a crashed one's lock is released by the kernel). Every checkpoint
carries the run's ``kind``, vocabulary and a fingerprint of its training data
(:func:`data_fingerprint`, the task's own: the text's SHA-256, IMDB's split sizes); a resume is
refused, before any array is read, when any of them differs (:func:`resume_check`). Saves a
killed process left unfinished (``*.orbax-checkpoint-tmp*``) are removed by the next writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Callable, Iterable

from seqjax import SeqjaxError, files, first_line
from seqjax.tasks.common import write_results
from seqjax.train import loop, parallel
from seqjax.train.checkpoint import Checkpointer, has_checkpoint, unfinished


# Config fields a resumed run may change: how long it trains, how often it saves, where it reads
# the same data from and writes to, how it samples and reports. Any other field would change the
# model, the data or the optimizer state under the saved arrays.
MAY_CHANGE = ("epochs", "minutes", "ckpt_every", "out", "results", "resume", "data_dir", "source",
              "eval_batch_size", "sample_length", "temperatures", "markov_orders", "tensorboard",
              "unroll", "recurrence")  # the last two: the same maths, other kernels (another GPU, say)


def run_experiment(cfg, kind: str, state, train, loss_fn: Callable, *, started: float, command: str,
                   meta: dict, finish: Callable[[loop.LoopState], dict], curves: Callable[[str], bool],
                   title: str, valid=None, valid_fn: Callable | None = None, callbacks: Iterable = (),
                   desc: str = "train", mesh=None, data: dict | None = None) -> dict:
    """Train ``state`` as ``cfg`` says, in the run folder ``cfg.out``; returns ``finish``'s dict.

    Args:
      cfg: the experiment's config; read here: ``out`` (the run folder), ``resume``,
        ``epochs``, ``minutes`` (time budget, 0 = none), ``ckpt_every`` (also checkpoint every this
        many steps; 0 = at epoch ends only), ``tensorboard`` and ``results`` (a JSON path, or "").
      kind: the experiment's name, saved in every checkpoint (``charlm``, ``imdb``) and
        checked by :func:`load_run`.
      state: the fresh :class:`~seqjax.train.state.TrainState` (also the template a resumed run
        is restored into).
      train, loss_fn, valid, valid_fn, callbacks, desc, mesh: as :func:`seqjax.train.loop.fit` (a
        run of several seeds: ``state`` stacked, ``train`` a
        :class:`~seqjax.train.seeds.SeedBatches`, ``mesh`` with a ``"seed"`` axis).
      started: ``time.time()`` when the experiment began (data preparation counts in its wall time).
      command: what produced the run (the CLI's command line, or the library call), for the
        results JSON.
      meta: saved with every checkpoint besides ``config`` and ``kind`` (e.g. ``vocab``).
      finish: ``LoopState -> dict`` after training (checkpoints closed, curves drawn): the
        run's results (test metrics, ``history``, ``wall_time_s`` = ``time.time() -
        loop.started``, ...), written to ``cfg.results``.
      curves: which metric names (history keys) to plot in ``OUT/curves.png`` (and beside
        ``cfg.results``); title: the plot's title.
      data: the fingerprint of the training data (:func:`data_fingerprint`), saved with every
        checkpoint; a resumed run must have the same.
    Raises:
      SeqjaxError: ``OUT`` already holds a run and ``cfg.resume`` is False; another process holds
        ``OUT`` (:func:`seqjax.files.locked`); the run to resume is of another kind, was trained on
        other data (``data``) or another vocabulary (``meta["vocab"]``); and as ``fit``.
    """
    out = Path(cfg.out)
    with (files.locked(out) if parallel.is_main() else contextlib.nullcontext()):
        return _run_locked(cfg, kind, state, train, loss_fn, started=started, command=command, meta=meta,
                           finish=finish, curves=curves, title=title, valid=valid, valid_fn=valid_fn,
                           callbacks=callbacks, desc=desc, mesh=mesh, data=data)


def data_fingerprint(describe: str, **facts) -> dict:
    """What a run was trained on, for a resume to compare: ``facts`` (a file's ``sha256``, a
    dataset's name and split sizes, ...) must be equal; ``describe`` (how a message names the
    data, e.g. ``--text corpus.txt``) need not be (the same file may have moved)."""
    return {"describe": describe, **facts}


def _describe(fp: dict) -> str:
    facts = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {str(v)[:12]}"
                      for k, v in fp.items() if k != "describe")
    return f"{fp.get('describe', '?')} ({facts})"


def resume_check(kind: str, out: Path, config: dict, data: dict | None, vocab) -> Callable[[dict], None]:
    """The checks of a saved run's meta before it is resumed (:meth:`seqjax.train.loop.LoopState.start`),
    in this order: the same ``kind``; the ``config`` (:func:`seqjax.train.loop.check_resumed_config`,
    :data:`MAY_CHANGE`); the same ``vocab`` (chars or tokens); the same ``data`` fingerprint. Each
    refusal is one line naming both sides."""

    def check(saved: dict) -> None:
        other = saved.get("kind")
        if other and other != kind:
            raise SeqjaxError(f"--out {out}: holds a `seqjax {other}` run, not a `seqjax {kind}` one; give the "
                              f"--out of a `seqjax {kind} train` run to resume, or another folder for a new run")
        loop.check_resumed_config(saved.get("config", {}), config, set(MAY_CHANGE), (out / "checkpoints").absolute())
        old_cfg = saved.get("config", {})
        if config.get("lr_schedule", "constant") != "constant" and old_cfg.get("epochs", config["epochs"]) != config["epochs"]:
            raise SeqjaxError(f"--epochs {config['epochs']}: the run in {out} decays its learning rate "
                              f"({config['lr_schedule']}) over {old_cfg['epochs']} epochs, a horizon a resumed run "
                              f"keeps; resume with --epochs {old_cfg['epochs']}, or start a new run with another --out")
        old = saved.get("vocab")
        if old is not None and vocab is not None and list(old) != list(vocab):
            word = "alphabet" if kind == "charlm" else "vocabulary"
            added = [t for t in vocab if t not in set(old)][:10]
            gone = [t for t in old if t not in set(vocab)][:10]
            shown = (lambda ts: repr("".join(ts))) if kind == "charlm" else repr
            raise SeqjaxError(f"--resume: the data's {word} changed since the run in {out} was saved ({len(old)} "
                              f"entries, now {len(vocab)}; new {shown(added)}, gone {shown(gone)}); resume on the "
                              f"data the run was trained on or start a new run with another --out")
        was = saved.get("data")
        if was is not None and data is not None:
            facts = lambda fp: {k: v for k, v in fp.items() if k != "describe"}  # noqa: E731
            if facts(was) != facts(data):
                raise SeqjaxError(f"--resume: the run in {out} was trained on {_describe(was)}, this is "
                                  f"{_describe(data)}; resume on the same data or start a new run with another --out")

    return check


def _run_locked(cfg, kind, state, train, loss_fn, *, started, command, meta, finish, curves, title, valid,
                valid_fn, callbacks, desc, mesh, data) -> dict:
    """:func:`run_experiment`'s body, with ``cfg.out`` held by this process."""
    out = Path(cfg.out)
    ckpt = Checkpointer(out / "checkpoints")
    config = dataclasses.asdict(cfg)
    try:  # orbax's threads end before any error (a refused resume, a NaN, Ctrl-C) reaches the user
        if parallel.is_main():
            for p in ckpt.remove_unfinished():
                print(f"note: removed {p.name}, an unfinished checkpoint save (a process stopped while writing it)",
                      file=sys.stderr)
        position = loop.LoopState.start(ckpt, state, cfg.resume, since=started,
                                        check_meta=resume_check(kind, out, config, data, meta.get("vocab")))
        run = loop.Run(out, ckpt_every=cfg.ckpt_every, time_budget_s=60 * cfg.minutes, checkpointer=ckpt,
                       meta={"config": config, **meta, "kind": kind,
                             **({"data": data} if data is not None else {})})
        if cfg.tensorboard:
            from seqjax.train.callbacks import TensorBoard

            callbacks = [*callbacks, TensorBoard(out / "tensorboard", every=run.log_every)]
        loop.fit(position, train, loss_fn, cfg.epochs, valid=valid, valid_fn=valid_fn, run=run,
                 callbacks=callbacks, desc=desc, mesh=mesh)
    finally:
        ckpt.close()
    drawn = [{k: v for k, v in h.items() if k == "epoch" or curves(k)} for h in position.history]
    for path in [out / "curves.png"] + ([Path(cfg.results).with_suffix(".png")] if cfg.results else []):
        try:  # a figure is a view of the results: its failure must not lose them
            loop.plot_history(drawn, path, title)
        except Exception as err:  # noqa: BLE001 - matplotlib and the file system raise many kinds
            print(f"warning: the plot {path} was not drawn ({type(err).__name__}: {str(err)[:120]}); "
                  f"the results are written all the same", file=sys.stderr)
    result = finish(position)
    if cfg.results:
        write_results(cfg.results, cfg, command, **result)
    return result


def write_new_run(out: Path, state, meta: dict) -> None:
    """Save ``state`` with ``meta`` as the first checkpoint of a new run folder ``out`` (what
    ``import-torch`` writes), holding ``out`` (:func:`seqjax.files.locked`) while it writes.
    An unfinished save left by a process stopped mid-write is removed first.

    Raises:
      SeqjaxError: ``out`` already holds a run (a completed checkpoint), or another process holds it.
    """
    if has_checkpoint(out / "checkpoints"):
        raise SeqjaxError(f"--out {out}: already holds a run; choose another folder")
    with files.locked(out):
        ckpt = Checkpointer(out / "checkpoints")
        try:
            if ckpt.all_steps():  # written since the check above, by a process now gone
                raise SeqjaxError(f"--out {out}: already holds a run; choose another folder")
            for p in ckpt.remove_unfinished():
                print(f"note: removed {p.name}, an unfinished checkpoint save (a process stopped while writing it)",
                      file=sys.stderr)
            ckpt.save(state, meta)
        finally:
            ckpt.close()


@dataclasses.dataclass
class SavedRun:
    """A run's latest checkpoint: ``directory`` (the ``checkpoints`` folder), ``step`` and
    ``meta`` (``config``, ``vocab``, ``kind``, ``history``, ...); :meth:`restore` reads its arrays."""

    directory: Path
    step: int
    meta: dict

    def restore(self, template):
        """The saved :class:`~seqjax.train.state.TrainState`, typed like ``template`` (a fresh
        state of the same model and optimizer)."""
        ckpt = Checkpointer(self.directory)
        try:
            state, _ = ckpt.restore(template, self.step)
        except Exception as err:  # noqa: BLE001 - damaged or missing arrays: orbax raises many kinds
            raise SeqjaxError(f"{self.directory}: the arrays of checkpoint step {self.step} cannot be read "
                              f"({first_line(err)[:200]}); the run folder is damaged: give another run or train "
                              f"a new one") from None
        finally:
            ckpt.close()
        return state


def load_run(directory: str | Path, kind: str) -> SavedRun:
    """The latest checkpoint of a ``kind`` run (``charlm``, ``imdb``) for inference.

    ``directory``: a run folder (``--out`` of ``train`` or ``import-torch``) or its
    ``checkpoints`` directory.

    Raises:
      SeqjaxError: no such directory, no checkpoint in it, or a checkpoint of another kind.
    """
    d = Path(directory)
    d = d / "checkpoints" if (d / "checkpoints").is_dir() else d
    if not d.is_dir():
        raise SeqjaxError(f"{d}: no such run folder or checkpoints directory; give the --out of a "
                          f"`seqjax {kind} train` run")
    ckpt = Checkpointer(d.absolute())
    try:  # the newest readable step: a damaged one is passed over
        step, meta = ckpt.newest_readable(ckpt.read_meta, f"give another run or train a new one with "
                                                          f"`seqjax {kind} train`")
    finally:
        ckpt.close()
    if meta is None:
        left = unfinished(d)
        if left:
            raise SeqjaxError(f"{d}: holds only an unfinished checkpoint save ({left[-1].name}), left by a process "
                              f"stopped while writing it; run the train or import-torch that wrote it again")
        raise SeqjaxError(f"{d}: no checkpoint found inside; give the --out of a `seqjax {kind} train` run "
                          f"(or train one first)")
    if meta.get("kind") != kind:
        raise SeqjaxError(f"{directory}: a checkpoint of kind {meta.get('kind')!r} where {kind!r} is needed; "
                          f"pass the --out of a `seqjax {kind} train` run")
    return SavedRun(d.absolute(), step, meta)
