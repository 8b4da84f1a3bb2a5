"""Hooks of :func:`seqjax.train.loop.fit`: the loop's own jobs and an experiment's extras.

A callback subclasses :class:`Callback` and overrides the hooks it needs. ``fit`` calls, on
every hook in order (the experiment's callbacks first, then the :class:`~seqjax.train.loop.Run`'s
:class:`Log`, :class:`TimeBudget` and :class:`Checkpoint`):

* ``on_train_start(loop)`` once, with the :class:`~seqjax.train.loop.LoopState` a run starts
  or resumes from;
* ``on_epoch_start(loop)`` before each epoch's first step (``loop.batch > 0`` when a resumed
  epoch continues);
* ``on_step(loop)`` after each step that does not end the epoch; a True return asks to end
  training after this step (the epoch is then recorded as cut short). With several
  processes the wishes are combined across processes at every metrics read, so all stop
  after the same step;
* ``on_epoch_end(loop, metrics)`` once the epoch's ``metrics`` are in ``loop.history`` and
  ``loop``'s position is past the epoch (or, for an epoch cut short, at the cut). A callback
  may add entries to ``metrics`` (later hooks log and save them); a True return stops training;
* ``on_interrupt(loop)`` on Ctrl-C / SIGTERM, at a step boundary, before the loop raises
  ``KeyboardInterrupt``.

With several processes every process calls every hook with the same replicated state and
metrics (so stop decisions agree); only process 0 prints or writes files other than the
checkpoint (which every process takes part in).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import flax.serialization
import jax

from seqjax import files
from seqjax.train import parallel, seeds
from seqjax.train.state import step_of

if TYPE_CHECKING:
    from seqjax.train.loop import LoopState


class Callback:
    """Base of every hook; each method does nothing unless overridden."""

    def on_train_start(self, loop: LoopState) -> None:
        pass

    def on_epoch_start(self, loop: LoopState) -> None:
        pass

    def on_step(self, loop: LoopState) -> bool | None:
        pass

    def on_epoch_end(self, loop: LoopState, metrics: dict) -> bool | None:
        pass

    def on_interrupt(self, loop: LoopState) -> None:
        pass


# ---- the loop's own jobs (built by seqjax.train.loop.Run) ------------------------------------
class Log(Callback):
    """The epoch's metrics: one JSON line appended to ``path`` (``log.jsonl``, when given; valid
    JSON, :func:`seqjax.files.json_text`) and one printed line (scalars only), from process 0."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None

    def on_train_start(self, loop):
        """A resumed run's log holds exactly the epochs of its checkpoint: lines written after
        the checkpoint it resumes from (a kill between the log line and the save) are dropped,
        so no epoch appears twice."""
        if not parallel.is_main() or self.path is None or not self.path.exists():
            return
        cut = loop.cut_record  # a cut-short epoch being finished is logged when it ends
        kept = [h for h in loop.history if h is not cut]
        files.write_atomic(self.path, "".join(files.json_text(h) + "\n" for h in kept))

    def on_epoch_end(self, loop, metrics):
        if not parallel.is_main():
            return
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(files.json_text(metrics) + "\n")
        print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in metrics.items() if not isinstance(v, (list, dict))))


class TimeBudget(Callback):
    """End training once ``seconds`` of training time (``loop.train_s``, every epoch of the
    run, resumed parts included) are spent: mid-epoch (the epoch is recorded as cut short and
    resumes at the cut) or at an epoch end. ``seconds`` 0 = no budget."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def _over(self, loop) -> bool:
        return bool(self.seconds) and loop.train_s >= self.seconds

    def on_step(self, loop):
        return self._over(loop)

    def on_epoch_end(self, loop, metrics):
        over = self._over(loop)
        if jax.process_count() > 1:
            over, = parallel.agree(over)
        if over and parallel.is_main():
            print(f"time budget of {self.seconds / 60:.1f} min of training spent; stopped")
        return over


class Checkpoint(Callback):
    """Save the :class:`~seqjax.train.loop.LoopState` with ``meta`` (config, vocab, ...) through
    ``checkpointer``: every ``every`` steps (0 = never mid-epoch), at each epoch end, and on
    Ctrl-C / SIGTERM (then it says where to resume). A step already saved is not written again."""

    def __init__(self, checkpointer, meta: dict | None = None, every: int = 0):
        self.checkpointer, self.meta, self.every = checkpointer, dict(meta or {}), every

    def on_epoch_start(self, loop):
        if self.every:  # the step count at the epoch's batch 0 (each batch adds one step): on_step
            # then reads no device value, and the host keeps running ahead of the device
            self.first_step = step_of(loop.state) - loop.batch

    def on_step(self, loop):
        if self.every and (self.first_step + loop.batch) % self.every == 0:
            loop.save(self.checkpointer, self.meta)

    def on_epoch_end(self, loop, metrics):
        loop.save(self.checkpointer, self.meta)

    def on_interrupt(self, loop):
        loop.save(self.checkpointer, self.meta)
        if parallel.is_main():
            print(f"\ninterrupted: checkpoint saved at epoch {loop.epoch + 1}, batch {loop.batch}; "
                  f"run again with --resume to continue")


# ---- an experiment's extras ------------------------------------------------------------------
class ResetCarry(Callback):
    """Stateful models: ``carry -> carry`` applied to ``loop.state.carry`` at each epoch's start
    (not when a resumed epoch continues mid-way)."""

    def __init__(self, reset: Callable):
        self.reset = reset

    def on_epoch_start(self, loop):
        if loop.batch == 0:
            loop.state = loop.state.replace(carry=self.reset(loop.state.carry))


class TensorBoard(Callback):
    """Scalars for TensorBoard beside ``log.jsonl``, through ``tensorboardX`` (the optional extra
    ``seqjax[tensorboard]``): every ``every`` steps the epoch's running training means
    (``step/train_loss``, ``step/train_accuracy``, against the global step), and every epoch
    each scalar of the epoch's record (``epoch/<name>``, against the epoch). Process 0 writes.
    """

    def __init__(self, logdir: str | os.PathLike, every: int = 20):
        from tensorboardX import SummaryWriter

        self.every = every
        self.writer = SummaryWriter(str(logdir)) if parallel.is_main() else None

    def on_step(self, loop):
        if self.writer is None or loop.partial is None or loop.batch % self.every:
            return
        from seqjax.train.loop import finalize

        step = step_of(loop.state)
        for k, v in finalize(loop.partial).items():  # several seeds: their mean
            if k != "count":
                self.writer.add_scalar(f"step/train_{k}", v, step)

    def on_epoch_end(self, loop, metrics):
        if self.writer is None:
            return
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and k != "epoch" and math.isfinite(v):
                self.writer.add_scalar(f"epoch/{k}", v, metrics["epoch"])
        self.writer.flush()


class SampleText(Callback):
    """Print (and record in ``metrics["samples"]``) text generated at several temperatures.

    Args:
      generate: ``(params, seed_text, temperatures, key) -> list[str]``, one text per temperature.
      seed_texts: ``epoch -> str`` (0-based epoch; the lab draws a random 39-char window each epoch).
      temperatures: e.g. ``(0.2, 0.5, 1.0, 1.2)``. seed: base of the sampling key, folded with
        the 0-based epoch.
    """

    def __init__(self, generate: Callable, seed_texts: Callable[[int], str],
                 temperatures=(0.2, 0.5, 1.0, 1.2), seed: int = 0, echo: bool = True):
        self.generate, self.seed_texts, self.temperatures = generate, seed_texts, tuple(temperatures)
        self.seed, self.echo = seed, echo

    def on_epoch_end(self, loop, metrics):
        epoch = metrics["epoch"] - 1
        seed_text = self.seed_texts(epoch)
        key = jax.random.fold_in(jax.random.PRNGKey(self.seed), epoch)
        # Params spread over several processes are fetched first: sampling is local work.
        params = jax.device_get(loop.state.params) if jax.process_count() > 1 else loop.state.params
        texts = self.generate(params, seed_text, self.temperatures, key)
        metrics["seed_text"] = seed_text
        metrics["samples"] = {str(t): s for t, s in zip(self.temperatures, texts)}
        if self.echo and parallel.is_main():
            print(f'\n--- epoch {epoch + 1}: seed "{seed_text}"')
            for t, s in zip(self.temperatures, texts):
                print(f"--- temperature {t}:\n{seed_text}{s}\n")


class KeepBest(Callback):
    """Keep the params with the lowest ``metric`` (e.g. to score the test set with).

    With ``path``, the best params are also written there (msgpack) on each improvement, and a
    resumed run reloads them (:meth:`resume`, called at the start of training), so it still
    tests the best epoch.

    In a run of several seeds (epoch records with ``seeds``, :func:`seqjax.train.loop.merge_seeds`)
    each seed keeps its own best: ``params`` is stacked ``[K, ...]`` (seed ``k``'s best epoch in
    row ``k``), ``best`` and ``epoch`` are lists, and ``metrics["best_<metric>_epoch"]`` is the
    list of the seeds' best epochs.
    """

    def __init__(self, metric: str = "valid_loss", path=None):
        self.metric, self.best, self.params, self.epoch, self.path = metric, math.inf, None, None, path

    def on_train_start(self, loop):
        self.resume(loop.state.params, loop.history)

    def on_epoch_end(self, loop, metrics):
        if "seeds" in metrics:
            self._per_seed(loop, metrics)
            return
        v = metrics.get(self.metric, math.inf)
        if v < self.best:
            self.best, self.epoch = v, metrics["epoch"]
            self.params = jax.device_get(loop.state.params)
            self._write()
        metrics[f"best_{self.metric}_epoch"] = self.epoch

    def _per_seed(self, loop, metrics):
        K = len(metrics["seeds"])
        if not isinstance(self.best, list):
            self.best, self.epoch = [math.inf] * K, [None] * K
        improved = [k for k, m in enumerate(metrics["seeds"]) if m.get(self.metric, math.inf) < self.best[k]]
        if improved:
            now = jax.device_get(loop.state.params)
            if self.params is None:
                self.params = now
            for k in improved:
                self.best[k], self.epoch[k] = metrics["seeds"][k][self.metric], metrics["epoch"]
                self.params = seeds.put(self.params, k, seeds.take(now, k))
            self._write()
        metrics[f"best_{self.metric}_epoch"] = list(self.epoch)

    def _write(self):
        if self.path is not None and parallel.is_main():
            files.write_atomic(self.path, flax.serialization.to_bytes(self.params))

    def resume(self, template_params, history: list[dict]) -> None:
        """Restore the best so far from ``history`` and the params file (if both exist)."""
        if self.path is None or not os.path.exists(self.path):
            return
        if history and "seeds" in history[0]:
            K = len(history[0]["seeds"])
            self.best, self.epoch = [math.inf] * K, [None] * K
            for h in history:
                for k, m in enumerate(h["seeds"]):
                    if self.metric in m and m[self.metric] < self.best[k]:
                        self.best[k], self.epoch[k] = m[self.metric], h["epoch"]
        else:
            scored = [(h[self.metric], h["epoch"]) for h in history if self.metric in h]
            if not scored:
                return
            self.best, self.epoch = min(scored)
        with open(self.path, "rb") as f:
            self.params = flax.serialization.from_bytes(jax.device_get(template_params), f.read())
