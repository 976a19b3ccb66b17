"""The side of the square images that networks are built for, scored and trained at
(``--image-size``): one check for every command (whether a space's networks run at a size:
:mod:`ntknas.objectives.fit`). Importable without torch."""

from __future__ import annotations

import re

from ntknas.core.errors import UserError

DEFAULT = 32  # CIFAR-10's: the bundled sample's, and the shipped references'
# The largest side: a minibatch of 64 images of 1024 × 1024 takes 800 MB before any network runs,
# and a pNTK many times that; larger sizes are typos (a pixel count, a file size).
LARGEST = 1024


def parse(text: str | int) -> int:
    """``--image-size``'s value as given on the command line (or its default), checked
    (:func:`check`)."""
    whole = re.fullmatch(r"\s*([+-]?[0-9]+)\s*", str(text))
    return check(int(whole[1]) if whole else text)  # type: ignore[arg-type]  # check refuses text


def check(size: int) -> int:
    """``size`` when it is a whole number from 1 to ``LARGEST``; UserError naming the fix otherwise."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise UserError(f"--image-size must be a whole number of pixels; got {size!r}")
    if not 1 <= size <= LARGEST:
        raise UserError(
            f"--image-size must be from 1 to {LARGEST} pixels; got {size}: pass the side of the "
            f"square images to score and train at, e.g. {DEFAULT} or 224"
        )
    return size
