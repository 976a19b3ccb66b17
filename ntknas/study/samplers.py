"""Optuna samplers by name, seeded per worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import optuna

from ntknas.core.errors import UserError
from ntknas.core.seeds import derive_seed

# A sampler factory: seed → a new Optuna sampler (any BaseSampler: GPSampler, CmaEsSampler, ...).
# Workers in processes of their own need one that pickles (a class, functools.partial of one).
SamplerFactory = Callable[[int], optuna.samplers.BaseSampler]
SamplerName = Literal["tpe", "random", "nsga2"]
SAMPLERS: dict[SamplerName, SamplerFactory] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
}


def make_sampler(sampler: str | SamplerFactory, seed: int) -> optuna.samplers.BaseSampler:
    """A new Optuna sampler seeded by ``seed``: by name (``tpe``, ``random`` or ``nsga2``) or from
    a factory."""
    if callable(sampler):
        made = sampler(seed)
        if not isinstance(made, optuna.samplers.BaseSampler):
            raise UserError(f"the sampler factory returned {type(made).__name__}, not an Optuna BaseSampler")
        return made
    if sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}")
    return SAMPLERS[sampler](seed)


class WorkerSeeded(optuna.samplers.BaseSampler):
    """Sampler ``name`` (or a factory's) seeded by ``seed`` and the number of this worker's first trial.

    Trial numbers are unique among all the workers of a study, on any machine, so workers started
    with the very same command propose different configurations. A lone worker's first trial is
    numbered after the trials already stored, so a resumed search does not replay the proposals
    it has scored, and a search on the same history proposes the same configurations.
    """

    def __init__(self, name: str | SamplerFactory, seed: int) -> None:
        self.name, self.seed = name, seed
        self.current, self.seeded = make_sampler(name, seed), False

    def before_trial(self, study, trial) -> None:
        if not self.seeded:
            self.current, self.seeded = make_sampler(self.name, derive_seed(self.seed, trial.number)), True
        self.current.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self.current.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.current.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.current.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self.current.after_trial(study, trial, state, values)
