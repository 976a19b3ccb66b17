"""The search loop: Optuna proposes configurations, the scorer scores them, the study stores them."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import optuna
import torch

import scores
from ntknas.errors import UserError
from ntknas.measure import count_flops, count_params
from ntknas.storage import open_storage
from search_spaces import SearchSpace

# Spectrum scores a search can optimise, and which way is better.
OBJECTIVES = {
    "condition_number": "minimize",
    "lambda_max": "maximize",
    "lambda_min": "maximize",
    "trace": "maximize",
    "effective_rank": "maximize",
}
COSTS = ("params", "flops")
SAMPLERS = ("tpe", "random", "nsga2")
MAX_FAILURES_IN_A_ROW = 10

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Settings:
    """What a study remembers; resuming it with other values is refused.

    ``cost`` is the second objective of a multi-objective (NSGA-II) search, else None.
    """

    space: str
    data: str
    batch_size: int
    bn: str
    seed: int
    objective: str
    cost: str | None = None

    def directions(self) -> list[str]:
        return [OBJECTIVES[self.objective]] + (["minimize"] if self.cost else [])


class CandidateFailed(Exception):
    """A candidate could not be built or scored; the message is the reason stored on its trial."""


@dataclass
class Progress:
    """Where a search stands, reported after each trial."""

    completed: int
    total: int
    best_value: float | None
    best_trial: int | None
    last_seconds: float


def derive_seed(*parts: object) -> int:
    """A stable 32-bit seed from any printable parts."""
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def evaluate(
    space: SearchSpace, config, x: torch.Tensor, num_classes: int, *, bn: str, seed: int, device: str
) -> dict[str, object]:
    """Build one candidate (seeded by ``seed`` and its configuration), count and score it.

    Returns the trial attributes: ``config`` (the space's one-line description), every spectrum
    score, ``seconds``, ``params``, ``flops`` (per image) and ``bn``. Raises CandidateFailed with
    the reason when the model cannot be built or scored (e.g. non-finite outputs).
    """
    text = space.describe(config)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, text))
            model = space.build(config, num_classes)
        attrs: dict[str, object] = {"config": text, **scores.score(model, x, bn=bn, device=device)}
        attrs["params"] = count_params(model)
        attrs["flops"] = count_flops(model, x[:1])
    except Exception as e:  # any failure of one candidate is recorded, and the search goes on
        reason = (str(e).strip().splitlines() or [""])[0]
        raise CandidateFailed(f"{type(e).__name__}: {reason}") from e
    attrs["bn"] = bn
    return attrs


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by name: ``tpe``, ``random`` or ``nsga2``."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise UserError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")


def open_study(name: str, storage_url: str | None, settings: Settings, sampler: str) -> optuna.Study:
    """Create study ``name`` with ``settings``, or load it and check they match.

    The sampler's seed depends on the study seed and on how many trials the study already has,
    so that a resumed search does not replay the proposals it has already scored.
    """
    storage = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        study = optuna.create_study(study_name=name, storage=storage, directions=settings.directions())
        for key, value in asdict(settings).items():
            study.set_user_attr(key, value)
    else:
        check_settings(name, study.user_attrs, settings)
    study.sampler = make_sampler(sampler, derive_seed(settings.seed, len(study.trials)))
    return study


def check_settings(name: str, stored: dict, settings: Settings) -> None:
    """Raise UserError if ``settings`` differ from what study ``name`` remembers."""
    wanted = asdict(settings)
    differ = [k for k in wanted if stored.get(k) != wanted[k]]
    if differ:
        was = ", ".join(f"{k}={stored.get(k)}" for k in differ)
        now = ", ".join(f"{k}={wanted[k]}" for k in differ)
        raise UserError(
            f"study '{name}' was created with {was}, not {now}: resume it with its own settings, "
            "or pass --study NEW_NAME to start another study"
        )


def completed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def search(
    study: optuna.Study,
    space: SearchSpace,
    x: torch.Tensor,
    num_classes: int,
    settings: Settings,
    trials: int,
    device: str,
    report: Callable[[Progress], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Add trials to ``study`` until it holds ``trials`` completed ones.

    A configuration already scored in the study reuses the stored values. A candidate that fails
    is stored as a failed trial with its reason (``fail_reason``). On Ctrl-C the running trial is
    marked failed ("interrupted") and KeyboardInterrupt propagates; completed trials stay stored.
    ``stop`` is asked before each candidate: when it says True, the search stops the same way.
    """
    done = completed_trials(study)
    known = {t.user_attrs.get("config"): t for t in done}
    best: tuple[float, int] | None = None
    for t in done:
        best = _better(best, t.values[0], t.number, settings)
    completed, failures = len(done), 0
    while completed < trials:
        trial = None
        try:
            if stop is not None and stop():
                raise KeyboardInterrupt
            trial = study.ask()
            config = space.sample(trial)
            text = space.describe(config)
            if text in known:
                attrs = {**known[text].user_attrs, "reused_from": known[text].number}
            else:
                attrs = evaluate(
                    space, config, x, num_classes, bn=settings.bn, seed=settings.seed, device=device
                )
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            values = [float(attrs[settings.objective])] + (
                [float(attrs[settings.cost])] if settings.cost else []
            )
            frozen = study.tell(trial, values)
            failures = 0
            completed += 1
            known.setdefault(text, frozen)
            best = _better(best, values[0], trial.number, settings)
            if report:
                report(Progress(completed, trials, *(best or (None, None)), float(attrs["seconds"])))
        except CandidateFailed as e:
            trial.set_user_attr("fail_reason", str(e))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            failures += 1
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise UserError(f"{failures} candidates in a row failed; the last: {e}") from None
        except KeyboardInterrupt:
            if trial is not None:
                _fail_quietly(study, trial, "interrupted")
            raise


def _better(best: tuple[float, int] | None, value: float, number: int, settings: Settings):
    if math.isnan(value):
        return best
    if best is None:
        return value, number
    lower = OBJECTIVES[settings.objective] == "minimize"
    return (value, number) if (value < best[0] if lower else value > best[0]) else best


def _fail_quietly(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """Mark a trial failed, unless it was already told (the interrupt came after ``tell``)."""
    try:
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
