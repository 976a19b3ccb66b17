"""Helpers for tests and benchmarks of many workers: a throwaway PostgreSQL cluster, ``ntknas
search`` run as a process, killing one of its workers in the middle of a trial, and an audit of
the study it leaves.

The cluster lives in a temporary directory, listens on a free loopback port and asks for a
password over TCP. PostgreSQL refuses to run as root, so as root the server runs as ``postgres``.
"""

from __future__ import annotations

import collections
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna

from ntknas.study.heartbeat import WORKER

PASSWORD = "throwaway-secret"
SERVER_USER = "postgres"


def unavailable() -> str | None:
    """Why no throwaway cluster can run here, or None when one can."""
    missing = [tool for tool in ("initdb", "pg_ctl", "postgres") if shutil.which(tool) is None]
    if missing:
        return f"PostgreSQL is not installed ({', '.join(missing)} not on PATH)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root, and there is no '{SERVER_USER}' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root, and runuser (to start the server as another user) is missing"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "the PostgreSQL driver is missing: pip install 'ntknas[postgres]'"
    return None


@contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster and yield its URL, ``postgresql://postgres:PASSWORD@127.0.0.1:PORT/postgres``.
    On exit, whatever happened, stop the server and remove its directory."""
    folder = Path(tempfile.mkdtemp(prefix="ntknas-pg-"))
    as_owner: list[str] = []
    password = folder / "password"
    password.write_text(PASSWORD)
    if os.geteuid() == 0:
        as_owner = ["runuser", "-u", SERVER_USER, "--"]
        for path in (folder, password):
            shutil.chown(path, SERVER_USER)
    data = folder / "data"
    try:
        _run(
            *as_owner,
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            f"--pwfile={password}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        port = _free_port()
        options = f"-h 127.0.0.1 -p {port} -k {folder} -F"  # -F: no fsync, the data is thrown away
        _run(
            *as_owner,
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*as_owner, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True
            )
        shutil.rmtree(folder, ignore_errors=True)


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_search(
    storage: str, study: str, trials: int, workers: int, folder: Path, *extra: str
) -> subprocess.Popen:
    """``ntknas search`` on small NAS-Bench-201 candidates (8 synthetic images, random sampler,
    heartbeats every second) as a process in ``folder``, leading a process group of its own (like a
    command in a terminal); its output goes to ``folder/stdout`` and ``folder/stderr``."""
    command = [
        *(sys.executable, "-m", "ntknas", "search", "--space", "nb201", "--batch-size", "8"),
        *("--data", "synthetic", "--sampler", "random", "--heartbeat", "1"),
        *("--storage", storage, "--study", study, "--trials", str(trials), "--workers", str(workers)),
        *extra,
    ]
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        return subprocess.Popen(command, cwd=folder, stdout=out, stderr=err, start_new_session=True)


def kill_mid_trial(storage: str, study: str, after: int, timeout: float) -> optuna.trial.FrozenTrial:
    """Once ``study`` holds ``after`` completed trials, kill (SIGKILL) a local worker that is in a
    trial with its configuration chosen, and return that trial as it was."""
    pid, trial = freeze_mid_trial(storage, study, after, timeout)
    os.kill(pid, signal.SIGKILL)
    return trial


def freeze_mid_trial(
    storage: str, study: str, after: int, timeout: float
) -> tuple[int, optuna.trial.FrozenTrial]:
    """Once ``study`` holds ``after`` completed trials, freeze (SIGSTOP) a local worker that is in a
    trial with its configuration chosen, as a worker deep in a native call is deaf to signals;
    return its pid and that trial as it was. The worker is frozen while its trial is checked, so
    the trial it is frozen in is the trial returned."""
    deadline = time.monotonic() + timeout
    here = socket.gethostname()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name=study, storage=storage).get_trials()
        except KeyError:
            continue  # not created yet
        if sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) < after:
            continue
        for label in {t.user_attrs.get(WORKER) for t in trials if t.state == optuna.trial.TrialState.RUNNING}:
            host, _, pid = str(label).rpartition(":")
            if host != here:
                continue
            os.kill(int(pid), signal.SIGSTOP)
            running = _running(storage, study, label)
            if len(running) == 1 and "config" in running[0].user_attrs:
                return int(pid), running[0]
            os.kill(int(pid), signal.SIGCONT)
    raise TimeoutError(f"no worker of study '{study}' was in a trial after {timeout:.0f} s")


def _running(storage: str, study: str, label: str) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.RUNNING,)
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(states=states)
    return [t for t in trials if t.user_attrs.get(WORKER) == label]


def audit(study: optuna.Study, trials: int) -> list[str]:
    """What is wrong with ``study`` after a search for ``trials`` trials ended (empty: nothing).

    It must hold exactly ``trials`` distinct scored configurations (completed trials that did
    not reuse another's values) and no trial running or waiting; trial numbers run without gaps;
    no configuration is scored twice (a repeat reuses the stored values of a completed trial of the
    same configuration); and every failed trial carries its reason, or was failed for missed
    heartbeats and its configuration completed by a retry.
    """
    everything = study.get_trials()
    by_number = {t.number: t for t in everything}
    states = collections.Counter(t.state for t in everything)
    problems = []
    distinct = sum(
        t.state == optuna.trial.TrialState.COMPLETE and "reused_from" not in t.user_attrs for t in everything
    )
    if distinct != trials:
        problems.append(f"{distinct} distinct scored configurations, not {trials}")
    left = states[optuna.trial.TrialState.RUNNING] + states[optuna.trial.TrialState.WAITING]
    if left:
        problems.append(f"{left} trials left running or waiting")
    if sorted(by_number) != list(range(len(everything))):
        problems.append("trial numbers have gaps")
    done = [t for t in everything if t.state == optuna.trial.TrialState.COMPLETE]
    scored = collections.Counter(t.user_attrs["config"] for t in done if "reused_from" not in t.user_attrs)
    problems += [f"{config} scored {n} times" for config, n in scored.items() if n > 1]
    for t in done:
        source = by_number.get(t.user_attrs.get("reused_from", t.number))
        if (
            source is None
            or source.values != t.values
            or source.user_attrs["config"] != t.user_attrs["config"]
        ):
            problems.append(f"trial {t.number} reuses values it does not match")
    for t in everything:
        if t.state != optuna.trial.TrialState.FAIL or "fail_reason" in t.user_attrs:
            continue
        retries = [r for r in everything if t.number in r.system_attrs.get("retry_history", [])]
        if not any(r.state == optuna.trial.TrialState.COMPLETE and r.params == t.params for r in retries):
            problems.append(f"trial {t.number} failed without a reason and was not retried to completion")
    return problems
