"""Checks on what a caller hands the scorer: one-line errors that name the problem and the fix."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The model's parameters with ``requires_grad``; ValueError when there are none."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            "model has no trainable parameters (none with requires_grad=True); "
            "unfreeze some with p.requires_grad_(True)"
        )
    return params


def check_inputs(model: nn.Module, inputs: object) -> None:
    """Raise TypeError/ValueError unless ``inputs`` is a batch tensor (N ≥ 2, ...) for ``model``."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(
            f"inputs must be a torch.Tensor batch of shape (N, ...); got {type(inputs).__name__} "
            "(convert with torch.as_tensor)"
        )
    if inputs.is_nested or inputs.layout != torch.strided:
        layout = "nested" if inputs.is_nested else str(inputs.layout)
        raise TypeError(f"inputs must be a dense tensor; got a {layout} one (convert with .to_dense())")
    meta = [
        what
        for what, t in (("inputs", inputs), ("the model", _first_tensor(model)))
        if t is not None and t.is_meta
    ]
    if meta:
        raise ValueError(
            f"{' and '.join(meta)} {'is' if meta == ['the model'] else 'are'} on the meta device, which "
            "holds no values; give real tensors "
            "(a meta model: model.to_empty(device='cpu'), then initialise it)"
        )
    if inputs.dtype.is_floating_point:
        if inputs.dim() < 2:
            raise ValueError(
                f"inputs must be a batch (N, ...) with at least 2 dimensions; got shape "
                f"{tuple(inputs.shape)} (add a feature axis with inputs[:, None])"
            )
    elif inputs.dtype in (torch.int64, torch.int32) and any(
        isinstance(m, nn.Embedding) for m in model.modules()
    ):
        if inputs.dim() < 1:
            raise ValueError("inputs must be a batch of token indices (N, ...); got a scalar")
    else:
        raise TypeError(
            f"inputs must be a floating-point batch tensor; got dtype {inputs.dtype} "
            "(integer inputs are accepted only for models with an nn.Embedding)"
        )
    if inputs.shape[0] < 2:
        raise ValueError(f"need at least 2 samples to form a kernel; got N={inputs.shape[0]}")


def _first_tensor(model: nn.Module) -> torch.Tensor | None:
    return next(iter([*model.parameters(), *model.buffers()]), None)


def check_outputs(out: object, n: int) -> None:
    """Raise ValueError unless the model's output is a finite (N, O) tensor; TypeError unless it is
    floating point."""
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != n:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"model output must be a tensor of shape (N, O) = ({n}, O); got {shape} "
            "(return the logits, flattened to one row per sample)"
        )
    if out.shape[1] < 1:
        raise ValueError(f"model output has no columns: shape {tuple(out.shape)}")
    if not out.dtype.is_floating_point:
        raise TypeError(
            f"model output must be floating point to be differentiated; got dtype {out.dtype} "
            "(return the logits, not their argmax or a rounded or integer copy)"
        )
    bad = int((~torch.isfinite(out.detach())).sum())
    if bad:
        raise ValueError(
            f"model output has {bad} non-finite values (NaN/inf) of {out.numel()}; "
            "check the model's initialisation and the input scaling"
        )


def check_labels(labels: object, n: int, classes: int | None = None) -> None:
    """Raise TypeError/ValueError unless ``labels`` is an integer tensor of ``n`` class indices
    (N,), each from 0 to ``classes`` − 1 when ``classes`` is known."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(
            f"labels must be a torch.Tensor of class indices (N,); got {type(labels).__name__} "
            "(convert with torch.as_tensor)"
        )
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices; got dtype {labels.dtype} (use labels.long())")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must have shape (N,) = ({n},), one per sample; got {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or (classes is not None and int(labels.max()) >= classes)):
        top = "" if classes is None else f" to {classes - 1} (the model has {classes} outputs)"
        raise ValueError(
            f"labels must be class indices from 0{top}; got {int(labels.min())} to {int(labels.max())}"
        )


def check_differentiable(out: torch.Tensor) -> None:
    """Raise ValueError unless ``out`` (computed with gradients on) depends on a trainable parameter."""
    if not out.requires_grad:
        raise ValueError(
            "model output does not depend on its trainable parameters (no gradient reaches it: a "
            ".detach(), torch.no_grad() or .item() in forward?); return logits computed from them"
        )


def check_chunk_size(chunk_size: int | None) -> None:
    """Raise ValueError unless ``chunk_size`` is None or a positive integer."""
    if chunk_size is not None and (
        not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive integer or None; got {chunk_size!r}")


@contextmanager
def in_place_changes_named(model: nn.Module) -> Iterator[None]:
    """Warn, once the block ends, about every parameter and buffer of ``model`` that its own
    forward changed in place (``nn.Embedding(max_norm=...)`` renormalises its rows, a counter
    buffer counts calls): scoring cannot promise to leave such a model untouched, and what it
    scored is the changed model. BatchNorm's statistics are not watched: the BatchNorm mode
    (:mod:`scores.bn`) keeps them. Read from tensors' version counters, at no cost."""
    batchnorm = {
        id(t) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for t in m.buffers()
    }
    watched = [
        (name, t, t._version)
        for name, t in [*model.named_parameters(), *model.named_buffers()]
        if id(t) not in batchnorm
    ]
    yield
    changed = [name for name, t, version in watched if t._version != version]
    if changed:
        shown = ", ".join(f"'{n}'" for n in changed[:3]) + (", ..." if len(changed) > 3 else "")
        warnings.warn(
            f"ntknas: the model's forward changed {shown} in place while it was scored; the model "
            "comes back changed, and the scores are those of the changed model",
            stacklevel=4,
        )
