"""What a study's trials record, read one way everywhere: the trial attribute keys, one
:class:`Record` per distinct configuration scored, the one ranking that every pick uses (search's
summary, ``results``, ``verify``, ``export``, ``plot``, the dashboard) and which trial scored a
configuration. Importable without torch; Optuna is imported by the functions that read a study.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ntknas.core.errors import InputWarning, UserError
from ntknas.scoring.registry import METRICS
from search_spaces.base import clipped

if TYPE_CHECKING:
    import optuna

    from ntknas.study.settings import Settings

# Trial user attributes: the configuration's one-line description; the trial whose values a
# reused trial copies; why a trial was pruned; why it failed.
CONFIG, REUSED_FROM, PRUNE_REASON, FAIL_REASON = "config", "reused_from", "prune_reason", "fail_reason"
# What `ntknas verify` stores for a trial (accuracies in %, epochs trained, training seconds), and
# whether each is better higher.
VERIFIED = {
    "verified_test_acc": True,
    "verified_train_acc": True,
    "verified_epochs": True,
    "verified_seconds": False,
}
SECONDS = "seconds"  # wall time of a candidate's scoring
# Study user attribute: the reference ntk_score placed the study's candidates in, {term: [centre, spread]}.
REFERENCE = "ntk_score_reference"


def column_directions() -> dict[str, bool]:
    """Whether higher is better, for every column a record's row can sort by: each metric as the
    registry declares it, the scoring time and the verification results; ``trial``, lowest first."""
    return {
        **{name: m.higher_is_better for name, m in METRICS.items()},
        SECONDS: False,
        **VERIFIED,
        "trial": False,
    }


@dataclass(frozen=True)
class Record:
    """One distinct configuration scored: ``trial`` scored it (``config``), ``values`` are its
    stored metrics, scoring time and verification results, and ``reuses`` counts the later trials
    that reused them."""

    trial: int
    config: str
    values: Mapping[str, object] = field(default_factory=dict)
    reuses: int = 0

    def row(self) -> dict[str, object]:
        """The record as one flat row: ``trial``, ``config``, ``reuses`` and the values."""
        return {"trial": self.trial, CONFIG: self.config, "reuses": self.reuses, **self.values}


def records(study: optuna.Study) -> list[Record]:
    """One record per distinct configuration of ``study``'s completed trials, in trial order;
    trials without a stored configuration (added by other code) are none."""
    import optuna

    from ntknas.study.verified import stored_results

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    verified = stored_results(study, study.get_trials(deepcopy=False))
    kept = column_directions().keys() - {"trial"}
    found: dict[str, Record] = {}
    reuses: dict[str, int] = {}
    odd: list[tuple[int, str, object]] = []  # (trial, key, value) stored values that are no numbers
    for t in trials:
        config = config_of(t)
        if config is None:
            continue
        if config in found:
            reuses[config] += 1
            continue
        attrs = {**t.user_attrs, **verified.get(t.number, {})}
        values = {k: v for k, v in attrs.items() if k in kept}
        odd.extend((t.number, k, values.pop(k)) for k, v in list(values.items()) if not _number(v))
        found[config] = Record(t.number, config, values)
        reuses[config] = 0
    if odd:
        number, key, value = odd[0]
        warnings.warn(
            f"{len(odd)} stored value(s) are no numbers and are left out (trial {number} stores "
            f"{key}={clipped(repr(value), 40)}): they were changed outside ntknas",
            InputWarning,
            stacklevel=2,
        )
    return [Record(r.trial, r.config, r.values, reuses[r.config]) for r in found.values()]


def _number(value: object) -> bool:
    """Whether a stored metric or result is a number (NaN and ±inf included; text, lists and
    booleans, which only a hand edit stores, are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def config_of(trial: optuna.trial.FrozenTrial) -> str | None:
    """The configuration text ``trial`` stores; None for a trial ntknas did not score (added by
    other code: no text, or not a str)."""
    config = trial.user_attrs.get(CONFIG)
    return config if isinstance(config, str) and config else None


def rows(study: optuna.Study) -> list[dict[str, object]]:
    """:func:`records` as flat rows (see :meth:`Record.row`)."""
    return [r.row() for r in records(study)]


def why_no_rows(study: optuna.Study) -> str:
    """Why ``study`` has no scored candidate, in a phrase: its trials by state, and the last
    failed trial's reason (e.g. "3 trials failed (the last: ...)"), or that it has no trials."""
    import collections

    trials = study.get_trials(deepcopy=False)
    if not trials:
        return "it has no trials"
    states = collections.Counter(t.state.name for t in trials)
    said = ", ".join(
        f"{n} {'trial' if n == 1 else 'trials'} {STATE_WORDS.get(state, state.lower())}"
        for state, n in sorted(states.items())
    )
    failed = [t for t in trials if t.user_attrs.get(FAIL_REASON)]
    return said + (f" (the last: {failed[-1].user_attrs[FAIL_REASON]})" if failed else "")


def unshown(study: optuna.Study) -> str | None:
    """The trials of ``study`` that its rows leave out though a reader may look for them, in a
    phrase: running ones (a search is scoring them, or one that stopped left them) and completed
    ones without a stored configuration (added by other code); None when there are none."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    bare = sum(t.state == optuna.trial.TrialState.COMPLETE and config_of(t) is None for t in trials)
    said = []
    if running:
        it = "it" if running == 1 else "them"
        said.append(
            f"{running} {'trial' if running == 1 else 'trials'} still running (a search is scoring "
            f"{it}, or one that stopped left {it}: the next search of the study fails {it} and tries again)"
        )
    if bare:
        said.append(
            f"{bare} completed {'trial' if bare == 1 else 'trials'} without a stored configuration "
            "(added by other code than ntknas)"
        )
    return "; ".join(said) or None


STATE_WORDS = {"COMPLETE": "completed", "FAIL": "failed", "PRUNED": "pruned"}


def reused_count(study: optuna.Study) -> int:
    """Completed trials that reused another trial's values."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return sum(REUSED_FROM in t.user_attrs for t in done)


def sort_rows(
    rows: list[dict[str, object]], by: str, directions: Mapping[str, bool] | None = None
) -> list[dict[str, object]]:
    """Rows best first by column ``by``, missing and NaN values last. Which way is better comes from
    ``directions`` (a study's own, :meth:`Settings.directions_by_column`) when it names ``by``,
    else from :func:`column_directions`; UserError for a column that cannot be sorted."""
    known = {**column_directions(), **(directions or {})}
    if by not in known:
        raise UserError(f"cannot sort by {by!r}; choose one of: {', '.join(known)}")
    sign = -1 if known[by] else 1

    def key(row: dict[str, object]) -> tuple[int, float]:
        value = row.get(by)
        if not isinstance(value, int | float) or math.isnan(value):
            return 1, 0.0
        return 0, sign * value

    return sorted(rows, key=key)


def ranked(rows: list[dict[str, object]], settings: Settings) -> list[dict[str, object]]:
    """``rows`` of a study best first by its objective, the way the study optimised it."""
    return sort_rows(rows, settings.objective, settings.directions_by_column())


def scorer_of(study: optuna.Study, config: str) -> optuna.trial.FrozenTrial:
    """The completed trial of ``study`` that scored ``config`` (not one that reused its values);
    UserError when none did."""
    number = next((r.trial for r in records(study) if r.config == config), None)
    if number is None:
        raise UserError(f"study '{study.study_name}' has no completed trial of {config}; pick another")
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def picks(study: optuna.Study, settings: Settings) -> list[optuna.trial.FrozenTrial]:
    """The trials that scored each distinct configuration, best first by the study's objective;
    UserError when there are none."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    chosen = [trials[int(row["trial"])] for row in ranked(rows(study), settings)]
    if not chosen:
        raise UserError(f"study '{study.study_name}' has no completed trials; run `ntknas search` first")
    return chosen
