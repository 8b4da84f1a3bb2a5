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
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Callable, Iterable

from seqjax import SeqjaxError, first_line
from seqjax.tasks.common import write_results
from seqjax.train import loop
from seqjax.train.checkpoint import Checkpointer


# Config fields a resumed run may change: how long it trains, how often it saves, where it reads
# the same data from and writes to, how it samples and reports. Any other field would change the
# model, the data or the optimizer state under the saved arrays.
MAY_CHANGE = ("epochs", "minutes", "ckpt_every", "out", "results", "resume", "data_dir", "source",
              "eval_batch_size", "sample_length", "temperatures", "markov_orders", "tensorboard")


def run_experiment(cfg, kind: str, state, train, loss_fn: Callable, *, started: float, command: str,
                   meta: dict, finish: Callable[[loop.LoopState], dict], curves: Callable[[str], bool],
                   title: str, valid=None, valid_fn: Callable | None = None, callbacks: Iterable = (),
                   desc: str = "train", mesh=None) -> dict:
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
    Raises:
      SeqjaxError: ``OUT`` already holds a run and ``cfg.resume`` is False; and as ``fit``.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = Checkpointer(out / "checkpoints")
    config = dataclasses.asdict(cfg)
    try:  # orbax's threads end before any error (a refused resume, a NaN, Ctrl-C) reaches the user
        position = loop.LoopState.start(ckpt, state, cfg.resume, since=started, config=config,
                                        may_change=MAY_CHANGE)
        run = loop.Run(out, ckpt_every=cfg.ckpt_every, time_budget_s=60 * cfg.minutes, checkpointer=ckpt,
                       meta={"config": config, **meta, "kind": kind})
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
        raise SeqjaxError(f"{d}: no checkpoint found inside; give the --out of a `seqjax {kind} train` run "
                          f"(or train one first)")
    if meta.get("kind") != kind:
        raise SeqjaxError(f"{directory}: a checkpoint of kind {meta.get('kind')!r} where {kind!r} is needed; "
                          f"pass the --out of a `seqjax {kind} train` run")
    return SavedRun(d.absolute(), step, meta)
