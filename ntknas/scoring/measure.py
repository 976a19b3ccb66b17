"""Size and cost of a network: parameter count and forward FLOPs per image."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import conv_flop_count

from scores.device import device_of


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# Elements per parameter tensor that a weights fingerprint reads, spread over the tensor.
FINGERPRINT_ELEMENTS = 64


def weights_fingerprint(model: nn.Module) -> float:
    """A number that tells a network's initial weights from another's at no real cost: the float64
    sum, over its trainable parameters in order, of up to ``FINGERPRINT_ELEMENTS`` elements spread
    over each, weighted by their position. Two builds of one configuration under one seed give it
    bit for bit; a build that draws from another random source (Python's, NumPy's) does not."""
    total = 0.0
    with torch.no_grad():
        for i, p in enumerate(p for p in model.parameters() if p.requires_grad):
            flat = p.detach().reshape(-1)
            picked = flat[:: max(1, flat.numel() // FINGERPRINT_ELEMENTS)][:FINGERPRINT_ELEMENTS]
            weights = torch.arange(1, picked.numel() + 1, dtype=torch.float64, device=picked.device)
            total += (i + 1) * float((picked.to(torch.float64) * weights).sum())
    return total


def count_flops(model: nn.Module, image: torch.Tensor) -> int:
    """Forward FLOPs for one image (1, C, H, W), counted as ``torch.utils.flop_counter`` does.

    The counter's own formulas (2 per multiply-add of convolutions and matrix products) applied
    in forward hooks on Conv and Linear modules: the same total as ``FlopCounterMode`` for
    networks whose products all live in such modules, without its per-operation dispatch cost.
    """
    total = 0

    def conv(m: nn.modules.conv._ConvNd, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += conv_flop_count(list(args[0].shape), list(m.weight.shape), list(out.shape), m.transposed)

    def linear(m: nn.Linear, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * out.numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            handles.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear))
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(image.to(device_of(model)))
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    return total
