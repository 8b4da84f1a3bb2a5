"""Data parallelism with ``jax.jit`` + ``NamedSharding``, on one process or many.

A 1-D mesh named ``"data"`` spans ``jax.devices()`` — every device of every process, in
process order; params and optimizer state are replicated, every batch array is split on its
leading axis. jit then compiles one SPMD program (the role ``pmap`` used to play); the train
step computes its gradient under ``shard_map`` so that it is summed across devices once per
step (:func:`seqjax.train.loop.make_train_step`).

Past one machine, JAX's own multi-process runtime does the work (:func:`initialize` calls
``jax.distributed.initialize``; on CPU the cross-process collectives are gloo's). Every process
runs the same program on the same global batches: it computes the global example order
(cheap: index arrays), prepares only the rows of each batch that its own devices hold
(:func:`process_rows`, ``data.batches(..., rows=)``) and contributes them with
``jax.make_array_from_process_local_data``. So a run's numbers do not depend on how its
devices are spread over processes. Decisions a process takes from its own clock or signals
(time budget, Ctrl-C/SIGTERM) are combined with :func:`agree` so that every process stops at
the same step and none waits forever in a collective; a process that dies is noticed by the
runtime's heartbeat, which ends the others (``heartbeat_s``).
"""

from __future__ import annotations

import inspect
import re

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from seqjax import SeqjaxError, first_line


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, heartbeat_s: int = 30,
               init_timeout_s: int = 300) -> None:
    """Join a multi-process run: ``jax.distributed.initialize`` with CPU collectives on.

    Must run before anything touches a device. With ``coordinator`` (``HOST:PORT`` of process
    0), ``num_processes`` and ``process_id`` all given, the process joins that run; with none
    of them, JAX detects the cluster (Cloud TPU pod slice, SLURM, Open MPI). ``heartbeat_s``:
    a process silent this long is declared dead and every other process is stopped by the
    runtime (JAX's default is 100 s). Also bounds how long a finishing process waits for the
    others at exit (``2 * heartbeat_s``).

    The arguments are the global flags of ``seqjax`` (:mod:`seqjax.cli`): ``--coordinator``,
    ``--num-processes``, ``--process-id``, ``--heartbeat-timeout``; the CLI calls this with the
    first three ``None`` when only ``--distributed`` is given. The error messages name those
    flags.

    Raises:
      SeqjaxError: on incomplete or inconsistent flags, no detectable cluster, or a
        coordinator that cannot be reached within ``init_timeout_s``.
    """
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    missing = [k for k, v in given.items() if v is None]
    if 0 < len(missing) < 3:
        raise SeqjaxError(f"{', '.join(missing)} missing: give --coordinator HOST:PORT, --num-processes N "
                          f"and --process-id I together (or --distributed alone on a TPU pod slice, SLURM or "
                          f"Open MPI)")
    if coordinator is not None:
        if not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", coordinator):
            raise SeqjaxError(f"--coordinator {coordinator!r}: give HOST:PORT of process 0, "
                              f"e.g. 10.0.0.1:29500 (or 127.0.0.1:29500 on one machine)")
        if num_processes < 1:
            raise SeqjaxError(f"--num-processes {num_processes}: give at least 1")
        if not 0 <= process_id < num_processes:
            raise SeqjaxError(f"--process-id {process_id}: give 0 .. {num_processes - 1} "
                              f"(one distinct id per process)")
    if heartbeat_s < 1:
        raise SeqjaxError(f"--heartbeat-timeout {heartbeat_s}: give a number of seconds >= 1")
    # gloo: collectives between the CPU devices of different processes (JAX >= 0.5 defaults to
    # it; older versions have none unless asked). Accelerators bring their own.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=init_timeout_s,
                                   heartbeat_timeout_seconds=heartbeat_s,
                                   shutdown_timeout_seconds=2 * heartbeat_s)
    except ValueError:  # auto-detection found no cluster ("coordinator_address should be defined")
        raise SeqjaxError("--distributed: no TPU pod slice, SLURM or Open MPI job detected; elsewhere "
                          "give --coordinator HOST:PORT --num-processes N --process-id I") from None
    except RuntimeError as err:  # XLA's DEADLINE_EXCEEDED / UNAVAILABLE
        raise SeqjaxError(f"--coordinator {coordinator or '(detected)'}: could not join the run "
                          f"within {init_timeout_s} s ({first_line(err)[:200]}); start every process with the "
                          f"same --coordinator and --num-processes and check the address") from None


def make_mesh(devices=None, seeds: int = 0) -> Mesh:
    """A 1-D ``"data"`` mesh over ``devices`` (default: all devices of all processes); with
    ``seeds`` (a run of several seeds, :mod:`seqjax.train.seeds`) a 2-D ``("seed", "data")`` mesh.

    Devices are ordered by process, so each process's devices hold one contiguous block of
    every batch's rows. The seed axis takes the largest share of the devices that divides
    ``seeds`` (one process: each device then trains whole seeds, no gradient all-reduce); the
    data axis the rest. With several processes the seed axis has size 1: every process holds
    every seed and its own rows of each seed's batch, as in a one-seed run.
    """
    devices = jax.devices() if devices is None else devices
    ordered = np.array(sorted(devices, key=lambda d: (d.process_index, d.id)))
    if not seeds:
        return Mesh(ordered, ("data",))
    n = ordered.size
    s = 1 if jax.process_count() > 1 else max(k for k in range(1, n + 1) if n % k == 0 and seeds % k == 0)
    return Mesh(ordered.reshape(s, n // s), ("seed", "data"))


def has_seeds(mesh: Mesh) -> bool:
    """Whether ``mesh`` lays out a run of several seeds (:func:`make_mesh` with ``seeds``)."""
    return "seed" in mesh.axis_names


def data_size(mesh: Mesh) -> int:
    """Devices a batch's rows are split over (the ``"data"`` axis)."""
    return mesh.shape["data"]


def process_rows(mesh: Mesh, batch_size: int) -> slice:
    """The rows ``[start, stop)`` of a ``[batch_size, ...]`` global batch held by this process."""
    n = data_size(mesh)
    if batch_size % n:
        raise SeqjaxError(f"batch size {batch_size} is not divisible by the {n} devices; "
                          f"use --batch-size a multiple of {n}")
    per = batch_size // n
    rows = mesh.devices.reshape(-1, n)  # [seed groups, data]: every group splits the rows alike
    mine = sorted({i for g in rows for i, d in enumerate(g) if d.process_index == jax.process_index()})
    if mine != list(range(mine[0], mine[-1] + 1)):
        raise SeqjaxError("this process's devices are not contiguous in the mesh; build it with make_mesh()")
    return slice(mine[0] * per, (mine[-1] + 1) * per)


def _to_global(x, sharding: NamedSharding):
    """A host value identical on every process -> a global array with ``sharding``."""
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(_to_global(jax.random.key_data(x), sharding), impl=impl)
    host = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def replicate(tree, mesh: Mesh):
    """Put every leaf of ``tree`` on every device of ``mesh``.

    With several processes each leaf must hold the same value on every process (params
    initialised from the same seed, a restored checkpoint); leaves already replicated over
    ``mesh`` are kept as they are.
    """
    return _place(tree, NamedSharding(mesh, P()))


def place_state(tree, mesh: Mesh):
    """A train state (or its params) on ``mesh``: replicated (:func:`replicate`), or, on a
    mesh with seeds, every leaf ``[K, ...]`` split over the ``"seed"`` axis (each device holds
    its own seeds) and replicated over ``"data"``."""
    return _place(tree, NamedSharding(mesh, P("seed") if has_seeds(mesh) else P()))


def _place(tree, sharding: NamedSharding):
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return x if x.sharding.is_equivalent_to(sharding, x.ndim) else jax.device_put(x, sharding)
        return _to_global(x, sharding)

    return jax.tree.map(put, tree)


def shard_batch(batch: dict, mesh: Mesh, global_size: int | None = None, seeds: bool = False) -> dict:
    """Split a batch of numpy arrays across the ``"data"`` axis of ``mesh``.

    Args:
      batch: ``{name: [rows, ...]}``, or with ``seeds`` ``{name: [K, rows, ...]}`` (one batch per
        seed, split over ``"seed"`` and ``"data"``); non-arrays pass through. On a mesh with
        seeds a batch without them (evaluation: every seed scores the same rows) is replicated
        over ``"seed"``.
      global_size: ``None``: ``batch`` is the whole global batch (every process holds it all and
        contributes its own rows). An int: ``batch`` holds only this process's rows
        (:func:`process_rows` of a global batch of ``global_size``).
    Returns:
      ``{name: jax.Array [global rows, ...]}`` (``[K, global rows, ...]``) sharded on the rows.
    Raises:
      SeqjaxError: if the global batch size is not divisible by the number of devices
        (batches carry weight-0 padding rows, so choose a batch size that is a multiple of it).
    """
    sharding = NamedSharding(mesh, P("seed", "data") if seeds else P("data"))
    axis = 1 if seeds else 0
    out = {}
    for k, v in batch.items():
        if v is None or not isinstance(v, np.ndarray):
            out[k] = v
            continue
        size = global_size if global_size is not None else v.shape[axis]
        rows = process_rows(mesh, size)  # also checks divisibility
        shape = (*v.shape[:axis], size, *v.shape[axis + 1:])
        if global_size is not None:
            out[k] = jax.make_array_from_process_local_data(sharding, v, shape)
        elif jax.process_count() > 1:
            out[k] = jax.make_array_from_process_local_data(sharding, v[(slice(None),) * axis + (rows,)], shape)
        else:
            out[k] = jax.device_put(v, sharding)
    return out


def prefetch_depth() -> int:
    """Batches :func:`feed` prepares ahead: ``$SEQJAX_PREFETCH``, else 2 (0: none, on the main
    thread, as before the prefetcher: for measuring it)."""
    import os

    try:
        return max(0, int(os.environ.get("SEQJAX_PREFETCH", "2")))
    except ValueError:
        raise SeqjaxError(f"SEQJAX_PREFETCH={os.environ['SEQJAX_PREFETCH']!r}: give a whole number "
                          f"(batches prepared ahead; 0 = none)") from None


def ahead(items, depth: int):
    """The items of iterator ``items``, produced by a background thread up to ``depth`` ahead
    of the consumer (``depth`` 0: in the caller's thread). An exception in the producer is
    raised in the consumer, where the item it failed on would have come; a consumer that stops
    early (a break, an error, an interrupt) stops the producer at its next item."""
    if depth <= 0:
        yield from items
        return
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
            put((done, err))

    worker = threading.Thread(target=produce, name="seqjax-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, err = q.get()
            if err is not None:
                raise err
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def feed(data, mesh: Mesh, epoch: int = 0, start: int = 0, depth: int | None = None):
    """Global sharded batches of ``data`` (``batches(epoch, start)``), from batch ``start`` on,
    prepared (padded, put on the devices) by a background thread ``depth`` batches ahead of
    the step (default :func:`prefetch_depth`; see :func:`ahead`), so that the devices need not
    wait for the host between steps.

    With several processes, a dataset whose ``batches`` takes ``rows=`` (every
    :mod:`seqjax.data.batching` class) prepares only this process's rows of each batch; any
    other dataset yields whole global batches, of which each process keeps its rows. A dataset
    with a ``seeds`` attribute (:class:`seqjax.train.seeds.SeedBatches`) yields one batch per seed.
    """
    return ahead(_feed(data, mesh, epoch, start), prefetch_depth() if depth is None else depth)


def _feed(data, mesh: Mesh, epoch: int, start: int):
    seeds = bool(getattr(data, "seeds", None))
    if jax.process_count() > 1 and "rows" in inspect.signature(data.batches).parameters:
        rows = process_rows(mesh, data.batch_size)
        for batch in data.batches(epoch, start, rows=rows):
            yield shard_batch(batch, mesh, global_size=data.batch_size, seeds=seeds)
    else:
        for batch in data.batches(epoch, start):
            yield shard_batch(batch, mesh, seeds=seeds)


def agree(*flags: bool) -> tuple[bool, ...]:
    """Each flag true on *any* process, on every process (a collective: all must call it).

    One process is answered at once.
    """
    if jax.process_count() == 1:
        return tuple(bool(f) for f in flags)
    from jax.experimental import multihost_utils

    every = multihost_utils.process_allgather(np.array(flags, np.int32))  # [processes, flags]
    return tuple(bool(v) for v in np.asarray(every).reshape(jax.process_count(), len(flags)).any(0))


def is_main() -> bool:
    """True on the process that prints, logs and writes results (process 0)."""
    return jax.process_index() == 0
