"""Layers the fast path covers: from a module's input and output gradient to gradient terms.

A handler takes ``(module, x, g, bn)``: the module's input ``x`` (N, ...), the gradient ``g``
with respect to its output, with optional leading row axes (see :mod:`scores.terms`), and the
:class:`~scores.bn.BatchNormControl` in force. It returns one term per trainable parameter name.
A module is covered when its class (or a subclass that keeps the stock ``forward``) has a handler
and its only parameters are ``weight`` and ``bias``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from scores.bn import BatchNormControl
from scores.terms import ConvOuter, Direct, Lookup, Outer, Term

Handler = Callable[[nn.Module, torch.Tensor, torch.Tensor, BatchNormControl], dict[str, Term]]


def _lead(g: torch.Tensor, out_ndim: int) -> tuple[int, ...]:
    """The leading row axes of ``g`` beyond a module output with ``out_ndim`` dimensions."""
    return tuple(g.shape[: g.dim() - out_ndim])


def _wanted(module: nn.Module, terms: dict[str, Callable[[], Term]]) -> dict[str, Term]:
    """Build only the terms of parameters that require gradients."""
    out = {}
    for name, make in terms.items():
        p = getattr(module, name)
        if p is not None and p.requires_grad:
            out[name] = make()
    return out


def _linear(m: nn.Linear, x: torch.Tensor, g: torch.Tensor, bn: BatchNormControl) -> dict[str, Term]:
    lead, n = _lead(g, x.dim()), x.shape[0]
    a = x.reshape(n, -1, 1, m.in_features)
    gg = g.reshape(*lead, n, a.shape[1], 1, m.out_features)
    return _wanted(m, {"weight": lambda: Outer(a, gg), "bias": lambda: Direct(gg.sum((-3, -2)))})


def _zero_pads(m: nn.Conv1d | nn.Conv2d) -> list[int]:
    """The zero padding a conv's stock forward applies, as F.pad's list (last dimension first, left
    then right), read from ``m.padding`` as it is now (it may be set after construction)."""
    if m.padding == "valid":
        return [0, 0] * len(m.kernel_size)
    pads: list[int] = []
    for i in reversed(range(len(m.kernel_size))):
        if m.padding == "same":
            total = m.dilation[i] * (m.kernel_size[i] - 1)
            pads += [total // 2, total - total // 2]
        else:
            pads += [m.padding[i], m.padding[i]]
    return pads


def _conv(
    m: nn.Conv1d | nn.Conv2d, x: torch.Tensor, g: torch.Tensor, bn: BatchNormControl
) -> dict[str, Term]:
    pads = m._reversed_padding_repeated_twice if m.padding_mode != "zeros" else _zero_pads(m)
    symmetric = all(pads[i] == pads[i + 1] for i in range(0, len(pads), 2))
    if m.padding_mode == "zeros" and symmetric:
        padding = tuple(pads[::2][::-1])
    else:
        mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
        x, padding = F.pad(x, pads, mode=mode), (0,) * (len(pads) // 2)
    geometry = (m.kernel_size, m.stride, m.dilation, padding)
    if isinstance(m, nn.Conv1d):
        x, g = x.unsqueeze(-2), g.unsqueeze(-2)
        geometry = tuple((1, v[0]) if i < 3 else (0, v[0]) for i, v in enumerate(geometry))
    return _wanted(
        m,
        {
            "weight": lambda: ConvOuter(x, g, *geometry, groups=m.groups),
            "bias": lambda: Direct(g.sum((-2, -1))),
        },
    )


def _affine(g: torch.Tensor, xhat: torch.Tensor, trailing: int | None) -> tuple[Callable, Callable]:
    """Makers for the weight and bias terms of an element-wise affine ``y = w·x̂ + b``.

    ``xhat``: (N, ...) normalised input; ``g``: (*L, N, ...). The parameters span the channel
    axis 1 (``trailing=None``: GroupNorm) or the last ``trailing`` axes (LayerNorm); each
    term's gradient sums over the other axes, giving (*L, N, D).
    """
    lead = g.dim() - xhat.dim() + 1  # axes up to and including the sample axis

    def reduce(v: torch.Tensor) -> torch.Tensor:
        if trailing is None:
            return v.reshape(*v.shape[: lead + 1], -1).sum(-1)
        span = math.prod(v.shape[v.dim() - trailing :])
        return v.reshape(*v.shape[:lead], -1, span).sum(-2)

    return (lambda: Direct(reduce(g * xhat))), (lambda: Direct(reduce(g)))


def _batch_norm(m, x: torch.Tensor, g: torch.Tensor, bn: BatchNormControl) -> dict[str, Term]:
    """Per-channel gradients ``Σ g·x̂ = rstd · Σ g·(x − μ)`` and ``Σ g``, without forming x̂."""
    mean, var = bn.stats_of(m, x)
    shape = (-1,) + (1,) * (x.dim() - 2)
    lead = g.dim() - x.dim() + 1

    def per_channel(v: torch.Tensor) -> torch.Tensor:
        return v.reshape(*v.shape[: lead + 1], -1).sum(-1)

    return _wanted(
        m,
        {
            "weight": lambda: Direct(per_channel(g * (x - mean.reshape(shape))) * torch.rsqrt(var + m.eps)),
            "bias": lambda: Direct(per_channel(g)),
        },
    )


def _group_norm(m: nn.GroupNorm, x: torch.Tensor, g: torch.Tensor, bn: BatchNormControl) -> dict[str, Term]:
    weight, bias = _affine(g, F.group_norm(x, m.num_groups, eps=m.eps), None)
    return _wanted(m, {"weight": weight, "bias": bias})


def _layer_norm(m: nn.LayerNorm, x: torch.Tensor, g: torch.Tensor, bn: BatchNormControl) -> dict[str, Term]:
    xhat = F.layer_norm(x, m.normalized_shape, eps=m.eps)
    weight, bias = _affine(g, xhat, len(m.normalized_shape))
    return _wanted(m, {"weight": weight, "bias": bias})


def _embedding(m: nn.Embedding, x: torch.Tensor, g: torch.Tensor, bn: BatchNormControl) -> dict[str, Term]:
    lead, n = _lead(g, x.dim() + 1), x.shape[0]
    idx = x.reshape(n, -1)
    gg = g.reshape(*lead, n, idx.shape[1], m.embedding_dim)
    if m.padding_idx is not None:
        gg = gg * (idx != m.padding_idx).unsqueeze(-1).to(gg.dtype)
    return _wanted(m, {"weight": lambda: Lookup(idx, gg, m.num_embeddings)})


_HANDLERS: dict[type[nn.Module], Handler] = {
    nn.Linear: _linear,
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.modules.batchnorm._BatchNorm: _batch_norm,
    nn.GroupNorm: _group_norm,
    nn.LayerNorm: _layer_norm,
    nn.Embedding: _embedding,
}


def register_layer(cls: type[nn.Module], rule: type[nn.Module] | Handler) -> None:
    """Cover layers of class ``cls`` on the fast path (no fallback to per-sample gradients).

    ``rule`` is a covered layer class whose rule applies (``cls`` has its attributes, ``weight``
    and ``bias``, and its forward computes the same function: e.g. ``nn.Conv2d`` for a
    convolution with a forward of its own), or a handler ``(module, x, g, bn) -> {name: term}``
    (see :mod:`scores.terms`). A module's only parameters must still be ``weight`` and ``bias``.
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_layer needs an nn.Module subclass, not {cls!r}")
    if isinstance(rule, type):
        if rule not in _HANDLERS:
            covered = ", ".join(c.__name__ for c in _HANDLERS)
            raise ValueError(f"{rule.__name__} has no rule to borrow; use one of {covered}, or a handler")
        _HANDLERS[cls] = _HANDLERS[rule]
    elif callable(rule):
        _HANDLERS[cls] = rule
    else:
        raise TypeError(f"register_layer's rule must be a covered layer class or a handler, not {rule!r}")


def _embedding_ok(m: nn.Module) -> bool:
    return not isinstance(m, nn.Embedding) or (m.max_norm is None and not m.scale_grad_by_freq)


def handler_for(module: nn.Module) -> Handler | None:
    """The handler covering ``module``, or None when the fast path does not cover it."""
    names = {name for name, _ in module.named_parameters(recurse=False)}
    if not names <= {"weight", "bias"} or not _embedding_ok(module):
        return None
    for cls in type(module).__mro__:
        handler = _HANDLERS.get(cls)
        if handler is not None:
            # its forward, and the convolution a conv's forward calls, as the handler knows them
            stock = (
                type(module).forward is cls.forward or isinstance(module, nn.modules.batchnorm._BatchNorm)
            ) and getattr(type(module), "_conv_forward", None) is getattr(cls, "_conv_forward", None)
            return handler if stock else None
    return None
