"""Epoch-end callbacks for :func:`seqjax.train.loop.fit`: ``on_epoch_end(epoch, state, metrics)``.

A callback may add entries to ``metrics`` (they go to the JSONL log and the history) and
returns True to stop training. With several processes every process calls every callback with
the same replicated state and metrics (so stop decisions agree); only process 0 prints or
writes files.
"""

from __future__ import annotations

import math
import os
from typing import Callable

import flax.serialization
import jax

from seqjax.train import parallel


class SampleText:
    """Print (and record in ``metrics["samples"]``) text generated at several temperatures.

    Args:
      generate: ``(params, seed_text, temperatures, key) -> list[str]``.
      seed_texts: ``epoch -> str`` (the lab draws a random 39-char window each epoch).
      temperatures: e.g. ``(0.2, 0.5, 1.0, 1.2)``. seed: base of the sampling key.
    """

    def __init__(self, generate: Callable, seed_texts: Callable[[int], str],
                 temperatures=(0.2, 0.5, 1.0, 1.2), seed: int = 0, echo: bool = True):
        self.generate, self.seed_texts, self.temperatures = generate, seed_texts, tuple(temperatures)
        self.seed, self.echo = seed, echo

    def on_epoch_end(self, epoch, state, metrics):
        seed_text = self.seed_texts(epoch)
        key = jax.random.fold_in(jax.random.PRNGKey(self.seed), epoch)
        # Params spread over several processes are fetched first: sampling is local work.
        params = jax.device_get(state.params) if jax.process_count() > 1 else state.params
        texts = self.generate(params, seed_text, self.temperatures, key)
        metrics["seed_text"] = seed_text
        metrics["samples"] = {str(t): s for t, s in zip(self.temperatures, texts)}
        if self.echo and parallel.is_main():
            print(f'\n--- epoch {epoch + 1}: seed "{seed_text}"')
            for t, s in zip(self.temperatures, texts):
                print(f"--- temperature {t}:\n{seed_text}{s}\n")


class EarlyStop:
    """Stop when ``metric`` (lower is better) has not improved for ``patience`` epochs."""

    def __init__(self, metric: str = "valid_loss", patience: int = 3):
        self.metric, self.patience, self.best, self.bad = metric, patience, math.inf, 0

    def on_epoch_end(self, epoch, state, metrics):
        v = metrics.get(self.metric, math.inf)
        if v < self.best:
            self.best, self.bad = v, 0
        else:
            self.bad += 1
        return self.bad >= self.patience


class KeepBest:
    """Keep the params with the lowest ``metric`` (e.g. to score the test set with).

    With ``path``, the best params are also written there (msgpack) on each improvement, and
    :meth:`resume` reloads them, so a resumed run still tests the best epoch.
    """

    def __init__(self, metric: str = "valid_loss", path=None):
        self.metric, self.best, self.params, self.epoch, self.path = metric, math.inf, None, None, path

    def on_epoch_end(self, epoch, state, metrics):
        v = metrics.get(self.metric, math.inf)
        if v < self.best:
            self.best, self.epoch = v, epoch + 1
            self.params = jax.device_get(state.params)
            if self.path is not None and parallel.is_main():
                tmp = f"{self.path}.tmp"
                with open(tmp, "wb") as f:
                    f.write(flax.serialization.to_bytes(self.params))
                os.replace(tmp, self.path)  # atomic
        metrics[f"best_{self.metric}_epoch"] = self.epoch

    def resume(self, template_params, history: list[dict]) -> None:
        """Restore the best so far from ``history`` and the params file (if both exist)."""
        scored = [(h[self.metric], h["epoch"]) for h in history if self.metric in h]
        if scored and self.path is not None and os.path.exists(self.path):
            self.best, self.epoch = min(scored)
            with open(self.path, "rb") as f:
                self.params = flax.serialization.from_bytes(jax.device_get(template_params), f.read())
