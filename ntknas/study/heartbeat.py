"""Liveness of running trials, for many workers on one study.

Each running trial records a heartbeat in the storage. A trial whose worker falls silent (killed,
crashed, lost with its machine) is failed by whichever worker notices first, through Optuna's
``fail_stale_trials``, and Optuna's retry callback, set on the storage, queues its configuration
again as a waiting trial.

What is ours, and why: Optuna beats only inside ``Study.optimize`` (its heartbeat thread lives in
the private ``optuna.storages._heartbeat``), while the search loop asks and tells trials itself,
because an exact number of completed trials over many workers needs a claim *before* each ask
(``ntknas.run.search``). So :func:`beating` runs the thread, through the storage's public
``record_heartbeat``; unlike Optuna's, it outlives a transient storage error (a busy SQLite file,
a dropped connection), which would otherwise get a live worker's trial failed and scored twice.
A trial whose worker died before its first beat has no heartbeat for Optuna to find stale; the
search loop fails it after watching it stay unlabelled for ``ABANDONED_SECONDS`` by its own
monotonic clock, never comparing clocks of different machines.
"""

from __future__ import annotations

import copy
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import optuna

from ntknas.core import defaults

# Trial user attribute naming the worker that runs the trial, as host:pid.
WORKER = "worker"
# Seconds between a running trial's heartbeats: a worker silent for a few beats is presumed dead.
HEARTBEAT_SECONDS = defaults.HEARTBEAT_SECONDS
# How long a running trial may stay without a worker label, as watched by another worker, before
# it is presumed abandoned before its first heartbeat.
ABANDONED_SECONDS = 120.0
# How long the end of a trial waits for its heartbeat thread's last beat.
JOIN_SECONDS = 5.0


class Retry(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a dead worker's trial (a waiting copy, at most ``max_retry`` times),
    without the dead worker's label: the worker that takes the copy labels it after its first
    heartbeat, so a copy left unlabelled was abandoned before it."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        unlabelled = copy.deepcopy(trial)
        unlabelled.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != WORKER}
        super().__call__(study, unlabelled)


def worker_label(pid: int | None = None) -> str:
    """This process (or process ``pid`` of this host) as ``host:pid``: unique among the workers
    of a study."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


@contextmanager
def beating(trial: optuna.Trial) -> Iterator[None]:
    """Record ``trial``'s heartbeat, label it with this worker, and keep beating from a background
    thread until the block ends. Storages without heartbeats only get the label."""
    storage = trial.storage
    interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    if interval is None:
        trial.set_user_attr(WORKER, worker_label())
        yield
        return
    study_id = storage.get_study_id_from_name(trial.study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    storage.record_heartbeat(trial_id)
    trial.set_user_attr(WORKER, worker_label())
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial_id)
            except Exception:  # a busy or briefly unreachable database: the grace period spans several beats
                continue

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        # bounded: a stop that landed while this thread held a lock of the storage's must not
        # leave this process waiting for it forever (the thread is a daemon, harmless once left)
        thread.join(timeout=JOIN_SECONDS)


def fail_stale(study: optuna.Study) -> None:
    """Fail the study's running trials whose heartbeat is older than the storage's grace period;
    Optuna then runs the storage's retry callback on each."""
    with warnings.catch_warnings():  # fail_stale_trials is marked experimental; it is what we want
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def fail_running_of(
    storage: optuna.storages.BaseStorage,
    study: str,
    labels: set[str],
    reason: str,
    unlabelled_from: int | None = None,
) -> list[int]:
    """Fail the running trials of ``study`` labelled with one of ``labels`` (workers that are gone,
    as :func:`worker_label` names them), each with ``reason``, without retry; with
    ``unlabelled_from``, also those numbered from it on that carry no label yet (a worker killed
    between asking for a trial and labelling it leaves one). Returns their numbers."""
    from ntknas.study.records import FAIL_REASON

    def gone(trial: optuna.trial.FrozenTrial) -> bool:
        if WORKER in trial.user_attrs:
            return trial.user_attrs[WORKER] in labels
        return unlabelled_from is not None and trial.number >= unlabelled_from

    study_id = storage.get_study_id_from_name(study)
    failed = []
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if gone(trial):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            try:
                storage.set_trial_user_attr(trial_id, FAIL_REASON, reason)
                storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # it ended meanwhile
            failed.append(trial.number)
    return failed


def fail_unlabelled(study: optuna.Study, number: int) -> None:
    """Fail running trial ``number``, abandoned before its first heartbeat (no retry: its
    configuration was never scored); nothing if another worker finished it first."""
    try:
        study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
