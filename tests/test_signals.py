"""SIGTERM, as `docker stop`, Kubernetes and batch schedulers send it: handled like Ctrl-C, at once.

The running trial is marked failed, no trial is left running, one line says how to resume, and
the exit code is 143 (128 + SIGTERM), for a lone search, a search with workers, and verify.
"""

import os
import signal
import subprocess
import sys
import time

import distributed
import optuna
import pytest
from test_bad_input import KINDS, matches
from tiny_study import make_study, write_image_folder

from ntknas.run import verify
from ntknas.study.studies import scored_trials

RUNNING, WAITING = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING
WAIT_SECONDS = 240  # generous: the machine may be busy; the tests poll, never assert on time


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except KeyError:  # the study does not exist yet
            pass
        time.sleep(0.3)
    raise TimeoutError(f"waited {WAIT_SECONDS} s for {what}")


def last_line_after_quiet_progress(stderr_file) -> str:
    """The last line of a stopped command's stderr: the one-line 'terminated: ... resume' message,
    after progress lines and warnings of a log, never a traceback or an ignored exception."""
    *before, last = stderr_file.read_text().strip().splitlines()
    assert last.startswith("terminated: ") and "run the same command to resume" in last, last
    noise = ("Traceback", "Exception ignored", "error: ", ".py:")  # .py: Python's own warning display
    assert not [line for line in before if any(word in line for word in noise)], before
    return last


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workers", "signum"),
    [(w, s) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT) for w in (1, 2)],
)
def test_sigterm_stops_a_search_at_once_and_leaves_nothing_running(tmp_path, workers, signum):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    search = distributed.start_search(url, "s", 500, workers, tmp_path)
    wait_until(lambda: len(scored_trials(optuna.load_study(study_name="s", storage=url))) >= 2, "2 trials")
    if signum == signal.SIGTERM:
        search.send_signal(signum)  # to the supervisor alone, as `docker stop` sends it
    else:
        os.killpg(search.pid, signum)  # to every process of the session, as a terminal sends them
    assert search.wait(timeout=120) == 128 + signum
    last = last_line_after_quiet_progress(tmp_path / "stderr")
    assert "configurations are scored in study 's'" in last
    study = optuna.load_study(study_name="s", storage=url)
    assert not study.get_trials(states=(RUNNING, WAITING))
    assert distributed.audit(study, len(scored_trials(study))) == []


@pytest.mark.slow
def test_sigterm_kills_a_worker_deaf_to_it_and_fails_its_trial(tmp_path):
    """A worker that does not stop on SIGTERM (frozen here, as one deep in a native call or hung is)
    is killed ``STOP_SECONDS`` later, and the supervisor fails its running trial: exit 143, one
    line, nothing left running."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    search = distributed.start_search(url, "s", 500, 2, tmp_path)
    pid, frozen = distributed.freeze_mid_trial(url, "s", 2, WAIT_SECONDS)
    search.send_signal(signal.SIGTERM)
    assert search.wait(timeout=120) == 143
    last_line_after_quiet_progress(tmp_path / "stderr")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed, and reaped by the supervisor
    study = optuna.load_study(study_name="s", storage=url)
    failed = study.trials[frozen.number]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["fail_reason"] == "interrupted"
    assert distributed.audit(study, len(scored_trials(study))) == []


@pytest.mark.slow
def test_sigterm_stops_verify_and_keeps_the_last_epoch(tmp_path):
    os.chdir(tmp_path)
    make_study()
    write_image_folder(tmp_path / "imgs", per_class=64)
    command = [sys.executable, "-m", "ntknas", "verify", "tiny", "--top", "1", "--epochs", "50"]
    command += ["--data", "imgs", "--batch-size", "16"]
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
    (pick,) = verify.top_picks(optuna.load_study(study_name="tiny", storage="sqlite:///results/ntknas.db"), 1)
    checkpoint = tmp_path / verify.checkpoint_path("tiny", pick.number)
    wait_until(checkpoint.exists, "the first epoch's checkpoint")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    last_line_after_quiet_progress(tmp_path / "stderr")
    assert checkpoint.exists()
    study = optuna.load_study(study_name="tiny", storage="sqlite:///results/ntknas.db")
    assert pick.number not in verify.stored_results(study)


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_before_the_search_loop_exits_quietly_with_its_code(tmp_path, signum, code):
    """SIGTERM (or Ctrl-C) while a search loads its space, before any study exists: exit code 128 +
    the signal, no traceback, nothing stored. (The space's module sends the signal as it is
    imported, so the moment is exact.)"""
    (tmp_path / "stopping_space.py").write_text(
        f"import os\nimport signal\n\nos.kill(os.getpid(), {int(signum)})\n"
        "from search_spaces import SearchSpace as Space  # noqa: E402\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "ntknas", "search", "--space", "stopping_space:Space"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "results").exists()


def test_sigterm_stops_a_search_waiting_for_another_programs_sqlite_lock(tmp_path):
    """Another program holds the SQLite file's write lock: the search says it is waiting (SQLite
    would wait silently, in C, deaf to signals) and SIGTERM stops it at once, while the lock is
    still held: exit 143, no traceback, and nothing written."""
    from ntknas.study.storage import SQLITE_BUSY_SECONDS, open_storage

    assert SQLITE_BUSY_SECONDS == 30  # as the table says

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    optuna.create_study(study_name="first", storage=open_storage(url))
    hold = (  # another program's write, never committed, until its stdin closes
        "import sqlite3, sys\n"
        f"con = sqlite3.connect({str(tmp_path / 'db.sqlite')!r}, isolation_level=None)\n"
        "con.execute('BEGIN EXCLUSIVE')\nprint('held', flush=True)\nsys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        search = distributed.start_search(url, "s", 2, 1, tmp_path)
        wait_until(lambda: "is locked by another program" in (tmp_path / "stderr").read_text(), "the notice")
        search.send_signal(signal.SIGTERM)
        assert search.wait(timeout=SQLITE_BUSY_SECONDS / 2) == 143  # long before the wait would end
        assert holder.poll() is None  # the lock was held all along
    finally:
        holder.communicate("", timeout=60)
    (line,) = (tmp_path / "stderr").read_text().strip().splitlines()
    assert matches(f"warning: {KINDS['a storage another program keeps locked'].message}", line)
    assert f"storage {url} is locked" in line
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["first"]  # nothing written


class _StoppedInFinalizer:
    """An object whose finalizer is interrupted, as a SIGTERM landing in a GC callback is."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __del__(self) -> None:
        raise self.error


def test_a_stop_swallowed_by_a_finalizer_prints_nothing_but_other_errors_still_show(capsys, monkeypatch):
    from ntknas.cli.common import Terminated, stop_requests

    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)  # Python's, not pytest's

    with stop_requests("candidate"):
        _StoppedInFinalizer(Terminated())  # dropped at once: its __del__ raises into the void
        _StoppedInFinalizer(KeyboardInterrupt())
        assert capsys.readouterr().err == ""
        _StoppedInFinalizer(ValueError("a real fault"))
        assert "ValueError: a real fault" in capsys.readouterr().err
    _StoppedInFinalizer(KeyboardInterrupt())  # outside the block Python's own hook reports again
    assert "KeyboardInterrupt" in capsys.readouterr().err
