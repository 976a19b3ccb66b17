"""Named metrics that rank candidate networks: which way is better, and how to compute them.

One call, :func:`compute`, measures any set of them on one network and one minibatch, sharing
the pNTK among the metrics that read it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

import scores
from ntknas import spectra
from ntknas.measure import count_flops, count_params
from ntknas.metric_catalog import DEFAULT, METRICS, SPECTRUM, Metric
from scores import proxies
from scores.device import placed, resolve

__all__ = ["DEFAULT", "METRICS", "SPECTRUM", "Metric", "compute"]


@dataclass
class Context:
    """What a metric may read about one network on one minibatch, all on one device: the pNTK and
    its spectrum (computed on first use) and the other metrics' values. Each is computed once;
    a failure is kept and raised again to whatever reads it, so it spoils only what depends on it.
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    bn: str
    values: dict[str, float] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    _kernel: tuple[torch.Tensor, scores.Spectrum] | Exception | None = None

    @property
    def kernel(self) -> torch.Tensor:
        """The pNTK (N, N), float64 on the CPU."""
        return self._spectral()[0]

    @property
    def spectrum(self) -> scores.Spectrum:
        """The pNTK's eigenspectrum."""
        return self._spectral()[1]

    def _spectral(self) -> tuple[torch.Tensor, scores.Spectrum]:
        if self._kernel is None:
            try:
                kernel = scores.pntk(self.model, self.x, bn=self.bn, device=self.x.device)
                self._kernel = kernel, scores.spectrum(kernel)
            except Exception as e:
                self._kernel = e
        if isinstance(self._kernel, Exception):
            raise self._kernel
        return self._kernel

    def computed_spectrum(self) -> scores.Spectrum | None:
        """The pNTK's eigenspectrum if a metric has computed it, else None."""
        return self._kernel[1] if isinstance(self._kernel, tuple) else None

    def value(self, name: str) -> float:
        """Metric ``name`` of this network, computed once."""
        if name in self.failures:
            raise self.failures[name]
        if name not in self.values:
            try:
                self.values[name] = float(_COMPUTE[name](self))
            except Exception as e:
                self.failures[name] = e
                raise
        return self.values[name]


_COMPUTE: dict[str, Callable[[Context], float]] = {}


def _metric(name: str):
    """Register the function that computes metric ``name`` (described in ``METRICS``)."""

    def register(fn: Callable[[Context], float]) -> Callable[[Context], float]:
        _COMPUTE[name] = fn
        return fn

    return register


for _name in SPECTRUM:
    _metric(_name)(lambda c, _n=_name: getattr(c.spectrum, _n))


@_metric("lga")
def _lga(c: Context) -> float:
    return proxies.label_gradient_alignment(c.kernel, c.y)


@_metric("naswot")
def _naswot(c: Context) -> float:
    return proxies.naswot(c.model, c.x, bn=c.bn)


@_metric("synflow")
def _synflow(c: Context) -> float:
    return proxies.synflow(c.model, c.x)


@_metric("jacob_cov")
def _jacob_cov(c: Context) -> float:
    return proxies.jacob_cov(c.model, c.x, bn=c.bn)


@_metric("grad_norm")
def _grad_norm(c: Context) -> float:
    return proxies.grad_norm(c.model, c.x, c.y, bn=c.bn)


@_metric("params")
def _params(c: Context) -> float:
    return float(count_params(c.model))


@_metric("flops")
def _flops(c: Context) -> float:
    return float(count_flops(c.model, c.x[:1]))


# The default's terms: name → (weight, spread). A spread is the standard deviation of the term
# across 600 random NAS-Bench-201 architectures of the development file with a non-singular
# kernel (no accuracies needed); the weights were fitted to those 600 architectures' accuracies
# and checked on the development file's 2,400 others: benchmarks/fit_default.py reproduces both.
TERMS = {
    "-log10_condition_number": (1.5, 0.9801),
    "log10_lambda_max": (-0.5, 0.7005),
    "effective_rank": (-0.5, 13.87),
    "log10_synflow": (1.0, 8.926),
    "log10_params": (0.25, 0.3064),
}


NTK_INPUTS = ("condition_number", "lambda_max", "effective_rank", "synflow", "params")


def ntk_terms(values: Mapping[str, float]) -> dict[str, float] | None:
    """The raw terms of ``ntk_score`` from the metrics named in ``NTK_INPUTS`` (None when the
    kernel is singular or the network has no parameters)."""
    kappa, lam, params = values["condition_number"], values["lambda_max"], values["params"]
    if not (0 < kappa < math.inf and lam > 0 and params > 0):
        return None
    return {
        "-log10_condition_number": -math.log10(kappa),
        "log10_lambda_max": math.log10(lam),
        "effective_rank": values["effective_rank"],
        "log10_synflow": values["synflow"],
        "log10_params": math.log10(params),
    }


def combine(terms: dict[str, float] | None, weights: Mapping[str, tuple[float, float]] = TERMS) -> float:
    """Σ weight × term / spread over ``weights`` (name → (weight, spread)); −inf without terms."""
    if terms is None:
        return -math.inf
    return sum(weight * terms[name] / spread for name, (weight, spread) in weights.items())


@_metric("ntk_score")
def _ntk_score(c: Context) -> float:
    """Trainability read from the pNTK's spectrum, plus flow (synflow) and size (parameters).
    Each term is divided by its spread across the search space and weighted (``TERMS``): a low
    condition number κ separates trainable from untrainable networks; among trainable ones, a
    smaller λ_max and effective rank at equal κ, more synaptic flow and more parameters rank
    better. The flow and size terms play the part of TE-NAS's expressivity term."""
    return combine(ntk_terms({name: c.value(name) for name in NTK_INPUTS}))


def compute(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    names: Iterable[str],
    *,
    bn: str = "batch",
    device: str = "cpu",
    errors: dict[str, Exception] | None = None,
    eigenvalues: bool = False,
) -> dict[str, float | list[float]]:
    """The named metrics of ``model`` on the minibatch ``x`` (N, ...) with labels ``y`` (N,),
    plus ``seconds`` (wall time of them all), computed on ``device``: the model (a copy, when it
    lives elsewhere; the caller's is never moved) and the minibatch are placed there once. The pNTK
    is computed once if any metric reads it.

    Without ``errors``, the first metric that fails raises. With an ``errors`` dict, each failing
    metric is NaN and its exception is stored under its name, and the others are still computed
    (a failing pNTK fails the metrics that read it, not ``params`` or ``naswot``). With
    ``eigenvalues``, when a metric read the pNTK, its eigenvalues come too, as the trial attribute
    ``spectra.ATTR`` (N floats, see :mod:`ntknas.spectra`).
    """
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}")
    start = time.perf_counter()
    target = resolve(device)
    context = Context(placed(model, target), x.to(target), y.to(target), bn)
    values: dict[str, float | list[float]] = {}
    for name in wanted:
        try:
            values[name] = context.value(name)
        except Exception as e:
            if errors is None:
                raise
            errors[name], values[name] = e, math.nan
    values["seconds"] = time.perf_counter() - start
    spectrum = context.computed_spectrum()
    if eigenvalues and spectrum is not None:
        values[spectra.ATTR] = spectra.to_attr(spectrum.eigenvalues)
    return values
