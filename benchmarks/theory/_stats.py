"""Small statistics the theory experiments report: relative distances and power-law rates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def relative_distance(a: torch.Tensor, reference: torch.Tensor) -> float:
    """``‖a − reference‖_F / ‖reference‖_F``."""
    return float((a - reference).norm() / reference.norm())


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """The least-squares slope of log y against log x: the exponent p of ``y ∝ x^p``."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation."""
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std())
