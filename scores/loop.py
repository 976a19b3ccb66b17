"""The reference implementation: one backward pass per sample (as TE-NAS computes the NTK)."""

from __future__ import annotations

import torch
from torch import nn

from scores.checks import check_outputs
from scores.terms import gram64


def loop_gram(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``J Jᵀ`` (N, N) float64 and O: row i of J is ∂(Σ_k f_k(x_i))/∂θ, one backward pass each."""
    params = [p for p in model.parameters() if p.requires_grad]
    out = model(x)
    n = x.shape[0]
    check_outputs(out, n)
    rows = []
    for i in range(n):
        grads = torch.autograd.grad(out[i].sum(), params, retain_graph=i < n - 1, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(grads, params, strict=True)
                ]
            )
        )
    return gram64(torch.stack(rows)), out.shape[1]
