"""Scores from a kernel's eigenspectrum."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Largest |K - Kᵀ| accepted, relative to K's largest entry: round-off of a kernel formed in
# float32 and summed in float64 is far below it; a kernel that is not symmetric is far above.
SYMMETRY_TOLERANCE = 1e-4
SPECTRUM_SCORES = ("condition_number", "lambda_max", "lambda_min", "trace", "effective_rank", "flatness")


@dataclass(frozen=True)
class Spectrum:
    """Eigenspectrum of a symmetric kernel and the scores read from it.

    ``eigenvalues``: ascending, float64, on the CPU. ``condition_number`` is λ_max/λ_min, ``inf``
    when λ_min ≤ 0 within round-off (never NaN); lower is better (TE-NAS). ``effective_rank`` is
    exp of the entropy of the eigenvalues normalised to sum to one (Roy & Vetterli 2007).
    ``flatness`` is the log of the spectral flatness, mean log λ_i − log mean λ_i (natural logs):
    ``log det(K / (tr K / N)) / N``, the log-determinant of the kernel divided by its own scale,
    so it does not grow with the network's size; at most 0 (every eigenvalue equal), ``-inf``
    when the kernel is singular.
    """

    eigenvalues: torch.Tensor
    lambda_max: float
    lambda_min: float
    condition_number: float
    trace: float
    effective_rank: float
    flatness: float

    def scores(self) -> dict[str, float]:
        """The scalar scores by name (see ``SPECTRUM_SCORES``)."""
        return {name: getattr(self, name) for name in SPECTRUM_SCORES}


def spectrum(k: torch.Tensor) -> Spectrum:
    """The :class:`Spectrum` of a symmetric (N, N) kernel ``k``."""
    if not isinstance(k, torch.Tensor) or k.dim() != 2 or k.shape[0] != k.shape[1] or k.shape[0] < 1:
        shape = tuple(k.shape) if isinstance(k, torch.Tensor) else type(k).__name__
        raise ValueError(f"kernel must be a square (N, N) tensor with N ≥ 1; got {shape}")
    if k.layout != torch.strided or k.is_meta or k.is_complex():
        what = "complex" if k.is_complex() else "meta" if k.is_meta else str(k.layout)
        raise ValueError(f"kernel must be a dense real tensor; got a {what} one")
    k = k.detach().to("cpu", torch.float64)
    if not torch.isfinite(k).all():
        raise ValueError("kernel has non-finite entries (NaN/inf); check the model's outputs")
    # eigenvalues of the kernel scaled by a power of two (exactly) to at most 1 in magnitude, then
    # scaled back: no overflow in eigh, whatever the kernel's size
    exponent = torch.tensor(math.frexp(float(k.abs().max()))[1])
    unit = torch.ldexp(k, -exponent)
    asymmetry = float((unit - unit.T).abs().max())
    if asymmetry > SYMMETRY_TOLERANCE:
        raise ValueError(
            f"kernel is not symmetric (max |K - Kᵀ| is {asymmetry:.3g} of its largest entry); a "
            "pNTK is: pass (K + K.T) / 2 if the difference is round-off"
        )
    unit_ev = torch.linalg.eigvalsh((unit + unit.T) / 2)
    ev = torch.ldexp(unit_ev, exponent)
    # the scale-free scores, from the scaled eigenvalues where the kernel's own overflow a sum
    shape = ev if math.isfinite(float(ev.abs().sum())) else unit_ev
    lam_min, lam_max = float(ev[0]), float(ev[-1])
    round_off = k.shape[0] * torch.finfo(torch.float64).eps * max(abs(lam_max), abs(lam_min))
    cond = math.inf if lam_max <= 0 or lam_min <= round_off else lam_max / lam_min
    p = shape.clamp(min=0)
    total = float(p.sum())
    if total > 0:
        p = p[p > 0] / total
        erank = math.exp(float(-(p * p.log()).sum()))
    else:
        erank = 0.0
    flatness = float(shape.log().mean() - shape.mean().log()) if math.isfinite(cond) else -math.inf
    return Spectrum(ev, lam_max, lam_min, cond, float(k.diagonal().sum()), erank, min(flatness, 0.0))
