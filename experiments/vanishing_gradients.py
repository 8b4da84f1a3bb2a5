"""Vanishing gradients: for trained char models, the norm of the gradient of the last-step loss
with respect to each input embedding, against its distance from the end of the window,
averaged over held-out windows (one jit call per model).

``SEQJAX_DATA_DIR=../shared/data python experiments/vanishing_gradients.py runs/workshop/{rnn,gru,lstm}_last``
-> results/workshop/vanishing_gradients.png (+ .json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from seqjax import configs  # noqa: E402
from seqjax.data import text as textdata  # noqa: E402
from seqjax.nn.charlm import input_gradient_norms  # noqa: E402
from seqjax.tasks import charlm  # noqa: E402
from seqjax.tasks.experiment import load_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(run_dirs: list[str], n_windows: int = 2048) -> None:
    curves = {}
    for d in run_dirs:
        saved = load_run(d, "charlm")
        meta = saved.meta
        cfg = configs.CharLMConfig(**meta["config"])
        corpus = charlm.load_corpus(cfg)
        x, y = textdata.context_windows(corpus.valid_ids, corpus.train_ids, cfg.seq_len)
        idx = np.random.default_rng(0).choice(len(x), min(n_windows, len(x)), replace=False)
        model = charlm.build_model(cfg, len(corpus.vocab))
        initial = charlm.init_state(cfg, model, 1)
        state = saved.restore(initial)
        steps = meta["history"][-1]["step"] if meta["history"] else 0
        for label, params in ((f"{cfg.cell}, trained ({steps:,} steps, {cfg.objective})", state.params),
                              (f"{cfg.cell}, at initialisation", initial.params)):
            norms = input_gradient_norms(model, params, jnp.asarray(x[idx]), jnp.asarray(y[idx]))
            curves[label] = np.asarray(norms).tolist()
            print(label, " ".join(f"{v:.2e}" for v in np.asarray(norms)[[0, 4, 9, 19, 39]]))
    out = ROOT / "results" / "workshop" / "vanishing_gradients"
    out.parent.mkdir(parents=True, exist_ok=True)
    plt.figure(figsize=(7, 4.5))
    colours = {}
    for label, c in curves.items():
        cell = label.split(",")[0]
        colours.setdefault(cell, f"C{len(colours)}")
        plt.semilogy(np.arange(len(c)), c, label=label, color=colours[cell],
                     linestyle="--" if "initialisation" in label else "-")
    plt.xlabel("distance from the end of the 40-char window")
    plt.ylabel("|| d loss / d input embedding ||")
    plt.title("gradient reaching back through time (held-out windows)")
    plt.legend(fontsize=8)
    plt.grid(alpha=0.3)
    plt.tight_layout()
    plt.savefig(out.with_suffix(".png"), dpi=110)
    out.with_suffix(".json").write_text(json.dumps({"command": "python " + " ".join(sys.argv), "curves": curves}, indent=1))
    print(f"written {out.with_suffix('.png')}")


if __name__ == "__main__":
    main(sys.argv[1:])
