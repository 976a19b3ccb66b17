"""The search loop: Optuna proposes configurations, the scorer scores them, the study stores them."""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import optuna
import torch

from ntknas import heartbeat, metrics
from ntknas.errors import UserError, first_line
from ntknas.storage import open_storage
from search_spaces import SearchSpace

# Every metric can be optimised; which way is better.
OBJECTIVES = {name: "maximize" if m.higher_is_better else "minimize" for name, m in metrics.METRICS.items()}
COSTS = ("params", "flops")
# Stored on every trial, whatever the objective.
RECORDED = (*metrics.SPECTRUM, "params", "flops")
SAMPLERS = ("tpe", "random", "nsga2")
MAX_FAILURES_IN_A_ROW = 10
# Seconds between a trial's heartbeats: a worker silent for a few beats is presumed dead.
HEARTBEAT_SECONDS = 10
# How often a waiting worker looks at the study again.
POLL_SECONDS = 0.5
# How long a worker waits for the settings of a study another worker has just created.
SETTLE_SECONDS = 10.0
COMPLETE, RUNNING, WAITING = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.WAITING,
)
# Trials that count towards a search's target: done, under way, or queued for retry.
LIVE = (COMPLETE, RUNNING, WAITING)
SURPLUS = "surplus: the study already had enough trials complete or running"

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


def seeded_model(space: SearchSpace, config, num_classes: int, seed: int) -> torch.nn.Module:
    """The network of ``config``, initialised from a seed derived from ``seed`` and the
    configuration's description, without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, space.describe(config)))
        return space.build(config, num_classes)


def evaluate(
    space: SearchSpace,
    config,
    batch: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    *,
    objective: str,
    bn: str,
    seed: int,
    device: str,
) -> dict[str, object]:
    """Build one candidate (seeded by ``seed`` and its configuration) and measure it.

    ``batch`` is the minibatch ``(x, labels)``. Returns the trial attributes: ``config`` (the
    space's one-line description), the objective, every spectrum score, ``params``, ``flops``
    (per image), ``seconds`` and ``bn``. Raises CandidateFailed with the reason when the model
    cannot be built or scored (e.g. non-finite outputs).
    """
    text = space.describe(config)
    try:
        model = seeded_model(space, config, num_classes, seed)
        values = metrics.compute(model, *batch, [objective, *RECORDED], bn=bn, device=device)
    except Exception as e:  # any failure of one candidate is recorded, and the search goes on
        reason = first_line(e)
        raise CandidateFailed(f"{type(e).__name__}: {reason}") from e
    return {"config": text, **values, "bn": bn}


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by name: ``tpe``, ``random`` or ``nsga2``."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise UserError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")


class WorkerSeeded(optuna.samplers.BaseSampler):
    """Sampler ``name`` seeded by ``seed`` and the number of this worker's first trial.

    Trial numbers are unique among all the workers of a study, on any machine, so workers started
    with the very same command propose different configurations. A lone worker's first trial is
    numbered after the trials already stored, so a resumed search does not replay the proposals
    it has scored, and a search on the same history proposes the same configurations.
    """

    def __init__(self, name: str, seed: int) -> None:
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


def open_study(
    name: str,
    storage_url: str | None,
    settings: Settings,
    sampler: str,
    heartbeat_seconds: int | None = HEARTBEAT_SECONDS,
) -> optuna.Study:
    """Create study ``name`` with ``settings``, or load it and check they match.

    Several workers may open the same study at once: one creates it, the others load it. The
    sampler is seeded per worker (``WorkerSeeded``). With ``heartbeat_seconds``, the running trial
    of a worker that dies is failed and retried (``ntknas.storage.open_storage``).
    """
    storage = open_storage(storage_url, heartbeat_seconds)
    proposer = WorkerSeeded(sampler, settings.seed)
    try:
        study = optuna.create_study(
            study_name=name, storage=storage, directions=settings.directions(), sampler=proposer
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=proposer)
        check_settings(name, _stored_settings(study, settings), settings)
    else:
        for key, value in asdict(settings).items():
            study.set_user_attr(key, value)
    return study


def _stored_settings(study: optuna.Study, settings: Settings) -> dict:
    """The study's user attributes; waits up to ``SETTLE_SECONDS`` while a new, empty study lacks
    some ``settings``: the worker that created it is still storing them."""
    deadline = time.monotonic() + SETTLE_SECONDS
    stored = study.user_attrs
    while not stored.keys() >= asdict(settings).keys() and not study.trials and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        stored = study.user_attrs
    return stored


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
    batch: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    settings: Settings,
    trials: int,
    device: str,
    report: Callable[[Progress], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Add trials to ``study`` until it holds ``trials`` completed ones, counted over every worker
    that shares it (each running this loop).

    A configuration already scored in the study reuses the stored values; one that an earlier
    trial of another worker is scoring is waited for, then reused. A candidate that fails is stored
    as a failed trial with its reason (``fail_reason``) and not retried. On Ctrl-C the running
    trial is marked failed ("interrupted") and KeyboardInterrupt propagates; completed trials stay
    stored. ``stop`` is asked before each candidate: when it says True, the search stops the same
    way.
    """
    failures = 0
    while (trial := _claim(study, trials, stop)) is not None:
        try:
            with heartbeat.beating(trial):
                config = space.sample(trial)
                text = space.describe(config)
                trial.set_user_attr("config", text)
                attrs = _stored_result(study, trial, text, stop) or evaluate(
                    space,
                    config,
                    batch,
                    num_classes,
                    objective=settings.objective,
                    bn=settings.bn,
                    seed=settings.seed,
                    device=device,
                )
                for key, value in attrs.items():
                    trial.set_user_attr(key, value)
                values = [float(attrs[settings.objective])] + (
                    [float(attrs[settings.cost])] if settings.cost else []
                )
                study.tell(trial, values, skip_if_finished=True)
            failures = 0
            if report:
                report(progress(study, trials, settings, float(attrs["seconds"])))
        except CandidateFailed as e:
            _fail_quietly(study, trial, str(e))
            failures += 1
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise UserError(f"{failures} candidates in a row failed; the last: {e}") from None
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed this trial for missed heartbeats; its retry scores it
        except KeyboardInterrupt:
            _fail_quietly(study, trial, "interrupted")
            raise


def progress(study: optuna.Study, trials: int, settings: Settings, last_seconds: float = 0.0) -> Progress:
    """Where the search of ``study`` for ``trials`` completed trials stands, over all its workers."""
    lower = OBJECTIVES[settings.objective] == "minimize"
    done = completed_trials(study)
    best: tuple[float, int] | None = None
    for t in done:
        value = t.values[0]
        if not math.isnan(value) and (best is None or (value < best[0] if lower else value > best[0])):
            best = value, t.number
    return Progress(len(done), trials, *(best or (None, None)), last_seconds)


def _claim(study: optuna.Study, trials: int, stop: Callable[[], bool] | None) -> optuna.Trial | None:
    """The next trial for this worker to run, or None once the study holds ``trials`` completed.

    Complete, running and waiting trials (a dead worker's, queued for retry) count towards
    ``trials``; while they make up ``trials``, this worker waits, as a running one may still fail.
    A trial asked for just after another worker took the last place (more than ``trials`` live
    trials precede it) is failed as surplus, so no more than ``trials`` ever complete.
    """
    while True:
        if stop is not None and stop():
            raise KeyboardInterrupt
        heartbeat.fail_abandoned(study)
        live = study.get_trials(deepcopy=False, states=LIVE)
        if sum(t.state == COMPLETE for t in live) >= trials:
            return None
        if len(live) < trials or any(t.state == WAITING for t in live):
            with warnings.catch_warnings():  # heartbeats are recorded by ``heartbeat.beating``
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
                trial = study.ask()
            try:
                ahead = sum(t.number < trial.number for t in study.get_trials(deepcopy=False, states=LIVE))
                if ahead < trials:
                    return trial
                _fail_quietly(study, trial, SURPLUS)
            except KeyboardInterrupt:
                _fail_quietly(study, trial, "interrupted")
                raise
        time.sleep(POLL_SECONDS)


def _stored_result(
    study: optuna.Study, trial: optuna.Trial, text: str, stop: Callable[[], bool] | None
) -> dict[str, object] | None:
    """The attributes stored for configuration ``text``, for ``trial`` to reuse; None when it is
    to be scored here. While an earlier trial of another worker is scoring ``text``, waits for it."""
    while True:
        twins = [
            t
            for t in study.get_trials(deepcopy=False, states=(COMPLETE, RUNNING))
            if t.user_attrs.get("config") == text and t.number != trial.number
        ]
        done = [t for t in twins if t.state == COMPLETE]
        if done:
            kept = {k: v for k, v in done[0].user_attrs.items() if k != heartbeat.WORKER}
            return {**kept, "reused_from": kept.get("reused_from", done[0].number)}
        if not any(t.number < trial.number for t in twins):
            return None
        if stop is not None and stop():
            raise KeyboardInterrupt
        time.sleep(POLL_SECONDS)
        heartbeat.fail_abandoned(study)


def _fail_quietly(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """Mark a trial failed, unless it was already told (the interrupt came after ``tell``)."""
    try:
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
