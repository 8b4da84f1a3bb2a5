"""Lab 7.1's baseline: an n-order Markov chain over chars or words (``seqjax markov``).

The chain itself is :mod:`seqjax.markov`; this is the experiment: fit on the text, print the
lab's counts and a sample, score a held-out tail. Writes no files.
"""

from __future__ import annotations

import numpy as np

from seqjax import configs, markov
from seqjax.data import text as textdata


def run(cfg: configs.MarkovConfig) -> dict:
    """The lab's Markov chain, then a held-out score.

    As the lab does, the counts, the distributions and the sample come from a chain fitted on
    the *whole* text ('a' -> 'b': 813 on Nietzsche). The held-out bits per symbol come from a
    second chain fitted on the first ``1 - valid_fraction`` of the text and scored on the rest
    (a chain that has seen the tail would score it unfairly).

    Returns ``order``, ``unit``, ``symbols`` (distinct), ``held_out_bits`` (bits per symbol
    on the tail) and, for chars, ``count_a_b`` and ``most_likely_after_j``."""
    text = textdata.read_text(cfg.text) if cfg.text else textdata.load_nietzsche(cfg.data_dir or None)
    syms = markov.symbols_of(text, cfg.unit)
    cut = len(syms) - int(round(len(syms) * cfg.valid_fraction))
    train, held = syms[:cut], syms[cut:]
    alphabet = sorted(set(syms)) if cfg.unit == "char" else None
    word = cfg.unit == "word"
    whole = markov.MarkovChain.fit(syms, cfg.order, cfg.beta, alphabet, unk=word)
    out: dict = {"order": cfg.order, "unit": cfg.unit, "symbols": whole.V}
    print(f"{cfg.unit}-level order-{cfg.order} Markov chain on the whole text: {len(syms):,} "
          f"symbols, {whole.V} distinct")
    if cfg.unit == "char" and cfg.order >= 1 and {"a", "b", "j"} <= set(alphabet):
        one = whole if cfg.order == 1 else markov.MarkovChain.fit(syms, 1, cfg.beta, alphabet)
        out["count_a_b"] = one.count(["a"], "b")
        print(f"transitions 'a' -> 'b': {out['count_a_b']}")
        p = one.next_distribution(["a"])
        top = np.argsort(-p)[:8]
        print("P(next | 'a'): " + ", ".join(f"{one.symbols[i]!r} {p[i]:.3f}" for i in top))
        pj = one.next_distribution(["j"])
        out["most_likely_after_j"] = one.symbols[int(np.argmax(pj))]
        print(f"most likely letter after 'j': {out['most_likely_after_j']!r} (p = {pj.max():.3f})")
    start = list(cfg.start) if cfg.unit == "char" else cfg.start.split()
    sample = whole.sample(cfg.sample, start, cfg.seed)
    joiner = "" if cfg.unit == "char" else " "
    print(f"\n--- {cfg.sample} sampled {cfg.unit}s (seed {cfg.seed}) ---\n{joiner.join(sample)}\n---")
    chain = markov.MarkovChain.fit(train, cfg.order, cfg.beta, alphabet, unk=word)
    out["held_out_bits"] = chain.bits_per_symbol(held, context=train)
    print(f"held-out cross-entropy: {out['held_out_bits']:.4f} bits per {cfg.unit} (a chain fitted on "
          f"the first {1 - cfg.valid_fraction:.0%}, {len(train):,} symbols, scored on the last "
          f"{cfg.valid_fraction:.0%}, {len(held):,}; smoothing beta={cfg.beta})")
    return out
