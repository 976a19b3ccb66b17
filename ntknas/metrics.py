"""Named metrics that rank candidate networks: which way is better, and how to compute them.

One call, :func:`compute`, measures any set of them on one network and one minibatch, sharing
the pNTK among the metrics that read it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

import scores
from ntknas.measure import count_flops, count_params
from scores import proxies


@dataclass(frozen=True)
class Metric:
    """A named metric: ``higher_is_better`` orients it; ``kernel`` says it reads the pNTK."""

    name: str
    higher_is_better: bool
    summary: str
    kernel: bool = False


@dataclass
class Context:
    """What a metric may read about one network on one minibatch."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    bn: str
    device: str
    kernel: torch.Tensor | None = None
    spectrum: scores.Spectrum | None = None
    values: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float:
        """Metric ``name`` of this network, computed once."""
        if name not in self.values:
            self.values[name] = float(_COMPUTE[name](self))
        return self.values[name]


_COMPUTE: dict[str, Callable[[Context], float]] = {}
METRICS: dict[str, Metric] = {}


def _metric(name: str, higher_is_better: bool, summary: str, kernel: bool = False):
    def register(fn: Callable[[Context], float]) -> Callable[[Context], float]:
        METRICS[name] = Metric(name, higher_is_better, summary, kernel)
        _COMPUTE[name] = fn
        return fn

    return register


for _name, _higher, _summary in (
    ("condition_number", False, "pNTK λ_max/λ_min (TE-NAS trainability)"),
    ("lambda_max", True, "pNTK largest eigenvalue"),
    ("lambda_min", True, "pNTK smallest eigenvalue"),
    ("trace", True, "pNTK trace"),
    ("effective_rank", True, "pNTK effective rank (Roy & Vetterli)"),
):
    _metric(_name, _higher, _summary, kernel=True)(lambda c, _n=_name: getattr(c.spectrum, _n))


@_metric("lga", True, "label-gradient alignment of the pNTK (Mok et al. 2022)", kernel=True)
def _lga(c: Context) -> float:
    return proxies.label_gradient_alignment(c.kernel, c.y)


@_metric("naswot", True, "log|K_H| of ReLU codes (Mellor et al. 2021)")
def _naswot(c: Context) -> float:
    return proxies.naswot(c.model, c.x.to(c.device), bn=c.bn)


@_metric("synflow", True, "log10 synaptic flow (Tanaka et al. 2020)")
def _synflow(c: Context) -> float:
    return proxies.synflow(c.model, c.x)


@_metric("jacob_cov", True, "Jacobian covariance (Mellor et al. 2020)")
def _jacob_cov(c: Context) -> float:
    return proxies.jacob_cov(c.model, c.x, bn=c.bn)


@_metric("grad_norm", True, "Σ ‖∂CE/∂W‖ (Abdelfattah et al. 2021)")
def _grad_norm(c: Context) -> float:
    return proxies.grad_norm(c.model, c.x, c.y, bn=c.bn)


@_metric("params", True, "trainable parameters")
def _params(c: Context) -> float:
    return float(count_params(c.model))


@_metric("flops", True, "forward FLOPs per image")
def _flops(c: Context) -> float:
    return float(count_flops(c.model, c.x[:1]))


# Spread (standard deviation) of each term across random NAS-Bench-201 architectures: measured on
# 600 random architectures of the development file, without their accuracies.
SPREADS = {"log10_condition_number": 0.980, "log10_synflow": 9.697, "log10_params": 0.310}


@_metric(
    "ntk_score",
    True,
    "−log10 κ/0.98 + log10 synflow/9.70 + log10 params/0.31: pNTK trainability + flow + size",
    kernel=True,
)
def _ntk_score(c: Context) -> float:
    """Trainability (the pNTK's condition number κ), flow (synflow) and size (parameters), each
    in units of its spread across the search space and added with equal weight, the way TE-NAS
    adds trainability to expressivity. κ ranks trainable against untrainable architectures;
    flow and size order the trainable ones."""
    kappa, params = c.value("condition_number"), c.value("params")
    if not kappa > 0 or not params > 0:
        return -math.inf
    return (
        -math.log10(kappa) / SPREADS["log10_condition_number"]
        + c.value("synflow") / SPREADS["log10_synflow"]
        + math.log10(params) / SPREADS["log10_params"]
    )


DEFAULT = "ntk_score"
SPECTRUM = ("condition_number", "lambda_max", "lambda_min", "trace", "effective_rank")


def compute(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    names: Iterable[str],
    *,
    bn: str = "batch",
    device: str = "cpu",
) -> dict[str, float]:
    """The named metrics of ``model`` on the minibatch ``x`` (N, ...) with labels ``y`` (N,),
    plus ``seconds`` (wall time of them all). The pNTK is computed once if any metric reads it."""
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}")
    start = time.perf_counter()
    context = Context(model, x, y, bn, device)
    if any(METRICS[n].kernel for n in wanted):
        context.kernel = scores.pntk(model, x, bn=bn, device=device)
        context.spectrum = scores.spectrum(context.kernel)
    values = {n: context.value(n) for n in wanted}
    values["seconds"] = time.perf_counter() - start
    return values
