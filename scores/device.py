"""Where a computation runs: the model and its inputs on one device, the caller's model never moved."""

from __future__ import annotations

import copy

import torch
from torch import nn


def resolve(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch.device with its index (CUDA's current one for a bare ``"cuda"``);
    None means CUDA when present, else the CPU. ValueError for a device name torch does not know,
    and for CUDA where there is none."""
    try:
        target = torch.device(
            device if device is not None else "cuda" if torch.cuda.is_available() else "cpu"
        )
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; give 'cpu', 'cuda' or 'cuda:K'") from None
    if target.type == "meta":
        raise ValueError("device 'meta' holds no values to compute with; give 'cpu', 'cuda' or 'cuda:K'")
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asks for CUDA, but torch sees no GPU here; use device='cpu'")
    if target.type == "cuda" and target.index is None:
        target = torch.device("cuda", torch.cuda.current_device())
    return target


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (the CPU when it has none)."""
    tensor = next(iter([*model.parameters(), *model.buffers()]), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def placed(model: nn.Module, device: str | torch.device | None) -> nn.Module:
    """``model`` itself when all its parameters and buffers are on ``device``, else a copy there:
    the caller's model is never moved."""
    target = resolve(device)
    tensors = [*model.parameters(), *model.buffers()]
    return model if all(t.device == target for t in tensors) else copy.deepcopy(model).to(target)
