"""Orbax checkpoints: the TrainState plus a JSON ``meta`` record in one atomic step directory.

``meta`` carries what a run needs besides arrays: the iterator position (``epoch``,
``batch``), the metric sums of a part-trained epoch (``partial``), the metric history (the
fields of :class:`seqjax.train.loop.LoopState`, which saves and resumes them), the config,
the vocab and the run's ``kind`` — so ``--resume`` continues exactly and
``predict``/``sample`` need nothing but the directory.

Layout: ``DIR/<step>/{state,meta}`` (orbax ``CheckpointManager`` + ``ocp.args.Composite``).
Restoring uses an abstract target built from a fresh state, so optimizer state comes back
with its types.

Several processes (a multi-host run) share one checkpoint: every process calls ``save`` and
``restore`` (orbax synchronises them and each array is written once, by the process holding
its first replica), the layout on disk is the one a single process writes, and the directory
must be one that every process sees (a shared file system or a bucket). A run saved by N
processes resumes on M, including 1: the state is restored replicated over the restoring run's
own devices.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec as P

from seqjax import SeqjaxError, first_line
from seqjax.train import parallel
from seqjax.train.state import step_of


class Checkpointer:
    """Save / restore ``(TrainState, meta dict)`` under ``directory``; keeps ``max_to_keep``."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def save(self, state, meta: dict, force: bool = True) -> None:
        step = step_of(state)
        if step in self.manager.all_steps():
            # Same step = same state (e.g. Ctrl-C right after resuming); orbax refuses a rewrite.
            return
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=force)
        self.manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def restore(self, template_state, step: int | None = None):
        """``(state, meta)`` of ``step`` (default: latest), typed like ``template_state``.

        With several processes the arrays come back replicated over all their devices.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise SeqjaxError(f"{self.directory}: no checkpoint found; train first or check the path")
        if jax.process_count() > 1:
            everywhere = NamedSharding(parallel.make_mesh(), P())
            abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=everywhere),
                                    template_state)
        else:
            abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template_state)
        got = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        return got.state, got.meta

    def all_steps(self) -> list[int]:
        """The steps saved in ``directory``, oldest first."""
        return sorted(self.manager.all_steps())

    def read_meta(self, step: int) -> dict:
        """The ``meta`` record of ``step``, no arrays restored."""
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

    def newest_readable(self, read: Callable[[int], Any], fix: str, using: str = "using"
                        ) -> tuple[int | None, Any]:
        """``(step, read(step))`` for the newest step that ``read`` can read; ``(None, None)``
        when there is no step. A damaged step (orbax raises many kinds of error) is passed over
        with a warning on stderr (``... cannot be read (Error); {using} step N``); a
        :class:`SeqjaxError` from ``read`` is passed on.

        Raises:
          SeqjaxError: no step can be read: one line naming the directory, the newest error and ``fix``.
        """
        steps = sorted(self.all_steps(), reverse=True)
        for i, step in enumerate(steps):
            try:
                return step, read(step)
            except SeqjaxError:
                raise
            except Exception as err:  # noqa: BLE001 - a damaged step
                if i + 1 == len(steps):
                    raise SeqjaxError(f"{self.directory}: no readable checkpoint (step {step}: "
                                      f"{first_line(err)[:200]}); {fix}") from None
                print(f"warning: checkpoint step {step} in {self.directory} cannot be read ({type(err).__name__}); "
                      f"{using} step {steps[i + 1]}", file=sys.stderr)
        return None, None

    def close(self) -> None:
        self.manager.close()
