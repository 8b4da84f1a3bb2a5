"""``--precision float32 | bfloat16``: mixed precision, the usual recipe.

With ``bfloat16`` the training step's matmuls, convolutions and layer outputs compute in
bfloat16, while the parameters, the optimizer state, the recurrent carries (the LSTM's cell state
``c``, a sum over every step), the softmax / loss and every sum over a batch or a text stay
float32: the models cast the float32 parameters to their ``dtype`` where they use them and cast
back up where they sum (``seqjax.nn``). bfloat16 has float32's exponent range, so no loss scaling
is needed (unlike float16). Evaluation, sampling, checkpoints and PyTorch parity stay float32:
the loss a run reports is the float32 model's, on the same parameters.

TPUs run bfloat16 matmuls natively and recent GPUs at several times their float32 rate. XLA:CPU
runs them slower than float32, even on a CPU with bfloat16 instructions (this one has
``avx512_bf16``; PyTorch's oneDNN uses them): on a CPU bfloat16 is for testing, not speed
(``benchmarks/accelerator.py``, results/benchmarks/cpu.json).
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(precision: str):
    """The compute dtype of ``--precision`` (``float32`` or ``bfloat16``)."""
    return DTYPES[precision]


def train_in(precision: str, loss_in: Callable, eval_loss: Callable) -> Callable:
    """A ``loss_fn(params, batch, rng, train)`` (:func:`seqjax.train.loop.fit`) whose training
    steps compute in ``precision`` and whose evaluation is ``eval_loss`` (the float32 model, same
    parameters); ``loss_in(dtype)`` builds the loss of the model computing in ``dtype``, called
    only for a precision other than float32 (float32 returns ``eval_loss`` itself). ``train`` is
    a Python bool in both."""
    if precision == "float32":
        return eval_loss
    train_loss = loss_in(compute_dtype(precision))

    def loss_fn(params, batch, rng, train):
        return (train_loss if train else eval_loss)(params, batch, rng, train)

    return loss_fn
