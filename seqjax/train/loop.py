"""The one generic training loop: ``fit`` and ``evaluate``, used by every experiment.

An experiment supplies a ``loss_fn(params, batch, rng, train) -> (mean_loss, (sums, aux))``
where ``sums`` are metric *sums* with a ``count`` entry (``loss``, ``correct``, ...) and
``aux`` may hold ``carry`` (model state for the next batch). Datasets are objects with
``len()`` and ``batches(epoch, start)`` yielding dicts of numpy arrays (see
:mod:`seqjax.data.batching`).

The train step is pure and jit-compiled with the state donated: it folds ``state.step``
into the run's key (so dropout is a function of the seed and the step alone), computes
gradients of the weighted-mean loss of the *global* batch (exact under data parallelism),
applies them, and returns the metric sums plus the gradient norm and a non-finite flag.
The host reads metrics every ``log_every`` steps (one device sync), stops with a clear
message on a non-finite loss (the last checkpoint, written before, stays good), writes a
checkpoint every ``ckpt_every`` steps and at each epoch end, and on Ctrl-C or SIGTERM saves
and exits.

With several processes (:mod:`seqjax.train.parallel`) every process runs this loop on its own
rows of the same global batches. Only process 0 prints, draws progress bars and writes the
log; every process takes part in each checkpoint (orbax). The non-finite check reads
replicated sums, so every process sees the same value; decisions taken from one process's
clock or signals (the time budget, Ctrl-C/SIGTERM) are combined across processes at every
metrics read (``log_every`` steps) and at epoch ends, so all stop after the same step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from seqjax import SeqjaxError
from seqjax.train import parallel


def finalize(sums: dict) -> dict:
    """Metric sums -> means: ``loss``, ``accuracy`` (and ``bpc`` = loss / ln 2 when asked)."""
    s = {k: float(v) for k, v in jax.device_get(sums).items()}
    n = max(s.get("count", 0.0), 1.0)
    out = {"loss": s["loss"] / n, "count": s.get("count", 0.0)}
    if "correct" in s:
        out["accuracy"] = s["correct"] / n
    return out


def make_train_step(loss_fn: Callable, mesh=None) -> Callable:
    """``train_step(state, batch) -> (state, sums)``, jit-compiled, state donated.

    With a ``mesh`` of several devices the gradient is computed under ``shard_map``: each device
    differentiates its own rows, and the per-device gradients are summed once per step, weighted
    by each device's share of ``sums["count"]`` (``loss_fn`` returns the mean over ``count``, so
    the result is the gradient of the global mean). Left to jit's automatic partitioning, a
    recurrence's weight gradient, accumulated inside the backward ``scan``, was all-reduced at
    every time step. Each device folds its index into the dropout key.
    """

    def grads_and_sums(params, batch, rng):
        (loss, (sums, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, rng, True)
        return loss, sums, aux, grads

    def per_device(params, batch, rng):
        rng = jax.random.fold_in(rng, jax.lax.axis_index("data"))
        loss, sums, aux, grads = grads_and_sums(params, batch, rng)
        total = jnp.maximum(jax.lax.psum(sums["count"], "data"), 1.0)
        share = sums["count"] / total
        grads = jax.tree.map(lambda g: jax.lax.psum(g * share, "data"), grads)
        return jax.lax.psum(loss * share, "data"), jax.lax.psum(sums, "data"), aux, grads

    def train_step(state, batch):
        rng = jax.random.fold_in(state.rng, state.step)
        if state.carry is not None:
            batch = {**batch, "carry": state.carry}
        if mesh is None or mesh.devices.size == 1:
            loss, sums, aux, grads = grads_and_sums(state.params, batch, rng)
        else:
            rows = jax.tree.map(lambda _: P("data"), batch)
            loss, sums, aux, grads = jax.shard_map(
                per_device, mesh=mesh, in_specs=(P(), rows, P()), out_specs=(P(), P(), P("data"), P()),
                check_vma=False,  # model code builds invariant initial carries; the psums make outputs replicated
            )(state.params, batch, rng)
        new = state.apply_gradients(grads)
        if "carry" in aux:
            new = new.replace(carry=aux["carry"])
        gnorm = optax.tree.norm(grads)
        sums = {**sums, "nonfinite": (~jnp.isfinite(loss) | ~jnp.isfinite(gnorm)).astype(jnp.float32),
                "grad_norm": gnorm}
        return new, sums

    return jax.jit(train_step, donate_argnums=0)


def make_eval_step(loss_fn: Callable) -> Callable:
    """``eval_step(params, batch, carry) -> (sums, carry)``, jit-compiled, no dropout."""

    def eval_step(params, batch, carry):
        if carry is not None:
            batch = {**batch, "carry": carry}
        _, (sums, aux) = loss_fn(params, batch, jax.random.PRNGKey(0), False)
        return sums, aux.get("carry")

    return jax.jit(eval_step)


@jax.jit
def _add_sums(acc, sums):
    return jax.tree.map(jnp.add, acc, sums)


def _add(acc, sums):
    """``acc + sums`` leaf by leaf, in one program (one dispatch, not one per metric)."""
    return sums if acc is None else _add_sums(acc, sums)


class _Pace:
    """Keeps the host at most one step ahead of the devices when several processes share a run.

    XLA's CPU client runs each multi-device program's per-device parts on a pool with just
    enough threads for one such program, and a launch that finds a device's queue of in-flight
    programs full waits *on a pool thread*. A host running far ahead (dozens of steps between
    metric reads) then parks a pool thread while an all-reduce on the other one waits for its
    partner: every process hung (2 of 10 two-process runs here). Waiting for step ``k - 1``
    after dispatching step ``k`` keeps a few programs in flight and the host still prepares the
    next batch while the devices compute. One process keeps its unbounded run-ahead.
    """

    def __init__(self):
        self.on, self.last = jax.process_count() > 1, None

    def __call__(self, out):
        if self.on:
            if self.last is not None:
                jax.block_until_ready(self.last)
            self.last = out


def evaluate(params, data, loss_fn: Callable | None = None, mesh=None, eval_step=None,
             carry=None, desc: str = "eval") -> dict:
    """Mean metrics of ``params`` over every example of ``data`` (padding rows weigh 0)."""
    mesh = mesh or parallel.make_mesh()
    eval_step = eval_step or make_eval_step(loss_fn)
    params = parallel.replicate(params, mesh)
    acc, pace = None, _Pace()
    for batch in tqdm(parallel.feed(data, mesh), total=len(data), desc=desc, leave=False, mininterval=2,
                      disable=not parallel.is_main()):
        sums, carry = eval_step(params, batch, carry)
        acc = _add(acc, {k: sums[k] for k in ("loss", "correct", "count") if k in sums})
        pace(acc)
    return finalize(acc)


@dataclasses.dataclass
class Run:
    """What ``fit`` needs besides the state: where to log and checkpoint, and how often."""

    workdir: Path | None = None
    log_every: int = 20
    ckpt_every: int = 0  # steps; 0 = only at epoch ends
    time_budget_s: float = 0.0  # stop once this much training time (all epochs) is spent; 0 = none
    meta: dict = dataclasses.field(default_factory=dict)  # config, vocab: saved with checkpoints
    checkpointer: Any = None
    is_main: bool | None = None  # prints, bars and log.jsonl; None: process 0 of a multi-process run
    # Wall-clock origin of the whole run, before any resume (so ``time.time() - started`` is the
    # run's wall time so far); None: when ``fit`` starts, less the wall time its history records.
    started: float | None = None

    def __post_init__(self):
        if self.time_budget_s < 0:
            raise SeqjaxError(f"--minutes {self.time_budget_s / 60:g}: give a training-time budget >= 0 "
                              f"(0 = no limit)")


def elapsed_before(history: list[dict]) -> float:
    """Wall seconds a resumed run had already spent (0.0 for a new run).

    Histories written before epochs carried ``wall_time_s`` count training time only.
    """
    if not history:
        return 0.0
    return history[-1].get("wall_time_s", sum(h.get("train_time_s", 0.0) for h in history))


def fit(state, train, loss_fn: Callable, epochs: int, *, valid=None, run: Run | None = None,
        callbacks: Iterable = (), mesh=None, start: tuple[int, int] = (0, 0),
        history: list | None = None, partial: dict | None = None, reset_carry: Callable | None = None,
        valid_fn: Callable | None = None, desc: str = "train"):
    """Train ``state`` for ``epochs`` epochs over ``train``; returns ``(state, history)``.

    Args:
      start: ``(epoch, batch)`` to resume from (the state must be the checkpointed one).
      history: per-epoch metric dicts so far (resume); new epochs are appended.
      partial: metric sums of the interrupted epoch so far (resume), so its metrics are exact.
      reset_carry: ``carry -> carry`` applied at each epoch start (stateful models).
      valid_fn: ``state -> dict`` of extra held-out metrics per epoch (default: ``evaluate``
        on ``valid``).
      callbacks: objects with ``on_epoch_end(epoch, state, metrics) -> bool | None``
        (True stops training).
    Raises:
      SeqjaxError: on a non-finite loss or gradient (after logging where).
    """
    run = run or Run()
    if run.is_main is None:
        run = dataclasses.replace(run, is_main=parallel.is_main())
    mesh = mesh or parallel.make_mesh()
    history = list(history or [])
    train_step = make_train_step(loss_fn, mesh)
    eval_step = make_eval_step(loss_fn)
    state = parallel.replicate(state, mesh)
    log = (run.workdir / "log.jsonl") if (run.workdir and run.is_main) else None

    def save(state, epoch, batch, acc=None):  # a step already saved is kept (Checkpointer.save)
        if run.checkpointer is not None:
            sums = {k: float(v) for k, v in jax.device_get(acc).items()} if (acc and batch) else None
            run.checkpointer.save(state, {**run.meta, "epoch": epoch, "batch": batch,
                                          "history": history, "partial": sums})

    # Ctrl-C (SIGINT) and SIGTERM (a cluster scheduler's notice) set a flag; the loop finishes
    # the current step, saves, then raises KeyboardInterrupt — never in the middle of a step or
    # a checkpoint write. With several processes the flag is combined at the next metrics read.
    interrupted = []
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, lambda *_: interrupted.append(1))
    try:
        return _epochs(state, train, epochs, start, history, partial, reset_carry, run, mesh,
                       train_step, eval_step, valid, valid_fn, callbacks, log, save, desc, interrupted)
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)


def _epochs(state, train, epochs, start, history, partial, reset_carry, run, mesh, train_step,
            eval_step, valid, valid_fn, callbacks, log, save, desc, interrupted):
    epoch0, b0 = start
    started = run.started if run.started is not None else time.time() - elapsed_before(history)
    # A budget-cut epoch that is now being finished replaces its cut record when it ends (one record
    # per epoch, its time and throughput covering both parts); until then the record stays, so a
    # checkpoint saved on the way still carries it.
    prior = history[-1] if (b0 and history and history[-1]["epoch"] == epoch0 + 1
                            and "epoch_fraction" in history[-1]) else None
    spent = sum(h.get("train_time_s", 0.0) for h in history if h is not prior)  # training time before this call
    # One process decides alone at every step; several agree at every metrics read (a collective).
    alone = jax.process_count() == 1
    for epoch in range(epoch0, epochs):
        if reset_carry is not None and b0 == 0:
            state = state.replace(carry=reset_carry(state.carry))
        acc = (parallel.replicate({k: np.float32(v) for k, v in partial.items()}, mesh)
               if (partial and b0) else None)
        t0, seen, step_in_epoch = time.time(), 0, b0
        if prior is not None and epoch == epoch0:
            t0 -= prior["train_time_s"]
            seen = round(prior.get("train_samples_per_s", 0.0) * prior["train_time_s"])
        bar = tqdm(total=len(train), initial=b0, desc=f"{desc} {epoch + 1}/{epochs}",
                   disable=not run.is_main, mininterval=1, dynamic_ncols=True)
        pace = _Pace()
        try:
            for batch in parallel.feed(train, mesh, epoch, b0):
                state, sums = train_step(state, batch)
                acc = _add(acc, sums)
                pace(acc)
                step_in_epoch += 1
                seen += batch["weights"].shape[0]  # global rows
                bar.update(1)
                read = step_in_epoch % run.log_every == 0 or step_in_epoch == len(train)
                if read:
                    host = jax.device_get(acc)
                    if host["nonfinite"] > 0:
                        raise SeqjaxError(
                            f"non-finite loss or gradient at epoch {epoch + 1}, step "
                            f"{int(jax.device_get(state.step))}; stopped. The last good checkpoint "
                            f"is kept{' in ' + str(run.checkpointer.directory) if run.checkpointer else ''}; "
                            f"lower the learning rate or add --clip")
                    m = finalize(host)
                    bar.set_postfix(loss=f"{m['loss']:.4f}", acc=f"{m.get('accuracy', 0):.3f}",
                                    sps=f"{seen / (time.time() - t0):.0f}")
                if (run.ckpt_every and step_in_epoch < len(train)  # the epoch end saves anyway
                        and int(jax.device_get(state.step)) % run.ckpt_every == 0):
                    save(state, epoch, step_in_epoch, acc)
                stop = bool(interrupted)
                over = bool(run.time_budget_s) and spent + time.time() - t0 >= run.time_budget_s
                if not alone:
                    if not read:
                        continue
                    stop, over = parallel.agree(stop, over)
                if stop:
                    raise KeyboardInterrupt
                if over:
                    break
        except KeyboardInterrupt:
            bar.close()
            save(state, epoch, step_in_epoch, acc)
            if run.is_main:
                print(f"\ninterrupted: checkpoint saved at epoch {epoch + 1}, batch {step_in_epoch}; "
                      f"run again with --resume to continue")
            raise
        bar.close()
        b0 = 0
        metrics = {"epoch": epoch + 1, "step": int(jax.device_get(state.step)),
                   "train_time_s": time.time() - t0}
        spent += metrics["train_time_s"]
        out_of_time = bool(run.time_budget_s) and spent >= run.time_budget_s
        if not alone:
            out_of_time, = parallel.agree(out_of_time)
        cut_short = step_in_epoch < len(train)  # only the time budget ends an epoch early
        if cut_short:
            metrics["epoch_fraction"] = step_in_epoch / len(train)
        if acc is not None:
            metrics.update({f"train_{k}": v for k, v in finalize(acc).items() if k != "count"})
            metrics["train_samples_per_s"] = seen / metrics["train_time_s"]
        if valid_fn is not None:
            metrics.update(valid_fn(state))
        elif valid is not None:
            metrics.update({f"valid_{k}": v for k, v in evaluate(
                state.params, valid, mesh=mesh, eval_step=eval_step).items() if k != "count"})
        metrics["wall_time_s"] = time.time() - started
        stop = False
        for cb in callbacks:
            stop = bool(cb.on_epoch_end(epoch, state, metrics)) or stop
        if prior is not None and epoch == epoch0:
            history.remove(prior)
        history.append(metrics)
        if log is not None:
            with open(log, "a") as f:
                f.write(json.dumps(metrics) + "\n")
        if run.is_main:
            print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in metrics.items() if not isinstance(v, (list, dict))))
        if out_of_time and run.is_main:
            print(f"time budget of {run.time_budget_s / 60:.1f} min of training spent; stopped")
        save(state, *((epoch, step_in_epoch, acc) if cut_short else (epoch + 1, 0)))
        if stop or out_of_time:
            break
    return state, history


def plot_history(history: list[dict], path: str | Path, title: str = "") -> None:
    """PNG of the per-epoch curves: one panel per metric family (loss, accuracy, bpc).

    Only process 0 of a multi-process run draws; the others return at once.
    """
    if not parallel.is_main():
        return
    # A bare Figure draws with the Agg canvas without touching pyplot's global backend (a
    # matplotlib.use("Agg") here would stop a notebook's own plots from showing inline).
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    families = [f for f in ("loss", "accuracy", "bpc")
                if any(k.endswith(f) for h in history for k in h)]
    fig = Figure(figsize=(5 * len(families), 3.5))
    axes = fig.subplots(1, len(families), squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, fam in zip(axes[0], families):
        for key in sorted({k for h in history for k in h if k.endswith(fam)}):
            ax.plot(epochs, [h.get(key, math.nan) for h in history], marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(fam)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
