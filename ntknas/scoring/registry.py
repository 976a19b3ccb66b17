"""The one registry of metrics: each declared once, with :func:`metric`, where it is computed.

A declaration gives the metric's name, which way it is better, whether it reads the pNTK, a
one-line summary and the version of its definition; every direction, table, plot, pick and
Optuna direction in ntknas derives from it. The built-in metrics are declared in
:mod:`ntknas.scoring.metrics`; a package adds its own by naming a module under the entry-point
group ``ntknas.metrics`` (importing the module declares them). Importing this module loads
neither torch nor Optuna; the declarations are read on first use.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Literal

from ntknas.core.errors import InputWarning, first_line

if TYPE_CHECKING:
    from ntknas.scoring.metrics import Context

ENTRY_POINT_GROUP = "ntknas.metrics"
Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Metric:
    """A declared metric: ``compute`` gives its value from a :class:`~ntknas.scoring.metrics.Context`
    (one network on one minibatch); ``higher_is_better`` orients it; ``reads_kernel`` says it
    reads the pNTK (computed once for all that do); ``version`` numbers its definition when it has
    changed between releases (a study scored with another version is not resumed with this one)."""

    name: str
    higher_is_better: bool
    summary: str
    compute: Callable[[Context], float]
    reads_kernel: bool = False
    version: int | None = None


_DECLARED: dict[str, Metric] = {}


def metric(
    name: str,
    *,
    higher_is_better: bool,
    summary: str,
    reads_kernel: bool = False,
    version: int | None = None,
) -> Callable[[Callable[[Context], float]], Callable[[Context], float]]:
    """Declare metric ``name``, computed by the decorated function; ValueError if ``name`` is
    already declared (two metrics never share a name)."""

    def declare(compute: Callable[[Context], float]) -> Callable[[Context], float]:
        if name in _DECLARED:
            known = _DECLARED[name].compute
            raise ValueError(
                f"metric {name!r} is declared twice: by {known.__module__}.{known.__qualname__} and "
                f"{compute.__module__}.{compute.__qualname__}; give one of them another name"
            )
        _DECLARED[name] = Metric(name, higher_is_better, summary, compute, reads_kernel, version)
        return compute

    return declare


_loaded = False


def _load() -> None:
    """Declare the built-in metrics, then each installed plugin's (one that fails to import is
    skipped with a one-line warning naming it)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("ntknas.scoring.metrics")
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            point.load()
        except (Exception, SystemExit) as e:
            warnings.warn(
                f"metric plugin {point.name!r} ({point.value}) could not be loaded, so its metrics are "
                f"not available: {type(e).__name__}: {first_line(e)}",
                InputWarning,
                stacklevel=2,
            )


class _Catalog(Mapping[str, Metric]):
    """Name → :class:`Metric` over every declared metric, built in first, loaded on first use."""

    def __getitem__(self, name: str) -> Metric:
        _load()
        return _DECLARED[name]

    def __iter__(self) -> Iterator[str]:
        _load()
        return iter(list(_DECLARED))

    def __len__(self) -> int:
        _load()
        return len(_DECLARED)


METRICS: Mapping[str, Metric] = _Catalog()
DEFAULT = "ntk_score"
# The pNTK spectrum's scores, stored on every trial whatever the objective.
SPECTRUM = ("condition_number", "lambda_max", "lambda_min", "trace", "effective_rank", "flatness")
RECORDED = (*SPECTRUM, "params", "flops")
# Second objectives of a multi-objective (NSGA-II) search: smaller is better there.
COSTS = ("params", "flops")


def higher_is_better(name: str) -> bool:
    """Which way metric ``name`` is better."""
    return METRICS[name].higher_is_better


def optuna_direction(higher: bool) -> Direction:
    """Optuna's name for a direction: ``"maximize"`` when higher is better."""
    return "maximize" if higher else "minimize"


def direction_words(higher: bool) -> str:
    """``"higher is better"`` or ``"lower is better"``, for people."""
    return "higher is better" if higher else "lower is better"
