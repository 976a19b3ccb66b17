"""Zero-cost baselines from the literature, as honest reference points for the pNTK scores.

Each takes a model and a minibatch (and labels where the method needs them), runs in an explicit
BatchNorm mode with dropout off, on the model's device (the inputs are moved there), and leaves the
model untouched. Higher is better for all of them.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from scores.bn import bn_mode
from scores.checks import check_inputs, check_labels, check_outputs, in_place_changes_named, trainable
from scores.device import device_of

# Elementwise activation modules: NASWOT reads its codes at their inputs; synflow's linearised
# network replaces them by the identity.
ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Softplus,
)  # fmt: skip


# Elements (about 1 MB of float32) per slice of a block output or of activation codes that is
# formed and multiplied while it sits in cache, rather than copied whole first.
SLICE = 1 << 18


def _code_agreements(units: torch.Tensor) -> torch.Tensor:
    """``C Cᵀ`` (N, N) float64 of the 0/1 codes ``C = units > 0`` of ``units`` (N, U): the number of
    units on in both samples, exactly. The codes are formed and multiplied a slice of units at a
    time (``SLICE``) while they sit in cache, in float32 (exact: a slice's counts are below 2**24)."""
    n, width = units.shape
    agree = torch.zeros(n, n, dtype=torch.float64, device=units.device)
    step = max(1, SLICE // max(n, 1))
    code = torch.empty(n, min(step, width), dtype=torch.float32, device=units.device)
    for start in range(0, width, step):
        part = units[:, start : start + step]
        piece = code[:, : part.shape[1]]
        torch.gt(part, 0, out=piece)  # 0/1 written straight into float32: no bool copy
        agree += piece @ piece.T
    return agree


class ActivationCodes:
    """Forward hooks on a model's activation modules (``ACTIVATIONS``) that add each sample's
    on/off code (input > 0) to NASWOT's kernel ``K_H`` (N, N) float64 during the first complete
    forward pass of the model; later passes are ignored, so the probe may ride on another
    computation's pass (the pNTK's). An input that several activations read (an NB201 node feeds
    up to three edges), unchanged since, adds the code kernel formed for it once again. Use as a
    context manager: the hooks are removed on exit; ``kernel`` is None until a pass ends."""

    def __init__(self, model: nn.Module) -> None:
        activations = [m for m in model.modules() if isinstance(m, ACTIVATIONS)]
        if not activations:
            raise ValueError(
                "naswot needs activation modules (nn.ReLU, nn.GELU, ...) in the model; it has none"
            )
        self.kernel: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None
        # id(input) -> (a weak reference to it, its version, its code kernel), for this pass
        self._formed: dict[int, tuple[weakref.ref, int, torch.Tensor]] = {}
        self._handles = [m.register_forward_hook(self._on_activation) for m in activations]
        self._handles.append(model.register_forward_hook(self._on_model))

    def _on_activation(self, module: nn.Module, args: tuple, out: object) -> None:
        if self.kernel is not None:
            return
        x = args[0]
        formed = self._formed.get(id(x))
        if formed is not None and formed[0]() is x and formed[1] == x._version:
            k = formed[2]
        else:
            with torch.no_grad():
                units = x.detach().flatten(1)
                agree = _code_agreements(units)
                ones = agree.diagonal()  # a code is its own square: its count of ones
                k = units.shape[1] - ones[:, None] - ones[None, :] + 2 * agree
            self._formed[id(x)] = (weakref.ref(x), x._version, k)
        self._sum = k if self._sum is None else self._sum + k

    def _on_model(self, module: nn.Module, args: tuple, out: object) -> None:
        if self.kernel is None and self._sum is not None:
            self.kernel = self._sum
        self._formed.clear()

    def __enter__(self) -> ActivationCodes:
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()


def log_det(kernel: torch.Tensor) -> float:
    """log|K| of NASWOT's code kernel (−inf when it is singular)."""
    return float(torch.linalg.slogdet(kernel)[1])


def naswot(model: nn.Module, inputs: torch.Tensor, *, bn: str = "batch") -> float:
    """NASWOT (Mellor et al., ICML 2021): log|K_H| of the ReLU-code kernel.

    Each sample's code is the on/off pattern (input > 0) at every activation module
    (``ACTIVATIONS``: ``nn.ReLU`` as in the paper, and its kin such as ``nn.ReLU6`` or ``nn.GELU``);
    ``K_H[i,j]`` is the number of units minus the Hamming distance between codes i and j.
    (:mod:`ntknas.scoring.metrics` takes the codes from the pNTK's pass instead, with the same value.)
    """
    check_inputs(model, inputs)
    inputs = inputs.to(device_of(model))
    with in_place_changes_named(model), ActivationCodes(model) as probe, torch.no_grad(), bn_mode(model, bn):
        check_outputs(model(inputs), inputs.shape[0])
    return log_det(probe.kernel)


@contextmanager
def _linearised(model: nn.Module) -> Iterator[None]:
    """Within the block, every activation module of ``model`` returns its input unchanged (an
    in-place one works on a copy)."""
    saved: dict[nn.Module, torch.Tensor] = {}

    def before(module: nn.Module, args: tuple) -> tuple:
        saved[module] = args[0]
        return (args[0].clone(), *args[1:])

    def after(module: nn.Module, args: tuple, out: object) -> torch.Tensor:
        return saved.pop(module)

    activations = [m for m in model.modules() if isinstance(m, ACTIVATIONS)]
    handles = [m.register_forward_pre_hook(before) for m in activations]
    handles += [m.register_forward_hook(after) for m in activations]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def synflow(model: nn.Module, inputs: torch.Tensor) -> float:
    """SynFlow (Tanaka et al., NeurIPS 2020): Σ θ ⊙ ∂R/∂θ with every weight replaced by |θ|,
    R the summed output for an all-ones input, with BatchNorm off (eval mode at its initial
    statistics). Returned as log10 of the sum, which ranks the same.

    The network is linearised as the paper intends: its activation modules (``ACTIVATIONS``)
    pass their inputs through unchanged. A ReLU network's all-positive signal passes its ReLUs
    unchanged anyway, so its value is the paper's; a saturating activation (ReLU6 in MobileNets)
    would otherwise clip the signal and make deeper networks score lower. The weights and buffers
    are swapped in for the call (``torch.func.functional_call``): the model itself is not copied,
    and comes back untouched.

    Every term of the sum is positive, so no digits cancel: the pass runs in the model's precision
    (float32 at least) with the products summed in float64, and again in float64 when a value
    overflows the model's precision (deep networks' signal grows by a factor per layer).
    """
    check_inputs(model, inputs)
    trained = dict(trainable(model))
    dtype = torch.promote_types(next(iter(trained.values())).dtype, torch.float32)
    total = _synflow_sum(model, trained, inputs.shape[1:], dtype)
    if not math.isfinite(total) and dtype != torch.float64:
        total = _synflow_sum(model, trained, inputs.shape[1:], torch.float64)
    return math.log10(total) if total > 0 else -math.inf


def _synflow_sum(
    model: nn.Module, trained: dict[str, nn.Parameter], shape: torch.Size, dtype: torch.dtype
) -> float:
    """Σ |θ| ⊙ ∂R/∂|θ| of :func:`synflow`, the pass in ``dtype`` (inf or NaN when it overflows)."""
    with torch.no_grad():
        params = {n: p.detach().abs().to(dtype).requires_grad_() for n, p in trained.items()}
        others = {
            n: t.detach().to(dtype) if t.is_floating_point() else t
            for n, t in [*model.named_parameters(), *model.named_buffers()]
            if n not in trained
        }
    ones = torch.ones(1, *shape, dtype=dtype, device=device_of(model))
    with torch.enable_grad(), bn_mode(model, "eval"), _linearised(model):
        out = functional_call(model, {**params, **others}, (ones,))
        if not bool(torch.isfinite(out).all()):
            return math.inf
        grads = torch.autograd.grad(out.sum(), list(params.values()), allow_unused=True)
    return sum(
        float((p.detach() * g).sum(dtype=torch.float64))
        for p, g in zip(params.values(), grads, strict=True)
        if g is not None
    )


CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def feature_blocks(model: nn.Module) -> list[nn.Module]:
    """The network's blocks, whose outputs are its successive feature maps: the shallowest modules
    below ``model`` (looking through ``nn.Sequential``/``ModuleList``/``ModuleDict``) that have
    children of their own, e.g. the cells of an NB201 network or the residual blocks of a ResNet;
    for a network made of bare layers, its convolutions and linear layers."""
    blocks: list[nn.Module] = []

    def walk(module: nn.Module) -> None:
        for child in module.children():
            if isinstance(child, CONTAINERS):
                walk(child)
            elif next(child.children(), None) is not None:
                blocks.append(child)

    walk(model)
    return blocks or [m for m in model.modules() if isinstance(m, LAYERS)]


class FeatureCovariances:
    """Forward hooks on a model's :func:`feature_blocks` that form each block output's channel
    covariance ``VᵀV/M`` (C, C) float64, V the M = N·H·W centred channel vectors, during the first
    complete forward pass of the model; later passes are ignored, so the probe may ride on another
    computation's pass (the pNTK's). When M < C, the dual ``VVᵀ/M`` (M, M) is formed instead: it
    has the same nonzero eigenvalues, at a fraction of the cost. Formed at once, as a later in-place
    op may change the output. Use as a context manager: the hooks are removed on exit;
    ``covariances`` is None until a pass ends."""

    def __init__(self, model: nn.Module) -> None:
        self.covariances: list[torch.Tensor] | None = None
        self._pending: list[torch.Tensor] = []
        self._handles = [b.register_forward_hook(self._on_block) for b in feature_blocks(model)]
        self._handles.append(model.register_forward_hook(self._on_model))

    def _on_block(self, module: nn.Module, args: tuple, out: object) -> None:
        if self.covariances is None and isinstance(out, torch.Tensor) and out.dim() >= 2 and out.shape[1] > 0:
            with torch.no_grad():
                self._pending.append(_channel_covariance(out.detach()))

    def _on_model(self, module: nn.Module, args: tuple, out: object) -> None:
        if self.covariances is None:
            self.covariances = self._pending

    def __enter__(self) -> FeatureCovariances:
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()


def _channel_covariance(out: torch.Tensor) -> torch.Tensor:
    """``VᵀV/M`` (C, C) float64 of an (N, C, ...) output's M = N·P centred channel vectors V (P
    positions per sample), or the dual ``VVᵀ/M`` (M, M) when M < C. The products are taken, like
    the pNTK's, in the output's precision (float32 at least), a few samples at a time (``SLICE``),
    and summed in float64; a constant channel is centred to exactly 0. When P ≥ C each sample's
    (C, P) slice is multiplied as it lies in memory, without gathering its channel vectors into
    rows first."""
    n, c = out.shape[0], out.shape[1]
    dtype = torch.promote_types(out.dtype, torch.float32)
    x = out.reshape(n, c, -1)  # (N, C, P)
    p, m = x.shape[2], n * x.shape[2]
    lowest, highest = x.amin((0, 2), keepdim=True), x.amax((0, 2), keepdim=True)
    mean = torch.where(lowest == highest, lowest.to(dtype), x.mean((0, 2), keepdim=True, dtype=dtype))
    if m < c:
        v = (x - mean).transpose(1, 2).reshape(m, c)
        return (v @ v.T).to(torch.float64) / m
    total = torch.zeros(c, c, dtype=torch.float64, device=out.device)
    step = max(1, SLICE // (c * p))
    for start in range(0, n, step):
        part = x[start : start + step] - mean  # (k, C, P), centred, a copy in ``dtype``
        if p >= c:
            total += torch.bmm(part, part.transpose(1, 2)).sum(0, dtype=torch.float64)
        else:
            rows = part.transpose(1, 2).reshape(-1, c)
            total += rows.T @ rows
    return total / m


def spectral_entropy(covariances: list[torch.Tensor]) -> float:
    """Σ of the entropies of each covariance's normalised eigenvalues (0 for a zero matrix);
    zero eigenvalues add nothing, so a covariance and its dual give the same value."""
    if not covariances:
        raise ValueError("expressivity found no block with a tensor output in the model")
    entropies = []
    for covariance in covariances:
        s = torch.linalg.eigvalsh(covariance).clamp_min(0)
        total = s.sum()
        p = s / total if total > 0 else s
        entropies.append(float(-(p * torch.log(p + 1e-8)).sum()))
    return sum(entropies)


def expressivity(model: nn.Module, inputs: torch.Tensor, *, bn: str = "batch") -> float:
    """AZ-NAS expressivity (Lee & Ham, CVPR 2024): Σ over :func:`feature_blocks` of the entropy
    of the normalised eigenvalues of the block output's channel covariance, taken over every
    sample and position (an (N, C, ...) output gives N·H·W vectors of C channels), its products
    in float32 (as the pNTK's) summed in float64. A block whose features are constant adds 0;
    outputs that are not tensors are skipped.
    (:mod:`ntknas.scoring.metrics` takes the covariances from the pNTK's pass instead, with the same
    value.)"""
    check_inputs(model, inputs)
    inputs = inputs.to(device_of(model))
    with (
        in_place_changes_named(model),
        FeatureCovariances(model) as probe,
        torch.no_grad(),
        bn_mode(model, bn),
    ):
        check_outputs(model(inputs), inputs.shape[0])
    return spectral_entropy(probe.covariances or [])


def jacob_cov(model: nn.Module, inputs: torch.Tensor, *, bn: str = "batch") -> float:
    """Jacobian covariance (Mellor et al., 2020, arXiv v1): from the correlation matrix of the
    input gradients ``∂(Σ_k f_k(x_i))/∂x_i``, ``−Σ_i [log(σ_i + 1e-5) + 1/(σ_i + 1e-5)]`` over its
    eigenvalues σ; ``-inf`` when the outputs do not depend on the inputs."""
    check_inputs(model, inputs)
    x = inputs.detach().to(device_of(model)).clone().requires_grad_(True)
    with in_place_changes_named(model), torch.enable_grad(), bn_mode(model, bn):
        out = model(x)
        check_outputs(out, x.shape[0])
        (jac,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    if jac is None or not bool(jac.any()):
        return -math.inf  # the outputs ignore the inputs: the worst possible network
    j = jac.flatten(1).to(torch.float64)
    j = j - j.mean(1, keepdim=True)
    norms = j.norm(dim=1, keepdim=True)
    corr = (j / norms.clamp_min(1e-300)) @ (j / norms.clamp_min(1e-300)).T
    sigma = torch.linalg.eigvalsh(corr)
    eps = 1e-5
    return float(-(torch.log(sigma.clamp_min(0) + eps) + 1 / (sigma.clamp_min(0) + eps)).sum())


def grad_norm(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, bn: str = "batch") -> float:
    """Gradient norm (Abdelfattah et al., ICLR 2021): Σ over Conv/Linear layers of the Euclidean
    norm of the cross-entropy loss's weight gradient."""
    check_inputs(model, inputs)
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv1d | nn.Linear)]
    weights = [w for w in weights if w.requires_grad]
    if not weights:
        raise ValueError("grad_norm needs trainable Conv/Linear weights; the model has none")
    inputs, labels = inputs.to(device_of(model)), labels.to(device_of(model))
    with in_place_changes_named(model), torch.enable_grad(), bn_mode(model, bn):
        out = model(inputs)
        check_outputs(out, inputs.shape[0])
        check_labels(labels, inputs.shape[0], out.shape[1])
        grads = torch.autograd.grad(F.cross_entropy(out, labels), weights, allow_unused=True)
    return float(sum(g.norm() for g in grads if g is not None))


def label_gradient_alignment(kernel: torch.Tensor, labels: torch.Tensor) -> float:
    """Label-gradient alignment (Mok et al., CVPR 2022) of an (N, N) kernel with the labels:
    the cosine between the kernel and the same-class matrix ``Y[i,j] = 1[y_i = y_j]``, each with
    its mean entry removed."""
    check_labels(labels, kernel.shape[0])
    k = kernel.to(torch.float64)
    if not torch.isfinite(k).all():
        raise ValueError("kernel has non-finite entries (NaN/inf); check the model's outputs")
    y = (labels[:, None] == labels[None, :]).to(k.device, torch.float64)
    k, y = k - k.mean(), y - y.mean()
    denominator = float(k.norm() * y.norm())
    return float((k * y).sum()) / denominator if denominator > 0 else 0.0
