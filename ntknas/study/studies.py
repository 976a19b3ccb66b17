"""Opening studies: a search's (created, or resumed with the same settings) and, for the commands
that read one, a stored study by name."""

from __future__ import annotations

import time
from dataclasses import asdict

import optuna

from ntknas.core.checks import check_study_name
from ntknas.core.errors import UserError
from ntknas.study.heartbeat import HEARTBEAT_SECONDS
from ntknas.study.samplers import SamplerFactory, WorkerSeeded
from ntknas.study.settings import Settings
from ntknas.study.storage import default_url, mask, open_storage
from ntknas.study.study_view import counts_as_scored

# How long a worker waits for the settings of a study another worker has just created.
SETTLE_SECONDS = 10.0
POLL_SECONDS = 0.5


def open_study(
    name: str,
    storage_url: str | optuna.storages.BaseStorage | None,
    settings: Settings,
    sampler: str | SamplerFactory,
    heartbeat_seconds: int | None = HEARTBEAT_SECONDS,
) -> optuna.Study:
    """Create study ``name`` with ``settings``, or load it and check they match.

    ``name`` must be one a shell command can carry (``ntknas.core.checks.check_study_name``). Several
    workers may open the same study at once: one creates it, the others load it. The
    sampler is seeded per worker (``WorkerSeeded``). With ``heartbeat_seconds``, the running trial
    of a worker that dies is failed and retried (``ntknas.study.storage.open_storage``).
    """
    check_study_name(name)
    storage = open_storage(storage_url, heartbeat_seconds)
    proposer = WorkerSeeded(sampler, settings.seed)
    try:
        study = optuna.create_study(
            study_name=name, storage=storage, directions=settings.directions(), sampler=proposer
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=proposer)
        stored = _stored_settings(study)
        if _unfinished(study, stored, settings):
            settings.save(study)  # its creation was interrupted (Ctrl-C, SIGTERM) by this command
        else:
            settings.check_against(name, stored)
            settings.check_directions(study)
    else:
        settings.save(study)
    return study


def _unfinished(study: optuna.Study, stored: dict, settings: Settings) -> bool:
    """Whether ``study`` is one whose creation was interrupted before it stored all ``settings``
    (as ``stored`` shows): it has no trial, ``settings``' directions, and none of its stored
    settings differs from them. Such a study is finished by storing the rest."""
    wanted = asdict(settings)
    return (
        not Settings.all_stored(stored)
        and not study.trials
        and [d.name.lower() for d in study.directions] == settings.directions()
        and all(stored[k] == wanted[k] for k in wanted if k in stored)
    )


def _stored_settings(study: optuna.Study) -> dict:
    """The study's user attributes; waits up to ``SETTLE_SECONDS`` while a new, empty study lacks
    some settings: the worker that created it is still storing them."""
    deadline = time.monotonic() + SETTLE_SECONDS
    stored = study.user_attrs
    while not Settings.all_stored(stored) and not study.trials and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        stored = study.user_attrs
    return stored


def load_study(name: str | None, storage_url: str | None) -> optuna.Study:
    """Stored study ``name`` (optional when the storage holds exactly one), opened read-only: no
    database is created or changed; UserError otherwise."""
    backend = open_storage(storage_url, read_only=True)
    names = optuna.get_all_study_names(backend)
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            raise UserError(f"name a study: this storage holds {len(names)} ({listed})")
        name = names[0]
    if name not in names:
        raise UserError(
            f"no study named '{name}' in {mask(storage_url or default_url())}; "
            f"studies: {', '.join(names) or 'none'}"
        )
    return optuna.load_study(study_name=name, storage=backend)


def completed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's completed trials, in number order."""
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def scored_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The completed trials that scored their configuration themselves (not reused), in order:
    one per distinct configuration, what ``--trials`` counts."""
    return [t for t in completed_trials(study) if counts_as_scored(t)]
