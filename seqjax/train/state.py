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

from seqjax.configs import LR_SCHEDULES, OPTIMIZERS


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



def learning_rate(lr: float, schedule: str = "constant", total_steps: int = 0, warmup_steps: int = 0):
    """The learning rate as optax takes it: ``lr`` (constant), or an optax schedule ``step ->
    float32[]``: ``cosine`` decays from ``lr`` to 0 over ``total_steps``; ``warmup-cosine`` rises
    linearly from 0 to ``lr`` over ``warmup_steps``, then decays to 0 at ``total_steps``."""
    from seqjax import SeqjaxError

    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return optax.cosine_decay_schedule(lr, max(total_steps, 1))
    if schedule == "warmup-cosine":
        if not 0 < warmup_steps < total_steps:
            raise SeqjaxError(f"--warmup-steps {warmup_steps}: warmup-cosine needs 0 < warmup < the run's "
                              f"{total_steps:,} steps")
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps, total_steps, end_value=0.0)
    raise SeqjaxError(f"--lr-schedule {schedule!r}: choose {', '.join(LR_SCHEDULES)}")


def make_optimizer(name: str, lr: float, clip: float = 0.0, schedule: str = "constant", total_steps: int = 0,
                   warmup_steps: int = 0, weight_decay: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.999)) -> optax.GradientTransformation:
    """The optimizer of a run, built from optax's own transformations, with PyTorch's semantics.

    ``name``: ``rmsprop`` (PyTorch's: alpha 0.99, eps 1e-8 outside the square root), ``adam``
    (``betas``, eps 1e-8; with ``weight_decay`` it is AdamW, decoupled, as ``torch.optim.AdamW``)
    or ``sgd``; for rmsprop and sgd ``weight_decay`` adds ``weight_decay * param`` to the gradient,
    as their PyTorch ``weight_decay`` does. ``clip`` > 0 clips the gradient's global norm first.
    The learning rate follows :func:`learning_rate` (``schedule`` over ``total_steps``, the run's
    horizon, which a resumed run keeps: :func:`seqjax.tasks.experiment.resume_check`).
    """
    from seqjax import SeqjaxError

    lr_fn = learning_rate(lr, schedule, total_steps, warmup_steps)
    if name == "rmsprop":
        tx = optax.rmsprop(lr_fn, decay=0.99, eps=1e-8, eps_in_sqrt=False)
    elif name == "adam":
        b1, b2 = betas
        tx = (optax.adamw(lr_fn, b1, b2, eps=1e-8, weight_decay=weight_decay) if weight_decay
              else optax.adam(lr_fn, b1, b2, eps=1e-8))
    elif name == "sgd":
        tx = optax.sgd(lr_fn)
    else:
        raise SeqjaxError(f"--optimizer {name!r}: choose {', '.join(OPTIMIZERS)}")
    if weight_decay and name != "adam":
        tx = optax.chain(optax.add_decayed_weights(weight_decay), tx)
    return optax.chain(optax.clip_by_global_norm(clip), tx) if clip > 0 else tx


def optimizer_of(cfg, total_steps: int) -> optax.GradientTransformation:
    """:func:`make_optimizer` from a trainer's config: ``optimizer``, ``lr``, ``clip``,
    ``lr_schedule``, ``warmup_steps``, ``weight_decay``, ``beta1``, ``beta2``; ``total_steps``
    the run's horizon (epochs x steps per epoch)."""
    return make_optimizer(cfg.optimizer, cfg.lr, cfg.clip, cfg.lr_schedule, total_steps, cfg.warmup_steps,
                          cfg.weight_decay, (cfg.beta1, cfg.beta2))
