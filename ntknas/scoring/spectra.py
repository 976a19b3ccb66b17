"""A trial's pNTK eigenvalues, stored on it as the user attribute ``pntk_eigenvalues``.

The search stores them with the scores read from them, so the dashboard, plots and exports draw a
trial's spectrum without rebuilding its network. Optuna keeps user attributes as JSON: the
eigenvalues are stored ascending, each rounded to ``DIGITS`` significant digits (a relative error
of at most 5e-8, below the float32 kernel's own 1e-6), about 0.9 KB for a batch of 64 images.
"""

from __future__ import annotations

import numpy as np
import optuna
from numpy.typing import ArrayLike

ATTR = "pntk_eigenvalues"
DIGITS = 7


def to_attr(eigenvalues: ArrayLike) -> list[float]:
    """The stored form of a kernel's eigenvalues (any order, e.g. ``scores.Spectrum.eigenvalues``):
    ascending Python floats of ``DIGITS`` significant digits."""
    values = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())
    return [float(f"{v:.{DIGITS - 1}e}") for v in values]


def stored(trial: optuna.trial.FrozenTrial) -> np.ndarray | None:
    """The eigenvalues stored on ``trial`` (ascending, float64), or None when it has none."""
    values = trial.user_attrs.get(ATTR)
    return None if values is None else np.asarray(values, dtype=np.float64)
