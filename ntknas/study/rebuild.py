"""A study's candidates rebuilt exactly as its search built them: the seeded network, and the
eigenvalues of its pNTK on the study's minibatch (recomputed on demand, not stored per trial)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import optuna

import scores
import search_spaces
from ntknas.core.errors import UserError, first_line
from ntknas.inputs import data
from ntknas.objectives.candidates import WEIGHTS, plugin_network, seeded_model
from ntknas.scoring.measure import count_params, weights_fingerprint
from ntknas.study.records import config_of
from ntknas.study.settings import Settings
from search_spaces import Config, PluginError, SearchSpace
from search_spaces.base import clipped

if TYPE_CHECKING:
    import torch
    from torch import nn

SHOWN = 80  # characters of a damaged stored configuration that a message quotes


def stored_space(settings: Settings, study: str) -> SearchSpace:
    """The search space of study ``study``'s ``settings``, whose networks run at its stored image
    size; UserError, saying that the stored settings are at fault, when not (a plugin space no
    longer installed, settings changed outside ntknas)."""
    from ntknas.objectives.fit import check_for_space

    with from_settings(settings, study, ("space", "image_size")):
        space = search_spaces.get(settings.space)
        check_for_space(space, settings.image_size)
    return space


def stored_minibatch(
    settings: Settings, study: str, data_root: str | None
) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
    """The minibatch (images, labels) and class count that study ``study`` was scored on
    (:func:`data.load_minibatch` of its stored settings); UserError, saying that they come from
    the stored settings, when they cannot be read now (the data moved, settings changed)."""
    with from_settings(settings, study, ("data", "batch_size", "image_size")):
        return data.load_minibatch(
            settings.data, data_root, settings.batch_size, settings.seed, settings.image_size
        )


@contextmanager
def from_settings(settings: Settings, study: str, keys: tuple[str, ...]) -> Iterator[None]:
    """A UserError or unknown space within the block (its message speaks of options) as a
    UserError about study ``study``'s stored settings ``keys``."""
    try:
        yield
    except (UserError, search_spaces.UnknownSpace) as e:
        stored = ", ".join(f"{key}={getattr(settings, key)}" for key in keys)
        raise UserError(f"study '{study}' stores {stored}, which cannot be used here: {e}") from None


def stored_config(space: SearchSpace, study: str, trial: optuna.trial.FrozenTrial) -> tuple[str, Config]:
    """Trial ``trial``'s stored configuration text and the configuration :func:`read_config` reads
    from it; UserError when the trial stores none (a trial ntknas did not score)."""
    text = config_of(trial)
    where = f"trial {trial.number} of study '{study}'"
    if text is None:
        raise UserError(f"{where} stores no configuration (ntknas did not score it); pick another trial")
    return text, read_config(space, text, where)


def read_config(space: SearchSpace, text: str, where: str) -> Config:
    """The configuration of ``space`` that stored text ``text`` (of ``where``, e.g. "trial 3 of
    study 's'") describes: the one the search built, as ``describe()`` gives the same text back.
    UserError when ``space`` cannot read it (a damaged value, or another space's); PluginError when
    it reads as another configuration (``parse()`` does not invert ``describe()``), from which
    another network than the one scored would be built."""
    shown = clipped(text, SHOWN)
    try:
        config = space.parse(text)
    except PluginError:
        raise
    except Exception as e:  # a ConfigError, or whatever a damaged value makes parse() raise
        raise UserError(
            f"{where}: space {space.name} cannot read the stored configuration {shown!r} "
            f"({first_line(e)}); the stored value is damaged or another space's: pick another trial"
        ) from None
    again = space.describe(config)
    if again != text:
        raise _fault(
            space,
            f"parse() does not invert describe(): {shown!r} reads as a configuration described as "
            f"{clipped(again, SHOWN)!r}, so another network than the one scored would be built; fix parse()",
        )
    return config


def _fault(space: SearchSpace, rule: str) -> PluginError:
    """The error of a plugin ``space`` (named by its label) that breaks ``rule``."""
    return PluginError(f"{getattr(space, 'label', f'space {space.name!r}')}: {rule}")


def check_rebuilt(space: SearchSpace, model: nn.Module, trial: optuna.trial.FrozenTrial, text: str) -> None:
    """PluginError when ``model``, built again from ``trial``'s configuration ``text`` for the
    study's data, has another count of trainable parameters than the network the search scored
    (stored as ``params``), or other initial weights (``weights_fingerprint``, when stored):
    ``build()`` gave another network for the same configuration, and its weights would go out (or
    be trained) under the other's scores. For a built-in space, whose build is deterministic, a
    UserError: the stored trial was changed, or scored by another version of the space."""
    shown = clipped(text, SHOWN)
    checks = (
        (
            "params",
            "counting its parameters",
            count_params,
            lambda now, then: (
                f"build() gave a network of {now:,} parameters for {shown!r}, where the search "
                f"scored one of {int(then):,}; build() must give the same network for the same configuration"
            ),
        ),
        (
            WEIGHTS,  # stored since 2026-12-07
            "reading its weights",
            weights_fingerprint,
            lambda now, then: (
                f"build() gave other initial weights for {shown!r} than the network the search "
                "scored, under the same seed; build() must draw its randomness from torch's generator alone "
                "(not Python's random or NumPy's)"
            ),
        ),
    )
    for attribute, doing, measure, rule in checks:
        stored = trial.user_attrs.get(attribute)
        if isinstance(stored, bool) or not isinstance(stored, int | float):
            continue  # not stored (an older study), or damaged: nothing to compare with
        with plugin_network(space, doing):
            now = measure(model)
        if now != stored and getattr(space, "label", None) is None:  # a built-in space builds alike
            raise UserError(
                f"trial {trial.number} stores {attribute}={stored!r}, and its configuration {shown!r} "
                f"builds a network with {attribute}={now!r}: the trial was changed outside ntknas, or "
                f"scored by another version of space {space.name}; pick another trial, or search again"
            )
        if now != stored:
            raise _fault(space, rule(now, stored))


def eigenvalues(
    settings: Settings,
    configs: list[str],
    *,
    study: str,
    data_root: str | None,
    device: str,
    step: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """The pNTK eigenvalues (ascending) of each stored configuration text (read as
    :func:`read_config` reads it), on the minibatch, BatchNorm mode and seeds of a study's
    ``settings`` (of study ``study``): the spectrum its stored scores were read from.
    ``step(done, total)`` hears of each configuration done."""
    space = stored_space(settings, study)
    (x, _), classes = stored_minibatch(settings, study, data_root)
    spectra = []
    for text in configs:
        config = read_config(space, text, f"study configuration {len(spectra) + 1}")
        with plugin_network(space, "recomputing its pNTK"):
            model = seeded_model(space, config, classes, settings.seed, tuple(x.shape[1:]))
            kernel = scores.pntk(model, x, bn=settings.bn, device=device)
        spectra.append(scores.spectrum(kernel).eigenvalues.numpy())
        if step is not None:
            step(len(spectra), len(configs))
    return spectra
