"""A study as its search loop sees it: counts, the best trial and which trial scored each
configuration, read once per pass and kept incrementally (no torch needed: the CLI's progress and
tables use it too)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna

from ntknas.study import heartbeat
from ntknas.study.records import CONFIG, REUSED_FROM

COMPLETE, RUNNING, WAITING = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.WAITING,
)


@dataclass(frozen=True)
class SearchStatus:
    """Where a search stands: ``scored`` distinct configurations of ``target``, over ``trials``
    trials in all (reused and pruned included), and the best scored trial so far."""

    scored: int
    target: int
    trials: int
    best_value: float | None
    best_trial: int | None


def counts_as_scored(t: optuna.trial.FrozenTrial) -> bool:
    """Whether trial ``t`` scored a configuration itself (completed, not reused, and storing the
    configuration it scored: a trial another program added counts as nothing ntknas scored)."""
    return (
        t.state == COMPLETE and REUSED_FROM not in t.user_attrs and isinstance(t.user_attrs.get(CONFIG), str)
    )


def _pending(t: optuna.trial.FrozenTrial) -> bool:
    """Whether ``t`` counts, or may yet count, toward a search's target."""
    return counts_as_scored(t) or t.state in (RUNNING, WAITING)


class StudyView:
    """A study as of its last read (:meth:`refresh`), kept incrementally.

    Finished trials never change, so each is indexed once: the trials before the first unfinished
    one are *settled*; only the few after it are looked at again on each read.
    """

    def __init__(self, study: optuna.Study, higher_is_better: bool) -> None:
        self.study = study
        self.sign = 1.0 if higher_is_better else -1.0
        self.trials: list[optuna.trial.FrozenTrial] = []
        self.scored_by_config: dict[str, int] = {}  # configuration → settled trial that scored it
        self._settled = 0
        self._settled_scored = 0
        self._settled_best: tuple[float, int] | None = None
        self._open: list[optuna.trial.FrozenTrial] = []
        self._unlabelled_since: dict[int, float] = {}  # running trial → when first seen unlabelled

    def refresh(self) -> None:
        """Read the study (one read) and index the trials that finished since the last read."""
        self.trials = self.study.get_trials(deepcopy=False)
        while self._settled < len(self.trials) and self.trials[self._settled].state.is_finished():
            self._settle(self.trials[self._settled])
            self._settled += 1
        self._open = self.trials[self._settled :]

    def _settle(self, t: optuna.trial.FrozenTrial) -> None:
        if counts_as_scored(t):
            self._settled_scored += 1
            self.scored_by_config.setdefault(str(t.user_attrs.get("config", "")), t.number)
            self._settled_best = self._better(self._settled_best, t)

    def _better(
        self, best: tuple[float, int] | None, t: optuna.trial.FrozenTrial
    ) -> tuple[float, int] | None:
        value = t.values[0]
        if math.isnan(value) or (best is not None and self.sign * value <= self.sign * best[0]):
            return best
        return value, t.number

    def scored(self) -> int:
        """Distinct configurations scored so far, over every worker."""
        return self._settled_scored + sum(counts_as_scored(t) for t in self._open)

    def pending(self, below: int | None = None) -> int:
        """Trials that count or may yet count toward the target: scored, running or waiting (among
        those numbered below ``below``)."""
        below = len(self.trials) if below is None else min(below, len(self.trials))
        if below < self._settled:  # a retried trial from far back: count its predecessors afresh
            return sum(_pending(t) for t in self.trials[:below])
        return self._settled_scored + sum(_pending(t) for t in self.trials[self._settled : below])

    def waiting(self) -> bool:
        """Whether a trial is queued for retry."""
        return any(t.state == WAITING for t in self._open)

    def scorer_of(self, config: str, number: int) -> optuna.trial.FrozenTrial | None:
        """A completed trial that scored ``config``, else a running trial numbered before
        ``number`` that is scoring it (to wait for), else None."""
        settled = self.scored_by_config.get(config)
        if settled is not None:
            return self.trials[settled]
        twins = [t for t in self._open if t.user_attrs.get(CONFIG) == config and t.number != number]
        done = [t for t in twins if counts_as_scored(t)]
        if done:
            return done[0]
        earlier = [t for t in twins if t.state == RUNNING and t.number < number]
        return earlier[0] if earlier else None

    def abandoned(self, now: float) -> list[int]:
        """Running trials this process has watched stay without a worker label for longer than
        ``heartbeat.ABANDONED_SECONDS`` (by its own monotonic clock ``now``)."""
        unlabelled = {
            t.number for t in self._open if t.state == RUNNING and heartbeat.WORKER not in t.user_attrs
        }
        self._unlabelled_since = {n: self._unlabelled_since.get(n, now) for n in unlabelled}
        return [n for n, since in self._unlabelled_since.items() if now - since > heartbeat.ABANDONED_SECONDS]

    def status(self, target: int) -> SearchStatus:
        """Counts and the best scored trial, for progress reports."""
        best = self._settled_best
        for t in self._open:
            if counts_as_scored(t):
                best = self._better(best, t)
        return SearchStatus(self.scored(), target, len(self.trials), *(best or (None, None)))
