"""Liveness of running trials, for many workers on one study.

Each running trial records a heartbeat in the storage. A trial whose worker falls silent (killed,
crashed, lost with its machine) is failed by whichever worker notices first, and Optuna's retry
callback, set on the storage, queues its configuration again as a waiting trial.
"""

from __future__ import annotations

import copy
import datetime
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import optuna

# Trial user attribute naming the worker that runs the trial, as host:pid.
WORKER = "worker"
# A running trial with no worker label after this long was abandoned before its first heartbeat
# (or left running by a version of ntknas without heartbeats). Generous: clocks of machines differ.
ABANDONED_SECONDS = 120.0


class Retry(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a dead worker's trial (a waiting copy, at most ``max_retry`` times),
    without the dead worker's label: the worker that takes the copy labels it after its first
    heartbeat, so a copy left unlabelled was abandoned before it (see ``fail_abandoned``)."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        unlabelled = copy.deepcopy(trial)
        unlabelled.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != WORKER}
        super().__call__(study, unlabelled)


def worker_label() -> str:
    """This process as ``host:pid``: unique among the workers of a study."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
    trial_id = trial._trial_id  # Optuna's heartbeat API takes the storage's trial id
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
        thread.join()


def fail_abandoned(study: optuna.Study) -> None:
    """Fail the study's running trials whose worker is gone.

    Those with a heartbeat older than the storage's grace period are failed by Optuna, which then
    runs the storage's retry callback. Those never labelled by a worker and older than
    ``ABANDONED_SECONDS`` are failed without a retry (their configuration was never scored).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        started = t.datetime_start
        if WORKER in t.user_attrs or started is None or (now - started).total_seconds() < ABANDONED_SECONDS:
            continue
        try:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker failed it first
