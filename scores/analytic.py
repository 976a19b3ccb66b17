"""The infinite-width NTK of a fully connected network, and a torch MLP with the same parameterisation.

NTK parameterisation, depth ``L`` (linear layers, the last one the readout), input width ``n_0``::

    h_1 = σ_w/√n_0 · W_1 x + σ_b · b_1,   h_l = σ_w/√n_{l-1} · W_l φ(h_{l-1}) + σ_b · b_l,   W, b ~ N(0, 1)

As every hidden width grows, the NTK of the scalar output tends to Θ_L (Jacot et al. 2018; Arora
et al. 2019), given by a recursion over the NNGP covariance Σ and the derivative covariance Σ̇::

    Σ_1(x, x') = Θ_1(x, x') = σ_w²/n_0 · x·x' + σ_b²
    Σ_l = σ_w² E[φ(u)φ(v)] + σ_b²,   Σ̇_l = σ_w² E[φ'(u)φ'(v)],   Θ_l = Θ_{l-1} · Σ̇_l + Σ_l

where (u, v) is Gaussian with mean 0 and the covariance Σ_{l-1} on the pair {x, x'}. The
expectations are in closed form: the arc-cosine kernels for ReLU (Cho & Saul 2009) and Williams'
(1997) arcsine kernel for erf. With O outputs the NTK is Θ_L ⊗ I_O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import nn

# Gaussian moments of an activation: (Var u, Var v, Cov(u, v)) -> (E[φ(u)φ(v)], E[φ'(u)φ'(v)]).
Moments = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def relu_moments(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E[relu(u) relu(v)] and E[step(u) step(v)] for (u, v) ~ N(0, [[a, c], [c, b]]), element-wise.

    The arc-cosine kernels of degree 1 and 0: ``√(ab)/2π · (sin θ + (π − θ) cos θ)`` and
    ``(π − θ)/2π``, with ``θ = arccos(c/√(ab))``.
    """
    norm = (a * b).sqrt()
    theta = torch.arccos((c / norm.clamp_min(torch.finfo(norm.dtype).tiny)).clamp(-1.0, 1.0))
    value = norm / (2 * math.pi) * (theta.sin() + (math.pi - theta) * theta.cos())
    return value, (math.pi - theta) / (2 * math.pi)


def erf_moments(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E[erf(u) erf(v)] and E[erf'(u) erf'(v)] for (u, v) ~ N(0, [[a, c], [c, b]]), element-wise.

    ``2/π · arcsin(2c / √((1 + 2a)(1 + 2b)))`` and ``4/π / √((1 + 2a)(1 + 2b) − 4c²)``.
    """
    spread = (1 + 2 * a) * (1 + 2 * b)
    value = 2 / math.pi * torch.arcsin((2 * c / spread.sqrt()).clamp(-1.0, 1.0))
    return value, 4 / math.pi / (spread - 4 * c * c).sqrt()


class Erf(nn.Module):
    """The element-wise error function as a layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(x)


ACTIVATIONS: dict[str, tuple[Moments, Callable[[], nn.Module]]] = {
    "relu": (relu_moments, nn.ReLU),
    "erf": (erf_moments, Erf),
}


def analytic_ntk(
    x1: torch.Tensor,
    x2: torch.Tensor,
    depth: int,
    *,
    sigma_w: float = 2**0.5,
    sigma_b: float = 0.0,
    activation: str = "relu",
) -> torch.Tensor:
    """The infinite-width NTK Θ_L(x1, x2) of a depth-``depth`` MLP: (N1, N2) float64.

    ``x1`` (N1, n_0) and ``x2`` (N2, n_0); ``depth`` counts linear layers, readout included (so
    ``depth=1`` is the linear model). It is the limit of :func:`scores.entk` of
    ``ntk_mlp([n_0, n, …, n, 1], ...)`` as n → ∞. ``activation``: ``"relu"`` or ``"erf"``.
    """
    *_, theta = _recursion(x1, x2, depth, sigma_w, sigma_b, activation)
    return theta


def analytic_nngp(
    x1: torch.Tensor,
    x2: torch.Tensor,
    depth: int,
    *,
    sigma_w: float = 2**0.5,
    sigma_b: float = 0.0,
    activation: str = "relu",
) -> torch.Tensor:
    """The infinite-width NNGP covariance Σ_L(x1, x2) of the output at initialisation: (N1, N2) float64.

    Arguments as for :func:`analytic_ntk`.
    """
    *_, sigma, _ = _recursion(x1, x2, depth, sigma_w, sigma_b, activation)
    return sigma


def _recursion(
    x1: torch.Tensor, x2: torch.Tensor, depth: int, sigma_w: float, sigma_b: float, activation: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Σ_L on x1 (N1,), on x2 (N2,), across (N1, N2), and Θ_L (N1, N2)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
    if depth < 1:
        raise ValueError(f"depth counts linear layers and must be at least 1; got {depth}")
    if x1.dim() != 2 or x2.dim() != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(f"inputs must be (N1, n0) and (N2, n0); got {tuple(x1.shape)} and {tuple(x2.shape)}")
    moments = ACTIVATIONS[activation][0]
    x1, x2 = x1.to(torch.float64), x2.to(torch.float64)
    w2, b2 = sigma_w**2, sigma_b**2
    n0 = x1.shape[1]
    d1 = w2 / n0 * (x1 * x1).sum(1) + b2
    d2 = w2 / n0 * (x2 * x2).sum(1) + b2
    cross = w2 / n0 * x1 @ x2.T + b2
    theta = cross
    for _ in range(depth - 1):
        (e1, _), (e2, _) = moments(d1, d1, d1), moments(d2, d2, d2)
        e12, dot = moments(d1[:, None], d2[None, :], cross)
        d1, d2, cross = w2 * e1 + b2, w2 * e2 + b2, w2 * e12 + b2
        theta = theta * w2 * dot + cross
    return d1, d2, cross, theta


def ntk_mlp(
    widths: list[int],
    *,
    sigma_w: float = 2**0.5,
    sigma_b: float = 0.0,
    activation: str = "relu",
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """An MLP in NTK parameterisation, the finite-width counterpart of :func:`analytic_ntk`.

    ``widths`` = [n_0, n_1, …, n_L]: input, hidden and output sizes; depth ``L = len(widths) − 1``.
    Inputs (N, ...) are flattened to (N, n_0). Every layer computes ``σ_w/√n_in · W x + σ_b · b``
    with W, b ~ N(0, 1) (seed with ``torch.manual_seed``) and the readout is linear. Each layer is
    a parameter-free :class:`NTKInput` followed by a bias-free ``nn.Linear`` whose last weight
    column is the bias b (absent when ``σ_b = 0``), so :func:`scores.pntk`'s fast path covers it.
    """
    if len(widths) < 2:
        raise ValueError(f"widths needs at least an input and an output size; got {widths}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        if i:
            layers.append(ACTIVATIONS[activation][1]())
        linear = nn.Linear(n_in + (sigma_b != 0), n_out, bias=False, dtype=dtype)
        nn.init.normal_(linear.weight)
        layers += [NTKInput(n_in, sigma_w, sigma_b), linear]
    return nn.Sequential(*layers)


class NTKInput(nn.Module):
    """``x ↦ [σ_w/√n · x, σ_b]``: (N, n) → (N, n + 1), or (N, n) scaled alone when ``σ_b = 0``.

    Feeding a bias-free linear layer, it makes ``[W | b] · [σ_w/√n · x; σ_b] = σ_w/√n · W x + σ_b · b``.
    """

    def __init__(self, in_features: int, sigma_w: float, sigma_b: float) -> None:
        super().__init__()
        self.in_features, self.sigma_w, self.sigma_b = in_features, sigma_w, sigma_b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = x * (self.sigma_w / math.sqrt(self.in_features))
        if self.sigma_b == 0:
            return scaled
        return torch.cat([scaled, scaled.new_full((x.shape[0], 1), self.sigma_b)], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, sigma_w={self.sigma_w:g}, sigma_b={self.sigma_b:g}"
