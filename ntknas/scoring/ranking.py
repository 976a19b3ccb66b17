"""Rank correlations between a score and the truth, with ties handled as statisticians do."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def oriented(values, higher_is_better: bool) -> np.ndarray:
    """Scores as float64 with "higher is better"; non-finite ones become -inf (rank last, tied)."""
    v = np.asarray(values, dtype=np.float64)
    v = v if higher_is_better else -v
    return np.where(np.isfinite(v), v, -np.inf)


def average_ranks(values) -> np.ndarray:
    """1-based ranks, ascending; tied values share the mean of their ranks."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    ranks = np.empty(len(v), dtype=np.float64)
    start = 0
    for end in range(1, len(v) + 1):
        if end == len(v) or sorted_v[end] != sorted_v[start]:
            ranks[order[start:end]] = (start + end + 1) / 2
            start = end
    return ranks


def spearman_rho(a, b) -> float:
    """Spearman's ρ: Pearson correlation of the average ranks; NaN when either side is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def kendall_tau(a, b) -> float:
    """Kendall's τ-b, which corrects for ties on either side; NaN when either side is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = len(a)
    concordance = 0.0
    with np.errstate(invalid="ignore"):  # -inf minus -inf: a tie, see _sign
        for i in range(n - 1):  # one row of pairs at a time keeps memory at O(n)
            concordance += float((_sign(a[i + 1 :] - a[i]) * _sign(b[i + 1 :] - b[i])).sum())
    pairs = n * (n - 1) / 2
    denominator = np.sqrt((pairs - _tied_pairs(a)) * (pairs - _tied_pairs(b)))
    return concordance / denominator if denominator > 0 else float("nan")


def _sign(d: np.ndarray) -> np.ndarray:
    """Sign of differences; -inf minus -inf (two tied last places) counts as a tie."""
    return np.sign(np.nan_to_num(d, nan=0.0))


def _tied_pairs(v: np.ndarray) -> float:
    _, counts = np.unique(v, return_counts=True)
    return float((counts * (counts - 1) / 2).sum())


def tau_with_accuracy(score: ArrayLike, accuracy: ArrayLike, higher_is_better: bool) -> float:
    """Kendall τ between scores (oriented so that higher is better) and accuracies (%); a NaN
    accuracy (a diverged network) ranks last. NaN for fewer than two."""
    return kendall_tau(oriented(score, higher_is_better), oriented(accuracy, True))
