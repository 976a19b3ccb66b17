"""Named metrics that rank candidate networks: which way is better, and how to compute them.

One call, :func:`compute`, measures any set of them on one network and one minibatch, sharing
the pNTK among the metrics that read it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch
from torch import nn

import scores
from ntknas.scoring import spectra
from ntknas.scoring.measure import count_flops, count_params
from ntknas.scoring.metric_catalog import DEFAULT, METRICS, SPECTRUM, Metric
from scores import proxies
from scores.device import placed, resolve
from scores.hooks import uncovered

__all__ = ["DEFAULT", "METRICS", "SPECTRUM", "Metric", "compute"]


@dataclass
class Context:
    """What a metric may read about one network on one minibatch, all on one device: the pNTK and
    its spectrum (computed on first use) and the other metrics' values. Each is computed once;
    a failure is kept and raised again to whatever reads it, so it spoils only what depends on it.
    With ``share_features``, the pNTK's forward pass also forms expressivity's block covariances;
    with ``share_codes``, NASWOT's code kernel.
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    bn: str
    reference: Mapping[str, tuple[float, float]] | None = None
    values: dict[str, float] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    share_features: bool = False
    share_codes: bool = False
    _kernel: tuple[torch.Tensor, scores.Spectrum] | Exception | None = None
    _covariances: list[torch.Tensor] | None = None
    _codes: torch.Tensor | None = None

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
            # On the fast path only: its forward pass is an ordinary one over the whole batch.
            fast = not uncovered(self.model)
            try:
                with ExitStack() as stack:
                    shares = self.share_features and fast
                    probe = stack.enter_context(proxies.FeatureCovariances(self.model)) if shares else None
                    codes = _codes_probe(self.model, stack) if self.share_codes and fast else None
                    kernel = scores.pntk(self.model, self.x, bn=self.bn, device=self.x.device)
                self._kernel = kernel, scores.spectrum(kernel)
                self._covariances = probe.covariances if probe is not None else None
                self._codes = codes.kernel if codes is not None else None
            except Exception as e:
                self._kernel = e
        if isinstance(self._kernel, Exception):
            raise self._kernel
        return self._kernel

    def shared_covariances(self) -> list[torch.Tensor] | None:
        """Expressivity's block covariances (C, C) from the pNTK's forward pass (computing the
        pNTK now if need be), when that pass shares them and succeeded; else None."""
        return self._from_pass(self.share_features, "_covariances")

    def shared_codes(self) -> torch.Tensor | None:
        """NASWOT's code kernel (N, N) from the pNTK's forward pass (computing the pNTK now if need
        be), when that pass shares it and succeeded; else None."""
        return self._from_pass(self.share_codes, "_codes")

    def _from_pass(self, shared: bool, attribute: str):
        """What the pNTK's forward pass probed into ``attribute``, when ``shared`` and it succeeded."""
        if not shared:
            return None
        try:
            self._spectral()
        except Exception:
            return None
        return getattr(self, attribute)

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
    shared = c.shared_codes()
    if shared is None:
        return proxies.naswot(c.model, c.x, bn=c.bn)
    return proxies.log_det(shared)


def _codes_probe(model: nn.Module, stack: ExitStack) -> proxies.ActivationCodes | None:
    """NASWOT's codes, probed on ``stack``; None when the model has no activation module (the
    metric then fails on its own pass, saying so)."""
    try:
        return stack.enter_context(proxies.ActivationCodes(model))
    except ValueError:
        return None


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


@_metric("expressivity")
def _expressivity(c: Context) -> float:
    shared = c.shared_covariances()
    if shared is None:
        return proxies.expressivity(c.model, c.x, bn=c.bn)
    return proxies.spectral_entropy(shared)


# The terms ntk_score can weigh: each reads some metrics and gives a number, higher is better.
TERMS: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, float]], float]]] = {
    "log10_synflow": (("synflow",), lambda v: v["synflow"]),
    "expressivity": (("expressivity",), lambda v: v["expressivity"]),
    "-log10_lambda_max": (("lambda_max",), lambda v: -math.log10(v["lambda_max"])),
    "flatness": (("flatness",), lambda v: v["flatness"]),
    "naswot": (("naswot",), lambda v: v["naswot"]),
    "log10_flops": (("flops",), lambda v: math.log10(v["flops"]) if v["flops"] > 0 else -math.inf),
}
# The default's weights, fitted on the development files of two spaces at once (NAS-Bench-201
# and NAS-Bench-Macro) for the worse of the two (benchmarks/fit_default.py reproduces them). The
# weights are shared by every space; each term's centre and spread come from the space's own
# reference sample (ntknas.objectives.reference), so the terms stay comparable wherever they are measured.
WEIGHTS = {
    "log10_synflow": 1.0,
    "expressivity": 1.0,
    "-log10_lambda_max": 0.25,
    "flatness": 1.0,
    "naswot": 4.0,
}
# How wide a term's normal is, in spreads: log Φ(z / WIDTH) is about linear for bad values and
# saturates for good ones, so no one term can buy a high score alone.
WIDTH = 2.0
# What ntk_terms reads: the kernel's singularity and the network's size, and the weighted terms' inputs.
NTK_INPUTS = tuple(
    dict.fromkeys(("condition_number", "lambda_max", "params", *(m for t in WEIGHTS for m in TERMS[t][0])))
)


def ntk_terms(values: Mapping[str, float], names: Iterable[str] = WEIGHTS) -> dict[str, float] | None:
    """The raw terms ``names`` of ``ntk_score`` (of ``TERMS``) from the metrics they read, named in
    ``NTK_INPUTS`` for the weighted ones (None when the kernel is singular or the network has no
    parameters: such a network ranks last)."""
    kappa, lam, params = values["condition_number"], values["lambda_max"], values["params"]
    if not (0 < kappa < math.inf and lam > 0 and params > 0):
        return None
    return {name: TERMS[name][1](values) for name in names}


def log_phi(z: float) -> float:
    """log Φ(z), Φ the standard normal CDF, with z clipped to ±30 (−inf stays −inf)."""
    if z == -math.inf or math.isnan(z):
        return -math.inf
    return math.log(0.5 * math.erfc(-min(max(z, -30.0), 30.0) / math.sqrt(2.0)))


def ntk_score_from(
    terms: Mapping[str, float] | None,
    reference: Mapping[str, tuple[float, float]],
    weights: Mapping[str, float] = WEIGHTS,
) -> float:
    """Σ weight · log Φ((term − centre) / (WIDTH · spread)) over ``weights``, with ``reference``
    giving each term's (centre, spread) in the space; −inf without terms."""
    if terms is None:
        return -math.inf
    total = 0.0
    for name, weight in weights.items():
        centre, spread = reference[name]
        total += weight * log_phi((terms[name] - centre) / (WIDTH * spread))
    return total


@_metric("ntk_score")
def _ntk_score(c: Context) -> float:
    """Trainability and expressivity at initialisation: synaptic flow, AZ-NAS expressivity and
    the pNTK's λ_max (smaller is better), each placed in its distribution over the space's
    reference sample and weighted (``WEIGHTS``). A singular pNTK (κ = ∞) ranks last."""
    if c.reference is None:
        raise ValueError("ntk_score needs the search space's reference (see ntknas.objectives.reference)")
    return ntk_score_from(ntk_terms({name: c.value(name) for name in NTK_INPUTS}), c.reference)


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
    reference: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, float | list[float]]:
    """The named metrics of ``model`` on the minibatch ``x`` (N, ...) with labels ``y`` (N,),
    plus ``seconds`` (wall time of them all), computed on ``device``: the model (a copy, when it
    lives elsewhere; the caller's is never moved) and the minibatch are placed there once. The pNTK
    is computed once if any metric reads it, and its forward pass serves expressivity too.

    Without ``errors``, the first metric that fails raises. With an ``errors`` dict, each failing
    metric is NaN and its exception is stored under its name, and the others are still computed
    (a failing pNTK fails the metrics that read it, not ``params`` or ``naswot``). With
    ``eigenvalues``, when a metric read the pNTK, its eigenvalues come too, as the trial attribute
    ``spectra.ATTR`` (N floats, see :mod:`ntknas.scoring.spectra`). ``ntk_score`` needs ``reference``,
    the (centre, spread) of each of its terms in the search space (:mod:`ntknas.objectives.reference`).
    """
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}")
    start = time.perf_counter()
    target = resolve(device)
    reads = {*wanted, *(NTK_INPUTS if "ntk_score" in wanted else ())}
    kernel = any(METRICS[n].kernel for n in reads)
    context = Context(
        placed(model, target),
        x.to(target),
        y.to(target),
        bn,
        reference,
        share_features=kernel and "expressivity" in reads,
        share_codes=kernel and "naswot" in reads,
    )
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
