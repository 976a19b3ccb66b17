"""The search loop: Optuna proposes configurations, the scorer scores them, the study stores them.

``--trials N`` asks for N *distinct scored* configurations (or the whole space, when it holds
fewer), counted over every worker that shares the study. A proposal of a configuration already
scored reuses the stored values (a trial marked ``reused_from``); one over the budget is stored
as pruned with the reason, before any scoring. Neither counts toward N.

Each pass of the loop reads the study once into a :class:`~ntknas.study.study_view.StudyView`, which
keeps the counts, the best trial and a configuration → trial index up to date incrementally; the
claim, the reuse lookup and the progress report work from it.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import optuna

from ntknas.core.errors import UserError, first_line
from ntknas.core.interrupts import uninterrupted
from ntknas.objectives.candidates import CandidateFailed, OverBudget
from ntknas.objectives.objective import Objective
from ntknas.study import heartbeat
from ntknas.study.records import CONFIG, FAIL_REASON, PRUNE_REASON, REUSED_FROM
from ntknas.study.settings import Settings
from ntknas.study.study_view import COMPLETE, SearchStatus, StudyView
from search_spaces import PluginError, SearchSpace

if TYPE_CHECKING:
    import torch

PRUNED, FAIL = optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL
MAX_FAILURES_IN_A_ROW = 10
# Proposals in a row that add no scored configuration (reused, or over budget) before the search
# concludes that the sampler has nothing new to offer.
MAX_IDLE_IN_A_ROW = 200
# How often a waiting worker looks at the study again.
POLL_SECONDS = 0.5
SURPLUS = "surplus: the study already had enough trials complete or running"
INTERRUPTED_REASON = "interrupted"  # the failure reason of a trial stopped by Ctrl-C or SIGTERM


class SearchExhausted(UserError):
    """The sampler kept proposing configurations that add nothing (reused or over budget)."""


def target_of(trials: int, space: SearchSpace) -> int:
    """Distinct configurations a search for ``trials`` scores: no more than the space holds."""
    return min(trials, space.size)


def objective_of(
    space: SearchSpace,
    settings: Settings,
    batch: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    device: str = "cpu",
    reference: Mapping[str, tuple[float, float]] | None = None,
) -> Objective:
    """The objective that a study with ``settings`` is searched with, on the minibatch ``batch`` of
    ``num_classes`` classes (``reference``: the space's, for ``ntk_score``, else prepared on first
    use); :func:`ntknas.objective` loads the minibatch too."""
    return Objective(
        space,
        batch,
        num_classes,
        settings.objective,
        settings.bn,
        settings.seed,
        device,
        settings.budget,
        space_name=settings.space,
        direction="maximize" if settings.higher_is_better else "minimize",
        reference_terms=reference,
    )


def search(
    study: optuna.Study,
    objective: Objective,
    settings: Settings,
    trials: int,
    report: Callable[[SearchStatus], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Add trials to ``study`` until it holds ``trials`` distinct scored configurations (or the
    whole space), counted over every worker that shares it (each running this loop).

    A configuration already scored reuses the stored values; one that an earlier trial of another
    worker is scoring is waited for, then reused. A candidate that fails is stored as a failed
    trial with its reason (``fail_reason``) and not retried; one over the budget as pruned
    (``prune_reason``). On Ctrl-C the running trial is marked failed ("interrupted") and
    KeyboardInterrupt propagates; completed trials stay stored. ``stop`` is asked before each
    candidate: when it says True, the search stops the same way. ``report`` gets a
    :class:`SearchStatus` after each read of the study. ``objective`` scores each new
    configuration (:class:`~ntknas.objectives.objective.Objective`); ``settings`` are the study's.
    """
    target = target_of(trials, objective.space)
    view = StudyView(study, settings.higher_is_better)
    failures = idle = 0
    asked: list[optuna.Trial] = []  # the last trial this process asked for: failed on a stop
    try:
        while (trial := _claim(study, view, target, stop, report, asked)) is not None:
            failures, idle = _run_trial(study, objective, settings, view, trial, stop, failures, idle)
            if idle >= MAX_IDLE_IN_A_ROW:
                _exhausted(view, settings, target)
    except KeyboardInterrupt:
        if asked:
            _fail_quietly(study, asked[-1], INTERRUPTED_REASON)
        raise


def _run_trial(
    study: optuna.Study,
    objective: Objective,
    settings: Settings,
    view: StudyView,
    trial: optuna.Trial,
    stop: Callable[[], bool] | None,
    failures: int,
    idle: int,
) -> tuple[int, int]:
    """Score ``trial`` (or reuse, prune or fail it) and tell the study. Returns the counts of
    candidates that failed, and of proposals reused or over budget, in a row."""
    try:
        with heartbeat.beating(trial):
            config = objective.space.sample(trial)
            text = objective.space.describe(config)
            trial.set_user_attr(CONFIG, text)
            attrs = _reused(view, trial, text, stop)
            if attrs is None:
                attrs = objective.evaluate(config)
            _set_constraints(trial, settings, attrs)
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            values = [float(attrs[settings.objective])]
            values += [float(attrs[settings.cost])] if settings.cost else []
            study.tell(trial, values, skip_if_finished=True)
        return 0, (idle + 1 if REUSED_FROM in attrs else 0)
    except OverBudget as e:
        _set_constraints(trial, settings, e.size)
        _prune(study, trial, str(e), e.size)
        return failures, idle + 1
    except (CandidateFailed, PluginError) as e:  # a plugin's sample() or describe() too
        _fail_quietly(study, trial, str(e))
        if failures + 1 >= MAX_FAILURES_IN_A_ROW:
            raise UserError(f"{failures + 1} candidates in a row failed; the last: {e}") from None
        return failures + 1, idle
    except optuna.exceptions.UpdateFinishedTrialError:
        return failures, idle  # another worker failed this trial for missed heartbeats; its retry scores it
    except Exception as e:  # a fault of the storage (a full disk) or a bug ends the search
        with contextlib.suppress(Exception):  # else a heartbeat fails it when the search resumes
            _fail_quietly(study, trial, f"{type(e).__name__}: {first_line(e)}")
        raise


def _claim(
    study: optuna.Study,
    view: StudyView,
    target: int,
    stop: Callable[[], bool] | None,
    report: Callable[[SearchStatus], None] | None,
    asked: list[optuna.Trial],
) -> optuna.Trial | None:
    """The next trial for this worker to run, or None once the study holds ``target`` distinct
    scored configurations.

    Scored, running and waiting trials (a dead worker's, queued for retry) count toward
    ``target``; while they make up ``target``, this worker waits, as a running one may yet fail
    or turn out to be a reuse. A trial asked for just after another worker took the last place
    (``target`` or more pending trials precede it) is failed as surplus, so no more than
    ``target`` configurations are ever scored. ``asked`` holds the trial asked for last, even
    when a stop comes while the storage creates it.
    """
    while True:
        if stop is not None and stop():
            raise KeyboardInterrupt
        heartbeat.fail_stale(study)
        view.refresh()
        for number in view.abandoned(time.monotonic()):
            heartbeat.fail_unlabelled(study, number)
        if report is not None:
            report(view.status(target))
        if view.scored() >= target:
            return None
        if view.pending() < target or view.waiting():
            with warnings.catch_warnings(), uninterrupted():  # a stop waits until ``asked`` holds it
                # our loop beats itself (see ntknas.study.heartbeat)
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
                asked[:] = [study.ask()]
            trial = asked[0]
            # Trials numbered after the last read were asked for meanwhile by other workers:
            # count them as pending.
            ahead = view.pending(below=trial.number) + max(0, trial.number - len(view.trials))
            if ahead < target:
                return trial
            _fail_quietly(study, trial, SURPLUS)
        time.sleep(POLL_SECONDS)


def _reused(
    view: StudyView, trial: optuna.Trial, text: str, stop: Callable[[], bool] | None
) -> dict[str, object] | None:
    """The attributes stored for configuration ``text``, for ``trial`` to reuse; None when it is
    to be scored here. While an earlier trial of another worker is scoring ``text``, waits for it.

    The view is read again only when other workers may have asked for trials since the last read
    (``trial`` is not the next trial after it), so a lone worker reads the study once per pass.
    """
    if trial.number != len(view.trials):
        view.refresh()
    while True:
        source = view.scorer_of(text, trial.number)
        if source is None:
            return None
        if source.state == COMPLETE:
            kept = {k: v for k, v in source.user_attrs.items() if k not in (heartbeat.WORKER, REUSED_FROM)}
            return {**kept, REUSED_FROM: source.number}
        if stop is not None and stop():
            raise KeyboardInterrupt
        time.sleep(POLL_SECONDS)
        heartbeat.fail_stale(view.study)
        view.refresh()


def _exhausted(view: StudyView, settings: Settings, target: int) -> None:
    """Raise SearchExhausted: the last proposals were all reused or over budget."""
    scored = view.scored()
    over = f" or over budget ({settings.budget.describe()})" if settings.budget else ""
    raise SearchExhausted(
        f"stopped after {MAX_IDLE_IN_A_ROW} proposals in a row that were already scored{over}: "
        f"the study holds {scored} distinct scored configuration(s) of the {target} asked for; "
        + ("raise the budget, or " if settings.budget else "")
        + "try another --sampler or --seed"
    )


def _set_constraints(trial: optuna.Trial, settings: Settings, size: dict) -> None:
    """Hand the sampler the trial's excess over each bound of the budget (Optuna's constraints:
    ≤ 0 within it), from which TPE and NSGA-II learn to propose candidates within it."""
    for bound, excess in settings.budget.excess(size).items():
        trial.set_constraint(bound, excess)


def _prune(study: optuna.Study, trial: optuna.Trial, reason: str, attrs: dict[str, object]) -> None:
    """Store ``trial`` as pruned with its reason and size (it is not retried, and does not count)."""
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr(PRUNE_REASON, reason)
    study.tell(trial, state=PRUNED, skip_if_finished=True)


def _fail_quietly(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """Mark a trial failed, unless it was already told (the interrupt came after ``tell``); a
    stop meanwhile waits until it is stored."""
    with uninterrupted(), contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        trial.set_user_attr(FAIL_REASON, reason)
        study.tell(trial, state=FAIL)
