"""The reference implementation: one backward pass per sample (as TE-NAS computes the NTK)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from scores.checks import check_differentiable, check_outputs
from scores.terms import gram64


def loop_gram(
    model: nn.Module, x: torch.Tensor, group_of: Mapping[str, str] | None = None
) -> tuple[dict[str, torch.Tensor], int]:
    """``J Jᵀ`` (N, N) float64 split by group of parameters, and O: row i of J is
    ∂(Σ_k f_k(x_i))/∂θ, one backward pass each. ``group_of``: parameter name → group (None: one
    group ``""``); returns {group: (N, N)}."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    groups = [group_of[name] if group_of is not None else "" for name, _ in named]
    params = [p for _, p in named]
    out = model(x)
    n = x.shape[0]
    check_outputs(out, n)
    check_differentiable(out)
    rows: dict[str, list[torch.Tensor]] = {g: [] for g in groups}
    for i in range(n):
        grads = torch.autograd.grad(out[i].sum(), params, retain_graph=i < n - 1, allow_unused=True)
        flat = [
            (torch.zeros_like(p) if g is None else g.to_dense() if g.layout != torch.strided else g).reshape(
                -1
            )
            for g, p in zip(grads, params, strict=True)
        ]
        for g in rows:
            rows[g].append(torch.cat([f for f, h in zip(flat, groups, strict=True) if h == g]))
    return {g: gram64(torch.stack(r)) for g, r in rows.items()}, out.shape[1]


def _dense(g: torch.Tensor | None, p: torch.Tensor) -> torch.Tensor:
    """A parameter's gradient as a dense tensor: zeros where it is unused, dense where sparse
    (``nn.Embedding(sparse=True)``)."""
    if g is None:
        return torch.zeros_like(p)
    return g if g.layout == torch.strided else g.to_dense()
