"""Entry points: the pseudo-NTK, the empirical NTK, and the scores a search needs."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping

import torch
from torch import nn

from scores.bn import bn_mode, check_bn_mode
from scores.checks import check_chunk_size, check_inputs, in_place_changes_named, trainable
from scores.coupling import Coupled
from scores.device import placed, resolve
from scores.eigen import spectrum
from scores.functional import TransformFailed, func_gram
from scores.hooks import Unsupported, hooks_gram, uncovered
from scores.loop import loop_gram
from scores.modes import IMPLEMENTATIONS, BnMode, Implementation
from scores.terms import Chunking

# Automatic cap on a temporary's elements (256 MiB of float32) when chunk_size is None.
_BLOCK_ELEMENTS = 2**26


def pntk(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    bn: BnMode = "batch",
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    implementation: Implementation = "auto",
) -> torch.Tensor:
    """The pseudo-NTK of ``model`` on a minibatch: (N, N) float64 on the CPU.

    ``K[i,j] = (1/O) <∂(Σ_k f_k(x_i))/∂θ, ∂(Σ_k f_k(x_j))/∂θ>`` over every parameter with
    ``requires_grad`` (Mohamadi, Bae & Sutherland 2023), for ``inputs`` (N, ...) and outputs (N, O).

    ``bn``: BatchNorm mode, ``"eval"``, ``"batch"`` (default) or ``"train"`` (see
    :mod:`scores.bn`); dropout is off in every mode. ``device``: where to compute; default CUDA
    when present, else CPU (the caller's model is copied there, never moved). ``chunk_size``:
    samples per block of the temporaries (smaller saves memory, costs time); None sizes them
    automatically. ``implementation``: ``"hooks"`` (one forward and one backward pass),
    ``"func"`` (torch.func per-sample gradients), ``"loop"`` (one backward pass per sample), or
    ``"auto"``: hooks when they cover every parametrised layer, else func with a warning, and the
    loop (with another) when torch.func cannot batch one of the model's operations.
    The model comes back untouched: parameters, buffers, flags, ``requires_grad`` and ``.grad``
    (unless its own forward changes a parameter or buffer in place: a warning names it).
    """
    k, o = _kernel(model, inputs, bn, device, chunk_size, implementation, per_output=False)
    return k[""] / o


def layer_kernels(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    groups: Mapping[str, str] | Callable[[str], str] | None = None,
    bn: BnMode = "batch",
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    implementation: Implementation = "auto",
) -> dict[str, torch.Tensor]:
    """The pNTK split over groups of layers: {group: (N, N) float64 on the CPU}, summing to
    :func:`pntk` (to float64 round-off), from the same single pass at no extra cost.

    Each parametrised module joins a group by its name in ``model.named_modules()`` (``""`` for
    the model itself): ``groups`` is a callable from module name to group, or a mapping from
    module-name prefixes to groups (the longest prefix that is the name or one of its dotted
    ancestors wins; a module matching none is a ValueError), or None: each top-level child is a
    group. Groups come in the order of their first module. Other arguments as for :func:`pntk`.
    """
    trainable(model)  # a clear error before resolving the groups
    names = _group_names(model, groups)
    k, o = _kernel(model, inputs, bn, device, chunk_size, implementation, per_output=False, group_names=names)
    return {g: part / o for g, part in k.items()}


def entk(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    bn: BnMode = "batch",
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """The full empirical NTK: (N·O, N·O) float64 on the CPU, sample-major.

    ``K[i*O+a, j*O+b] = <∂f_a(x_i)/∂θ, ∂f_b(x_j)/∂θ>``; for validation on small models (it
    materialises N·O gradients of every parameter). Arguments as for :func:`pntk`.
    """
    k, _ = _kernel(model, inputs, bn, device, chunk_size, "func", per_output=True)
    return k[""]


def score(model: nn.Module, inputs: torch.Tensor, **kwargs) -> dict[str, float]:
    """Every spectrum score of the pNTK (see :class:`~scores.eigen.Spectrum`) and ``seconds``.

    Keyword arguments go to :func:`pntk`. ``seconds`` is the wall time of kernel and spectrum.
    """
    start = time.perf_counter()
    scores = spectrum(pntk(model, inputs, **kwargs)).scores()
    scores["seconds"] = time.perf_counter() - start
    return scores


def _kernel(
    model: nn.Module,
    inputs: torch.Tensor,
    bn: BnMode,
    device,
    chunk_size: int | None,
    implementation: Implementation,
    per_output: bool,
    group_names: Mapping[str, str] | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """{group: J Jᵀ} and O. ``group_names``: parametrised module's name → group; None: one
    group ``""``."""
    check_bn_mode(bn)
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"unknown implementation {implementation!r}; choose one of: {', '.join(IMPLEMENTATIONS)}"
        )
    check_chunk_size(chunk_size)
    trainable(model)
    check_inputs(model, inputs)
    net, x = _placed(model, inputs, device)
    module_groups = param_groups = None
    if group_names is not None:
        module_groups = {m: group_names[name] for name, m in net.named_modules() if name in group_names}
        param_groups = _param_groups(net, module_groups)
    chunking = Chunking(chunk_size, _BLOCK_ELEMENTS)
    fallback = implementation == "auto"  # on to func, then on to the loop, each with a warning
    with in_place_changes_named(model), torch.enable_grad(), bn_mode(net, bn) as control:
        if implementation in ("auto", "hooks") and not per_output:
            reasons = uncovered(net)
            try:
                if reasons:
                    raise Unsupported(", ".join(reasons))
                k, o = hooks_gram(net, x, control, bn == "train", chunking, module_groups)
            except Coupled as why:
                implementation = _per_sample_loop(implementation, why)
            except Unsupported as why:
                if implementation == "hooks":
                    raise ValueError(
                        f"implementation='hooks' cannot score this model ({why}); use implementation='auto'"
                    ) from None
                # Python's default filter shows a UserWarning once per message and call site.
                warnings.warn(
                    f"ntknas: fast path unavailable ({why}); using the slower torch.func path", stacklevel=3
                )
                implementation = "func"
        if implementation == "func" and fallback and not per_output:
            try:
                k, o = func_gram(net, x, control, bn, per_output, chunk_size, param_groups)
            except Coupled as why:
                implementation = _per_sample_loop("auto", why)
            except RuntimeError as why:  # an op vmap cannot batch (a GRU, a max_norm embedding)
                reason = (str(why).strip().splitlines() or [type(why).__name__])[0]
                warnings.warn(
                    f"ntknas: torch.func cannot score this model ({reason}); using the "
                    "per-sample loop, one backward pass per sample",
                    stacklevel=3,
                )
                implementation = "loop"
        elif implementation == "func" or per_output:
            try:
                k, o = func_gram(net, x, control, bn, per_output, chunk_size, param_groups)
            except Coupled as why:
                what = "entk" if per_output else "implementation='func'"
                raise ValueError(
                    f"{what} cannot score this model ({why}); use implementation='loop'"
                    + ("" if per_output else " or 'auto'")
                ) from None
            except TransformFailed as why:
                what = "entk (always on torch.func)" if per_output else "implementation='func'"
                better = "" if per_output else "; use implementation='auto'"
                raise ValueError(f"{what} cannot score this model (torch.func: {why}){better}") from None
        if implementation == "loop":
            k, o = loop_gram(net, x, param_groups)
    if not all(bool(torch.isfinite(part).all()) for part in k.values()):
        raise ValueError(
            "the pNTK has entries that are not finite, though the model's outputs are: the per-sample "
            "gradients overflow the model's precision when multiplied; scale the inputs down "
            "(normalise them), or score a float64 copy of the model"
        )
    return {g: ((part + part.T) / 2).cpu() for g, part in k.items()}, o


def _per_sample_loop(implementation: str, why: Coupled) -> str:
    """``"loop"``, with a warning, when ``implementation`` is ``"auto"``: the one path that
    back-propagates each sample's output through the whole batch; else ValueError."""
    if implementation != "auto":
        raise ValueError(
            f"implementation={implementation!r} cannot score this model ({why}); use implementation='auto'"
        ) from None
    warnings.warn(f"ntknas: {why}; using the per-sample loop, one backward pass per sample", stacklevel=4)
    return "loop"


def _group_names(model: nn.Module, groups: Mapping[str, str] | Callable[[str], str] | None) -> dict[str, str]:
    """Name of each module with trainable parameters of its own → its group (see
    :func:`layer_kernels`)."""
    if not (groups is None or callable(groups) or isinstance(groups, Mapping)):
        raise TypeError(
            "groups must be a callable from module name to group, a mapping from module-name prefixes "
            f"to groups, or None; got {type(groups).__name__}"
        )
    out = {}
    for name, module in model.named_modules():
        if not any(p.requires_grad for p in module.parameters(recurse=False)):
            continue
        if groups is None:
            out[name] = name.split(".")[0]
        elif callable(groups):
            out[name] = str(groups(name))
        else:
            parts = name.split(".") if name else []
            prefixes = (".".join(parts[:cut]) for cut in range(len(parts), -1, -1))
            match = next((p for p in prefixes if p in groups), None)
            if match is None:
                raise ValueError(
                    f"module '{name}' matches no prefix in groups; add it or one of its ancestors"
                )
            out[name] = groups[match]
    return out


def _param_groups(model: nn.Module, module_groups: dict[nn.Module, str]) -> dict[str, str]:
    """Each trainable parameter's name (as in ``named_parameters``) → its module's group."""
    owner = {
        id(p): module for module in module_groups for p in module.parameters(recurse=False) if p.requires_grad
    }
    return {name: module_groups[owner[id(p)]] for name, p in model.named_parameters() if p.requires_grad}


def _placed(model: nn.Module, inputs: torch.Tensor, device) -> tuple[nn.Module, torch.Tensor]:
    """The model and inputs on the compute device; the model is copied there if it lives elsewhere."""
    net = placed(model, device)
    # floating inputs take the trainable parameters' precision when they all share one (images
    # for a float64 network); a model of mixed precision converts its inputs itself
    dtypes = {p.dtype for p in model.parameters() if p.requires_grad and p.is_floating_point()}
    dtype = dtypes.pop() if len(dtypes) == 1 and inputs.is_floating_point() else inputs.dtype
    x = inputs.detach().to(resolve(device), dtype)
    return net, x
