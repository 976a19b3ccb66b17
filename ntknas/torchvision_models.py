"""torchvision's classification models by name, freshly initialised (weights are never fetched)."""

from __future__ import annotations

import torchvision
from torch import nn

from ntknas.errors import UserError


def names() -> list[str]:
    """Names of torchvision's classification models."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def build(name: str, num_classes: int = 10) -> nn.Module:
    """torchvision model ``name`` with random weights and ``num_classes`` outputs."""
    if name not in names():
        close = [n for n in names() if n.startswith(name[:3])] or names()[:8]
        raise UserError(f"unknown torchvision model {name!r}; try one of: {', '.join(close)}")
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
