"""Numbers that vary with the seed: their spread, and comparisons that hold statistically.

:func:`summarize` gives a metric over seeds as mean, standard deviation and a 95 % bootstrap
confidence interval of the mean; :func:`compare` gives two such samples (seqjax and the PyTorch
reference, say) the difference of their means with its 95 % bootstrap interval, Welch's t-test
p-value and a verdict: "matches" only when that interval contains 0, "better" / "worse" when it
lies above / below 0. The intervals and the test come from :mod:`scipy.stats` (``bootstrap``,
BCa, 10,000 resamples from a fixed seed, so a report is repeatable; ``ttest_ind`` with
``equal_var=False``), not from code of ours.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

RESAMPLES = 10_000
CONFIDENCE = 0.95


def _interval(data: tuple, statistic) -> list[float] | None:
    from scipy import stats

    if any(len(d) < 2 for d in data) or all(np.ptp(d) == 0 for d in data):
        return None  # no spread to resample (BCa is undefined): the interval is the point itself or unknown
    res = stats.bootstrap(data, statistic, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                          method="BCa", random_state=np.random.default_rng(0), vectorized=True)
    lo, hi = res.confidence_interval
    if not (math.isfinite(lo) and math.isfinite(hi)):  # BCa degenerate on tiny samples: percentile
        res = stats.bootstrap(data, statistic, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                              method="percentile", random_state=np.random.default_rng(0), vectorized=True)
        lo, hi = res.confidence_interval
    return [float(lo), float(hi)]


def summarize(values: Sequence[float]) -> dict:
    """A metric over seeds (``float[n]``) -> ``{"n", "mean", "std" (ddof 1), "ci95": [lo, hi] | None,
    "values"}``; the interval is the bootstrap's for the mean (``None`` with fewer than 2 values
    or none of spread)."""
    v = np.asarray(values, np.float64)
    ci = _interval((v,), lambda x, axis: np.mean(x, axis=axis))
    if ci is None and len(v) >= 2:
        ci = [float(v[0]), float(v[0])]
    return {"n": int(len(v)), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "ci95": ci, "values": [float(x) for x in v]}


def compare(ours: Sequence[float], reference: Sequence[float], higher_is_better: bool = True) -> dict:
    """``ours`` against ``reference`` (two independent samples over seeds, ``float[n]`` and
    ``float[m]``): ``{"difference": mean(ours) - mean(reference), "ci95": [lo, hi] | None,
    "p_welch", "verdict"}``. The verdict is ``"matches"`` when the interval contains 0, else
    ``"better"`` or ``"worse"`` (by ``higher_is_better``); ``"too few seeds"`` below 2 a side."""
    from scipy import stats

    a, b = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    diff = float(a.mean() - b.mean())
    ci = _interval((a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis))
    if len(a) < 2 or len(b) < 2:
        return {"difference": diff, "ci95": None, "p_welch": None, "verdict": "too few seeds"}
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    if ci is None:  # neither side varies: the difference is exact
        ci = [diff, diff]
    if ci[0] <= 0.0 <= ci[1]:
        verdict = "matches"
    else:
        verdict = "better" if (ci[0] > 0) == higher_is_better else "worse"
    return {"difference": diff, "ci95": ci, "p_welch": p if math.isfinite(p) else None, "verdict": verdict}


def aggregate(per_seed: Sequence[dict], keys: Sequence[str]) -> dict:
    """``{key: summarize([d[key] for d in per_seed])}`` for each ``key`` every seed's dict has."""
    return {k: summarize([d[k] for d in per_seed]) for k in keys
            if all(isinstance(d.get(k), (int, float)) and d.get(k) is not None for d in per_seed)}
