"""seqjax's LSTM layers through cuDNN: :class:`seqjax.nn.recurrent.RNN`'s parameters on
``jax.experimental.rnn``.

``jax.experimental.rnn.lstm`` runs a whole (stacked, optionally bidirectional) LSTM as one
cuDNN call, forward and backward, on a CUDA backend only (its primitive has no CPU lowering;
on CPU it cannot even be traced). ``jax.experimental.rnn.lstm_ref`` is its ``lax.scan``
reference, which runs anywhere. Both take one flat ``float32`` weight vector; this module maps
an ``RNN(cell="lstm")``'s parameters onto it (:func:`flat_weights`) and gives back the RNN's
conventions (:func:`lstm`), so the same parameters train through either.

The weight vector (``jax.experimental.rnn``'s module docstring, ``unpack_lstm_weights``): the
matrices of every pseudo-layer (PyTorch's order: l0, l0_reverse, l1, ...), each ``W_ih`` then
``W_hh`` row-major, then the biases of every pseudo-layer, each ``b_ih`` then ``b_hh``::

    (W_ih^0, W_hh^0, W_ih^1, W_hh^1, ..., b_ih^0, b_hh^0, b_ih^1, b_hh^1, ...)

Gate order: cuDNN's ``CUDNN_LSTM`` (linear layers 0-3: input, forget, new memory, output) and
``lstm_ref`` (``jnp.split`` into ``i, f, g, o``) both use PyTorch's ``i, f, g, o``, which is
seqjax's (:mod:`seqjax.nn.cells`), so the blocks are copied unchanged.
``jax.experimental.rnn.swap_lstm_gates`` exists for ROCm's MIOpen, whose order differs; ROCm is
not supported here (:func:`available` is False there).

Where cuDNN applies (:func:`available` and :func:`usable`): a CUDA backend, ``float32`` inputs
and compute (the RNN's ``dtype``), a plain ``"lstm"`` cell, and no inter-layer dropout while
training (cuDNN's dropout mask comes from its own generator, not a JAX key). Sequences of
length 0 are handled here (:func:`lstm`), so lengths never rule cuDNN out.

Shapes: ``B`` batch, ``T`` padded length, ``F`` input width, ``H`` hidden, ``L`` layers,
``D`` directions (2 if bidirectional, else 1).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.experimental.rnn as jrnn
import jax.numpy as jnp
from jax.extend.backend import get_backend

from seqjax.nn.cells import PARAM_NAMES
from seqjax.nn.recurrent import RNN, sequence_mask

Carry = tuple[jnp.ndarray, jnp.ndarray]


def _directions(num_layers: int, bidirectional: bool) -> list[str]:
    """Parameter-name suffixes of an LSTM stack, ``l0, l0_reverse, l1, ...``: the pseudo-layer
    order of ``jax.experimental.rnn``."""
    return RNN(1, "lstm", num_layers=num_layers, bidirectional=bidirectional).directions()


def flat_weights(params: dict, hidden: int, num_layers: int, bidirectional: bool,
                 input_size: int) -> jnp.ndarray:
    """``RNN(hidden, "lstm", num_layers, bidirectional)``'s parameters as
    ``jax.experimental.rnn``'s flat weight vector.

    Args:
      params: ``variables["params"]`` of the RNN: for each direction suffix ``s`` (``l{k}``,
        ``l{k}_reverse``) ``weight_ih_{s} float32[4H, K]`` (``K = input_size`` in layer 0,
        ``D*H`` above), ``weight_hh_{s} float32[4H, H]``, ``bias_ih_{s}``, ``bias_hh_{s}``
        ``float32[4H]``; gate order ``i, f, g, o``. Nothing else.
      hidden: ``H``. num_layers: ``L``. bidirectional: ``D = 2``. input_size: ``F``.

    Returns:
      ``float32[N]``, ``N = jax.experimental.rnn.get_num_params_in_lstm(F, H, L, bidirectional)``,
      in the layout ``jax.experimental.rnn.lstm`` and ``unpack_lstm_weights`` read (module
      docstring). Built from reshapes and one concatenation, so gradients with respect to it
      flow back to ``params``.

    Raises:
      ValueError: a parameter missing, unexpected (another cell's), or of the wrong shape.
    """
    D = 2 if bidirectional else 1
    suffixes = _directions(num_layers, bidirectional)
    expected = {f"{n}_{s}" for s in suffixes for n in PARAM_NAMES}
    if set(params) != expected:
        raise ValueError(f"not the parameters of a {num_layers}-layer{' bidirectional' if bidirectional else ''} "
                         f"LSTM: missing {sorted(expected - set(params))}, unexpected {sorted(set(params) - expected)}")
    G = 4 * hidden
    matrices, biases = [], []
    for i, s in enumerate(suffixes):
        K = input_size if i < D else D * hidden
        shapes = {"weight_ih": (G, K), "weight_hh": (G, hidden), "bias_ih": (G,), "bias_hh": (G,)}
        for name, shape in shapes.items():
            p = params[f"{name}_{s}"]
            if tuple(p.shape) != shape:
                raise ValueError(f"{name}_{s}: shape {tuple(p.shape)}, expected {shape} "
                                 f"(hidden {hidden}, input_size {input_size})")
            (matrices if name.startswith("weight") else biases).append(jnp.ravel(p).astype(jnp.float32))
    return jnp.concatenate(matrices + biases)


def available() -> bool:
    """Whether :func:`lstm` can take the cuDNN path: JAX's default backend is a CUDA GPU and
    jaxlib's cuDNN RNN kernels are loaded (``jax.experimental.rnn`` lowers only for CUDA)."""
    try:
        backend = get_backend()
    except RuntimeError:
        return False
    if backend.platform != "gpu" or "cuda" not in str(backend.platform_version).lower():
        return False
    from jax._src.lib import gpu_rnn  # jaxlib's CUDA plugin registers the kernels here

    return gpu_rnn is not None and hasattr(gpu_rnn, "compute_rnn_workspace_reserve_space_sizes")


def usable(x_dtype, lengths=None) -> bool:
    """Whether inputs of dtype ``x_dtype`` (with ``lengths``, if given) can go through
    :func:`lstm`'s cuDNN path: ``float32`` only (``jax.experimental.rnn`` supports no other
    dtype; an RNN with ``dtype`` bfloat16 keeps seqjax's scan), and ``lengths`` of an integer
    dtype (cast to ``int32``). Any length in ``[0, T]`` is usable: a length 0, which makes
    cuDNN's backward pass fail (jax issue #17966), is run as length 1 and masked
    (:func:`lstm`). Says nothing of the backend: see :func:`available`."""
    if jnp.dtype(x_dtype) != jnp.float32:
        return False
    return lengths is None or jnp.issubdtype(jnp.asarray(lengths).dtype, jnp.integer)


def lstm(params: dict, x_BTF: jnp.ndarray, lengths_B: jnp.ndarray | None, hidden: int, num_layers: int = 1,
         bidirectional: bool = False, initial: Sequence[Carry] | None = None, *, reference: bool = False,
         precision=None) -> tuple[jnp.ndarray, list[Carry]]:
    """``RNN(hidden, "lstm", num_layers, bidirectional)`` applied with ``params``, as one
    ``jax.experimental.rnn.lstm`` call (cuDNN) or, with ``reference``, its ``lstm_ref``.

    Args:
      params: the RNN's ``variables["params"]`` (:func:`flat_weights`).
      x_BTF: ``float32[B, T, F]``; steps past each length are ignored.
      lengths_B: ``int32[B]`` in ``[0, T]``, or ``None`` (every sequence ``T`` long).
      initial: as the RNN's: a list over layers x directions (l0, l0_reverse, l1, ...) of
        ``(h, c)``, each ``float32[B, H]``; ``None``: zeros.
      reference: run ``jax.experimental.rnn.lstm_ref`` (``lax.scan``, any backend) instead of
        cuDNN; same mapping, same results.
      precision: cuDNN's matmul precision (``jax.experimental.rnn.lstm``'s): ``None`` follows
        ``jax.default_matmul_precision`` (unset: TF32 allowed, as XLA's float32 matmuls on the
        same GPU); ``"highest"`` disables TF32. ``lstm_ref`` follows
        ``jax.default_matmul_precision`` only.

    Returns:
      ``(outputs float32[B, T, D*H], finals)`` as the RNN's: outputs zero at ``t >= length``,
      ``[fwd, bwd]`` concatenated; ``finals`` a list over layers x directions of ``(h, c)``
      ``float32[B, H]``, each the state after the sequence's last real step (the reverse
      direction runs each sequence reversed within its length), the initial state for a
      sequence of length 0.

    Length 0: cuDNN fails on it (the backward pass if any length is 0, the forward pass if all
    are; jax issue #17966), and ``lstm_ref`` returns the state after the padding as its final.
    Such rows run with length 1 and then take the RNN's results: outputs zero and finals the
    initial state, by ``jnp.where``, so their gradients are the RNN's too (none to ``x``, the
    finals' straight to ``initial``).

    Raises:
      RuntimeError: the cuDNN path without a CUDA backend (:func:`available`).
      ValueError: ``x_BTF`` not ``float32``, or ``initial`` of the wrong length.
    """
    if not reference and not available():
        raise RuntimeError(f"the cuDNN LSTM needs a CUDA backend (default backend: {jax.default_backend()}); "
                           "reference=True runs jax.experimental.rnn.lstm_ref")
    if not usable(x_BTF.dtype, lengths_B):
        raise ValueError(f"cuDNN's LSTM takes float32 inputs and integer lengths, got {x_BTF.dtype}"
                         + ("" if lengths_B is None else f" and {jnp.asarray(lengths_B).dtype}"))
    B, T, F = x_BTF.shape
    D = 2 if bidirectional else 1
    P = num_layers * D
    weights = flat_weights(params, hidden, num_layers, bidirectional, F)
    lengths_B = jnp.full((B,), T, jnp.int32) if lengths_B is None else jnp.asarray(lengths_B, jnp.int32)
    if initial is None:
        h0_PBH = c0_PBH = jnp.zeros((P, B, hidden), jnp.float32)
    else:
        if len(initial) != P:
            raise ValueError(f"initial: {len(initial)} carries, expected {P} (layers x directions)")
        h0_PBH = jnp.stack([jnp.asarray(h, jnp.float32) for h, _ in initial])
        c0_PBH = jnp.stack([jnp.asarray(c, jnp.float32) for _, c in initial])
    run_B = jnp.clip(lengths_B, 1, T)  # length 0 runs as 1; its results are replaced below
    if reference:
        W_ih, W_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(weights, F, hidden, num_layers, bidirectional)
        y_BTG, h_PBH, c_PBH = jrnn.lstm_ref(x_BTF, h0_PBH, c0_PBH, W_ih, W_hh, b_ih, b_hh, run_B,
                                            F, hidden, num_layers, 0.0, bidirectional)
    else:
        y_BTG, h_PBH, c_PBH = jrnn.lstm(x_BTF, h0_PBH, c0_PBH, weights, run_B,
                                        F, hidden, num_layers, 0.0, bidirectional, precision)
    # what cuDNN leaves at padded steps is jaxlib's choice, not jax's API; and length-0 rows ran one step
    y_BTG = jnp.where(sequence_mask(lengths_B, T)[:, :, None], y_BTG, 0.0)
    empty_B1 = (lengths_B == 0)[:, None]
    finals = [(jnp.where(empty_B1, h0_PBH[i], h_PBH[i]), jnp.where(empty_B1, c0_PBH[i], c_PBH[i]))
              for i in range(P)]
    return y_BTG, finals
