"""Verification results, stored in a study through Optuna's public API: the study user attribute
``verified:<trial number>`` holds the ``verified_*`` attributes of that trial (Optuna keeps
finished trials read-only). Importable without torch, for ``results`` and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence

import optuna

# Study user attribute holding the verification result of trial N: RESULT_KEY + str(N).
RESULT_KEY = "verified:"


def store_result(study: optuna.Study, number: int, attrs: dict[str, object]) -> None:
    """Store the ``verified_*`` attributes ``attrs`` of trial ``number`` in ``study``."""
    study.set_user_attr(f"{RESULT_KEY}{number}", attrs)


def stored_results(
    study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None
) -> dict[int, dict[str, object]]:
    """The verification results stored in ``study``: trial number → its ``verified_*`` attributes,
    including results that earlier versions of ntknas wrote on the trials themselves (read from
    ``trials`` when the caller has them, else from the study)."""
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    results = {
        t.number: {k: v for k, v in t.user_attrs.items() if k.startswith("verified_")}
        for t in trials
        if "verified_status" in t.user_attrs
    }
    for key, value in study.user_attrs.items():
        number = key.removeprefix(RESULT_KEY)
        if key.startswith(RESULT_KEY) and number.isdigit() and isinstance(value, dict):
            results[int(number)] = value
    return results
