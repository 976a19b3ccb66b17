"""ntknas: training-free neural architecture search with the pseudo neural tangent kernel.

The library in a few names (each imported on first use, so that ``import ntknas`` stays light):

- :func:`objective`: the callable a plain Optuna study optimises, scoring as ``ntknas search``
  does; :class:`Objective` is its type, :class:`Budget` bounds a candidate's size.
- :func:`search` runs a :class:`SearchRequest` (a study's :class:`Settings` and how to run it);
  :func:`verify` trains a study's top picks.
- :func:`metric` declares a metric; :data:`METRICS` holds every declared one (:class:`Metric`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scores.lazy import exports

if TYPE_CHECKING:
    from ntknas.api import search, verify
    from ntknas.objectives.budget import Budget
    from ntknas.objectives.objective import Objective, objective
    from ntknas.run.request import SearchRequest
    from ntknas.scoring.registry import METRICS, Metric, metric
    from ntknas.study.settings import Settings

__version__ = "0.1.0"
# Each public name → the module that defines it.
_HOME = {
    "objective": "ntknas.objectives.objective",
    "Objective": "ntknas.objectives.objective",
    "Budget": "ntknas.objectives.budget",
    "search": "ntknas.api",
    "verify": "ntknas.api",
    "SearchRequest": "ntknas.run.request",
    "Settings": "ntknas.study.settings",
    "metric": "ntknas.scoring.registry",
    "Metric": "ntknas.scoring.registry",
    "METRICS": "ntknas.scoring.registry",
}
__all__ = [
    "METRICS",
    "Budget",
    "Metric",
    "Objective",
    "SearchRequest",
    "Settings",
    "__version__",
    "metric",
    "objective",
    "search",
    "verify",
]


__getattr__, __dir__ = exports(globals(), _HOME)
