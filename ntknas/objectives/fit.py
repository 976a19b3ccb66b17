"""Whether a space's networks run at an image size: a probe that builds one and runs it on two
images, behind one check that every command makes before any work. Importable without torch
(the probe imports it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ntknas.core.errors import UserError, first_line
from ntknas.inputs.image_size import DEFAULT, LARGEST, check
from search_spaces.guard import PluginError

if TYPE_CHECKING:
    from torch import nn

    from search_spaces import SearchSpace


def check_for_space(space: SearchSpace, size: int) -> None:
    """UserError naming the fix unless :func:`check` passes ``size`` and ``space``'s networks run
    on ``size`` × ``size`` images: it keeps to the space's declared ``min_image_size`` and
    ``image_size_multiple``, and one network of the space, built for it, runs on two such images."""
    check(size)
    low, step = space.min_image_size, space.image_size_multiple
    if size < low or size % step:
        rule = f"at least {low} pixels" + (f", a multiple of {step}" if step > 1 else "")
        below = size - size % step
        nearest = (below, below + step, -(-low // step) * step)
        fits = [s for s in dict.fromkeys(nearest) if low <= s <= LARGEST][:2]
        if not fits:
            raise UserError(
                f"space {space.name} declares that its networks need images of {rule}, and no image "
                f"size up to {LARGEST} is one: fix the space's min_image_size or image_size_multiple"
            )
        raise UserError(
            f"--image-size {size} does not fit space {space.name}: its networks need images of {rule}; "
            f"pass --image-size {' or '.join(map(str, fits))}"
        )
    error = _space_failure(space, size)
    if error is not None:
        works = size != DEFAULT and _space_failure(space, DEFAULT) is None
        if isinstance(error, PluginError) and not works:
            raise error  # the plugin fails at every size: its own one-line error, not the size's
        raise UserError(
            f"the networks of space {space.name} cannot run on {size}×{size} images "
            f"({type(error).__name__}: {first_line(error)}); pass another --image-size"
            + (f", e.g. {DEFAULT}, on which they run" if works else "")
        )


def failure(model: nn.Module, size: int) -> Exception | None:
    """What running ``model`` (in eval mode, without gradients) on two 3-channel ``size`` ×
    ``size`` images raises, None when it runs. Its parameters, buffers and flags are left as they
    were."""
    import torch

    from scores.device import device_of

    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(2, 3, size, size, device=device_of(model)))
    except Exception as e:  # networks fail on sizes in many ways (asserts, shape and kernel errors)
        return e
    finally:
        for m, training in flags.items():
            m.training = training
    return None


def _space_failure(space: SearchSpace, size: int) -> Exception | None:
    """What building a network of ``space`` (the first of its reference sample) for ``size`` ×
    ``size`` images, and running it on two, raises; None when it runs."""
    from ntknas.objectives.candidates import seeded_model
    from ntknas.objectives.reference import SEED, sample

    try:
        model = seeded_model(space, sample(space, 1)[0], 10, SEED, (3, size, size))
    except Exception as e:  # a space's build can fail on sizes in any way
        return e
    return failure(model, size)
