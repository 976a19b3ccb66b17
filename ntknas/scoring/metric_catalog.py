"""What each metric is called, which way is better and what it measures; importable without torch.

Direction has one representation in ntknas, ``higher_is_better``; Optuna's "maximize"/"minimize"
strings are derived from it only where a study is created (:func:`optuna_direction`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A named metric: ``higher_is_better`` orients it; ``kernel`` says it reads the pNTK."""

    name: str
    higher_is_better: bool
    summary: str
    kernel: bool = False


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("condition_number", False, "pNTK λ_max/λ_min (TE-NAS trainability)", kernel=True),
        Metric("lambda_max", True, "pNTK largest eigenvalue", kernel=True),
        Metric("lambda_min", True, "pNTK smallest eigenvalue", kernel=True),
        Metric("trace", True, "pNTK trace", kernel=True),
        Metric("effective_rank", True, "pNTK effective rank (Roy & Vetterli)", kernel=True),
        Metric("flatness", True, "pNTK spectral flatness: mean log λ − log mean λ (scale-free)", kernel=True),
        Metric("lga", True, "label-gradient alignment of the pNTK (Mok et al. 2022)", kernel=True),
        Metric("naswot", True, "log|K_H| of ReLU codes (Mellor et al. 2021)"),
        Metric("synflow", True, "log10 synaptic flow (Tanaka et al. 2020)"),
        Metric("expressivity", True, "Σ over blocks of the feature covariance's spectral entropy (AZ-NAS)"),
        Metric("jacob_cov", True, "Jacobian covariance (Mellor et al. 2020)"),
        Metric("grad_norm", True, "Σ ‖∂CE/∂W‖ (Abdelfattah et al. 2021)"),
        Metric("params", True, "trainable parameters"),
        Metric("flops", True, "forward FLOPs per image"),
        Metric(
            "ntk_score",
            True,
            "NASWOT, synflow, expressivity, pNTK flatness and λ_max, each placed in the space's "
            "reference sample, weighted",
            kernel=True,
        ),
    )
}
DEFAULT = "ntk_score"
# Metrics whose definition changed between releases, and the version of today's: a study records
# the version its objective was scored with, and is not resumed with another (its values would
# not compare). ntk_score 1: κ, λ_max, effective rank, synflow and size; 2: synflow, expressivity
# and λ_max; 3: ntknas.scoring.metrics (fitted on two spaces at once).
VERSIONS = {"ntk_score": 3}
# The pNTK spectrum's scores, stored on every trial whatever the objective.
SPECTRUM = ("condition_number", "lambda_max", "lambda_min", "trace", "effective_rank", "flatness")
RECORDED = (*SPECTRUM, "params", "flops")
# Second objectives of a multi-objective (NSGA-II) search: smaller is better.
COSTS = ("params", "flops")


def higher_is_better(name: str) -> bool:
    """Which way metric ``name`` is better."""
    return METRICS[name].higher_is_better


def optuna_direction(higher: bool) -> str:
    """Optuna's name for a direction: ``"maximize"`` when higher is better."""
    return "maximize" if higher else "minimize"


def direction_words(higher: bool) -> str:
    """``"higher is better"`` or ``"lower is better"``, for people."""
    return "higher is better" if higher else "lower is better"
