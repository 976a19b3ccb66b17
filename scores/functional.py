"""The generic implementation on torch.func: per-sample (or per-row) Jacobians, contracted.

It covers any model whose forward torch.func can transform, at the memory cost of materialising
every per-sample gradient. It serves the full empirical NTK and models the fast path does not
cover.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from scores.bn import BatchNormControl
from scores.checks import check_outputs
from scores.coupling import check_rows_alone
from scores.terms import gram64


def func_gram(
    model: nn.Module,
    x: torch.Tensor,
    bn: BatchNormControl,
    mode: str,
    per_output: bool,
    chunk_size: int | None,
    group_of: Mapping[str, str] | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """``J Jᵀ`` in float64, split by group of parameters, and O, where the rows of J are
    per-sample gradients.

    Rows: the summed output of each sample (N rows) or, with ``per_output``, each output of each
    sample, sample-major (N·O rows). ``mode`` is the BatchNorm mode ``bn`` was opened with.
    ``group_of``: parameter name → group (None: one group ``""``); returns {group: (rows, rows)}.
    """
    n = x.shape[0]
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad(), bn.recording():  # in batch mode, replayed to each sample's pass
        out = model(x)
    check_outputs(out, n)
    if mode != "train":  # vmap over samples: only for a model that treats them apart
        check_rows_alone(model, x, out, bn)
    o = out.shape[1]
    # torch.func's transforms (the model's own forward ran above): what fails here is torch.func's
    try:
        restart = model.register_forward_pre_hook(lambda *_: bn.restart())
        try:
            if mode == "train":

                def rows(p: dict[str, torch.Tensor]) -> torch.Tensor:
                    y = functional_call(model, p, (x,))
                    return y if per_output else y.sum(1)

                jac = jacrev(rows, chunk_size=chunk_size)(params)
            else:

                def sample(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
                    y = functional_call(model, p, (xi.unsqueeze(0),)).squeeze(0)
                    return y if per_output else y.sum()

                transform = jacrev if per_output else grad
                jac = vmap(transform(sample), in_dims=(None, 0), chunk_size=chunk_size)(params, x)
        finally:
            restart.remove()
    except (RuntimeError, NotImplementedError) as e:
        raise TransformFailed((str(e).strip().splitlines() or [type(e).__name__])[0]) from e
    count = n * o if per_output else n
    names = dict.fromkeys(group_of.values()) if group_of is not None else {"": None}
    k = {g: torch.zeros(count, count, dtype=torch.float64, device=x.device) for g in names}
    for name, j in jac.items():
        k[group_of[name] if group_of is not None else ""] += gram64(j.reshape(count, -1))
    return k, o


class TransformFailed(RuntimeError):
    """torch.func could not transform the model's forward (an op vmap cannot batch, a TorchScript
    module, a sparse gradient); the message is torch's first line."""
