"""What seqjax does differently per backend (CPU, GPU, TPU), each decision with what backs it.

| decision | CPU | GPU / TPU |
|---|---|---|
| recurrence input projection (:func:`projection`) | by shape: ``fused`` when ``8F <= H`` for rnn/lstm, else ``separate`` (measured, ``benchmarks/recurrence.py``) | ``hoisted``: one ``[T*B, F] @ [F, G]`` matmul before the loop, cuDNN's way (expected, not measured here) |
| ``lax.scan`` unroll (:func:`unroll`) | 1 (measured: unrolling gave nothing at the lab's shapes, ``benchmarks/recurrence.py``) | 8: a step is a few small kernels, and a loop of thousands of steps is bound by their launches (jax#13111, jax#16611); a documented default, not measured here |
| a bidirectional layer's two directions (:func:`fuse_directions`) | two loops (measured faster, ``benchmarks/bidirectional.py``) | one loop: half the steps, so half the launches (expected) |
| LSTM layers through cuDNN (:func:`recurrence`, ``--recurrence``) | never (no cuDNN) | ``auto`` picks ``jax.experimental.rnn``'s cuDNN LSTM on CUDA for float32 LSTM layers without inter-layer dropout (:mod:`seqjax.nn.cudnn`) |
| allocator: keep freed memory (``seqjax.runtime.tune_allocator``) | yes (measured 57 -> 37 ms per char-LSTM step) | no: device memory is XLA's own |
| host pacing with several devices (``seqjax.train.loop._Pace``) | yes (XLA:CPU's thread pool hangs without it) | no: the queue of programs is the device's |
| deterministic kernels (``--deterministic``, on by default) | always (XLA:CPU is) | ``--xla_gpu_deterministic_ops=true`` (openxla/xla#12520), which also covers the scatter-adds of the embedding and convolution gradients; TPU's ops are deterministic |

The backend is JAX's default one (``jax.default_backend()``), read when a model is built. This
module imports JAX only inside its functions: the command line reads :func:`deterministic`
before JAX starts.
"""

from __future__ import annotations

import os

GPU_TPU_UNROLL = 8
DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"


def platform() -> str:
    """``"cpu"``, ``"gpu"`` or ``"tpu"`` (JAX's default backend; starts JAX's backends)."""
    import jax

    return jax.default_backend()


def on_cpu() -> bool:
    """Whether JAX runs on the CPU."""
    return platform() == "cpu"


def projection(kind: str, features: int, hidden: int) -> str:
    """The input projection of a recurrence of cell ``kind`` over inputs of width ``features``
    with ``hidden`` units (see the module table)."""
    if not on_cpu():
        return "hoisted"
    return "fused" if 8 * features <= hidden and kind in ("rnn", "lstm") else "separate"


def unroll(asked: int = 0) -> int:
    """``asked`` (``--unroll``) when > 0, else the backend's default (see the module table)."""
    return asked if asked > 0 else (1 if on_cpu() else GPU_TPU_UNROLL)


def fuse_directions(asked: bool | None = None) -> bool:
    """``asked`` when given, else whether a bidirectional layer runs both directions in one loop."""
    return (not on_cpu()) if asked is None else asked


def recurrence(asked: str, cell: str, dtype, dropout_between_layers: bool) -> str:
    """``"scan"`` or ``"cudnn"`` for ``--recurrence asked`` (``auto | scan | cudnn``): ``auto`` is
    cuDNN on a CUDA backend for a float32 LSTM without dropout between its layers (cuDNN draws
    its own dropout masks, not from the run's keys), else the scan.

    Raises:
      ValueError: ``cudnn`` asked where it cannot run (no CUDA, another cell, bfloat16).
    """
    import jax.numpy as jnp

    from seqjax.nn import cudnn

    if asked not in ("auto", "scan", "cudnn"):
        raise ValueError(f"recurrence {asked!r}: choose auto, scan or cudnn")
    fits = cell == "lstm" and jnp.dtype(dtype) == jnp.float32 and not dropout_between_layers
    if asked == "cudnn":
        if not cudnn.available():
            raise ValueError(f"--recurrence cudnn: needs a CUDA GPU (this backend is {platform()}); use auto or scan")
        if not fits:
            raise ValueError("--recurrence cudnn: cuDNN runs float32 LSTM layers without dropout between them; "
                             "use auto or scan")
        return "cudnn"
    return "cudnn" if asked == "auto" and fits and cudnn.available() else "scan"


def paces_host() -> bool:
    """Whether the training loop keeps the host one step ahead of several devices (CPU only)."""
    import jax

    return on_cpu() and jax.device_count() > 1


def deterministic(on: bool = True) -> None:
    """Ask XLA for deterministic GPU kernels (``--deterministic``; :data:`DETERMINISTIC_FLAG` in
    ``$XLA_FLAGS``) or leave them to XLA (``on=False``). Must run before JAX starts its backends;
    a setting already in ``$XLA_FLAGS`` wins."""
    flags = os.environ.get("XLA_FLAGS", "")
    if on and "xla_gpu_deterministic_ops" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_FLAG}".strip()


def checked_recurrence(cfg, dtype) -> str:
    """``cfg.recurrence`` (``auto`` where a saved config predates it) once :func:`recurrence`
    accepts it for ``cfg``'s cell, ``dtype`` and dropout; the model resolves ``auto`` itself.

    Raises:
      SeqjaxError: ``--recurrence cudnn`` where cuDNN cannot run it (the reason and the fix).
    """
    from seqjax import SeqjaxError

    asked = getattr(cfg, "recurrence", "auto")
    try:
        recurrence(asked, cfg.cell or "lstm", dtype, cfg.dropout > 0 and cfg.layers > 1)
    except ValueError as err:
        raise SeqjaxError(str(err)) from None
    return asked
