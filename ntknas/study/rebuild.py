"""A study's candidates rebuilt exactly as its search built them: the seeded network, and the
eigenvalues of its pNTK on the study's minibatch (recomputed on demand, not stored per trial)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import scores
import search_spaces
from ntknas.inputs import data
from ntknas.objectives.candidates import seeded_model
from ntknas.study.settings import Settings


def eigenvalues(
    settings: Settings,
    configs: list[str],
    *,
    data_root: str | None,
    device: str,
    step: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """The pNTK eigenvalues (ascending) of each configuration, on the minibatch, BatchNorm mode and
    seeds of a study's ``settings``: the spectrum its stored scores were read from. ``step(done,
    total)`` hears of each configuration done."""
    space = search_spaces.get(settings.space)
    (x, _), classes = data.load_minibatch(
        settings.data, data_root, settings.batch_size, settings.seed, settings.image_size
    )
    spectra = []
    for text in configs:
        model = seeded_model(space, space.parse(text), classes, settings.seed, tuple(x.shape[1:]))
        kernel = scores.pntk(model, x, bn=settings.bn, device=device)
        spectra.append(scores.spectrum(kernel).eigenvalues.numpy())
        if step is not None:
            step(len(spectra), len(configs))
    return spectra
