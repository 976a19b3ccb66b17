"""The candidate default score, computed the way the product would: one pNTK pass whose forward
also yields the blocks' feature maps, plus synflow and the parameter count.

Terms (higher is better): ``synflow`` (log10 synaptic flow), ``az_expressivity`` (Σ over
blocks of the entropy of the normalised spectrum of the block output's channel covariance over
all N·H·W positions; AZ-NAS), ``neg_lmax`` (−log10 λ_max of the pNTK) and ``params`` (log10 of
the trainable parameter count). Each raw term v is placed in the space's reference distribution
as z = (v − mean)/std (mean and standard deviation over a seeded random sample of the space's
architectures; no accuracies) and enters as log Φ(z), Φ the standard normal CDF; the score is
Σ weight · log Φ(z). A term that is not finite (a failed or degenerate network) makes the score
−inf.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from features import expressivity
from torch import nn

import scores
from ntknas.scoring.measure import count_params
from scores import proxies

WEIGHTS: dict[str, float] = {"synflow": 1.0, "az_expressivity": 1.0, "neg_lmax": 1.0, "params": 1.0}


def raw_terms(model: nn.Module, x: torch.Tensor, blocks: Sequence[nn.Module]) -> dict[str, float]:
    """The candidate's raw terms of one network on the minibatch ``x`` (N, 3, H, W), bn="batch".

    ``blocks``: the modules whose outputs are the feature maps (NB201: the stem and each cell).
    Their outputs are captured by forward hooks during the pNTK's own forward pass.
    """
    entropy: list[float] = []

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        entropy.append(expressivity(out.detach()))

    handles = [b.register_forward_hook(hook) for b in blocks]
    try:
        k = scores.pntk(model, x, bn="batch", device="cpu")
    finally:
        for h in handles:
            h.remove()
    lmax = float(torch.linalg.eigvalsh(k)[-1])
    return {
        "synflow": proxies.synflow(model, x),
        "az_expressivity": float(sum(entropy)),
        "neg_lmax": -math.log10(lmax) if lmax > 0 else -math.inf,
        "params": math.log10(count_params(model)),
    }


def log_phi(z: float) -> float:
    """log Φ(z), accurate far into the lower tail."""
    return math.log(0.5 * math.erfc(-max(-30.0, min(30.0, z)) / math.sqrt(2)))


def score(
    terms: Mapping[str, float],
    reference: Mapping[str, tuple[float, float]],
    weights: Mapping[str, float] = WEIGHTS,
) -> float:
    """Σ weight · log Φ((term − mean)/std) with ``reference``: term → (mean, std) over the space's
    reference sample; −inf when a weighted term is not finite."""
    total = 0.0
    for name, w in weights.items():
        v = terms[name]
        if not math.isfinite(v):
            return -math.inf
        mean, std = reference[name]
        total += w * log_phi((v - mean) / std)
    return total
