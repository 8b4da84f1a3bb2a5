"""TrainState: everything a step changes, as one pytree (so it jit-donates, shards, saves).

Fields: ``step int32[]``, ``params``, ``opt_state``, ``rng`` (a typed ``jax.random`` key
array), ``carry`` (model state carried across batches, e.g. stateful LM streams; ``None``
when unused), and ``tx``, the optimizer: a static field (not a leaf: never traced, donated or
saved). The model is not part of the state: the loss function given to the train step
closes over it (:mod:`seqjax.train.loop`).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax.numpy as jnp
import optax


class TrainState(flax.struct.PyTreeNode):
    step: jnp.ndarray
    params: Any
    opt_state: Any
    rng: jnp.ndarray
    carry: Any = None
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False, default=None)

    @classmethod
    def create(cls, params, tx: optax.GradientTransformation, rng, carry=None) -> "TrainState":
        return cls(jnp.zeros((), jnp.int32), params, tx.init(params), rng, carry, tx)

    def apply_gradients(self, grads) -> "TrainState":
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                            opt_state=opt_state)


def step_of(state) -> int:
    """The step count of ``state`` as a host int (a run of several seeds holds one per seed, all
    equal: :mod:`seqjax.train.seeds`)."""
    import jax
    import numpy as np

    return int(np.max(jax.device_get(state.step)))


def make_optimizer(name: str, lr: float, clip: float = 0.0, schedule: str = "constant",
                   total_steps: int = 0) -> optax.GradientTransformation:
    """``name`` in {rmsprop (PyTorch semantics), adam, sgd}; optional global-norm clip and cosine decay."""
    from seqjax import SeqjaxError

    lr_fn = optax.cosine_decay_schedule(lr, max(total_steps, 1)) if schedule == "cosine" else lr
    if schedule not in ("constant", "cosine"):
        raise SeqjaxError(f"--lr-schedule {schedule!r}: choose constant or cosine")
    if name == "rmsprop":
        tx = optax.rmsprop(lr_fn, decay=0.99, eps=1e-8, eps_in_sqrt=False)
    elif name == "adam":
        tx = optax.adam(lr_fn)  # PyTorch defaults: b1 0.9, b2 0.999, eps 1e-8
    elif name == "sgd":
        tx = optax.sgd(lr_fn)
    else:
        raise SeqjaxError(f"--optimizer {name!r}: choose rmsprop, adam or sgd")
    return optax.chain(optax.clip_by_global_norm(clip), tx) if clip > 0 else tx
