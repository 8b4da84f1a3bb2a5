"""Orbax checkpoints: the TrainState plus a JSON ``meta`` record in one atomic step directory.

``meta`` carries what a run needs besides arrays: the iterator position (``epoch``,
``batch``), the metric sums of a part-trained epoch (``partial``), the metric history (the
fields of :class:`seqjax.train.loop.LoopState`, which saves and resumes them), the config,
the vocab and the run's ``kind`` — so ``--resume`` continues exactly and
``predict``/``sample`` need nothing but the directory.

Layout: ``DIR/<step>/{state,meta}`` (orbax ``CheckpointManager`` + ``ocp.args.Composite``).
Restoring uses an abstract target built from a fresh state, so optimizer state comes back
with its types.

A save is atomic through orbax's own commit: the step is written into
``DIR/<step>.orbax-checkpoint-tmp-*`` and renamed when complete. A process killed mid-save leaves
that folder behind; :meth:`Checkpointer.unfinished` lists such folders (no reader counts them as a
checkpoint) and :meth:`Checkpointer.remove_unfinished` deletes them — called only by a writer that
holds the run folder's lock (:func:`seqjax.files.locked`), so a live save is never touched.

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


def _restore_quietly(restore: Callable[[], Any]):
    """``restore()`` (an orbax restore); when it fails, the reads it left in flight end without
    printing tracebacks, and its error is raised without them.

    When one array of a damaged checkpoint cannot be read, orbax stops and closes its asyncio
    loop while TensorStore still reads the others; each of those reads, when it ends or is freed,
    calls back into the closed loop, and Python prints ``RuntimeError: Event loop is closed``
    with a traceback (through ``sys.unraisablehook``) — after the one-line error, or at
    interpreter exit. So the error's traceback (whose frames keep those reads alive) is dropped,
    the reads are freed now (``gc.collect``) under a hook that drops exactly those calls and
    passes every other unraisable exception on, and the error is raised. Reads that TensorStore
    holds on to call back only while the interpreter shuts down, when the hook is gone: for
    those, standard error is closed at exit (``atexit``, after every message of the command has
    been written), once a restore has failed.
    """
    _install_quiet_hook()  # some reads end while orbax is still unwinding its error
    failed = None
    try:
        return restore()
    except Exception as err:  # noqa: BLE001 - re-raised below, outside this block
        failed = err
    failed.__traceback__ = failed.__context__ = failed.__cause__ = None
    _quiet_late_reads()
    raise failed


def _quiet_late_reads() -> None:
    """After a failed restore: free the failed reads, wait (at most 2 s) until none has called
    back for 0.2 s, and close standard error at exit (:func:`_restore_quietly`)."""
    import atexit
    import gc
    import time

    if not getattr(_close_stderr, "registered", False):
        atexit.register(_close_stderr)
        _close_stderr.registered = True
    _install_quiet_hook()
    hook = sys.unraisablehook
    gc.collect()  # the failed reads' objects: freed now, while the hook is there
    start = hook.last = time.monotonic()
    while time.monotonic() - hook.last < 0.2 and time.monotonic() - start < 2.0:
        time.sleep(0.02)


def _install_quiet_hook() -> None:
    """Install (once) a ``sys.unraisablehook`` that drops ``RuntimeError: Event loop is closed``
    (:func:`_restore_quietly`) and passes every other unraisable exception to the hook before it."""
    import time

    if not getattr(sys.unraisablehook, "_seqjax_quiet", False):
        before = sys.unraisablehook

        def hook(unraisable):
            err = unraisable.exc_value
            if isinstance(err, RuntimeError) and str(err) == "Event loop is closed":
                hook.last = time.monotonic()
                return
            before(unraisable)

        hook._seqjax_quiet, hook.last = True, time.monotonic()
        sys.unraisablehook = hook


def _close_stderr() -> None:
    """At exit: flush the standard streams and point file descriptor 2 at /dev/null."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    except OSError:
        pass


def unfinished(directory: str | os.PathLike) -> list[Path]:
    """The ``*.orbax-checkpoint-tmp*`` folders in ``directory``: saves that never completed."""
    d = Path(directory)
    return sorted(p for p in d.iterdir() if ocp.utils.TMP_DIR_SUFFIX in p.name) if d.is_dir() else []


def has_checkpoint(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a completed step (a folder named by its step number), without
    creating anything."""
    d = Path(directory)
    return d.is_dir() and any(p.name.isdigit() and p.is_dir() for p in d.iterdir())


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
        got = _restore_quietly(lambda: self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())))
        return got.state, got.meta

    def unfinished(self) -> list[Path]:
        """Folders of saves that never completed (a process killed mid-save), oldest name first."""
        return unfinished(self.directory)

    def remove_unfinished(self) -> list[Path]:
        """Delete :meth:`unfinished` folders; returns them. Only for the run folder's lock holder."""
        import shutil

        gone = self.unfinished()
        for p in gone:
            shutil.rmtree(p, ignore_errors=True)
        return gone

    def all_steps(self) -> list[int]:
        """The steps saved in ``directory``, oldest first."""
        return sorted(self.manager.all_steps())

    def read_meta(self, step: int) -> dict:
        """The ``meta`` record of ``step``, no arrays restored."""
        return _restore_quietly(lambda: self.manager.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))).meta

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
