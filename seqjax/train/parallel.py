"""Data parallelism over all local devices with ``jax.jit`` + ``NamedSharding``.

A 1-D mesh named ``"data"`` spans ``jax.devices()``; params and optimizer state are
replicated, every batch array is split on its leading axis. jit then compiles one SPMD
program (the role ``pmap`` used to play); the train step computes its gradient under
``shard_map`` so that it is summed across devices once per step
(:func:`seqjax.train.loop.make_train_step`). With several processes (``--distributed``,
``jax.distributed.initialize()``), each process feeds its share of the global batch and
:func:`shard_batch` assembles the global array with ``jax.make_array_from_process_local_data``.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(devices=None) -> Mesh:
    """A 1-D ``"data"`` mesh over ``devices`` (default: all devices of all processes)."""
    return Mesh(np.array(devices if devices is not None else jax.devices()), ("data",))


def replicate(tree, mesh: Mesh):
    """Put every leaf of ``tree`` on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(batch: dict, mesh: Mesh) -> dict:
    """Split each ``[global_batch, ...]`` numpy array of ``batch`` across the ``"data"`` axis.

    The leading dimension must be divisible by the number of devices (batches carry
    weight-0 padding rows, so choose a batch size that is a multiple of it).
    """
    sharding = NamedSharding(mesh, P("data"))
    n = mesh.devices.size
    out = {}
    for k, v in batch.items():
        if v is None or not hasattr(v, "shape") or not isinstance(v, np.ndarray):
            out[k] = v
            continue
        if v.shape[0] % n:
            from seqjax import SeqjaxError
            raise SeqjaxError(f"batch size {v.shape[0]} is not divisible by the {n} devices; "
                              f"use --batch-size a multiple of {n}")
        if jax.process_count() > 1:  # every process builds the same global batch; feed our rows
            rows = v.shape[0] // jax.process_count()
            local = v[jax.process_index() * rows:(jax.process_index() + 1) * rows]
            out[k] = jax.make_array_from_process_local_data(sharding, local, v.shape)
        else:
            out[k] = jax.device_put(v, sharding)
    return out
