"""torchvision's classification models by name, freshly initialised (weights are never fetched), and
checked to run on the data's image size before any scoring."""

from __future__ import annotations

import torchvision
from torch import nn

from ntknas.core.errors import UserError, first_line
from ntknas.objectives.fit import failure

# Image sizes tried, smallest first, to tell a user what a model that fails on the data's size needs.
SIZES = (32, 64, 75, 96, 128, 160, 192, 224, 256, 299, 384, 512)
SMALL_MODEL = "resnet18"  # a model that runs on any size from 32 × 32 up


def names() -> list[str]:
    """Names of torchvision's classification models."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def build(name: str, num_classes: int = 10, image_size: int = 32) -> nn.Module:
    """torchvision model ``name`` with random weights and ``num_classes`` outputs, checked to run
    on 3-channel ``image_size`` × ``image_size`` images (see :func:`check_runs`)."""
    if name not in names():
        close = [n for n in names() if n.startswith(name[:3])] or names()[:8]
        raise UserError(f"unknown torchvision model {name!r}; try one of: {', '.join(close)}")
    try:  # explicit: googlenet and inception_v3 warn that their default will change
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, init_weights=True)
    except TypeError:  # a model without that switch
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    check_runs(model, name, image_size)
    return model


def check_runs(model: nn.Module, name: str, image_size: int) -> None:
    """UserError unless ``model`` runs on a batch of two 3-channel ``image_size`` × ``image_size``
    images. The message says which size it does run on (the smallest of ``SIZES`` that works)
    and what to pass instead. The model's parameters, buffers and flags are left as they were."""
    error = failure(model, image_size)
    if error is None:
        return
    sizes = [s for s in SIZES if s > image_size]
    works = next((s for s in sizes if failure(model, s) is None), None)
    if works is None:
        raise UserError(
            f"torchvision model {name!r} cannot run on {image_size}×{image_size} images "
            f"({type(error).__name__}: {first_line(error)}); choose another model, e.g. {SMALL_MODEL}"
        )
    raise UserError(
        f"torchvision model {name!r} cannot run on {image_size}×{image_size} images "
        f"(it needs larger ones: it runs on {works}×{works}); pass --image-size {works} or choose a "
        f"model that accepts {image_size}×{image_size}, e.g. {SMALL_MODEL}"
    )
