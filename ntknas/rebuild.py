"""A study's candidates rebuilt exactly as its search built them: the seeded network, and the
eigenvalues of its pNTK on the study's minibatch (recomputed on demand, not stored per trial)."""

from __future__ import annotations

import numpy as np
import optuna

import scores
import search_spaces
from ntknas import data
from ntknas.errors import UserError
from ntknas.search import Settings, seeded_model

SETTINGS = ("space", "data", "batch_size", "bn", "seed")


def study_settings(study: optuna.Study) -> Settings:
    """The search settings a study remembers; UserError when it does not remember them."""
    stored = study.user_attrs
    missing = [k for k in SETTINGS if k not in stored]
    if missing:
        raise UserError(
            f"study '{study.study_name}' does not record its search setting(s) {', '.join(missing)}; "
            "only studies made by `ntknas search` can be rebuilt"
        )
    return Settings(
        stored["space"],
        stored["data"],
        stored["batch_size"],
        stored["bn"],
        stored["seed"],
        stored.get("objective", "condition_number"),
        stored.get("cost"),
    )


def eigenvalues(
    study: optuna.Study, configs: list[str], *, data_root: str | None, device: str
) -> list[np.ndarray]:
    """The pNTK eigenvalues (ascending) of each configuration, on the study's own minibatch,
    BatchNorm mode and seeds: the spectrum its stored scores were read from."""
    settings = study_settings(study)
    space = search_spaces.get(settings.space)
    (x, _), classes = data.load_minibatch(settings.data, data_root, settings.batch_size, settings.seed)
    spectra = []
    for text in configs:
        model = seeded_model(space, space.parse(text), classes, settings.seed)
        kernel = scores.pntk(model, x, bn=settings.bn, device=device)
        spectra.append(scores.spectrum(kernel).eigenvalues.numpy())
    return spectra
