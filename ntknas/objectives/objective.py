"""A search's objective as one object: a callable that a plain Optuna study can ``optimize``,
owning its minibatch, its metric, its space's reference (prepared on first use, cached), its seeded
builds and its budget. ``ntknas search`` scores every candidate through one, so a user's own Optuna
loop gets the values ``ntknas search`` stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ntknas.core.checks import SEED_LIMIT
from ntknas.objectives.budget import Budget
from ntknas.scoring.registry import DEFAULT, METRICS, Direction, optuna_direction
from scores.modes import BnMode

if TYPE_CHECKING:
    import optuna
    import torch

    from ntknas.objectives.reference import Measuring
    from search_spaces import SearchSpace


@dataclass
class Objective:
    """The value of metric ``metric`` of each configuration of ``space``, its network built with a
    seed derived from ``seed`` and the configuration, scored on ``batch`` (images (N, C, H, W),
    labels (N,)) with BatchNorm mode ``bn`` on ``device``.

    Called with an Optuna trial, it samples a configuration, stores the same trial attributes as
    ``ntknas search`` (``config``, every spectrum score, ``params``, ``flops``, ``seconds``) and
    returns the value; a candidate over ``budget`` is pruned (``optuna.TrialPruned``) before any
    scoring, and one that cannot be built or scored raises
    :class:`~ntknas.core.errors.CandidateFailed` (Optuna stores the trial as failed). ``direction``
    is the Optuna direction to create the study with: the metric's own (its registry entry's)
    unless given. ``space_name`` is the name the space was
    found by (``search_spaces.get``), with which another process finds it again;
    ``reference_terms``, when given, is the reference used instead of the space's.
    """

    space: SearchSpace
    batch: tuple[torch.Tensor, torch.Tensor]
    num_classes: int
    metric: str = DEFAULT
    bn: BnMode = "batch"
    seed: int = 0
    device: str = "auto"
    budget: Budget = field(default_factory=Budget)
    reference_measuring: Measuring | None = None
    space_name: str = ""
    direction: Direction | None = None
    reference_terms: Mapping[str, tuple[float, float]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose from: {', '.join(METRICS)}")
        self.space_name = self.space_name or self.space.name
        self.direction = self.direction or optuna_direction(METRICS[self.metric].higher_is_better)
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"direction {self.direction!r} is neither 'maximize' nor 'minimize'")

    def __getstate__(self) -> dict[str, object]:
        # Another process (a worker) finds the space again by the name it was found by.
        return {**self.__dict__, "space": None, "reference_measuring": None}

    def __setstate__(self, state: dict[str, object]) -> None:
        import search_spaces

        self.__dict__.update(state)
        self.space = search_spaces.get(self.space_name)

    @property
    def image_size(self) -> int:
        """The side of the square images scored, in pixels."""
        return int(self.batch[0].shape[-1])

    def reference(self) -> Mapping[str, tuple[float, float]] | None:
        """The space's reference that ``ntk_score`` places its terms in (shipped, cached, or
        measured now, once: see :mod:`ntknas.objectives.reference`); None for other metrics."""
        if self.metric != "ntk_score":
            return None
        if self.reference_terms is None:
            from ntknas.objectives import reference

            batch = int(self.batch[0].shape[0])
            found = reference.for_space(
                self.space, self.image_size, self.num_classes, self.reference_measuring, batch
            )
            self.reference_terms = found.terms
        return self.reference_terms

    def evaluate(self, config) -> dict[str, object]:
        """The trial attributes of configuration ``config`` (see
        :func:`~ntknas.objectives.candidates.evaluate`)."""
        from ntknas.objectives.candidates import evaluate

        return evaluate(
            self.space,
            config,
            self.batch,
            self.num_classes,
            objective=self.metric,
            bn=self.bn,
            seed=self.seed,
            device=self.device,
            budget=self.budget,
            reference=self.reference(),
        )

    def __call__(self, trial: optuna.Trial) -> float:
        """Sample a configuration on ``trial``, score it, store its attributes; its value."""
        import optuna

        from ntknas.objectives.candidates import OverBudget

        config = self.space.sample(trial)
        try:
            attrs = self.evaluate(config)
        except OverBudget as e:
            for key, value in {"config": self.space.describe(config), **e.size}.items():
                trial.set_user_attr(key, value)
            raise optuna.TrialPruned(str(e)) from None
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return float(attrs[self.metric])


def objective(
    space: str | SearchSpace,
    data: str = "cifar10-sample",
    metric: str = DEFAULT,
    *,
    budget: Budget | None = None,
    batch_size: int = 64,
    image_size: int = 32,
    bn: BnMode = "batch",
    seed: int = 0,
    device: str = "auto",
    data_root: str | Path | None = None,
    direction: Direction | None = None,
    reference_measuring: Measuring | None = None,
) -> Objective:
    """The objective ``ntknas search --space SPACE --data DATA --objective METRIC`` scores with:
    the seeded, class-balanced minibatch of ``batch_size`` images of ``data`` (a source name or an
    image folder, read at ``image_size`` pixels; ``data_root`` for ``cifar10``), the same seeds,
    the same BatchNorm mode. ``space`` is a name (see ``ntknas spaces``) or a SearchSpace;
    ``direction`` overrides the metric's own (``--direction``).

    Examples:
        >>> import optuna, ntknas
        >>> score = ntknas.objective("nb201", batch_size=16)  # doctest: +SKIP
        >>> study = optuna.create_study(direction=score.direction)  # doctest: +SKIP
        >>> study.optimize(score, n_trials=5)  # doctest: +SKIP
    """
    import torch

    import search_spaces
    from ntknas.inputs import data as images
    from scores.bn import check_bn_mode

    if budget is not None and not isinstance(budget, Budget):
        raise TypeError(f"budget must be an ntknas.Budget or None; got {type(budget).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise (TypeError if not isinstance(seed, int) else ValueError)(
            f"seed must be a whole number from 0 to {SEED_LIMIT - 1}; got {seed!r}"
        )
    check_bn_mode(bn)
    chosen = search_spaces.get(space) if isinstance(space, str) else space
    batch, classes = images.load_minibatch(data, data_root, batch_size, seed, image_size)
    return Objective(
        chosen,
        batch,
        classes,
        metric,
        bn,
        seed,
        ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device,
        budget or Budget(),
        reference_measuring,
        space if isinstance(space, str) else "",
        direction,
    )
