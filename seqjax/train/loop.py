"""The one generic training loop: ``fit`` over ``train_epoch`` and ``evaluate``.

An experiment supplies a ``loss_fn(params, batch, rng, train) -> (mean_loss, (sums, aux))``
where ``sums`` are metric *sums* (``float32[]``) with a ``count`` entry (``loss``, ``correct``,
...) and ``aux`` may hold ``carry`` (model state for the next batch). Datasets are objects with
``len()`` and ``batches(epoch, start)`` yielding dicts of numpy arrays (see
:mod:`seqjax.data.batching`): ``weights float32[B]`` and the model's inputs and labels.

The train step is pure and jit-compiled with the state donated: it folds ``state.step``
into the run's key (so dropout is a function of the seed and the step alone), computes
gradients of the weighted-mean loss of the *global* batch (exact under data parallelism),
applies them, and returns the metric sums plus the gradient norm and a non-finite flag.

Where a run stands is one :class:`LoopState` (train state, epoch, batch, history, partial
metric sums, elapsed time), saved and resumed in one call each. :func:`fit` runs epochs of
:func:`train_epoch`, then :func:`evaluate` on held-out data. :func:`train_epoch` reads the
metrics every ``log_every`` steps (one device sync) and stops with a clear message on a
non-finite loss or a diverged one (the rule: :data:`LOSS_GROWTH`; the last checkpoint, written
before, stays good); on Ctrl-C or SIGTERM it
finishes the step, lets the hooks save, and raises ``KeyboardInterrupt``. Logging
(``log.jsonl`` and the printed epoch line), checkpointing and the time budget are hooks
(:mod:`seqjax.train.callbacks`) that :class:`Run` configures.

With several processes (:mod:`seqjax.train.parallel`) every process runs this loop on its own
rows of the same global batches. Only process 0 prints, draws progress bars and writes the
log; every process takes part in each checkpoint (orbax). The non-finite check reads
replicated sums, so every process sees the same value; decisions taken from one process's
clock or signals (the time budget, Ctrl-C/SIGTERM) are combined across processes at every
metrics read (``log_every`` steps) and at epoch ends, so all stop after the same step.
"""

from __future__ import annotations

import contextlib
import dataclasses
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

from seqjax import SeqjaxError, backend
from seqjax.train import parallel
from seqjax.train.callbacks import Callback, Checkpoint, Log, TimeBudget
from seqjax.train.state import step_of


def finalize(sums: dict) -> dict:
    """Metric sums (``float32[]`` each, with ``count``) -> host floats: mean ``loss``, ``count``
    and, where ``correct`` is summed, ``accuracy``; a summed ``confusion`` (``float32[C, C]``)
    comes back as ``int`` counts (a list of C lists)."""
    got = jax.device_get(sums)
    s = {k: float(v) for k, v in got.items() if k != "confusion"}
    n = max(s.get("count", 0.0), 1.0)
    out = {"loss": s["loss"] / n, "count": s.get("count", 0.0)}
    if "correct" in s:
        out["accuracy"] = s["correct"] / n
    if "confusion" in got:  # float32[C, C] weight sums -> int counts, rows the true class
        out["confusion"] = np.rint(np.asarray(got["confusion"])).astype(np.int64).tolist()
    return out


def finalize_seeds(sums: dict) -> list[dict]:
    """Metric sums of a run of several seeds (``float32[K]`` each) -> one :func:`finalize` dict per seed."""
    s = {k: np.asarray(jax.device_get(v), np.float64) for k, v in sums.items()}
    return [finalize({k: v[i] for k, v in s.items()}) for i in range(len(s["loss"]))]


def merge_seeds(metrics: dict, per_seed: list[dict]) -> dict:
    """Put per-seed metrics into an epoch record: ``metrics["seeds"][k]`` gets seed ``k``'s, and
    each key also appears as the mean over the seeds (what the printed line, the plots and
    TensorBoard show). Returns ``metrics``."""
    seeds = metrics.setdefault("seeds", [{} for _ in per_seed])
    for mine, new in zip(seeds, per_seed):
        mine.update(new)
    for k in per_seed[0]:
        metrics[k] = float(np.mean([m[k] for m in per_seed]))
    return metrics


SEEDS_WITHIN = "map"  # how a device trains its own seeds: "map" (one after another) or "vmap";
# benchmarks/seeds.py measures both (results/benchmarks/seeds.json)


def make_train_step(loss_fn: Callable, mesh=None, within: str | None = None) -> Callable:
    """``train_step(state, batch) -> (state, sums)``, jit-compiled, state donated.

    ``batch``: a dict of arrays with a leading batch axis ``B`` (``weights float32[B]``, 0 on
    padding rows); ``sums``: ``float32[]`` metric sums of the batch plus ``grad_norm`` and
    ``nonfinite`` (1.0 when the loss or the gradient is not finite).

    With a ``mesh`` of several devices the gradient is computed under ``shard_map``: each device
    differentiates its own rows, and the per-device gradients are summed once per step, weighted
    by each device's share of ``sums["count"]`` (``loss_fn`` returns the mean over ``count``, so
    the result is the gradient of the global mean). Left to jit's automatic partitioning, a
    recurrence's weight gradient, accumulated inside the backward ``scan``, was all-reduced at
    every time step. Each device folds its index into the dropout key.

    On a mesh with a ``"seed"`` axis (a run of several seeds, :mod:`seqjax.train.seeds`) the
    state's leaves are ``[K, ...]`` and the batch's ``[K, B, ...]``; ``sums`` are ``float32[K]``.
    Each device trains its own seeds, ``within`` (default :data:`SEEDS_WITHIN`) ``"map"``: one
    after another, or ``"vmap"``: batched; each seed's step is the one-seed step above (the
    gradient summed over the ``"data"`` axis, the data device folded into its dropout key when
    that axis has several).
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

    def step(state, batch, grads_of):
        """One seed's update: ``grads_of(params, batch, rng) -> (loss, sums, aux, grads)``."""
        rng = jax.random.fold_in(state.rng, state.step)
        if state.carry is not None:
            batch = {**batch, "carry": state.carry}
        loss, sums, aux, grads = grads_of(state.params, batch, rng)
        new = state.apply_gradients(grads)
        if "carry" in aux:
            new = new.replace(carry=aux["carry"])
        gnorm = optax.tree.norm(grads)
        return new, {**sums, "nonfinite": (~jnp.isfinite(loss) | ~jnp.isfinite(gnorm)).astype(jnp.float32),
                     "grad_norm": gnorm}

    def seed_step(state, batch):  # one seed on this device: state leaves [...], batch [b, ...]
        return step(state, batch, per_device if parallel.data_size(mesh) > 1 else grads_and_sums)

    how = within or SEEDS_WITHIN
    if how not in ("map", "vmap"):
        raise ValueError(f"within {how!r}: choose map or vmap")

    def seeds_step(state, batch):
        def local(state, batch):  # this device's seeds: leaves [k, ...], batch [k, b, ...]
            if how == "vmap":
                return jax.vmap(seed_step)(state, batch)
            return jax.lax.map(lambda sb: seed_step(*sb), (state, batch))

        return jax.shard_map(local, mesh=mesh, in_specs=(P("seed"), P("seed", "data")),
                             out_specs=(P("seed"), P("seed")), check_vma=False)(state, batch)

    if mesh is not None and parallel.has_seeds(mesh):
        return jax.jit(seeds_step, donate_argnums=0)

    def sharded(params, batch, rng):
        rows = jax.tree.map(lambda _: P("data"), batch)
        return jax.shard_map(
            per_device, mesh=mesh, in_specs=(P(), rows, P()), out_specs=(P(), P(), P("data"), P()),
            check_vma=False,  # model code builds invariant initial carries; the psums make outputs replicated
        )(params, batch, rng)

    def train_step(state, batch):
        return step(state, batch, grads_and_sums if mesh is None or mesh.devices.size == 1 else sharded)

    return jax.jit(train_step, donate_argnums=0)


EVAL_SUMS = ("loss", "correct", "count", "confusion")  # the sums an evaluation keeps, where the loss gives them


def make_eval_step(loss_fn: Callable, mesh=None) -> Callable:
    """``eval_step(params, batch, carry) -> (sums, carry)``, jit-compiled, no dropout.

    ``sums``: ``float32[]`` metric sums of ``batch`` (rows of weight 0 count for nothing);
    ``carry``: the model state after the batch (``None`` for models without one). On a
    ``mesh`` with seeds, ``params`` are stacked ``[K, ...]``, every seed scores the same
    ``batch``, the sums are ``float32[K]`` and ``carry`` must be ``None``."""
    if mesh is not None and parallel.has_seeds(mesh):
        def local(params, batch):
            def one(p):
                _, (sums, _) = loss_fn(p, batch, jax.random.PRNGKey(0), False)
                return {k: sums[k] for k in EVAL_SUMS if k in sums}

            return jax.tree.map(lambda v: jax.lax.psum(v, "data"), jax.lax.map(one, params))

        step = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P("seed"), P("data")), out_specs=P("seed"),
                                     check_vma=False))
        return lambda params, batch, carry: (step(params, batch), None)

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
    next batch while the devices compute. One process with several devices (the CPU split into
    one device per core, :mod:`seqjax.layout`) hangs the same way: 80 data-parallel char-LSTM
    steps dispatched without a wait stopped in an all-reduce's rendezvous
    (``benchmarks/seeds.py``), so it is paced too; one device keeps its unbounded run-ahead.
    """

    def __init__(self):
        self.on, self.last = backend.paces_host(), None  # XLA:CPU's pool; a GPU queues programs itself

    def __call__(self, out):
        if self.on:
            if self.last is not None:
                jax.block_until_ready(self.last)
            self.last = out


def evaluate(params, data, loss_fn: Callable | None = None, mesh=None, eval_step=None,
             carry=None, desc: str = "eval") -> dict | list[dict]:
    """Mean metrics of ``params`` over every example of ``data`` (padding rows weigh 0).

    Give ``loss_fn`` or a compiled ``eval_step`` (:func:`make_eval_step`). Returns host
    floats: ``loss``, ``count`` and, for classifiers, ``accuracy`` (and ``confusion`` where the
    loss sums it; see :func:`finalize`); on a
    ``mesh`` with seeds (``params`` stacked ``[K, ...]``), a list of K such dicts."""
    mesh = mesh or parallel.make_mesh()
    eval_step = eval_step or make_eval_step(loss_fn, mesh)
    params = parallel.place_state(params, mesh)
    acc, pace = None, _Pace()
    for batch in tqdm(parallel.feed(data, mesh), total=len(data), desc=desc, leave=False, mininterval=2,
                      disable=not parallel.is_main()):
        sums, carry = eval_step(params, batch, carry)
        acc = _add(acc, {k: sums[k] for k in EVAL_SUMS if k in sums})
        pace(acc)
    return finalize_seeds(acc) if parallel.has_seeds(mesh) else finalize(acc)


@dataclasses.dataclass
class LoopState:
    """Where a training run stands: what :func:`fit` advances and a checkpoint holds.

    Attributes:
      state: the :class:`~seqjax.train.state.TrainState`.
      epoch: 0-based index of the epoch in progress (= epochs finished).
      batch: batches of that epoch already trained (0 at an epoch start).
      history: one metrics dict per finished epoch; the last one may be an epoch cut short by
        a hook (the time budget): it carries ``epoch_fraction`` and is replaced when the epoch
        ends.
      partial: metric sums of those ``batch`` batches (``float32[]`` arrays on the devices while
        training, host floats once restored), so a resumed epoch's metrics are exact.
      started: wall-clock origin of the whole run (``time.time()`` at its start, earlier
        processes of a resumed run counted), from which ``wall_time_s`` is measured.
      train_s: seconds of training (epochs only, not data preparation or evaluation) of the
        whole run so far; updated after every step. The time budget reads it.
      first_loss: the training loss a diverged run is measured against (:data:`LOSS_GROWTH`):
        the first epoch's ``train_loss`` where the history has it, else read after the first
        step this process trains; not saved.

    :meth:`save` writes ``state`` with ``epoch``, ``batch``, ``history`` and ``partial`` (the
    checkpoint's ``meta`` keys); :meth:`start` reads them back and derives ``started`` and
    ``train_s`` from the history.
    """

    state: Any
    epoch: int = 0
    batch: int = 0
    history: list = dataclasses.field(default_factory=list)
    partial: dict | None = None
    started: float = dataclasses.field(default_factory=time.time)
    train_s: float = 0.0
    first_loss: float | None = None  # the divergence check's reference (_check_finite); not saved

    def save(self, checkpointer, meta: dict) -> None:
        """One checkpoint of this position with ``meta`` (config, vocab, ...) beside it."""
        sums = ({k: np.asarray(v, np.float64).tolist() for k, v in jax.device_get(self.partial).items()}
                if (self.partial and self.batch) else None)
        checkpointer.save(self.state, {**meta, "epoch": self.epoch, "batch": self.batch,
                                       "history": self.history, "partial": sums})

    @classmethod
    def start(cls, checkpointer, state, resume: bool, since: float | None = None,
              config: dict | None = None, may_change: Iterable[str] = (),
              check_meta: Callable[[dict], None] | None = None) -> LoopState:
        """Where a run begins: at ``state`` (epoch 0), or with ``resume`` where the newest
        readable checkpoint of ``checkpointer`` left off (its arrays typed like ``state``).

        ``since``: ``time.time()`` when this process began the run (default: now); a resumed
        run's ``started`` lies before it by the wall time its history records.

        A checkpoint that cannot be read (a damaged or half-copied step) is skipped with a
        warning for the next older one. ``config`` (the new run's config as a dict) is compared
        with the saved one field by field: a field named in ``may_change`` (how long to train,
        where to write) is accepted and said; any other difference would change the model, the
        data or the optimizer state under the saved arrays, and is refused. ``check_meta`` is
        called first with the saved meta record (before any array is read) and raises
        :class:`SeqjaxError` for a run that may not be resumed (another kind, other data).

        Raises:
          SeqjaxError: a checkpoint is present but ``resume`` is False (a new run would
            overwrite it); no checkpoint can be read; a config field differs that may not.
        """
        since = time.time() if since is None else since
        if not checkpointer.all_steps():
            return cls(state, started=since)
        if not resume:
            raise SeqjaxError(f"{checkpointer.directory} already holds a run; pass --resume to continue it "
                              f"or choose another --out")
        to_check = [config] if (config is not None or check_meta is not None) else []

        def read(step):
            if to_check:  # before the arrays: a changed shape would fail their restore
                saved = checkpointer.read_meta(step)
                if check_meta is not None:
                    check_meta(saved)
                if config is not None:
                    check_resumed_config(saved.get("config", {}), config, set(may_change), checkpointer.directory)
                to_check.clear()  # said once
            return checkpointer.restore(state, step)

        _, (restored, meta) = checkpointer.newest_readable(read, "start a new run with another --out",
                                                           using="resuming from")
        history = meta["history"]
        loop = cls(restored, meta["epoch"], meta["batch"], history, meta.get("partial"),
                   started=since - elapsed_before(history),
                   train_s=sum(h.get("train_time_s", 0.0) for h in history))
        if parallel.is_main():
            print(f"resumed from {checkpointer.directory} at epoch {loop.epoch + 1}, batch {loop.batch}")
        return loop

    @property
    def cut_record(self) -> dict | None:
        """The history record of the epoch now being finished (cut short by a time budget or a
        mid-epoch checkpoint, and resumed), else ``None``."""
        last = self.history[-1] if self.history else None
        return last if (self.batch and last is not None and last["epoch"] == self.epoch + 1
                        and "epoch_fraction" in last) else None

    def end_epoch(self, metrics: dict) -> None:
        """Record the epoch just trained: ``metrics`` replace a cut-short record of the same
        epoch or are appended; the position moves past the epoch unless it was cut short."""
        if self.history and self.history[-1]["epoch"] == metrics["epoch"]:
            self.history[-1] = metrics  # a budget-cut epoch now finished: one record per epoch
        else:
            self.history.append(metrics)
        if "epoch_fraction" not in metrics:
            self.epoch, self.batch, self.partial = self.epoch + 1, 0, None


def check_resumed_config(saved: dict, new: dict, may_change: set, where) -> None:
    """Refuse a resume whose config differs from the saved one in a field not in ``may_change``
    (one line naming the field); say which allowed fields changed. Fields the saved config
    lacks (added to the config later) are not compared."""
    for k, v in new.items():
        if k not in saved or saved[k] == v:
            continue
        flag = "--" + k.replace("_", "-")
        if k not in may_change:
            raise SeqjaxError(f"{flag} {v!r}: the run in {where} was trained with {flag} {saved[k]!r}; resume "
                              f"with its value (only {', '.join(sorted('--' + m.replace('_', '-') for m in may_change))} "
                              f"may change) or start a new run with another --out")
        if parallel.is_main():
            print(f"resuming with {flag} {v!r} (was {saved[k]!r})")


def elapsed_before(history: list[dict]) -> float:
    """Wall seconds a resumed run had already spent (0.0 for a new run).

    Histories written before epochs carried ``wall_time_s`` count training time only.
    """
    if not history:
        return 0.0
    return history[-1].get("wall_time_s", sum(h.get("train_time_s", 0.0) for h in history))


@dataclasses.dataclass
class Run:
    """The loop's own hooks, configured: where to log and checkpoint, how often, for how long.

    Attributes:
      workdir: ``log.jsonl`` is appended there (process 0); None = print only.
      log_every: read the metrics (one device sync: progress bar, NaN check, and with several
        processes the agreement on stopping) every this many steps and at each epoch end.
      ckpt_every: also checkpoint every this many steps (0 = only at epoch ends).
      time_budget_s: stop once this much training time (all epochs) is spent; 0 = none.
      meta: saved with every checkpoint (config, vocab, kind).
      checkpointer: a :class:`~seqjax.train.checkpoint.Checkpointer`; None = no checkpoints.
    """

    workdir: Path | None = None
    log_every: int = 20
    ckpt_every: int = 0
    time_budget_s: float = 0.0
    meta: dict = dataclasses.field(default_factory=dict)
    checkpointer: Any = None

    def __post_init__(self):
        if self.time_budget_s < 0:
            raise SeqjaxError(f"--minutes {self.time_budget_s / 60:g}: give a training-time budget >= 0 "
                              f"(0 = no limit)")

    def hooks(self) -> list[Callback]:
        """The hooks that log, enforce the time budget and checkpoint, in that order."""
        hooks = [Log(Path(self.workdir) / "log.jsonl" if self.workdir else None), TimeBudget(self.time_budget_s)]
        if self.checkpointer is not None:
            hooks.append(Checkpoint(self.checkpointer, self.meta, self.ckpt_every))
        return hooks


@contextlib.contextmanager
def _interrupts():
    """Ctrl-C (SIGINT) and SIGTERM (a cluster scheduler's notice) append to the yielded list
    instead of raising; the loop finishes the current step, lets the hooks save, then raises
    ``KeyboardInterrupt`` — never in the middle of a step or a checkpoint write."""
    flag, old = [], {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: flag.append(1))
    try:
        yield flag
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def fit(state, train, loss_fn: Callable, epochs: int, *, valid=None, valid_fn: Callable | None = None,
        run: Run | None = None, callbacks: Iterable[Callback] = (), mesh=None, desc: str = "train"):
    """Train for ``epochs`` epochs over ``train``; returns ``(state, history)``.

    Args:
      state: a :class:`~seqjax.train.state.TrainState` (a new run) or a :class:`LoopState`
        (e.g. from :meth:`LoopState.start`, to resume; it is advanced in place).
      train: the training batches (``len()``, ``batches(epoch, start)``).
      loss_fn: ``(params, batch, rng, train) -> (mean_loss, (sums, aux))``.
      epochs: total epochs of the run (a resumed run trains the rest).
      valid: held-out batches, scored with :func:`evaluate` after each epoch (``valid_*``).
      valid_fn: ``state -> dict`` of held-out metrics per epoch, instead of ``valid``.
      run: logging, checkpointing and time budget (:class:`Run`); default: print only.
      callbacks: :class:`~seqjax.train.callbacks.Callback` s, called before the run's own hooks.
      desc: the progress bars' label.
    Raises:
      SeqjaxError: on a non-finite loss or gradient (the last checkpoint written stays).
      KeyboardInterrupt: after Ctrl-C or SIGTERM, once the hooks have saved.
    """
    run = run or Run()
    mesh = mesh or parallel.make_mesh()
    loop = state if isinstance(state, LoopState) else LoopState(state)
    loop.state = parallel.place_state(loop.state, mesh)
    train_step, eval_step = make_train_step(loss_fn, mesh), make_eval_step(loss_fn, mesh)
    hooks = [*callbacks, *run.hooks()]
    with _interrupts() as interrupted:
        for h in hooks:
            h.on_train_start(loop)
        while loop.epoch < epochs:
            for h in hooks:
                h.on_epoch_start(loop)
            metrics = train_epoch(loop, train, train_step, mesh=mesh, hooks=hooks, run=run,
                                  interrupted=interrupted, desc=f"{desc} {loop.epoch + 1}/{epochs}")
            if valid_fn is not None:
                held = valid_fn(loop.state)
            elif valid is not None:
                held = evaluate(loop.state.params, valid, mesh=mesh, eval_step=eval_step)
                held = ([{f"valid_{k}": v for k, v in m.items() if k != "count"} for m in held]
                        if isinstance(held, list) else {f"valid_{k}": v for k, v in held.items() if k != "count"})
            else:
                held = {}
            merge_seeds(metrics, held) if isinstance(held, list) else metrics.update(held)
            metrics["wall_time_s"] = time.time() - loop.started
            loop.end_epoch(metrics)
            stop = False
            for h in hooks:
                stop = bool(h.on_epoch_end(loop, metrics)) or stop
            if stop or "epoch_fraction" in metrics:  # only a hook's wish ends an epoch early
                break
    return loop.state, loop.history


def train_epoch(loop: LoopState, data, train_step: Callable, *, mesh, hooks: Iterable[Callback] = (),
                run: Run | None = None, interrupted: list = (), desc: str = "train") -> dict:
    """Train ``loop`` from its position to the end of epoch ``loop.epoch``, or until a hook's
    ``on_step`` asks to stop; returns the epoch's training metrics.

    ``loop.state``, ``loop.batch``, ``loop.partial`` and ``loop.train_s`` advance with every
    step (``loop.epoch`` and ``loop.history`` are :meth:`LoopState.end_epoch`'s). Metrics:
    ``epoch`` (1-based), ``step``, ``train_time_s`` (a budget-cut record being finished
    counts its first part too), ``train_loss`` and (classifiers) ``train_accuracy``, means over the epoch's examples,
    ``train_samples_per_s``, and
    ``epoch_fraction`` when the epoch was cut short.
    """
    run = run or Run()
    n = len(data)
    cut = loop.cut_record
    acc = (parallel.replicate({k: np.asarray(v, np.float32) for k, v in jax.device_get(loop.partial).items()}, mesh)
           if (loop.partial and loop.batch) else None)
    t0, seen, before = time.time(), 0, loop.train_s
    if cut is not None:  # the budget-cut record being finished: its time and rows count
        t0 -= cut["train_time_s"]
        before -= cut["train_time_s"]
        seen = round(cut.get("train_samples_per_s", 0.0) * cut["train_time_s"])
    bar = tqdm(total=n, initial=loop.batch, desc=desc, disable=not parallel.is_main(), mininterval=1,
               dynamic_ncols=True)
    pace = _Pace()
    alone = jax.process_count() == 1  # one process decides at every step; several at every metrics read
    try:
        for batch in parallel.feed(data, mesh, loop.epoch, loop.batch):
            loop.state, sums = train_step(loop.state, batch)
            acc = loop.partial = _add(acc, sums)
            pace(acc)
            loop.batch += 1
            seen += batch["weights"].size  # global rows (of every seed)
            loop.train_s = before + time.time() - t0
            bar.update(1)
            read = loop.batch % run.log_every == 0 or loop.batch == n or loop.first_loss is None
            if read:
                _check_finite(jax.device_get(acc), loop, run, bar, seen / (time.time() - t0))
            wish = False
            if loop.batch < n:  # the epoch end has hooks of its own
                for h in hooks:
                    wish = bool(h.on_step(loop)) or wish
            stop = bool(interrupted)
            if not alone:
                if not read:
                    continue
                stop, wish = parallel.agree(stop, wish)
            if stop:
                raise KeyboardInterrupt
            if wish:
                break
    except KeyboardInterrupt:
        bar.close()
        for h in hooks:
            h.on_interrupt(loop)
        raise
    bar.close()
    metrics = {"epoch": loop.epoch + 1, "step": step_of(loop.state),
               "train_time_s": time.time() - t0}
    loop.train_s = before + metrics["train_time_s"]
    if loop.batch < n:
        metrics["epoch_fraction"] = loop.batch / n
    if acc is not None:
        if parallel.has_seeds(mesh):
            merge_seeds(metrics, [{f"train_{k}": v for k, v in m.items() if k != "count"} for m in finalize_seeds(acc)])
        else:
            metrics.update({f"train_{k}": v for k, v in finalize(acc).items() if k != "count"})
        metrics["train_samples_per_s"] = seen / metrics["train_time_s"]
    return metrics


# A diverged run: at a metrics read, the running mean training loss of the epoch is above
# LOSS_GROWTH x the run's first value or above LOSS_LIMIT. The first value is the first epoch's
# train_loss (a resumed run), else the loss of the first step this process trains (read at that
# step: the model before any update of this process). The losses are means per example of a
# cross-entropy (nats): a fresh model starts near ln(classes) (0.69 for IMDB, ~3.4 for 30 chars),
# so 1e4 nats (a probability of e^-10000 on the right answer) is divergence whatever the model,
# and growing a thousandfold is too.
LOSS_GROWTH = 1000.0
LOSS_LIMIT = 1e4


def _check_finite(host: dict, loop: LoopState, run: Run, bar, samples_per_s: float) -> None:
    """At a metrics read: stop on a non-finite loss or gradient, or a loss that has diverged
    (:data:`LOSS_GROWTH`, :data:`LOSS_LIMIT`), else show the running means."""
    losses = np.atleast_1d(host["loss"]) / np.maximum(np.atleast_1d(host["count"]), 1.0)  # per seed
    worst = float(np.max(losses))
    if loop.first_loss is None:
        first = loop.history[0].get("train_loss") if loop.history else None
        loop.first_loss = float(np.max(first)) if first is not None else (worst if worst > 0 else None)
    if np.any(host["nonfinite"] > 0):
        what = "non-finite loss or gradient"
    elif worst > LOSS_LIMIT or (loop.first_loss and worst > LOSS_GROWTH * loop.first_loss):
        first = f"first {loop.first_loss:.3g}; " if loop.first_loss else ""
        what = (f"the training loss has diverged ({worst:.3g}, {first}the limit: {LOSS_GROWTH:g} x the first "
                f"or {LOSS_LIMIT:g})")
    else:
        m = finalize({k: np.mean(v) for k, v in host.items()})  # a run of several seeds: their mean
        bar.set_postfix(loss=f"{m['loss']:.4f}", acc=f"{m.get('accuracy', 0):.3f}", sps=f"{samples_per_s:.0f}")
        return
    ck = run.checkpointer
    steps = ck.all_steps() if ck is not None else []
    kept = (f"the last good checkpoint is kept in {ck.directory} (step {steps[-1]})" if steps else
            f"no checkpoint was written yet{f' in {ck.directory}' if ck is not None else ''}")
    raise SeqjaxError(f"{what} at epoch {loop.epoch + 1}, step {step_of(loop.state)}; stopped, {kept}; lower the "
                      f"learning rate or add --clip")


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
    from seqjax import files

    files.write_atomic(path, lambda f: fig.savefig(f, dpi=110, format="png"))  # a killed run leaves no half PNG
