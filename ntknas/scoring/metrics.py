"""The built-in metrics that rank candidate networks, each declared once (:func:`metric`), and
:func:`compute`, which measures any set of them on one network and one minibatch, sharing the pNTK
among the metrics that read it.

Importing this module loads no torch (the command line reads the declarations to stay light):
what a metric needs is imported where it is computed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ntknas.scoring.registry import DEFAULT, METRICS, SPECTRUM, Metric, metric

if TYPE_CHECKING:
    import torch
    from torch import nn

    import scores
    from scores import proxies

__all__ = ["DEFAULT", "METRICS", "SPECTRUM", "Context", "Metric", "compute", "metric"]


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
            import scores
            from scores import proxies
            from scores.hooks import uncovered

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
                self.values[name] = float(METRICS[name].compute(self))
            except Exception as e:
                self.failures[name] = e
                raise
        return self.values[name]


def _spectrum_score(name: str):
    """Score ``name`` of the pNTK's eigenspectrum (:class:`scores.Spectrum`)."""
    return lambda c: getattr(c.spectrum, name)


# The pNTK spectrum's scores: (name, higher is better, summary).
for _name, _higher, _summary in (
    ("condition_number", False, "pNTK λ_max/λ_min (TE-NAS trainability)"),
    ("lambda_max", True, "pNTK largest eigenvalue"),
    ("lambda_min", True, "pNTK smallest eigenvalue"),
    ("trace", True, "pNTK trace"),
    ("effective_rank", True, "pNTK effective rank (Roy & Vetterli)"),
    ("flatness", True, "pNTK spectral flatness: mean log λ − log mean λ (scale-free)"),
):
    metric(_name, higher_is_better=_higher, summary=_summary, reads_kernel=True)(_spectrum_score(_name))


@metric(
    "lga",
    higher_is_better=True,
    summary="label-gradient alignment of the pNTK (Mok et al. 2022)",
    reads_kernel=True,
)
def _lga(c: Context) -> float:
    from scores import proxies

    return proxies.label_gradient_alignment(c.kernel, c.y)


@metric("naswot", higher_is_better=True, summary="log|K_H| of ReLU codes (Mellor et al. 2021)")
def _naswot(c: Context) -> float:
    from scores import proxies

    shared = c.shared_codes()
    if shared is None:
        return proxies.naswot(c.model, c.x, bn=c.bn)
    return proxies.log_det(shared)


def _codes_probe(model: nn.Module, stack: ExitStack) -> proxies.ActivationCodes | None:
    """NASWOT's codes, probed on ``stack``; None when the model has no activation module (the
    metric then fails on its own pass, saying so)."""
    from scores import proxies

    try:
        return stack.enter_context(proxies.ActivationCodes(model))
    except ValueError:
        return None


@metric("synflow", higher_is_better=True, summary="log10 synaptic flow (Tanaka et al. 2020)")
def _synflow(c: Context) -> float:
    from scores import proxies

    return proxies.synflow(c.model, c.x)


@metric("jacob_cov", higher_is_better=True, summary="Jacobian covariance (Mellor et al. 2020)")
def _jacob_cov(c: Context) -> float:
    from scores import proxies

    return proxies.jacob_cov(c.model, c.x, bn=c.bn)


@metric("grad_norm", higher_is_better=True, summary="Σ ‖∂CE/∂W‖ (Abdelfattah et al. 2021)")
def _grad_norm(c: Context) -> float:
    from scores import proxies

    return proxies.grad_norm(c.model, c.x, c.y, bn=c.bn)


# Size as a ranker, as zero-cost-proxy benchmarks count it: the larger network is predicted the
# more accurate. A search that wants the smallest network says `--direction minimize`.
@metric("params", higher_is_better=True, summary="trainable parameters")
def _params(c: Context) -> float:
    from ntknas.scoring.measure import count_params

    return float(count_params(c.model))


@metric("flops", higher_is_better=True, summary="forward FLOPs per image")
def _flops(c: Context) -> float:
    from ntknas.scoring.measure import count_flops

    return float(count_flops(c.model, c.x[:1]))


@metric(
    "expressivity",
    higher_is_better=True,
    summary="Σ over blocks of the feature covariance's spectral entropy (AZ-NAS)",
)
def _expressivity(c: Context) -> float:
    from scores import proxies

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


# ntk_score 1: κ, λ_max, effective rank, synflow and size; 2: synflow, expressivity and λ_max;
# 3: WEIGHTS (fitted on two spaces at once).
@metric(
    "ntk_score",
    higher_is_better=True,
    summary="NASWOT, synflow, expressivity, pNTK flatness and λ_max, each placed in the space's "
    "reference sample, weighted",
    reads_kernel=True,
    version=3,
)
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
    from torch import nn

    from scores.checks import check_inputs, check_labels

    wanted = list(dict.fromkeys([names] if isinstance(names, str) else names))
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    check_inputs(model, x)
    check_labels(y, x.shape[0])
    unknown = [n for n in wanted if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}")
    from ntknas.scoring import spectra
    from scores.device import placed, resolve

    start = time.perf_counter()
    target = resolve(device)
    reads = {*wanted, *(NTK_INPUTS if "ntk_score" in wanted else ())}
    kernel = any(METRICS[n].reads_kernel for n in reads)
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
