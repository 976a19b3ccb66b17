"""Many workers on one study: claims, heartbeats and retries, seeds, and local worker processes."""

import os
import signal
import time

import distributed
import optuna
import pytest
from test_search import BATCH, Widths, settings

from ntknas.core.errors import UserError
from ntknas.core.threads import threads_per_worker, usable_cpus
from ntknas.objectives.candidates import evaluate
from ntknas.run import search as search_module
from ntknas.run.search import objective_of, search
from ntknas.run.workers import STOPPED, Ended, check
from ntknas.study import heartbeat, storage
from ntknas.study.studies import open_study, scored_trials
from ntknas.study.study_view import StudyView

COMPLETE, FAIL, RUNNING = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.FAIL,
    optuna.trial.TrialState.RUNNING,
)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")


def handle(tmp_path, sampler="random", beat=1):
    """One worker's view of the shared study ``s``."""
    return open_study("s", f"sqlite:///{tmp_path / 'db.sqlite'}", settings(), sampler, beat)


def configs(study, state=COMPLETE):
    return [t.user_attrs["config"] for t in study.get_trials(states=(state,))]


@pytest.mark.slow
def test_a_silent_workers_trial_is_failed_and_its_configuration_retried(tmp_path):
    space = Widths(range(4, 100))
    trial = handle(tmp_path).ask()
    with heartbeat.beating(trial):  # the worker beats, chooses a configuration, and dies
        trial.set_user_attr("config", space.describe(space.sample(trial)))
        trial.set_user_attr(heartbeat.WORKER, "elsewhere:1")
    time.sleep(storage.GRACE_BEATS * 1 + 1.5)  # heartbeats every second, and a margin
    survivor = handle(tmp_path)
    heartbeat.fail_stale(survivor)
    (queued,) = survivor.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert heartbeat.WORKER not in queued.user_attrs and queued.params == trial.params
    search(survivor, objective_of(space, settings(), BATCH, 3, "cpu"), settings(), 2)
    killed, retry, *_ = survivor.get_trials()
    assert killed.state == FAIL and "fail_reason" not in killed.user_attrs
    assert retry.system_attrs["failed_trial"] == 0 and retry.state == COMPLETE
    assert retry.params == killed.params and retry.user_attrs["config"] == killed.user_attrs["config"]
    assert retry.user_attrs[heartbeat.WORKER] == heartbeat.worker_label()
    assert distributed.audit(survivor, 2) == []


def test_candidates_failed_on_purpose_are_not_retried(tmp_path):
    study = handle(tmp_path)
    search(study, objective_of(Widths([4, 5, 6, 7], bad={5}), settings(), BATCH, 3, "cpu"), settings(), 3)
    failed = study.get_trials(states=(FAIL,))
    assert failed and {t.user_attrs["fail_reason"] for t in failed} == {
        "RuntimeError: width 5 cannot be built"
    }
    assert not any("failed_trial" in t.system_attrs for t in study.get_trials())
    assert distributed.audit(study, 3) == []


def test_a_configuration_scored_elsewhere_is_waited_for_then_reused(tmp_path, monkeypatch):
    other = handle(tmp_path)
    theirs = other.ask()
    theirs.suggest_categorical("width", (8,))
    theirs.set_user_attr("config", "width=8")
    theirs.set_user_attr(heartbeat.WORKER, "elsewhere:1")
    attrs = evaluate(Widths([8]), 8, BATCH, 3, objective="condition_number", bn="batch", seed=0, device="cpu")

    def finish() -> None:
        for key, value in attrs.items():
            theirs.set_user_attr(key, value)
        other.tell(theirs, attrs["condition_number"])

    class Scripted(Widths):  # proposes 8, which the other worker is scoring, then 16
        def __init__(self):
            super().__init__([8, 16])
            self.proposals = iter([8, 16])

        def sample(self, trial):
            return next(self.proposals)

    waits = []
    sleep = time.sleep

    def wait(seconds):  # the other worker finishes while this one waits for it, whatever the speed
        if not waits:
            finish()
        waits.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(time, "sleep", wait)
    space = Scripted()
    study = handle(tmp_path)
    search(study, objective_of(space, settings(), BATCH, 3, "cpu"), settings(), 2)
    assert waits and space.built == 1  # 16 only: 8 was waited for, then reused
    mine = study.trials[1]
    assert mine.user_attrs["reused_from"] == 0 and mine.values == study.trials[0].values
    assert (
        study.trials[2].user_attrs["config"] == "width=16" and "reused_from" not in study.trials[2].user_attrs
    )
    assert distributed.audit(study, 2) == []


def test_a_worker_whose_trial_was_failed_elsewhere_goes_on(tmp_path):
    other = handle(tmp_path)

    class FailedWhileRunning(Widths):
        def build(self, config, num_classes=10, channels=3, image_size=32):
            if self.built == 0:  # another worker presumes this one dead, and fails its trial
                (running,) = other.get_trials(states=(RUNNING,))
                other.tell(running.number, state=FAIL)
            return super().build(config, num_classes)

    study = handle(tmp_path)
    search(study, objective_of(FailedWhileRunning(range(4, 40)), settings(), BATCH, 3, "cpu"), settings(), 3)
    assert [t.state for t in study.trials] == [FAIL, COMPLETE, COMPLETE, COMPLETE]


def test_claims_never_exceed_the_target(tmp_path, monkeypatch):
    first, second = handle(tmp_path), handle(tmp_path)
    ask = second.ask

    def racing_ask():  # the first worker takes the last place between the count and the ask
        search_module._claim(first, StudyView(first, False), 1, None, None, [])
        return ask()

    monkeypatch.setattr(second, "ask", racing_ask)
    stops = iter([False, True])
    with pytest.raises(KeyboardInterrupt):
        search_module._claim(second, StudyView(second, False), 1, lambda: next(stops), None, [])
    winner, surplus = first.get_trials()
    assert winner.state == RUNNING
    assert surplus.state == FAIL and surplus.user_attrs["fail_reason"] == search_module.SURPLUS


def test_workers_with_the_same_seed_propose_different_configurations(tmp_path):
    one, two = handle(tmp_path), handle(tmp_path)  # both open the empty study: same seed, same history
    space = Widths(range(4, 100))
    search(one, objective_of(space, settings(), BATCH, 3, "cpu"), settings(), 1)
    search(two, objective_of(space, settings(), BATCH, 3, "cpu"), settings(), 2)
    search(one, objective_of(space, settings(), BATCH, 3, "cpu"), settings(), 3)
    mixed = configs(one)
    assert len(set(mixed)) == 3

    alone = open_study("s", f"sqlite:///{tmp_path / 'alone.sqlite'}", settings(), "random", 1)
    search(alone, objective_of(space, settings(), BATCH, 3, "cpu"), settings(), 3)
    again = open_study("s", f"sqlite:///{tmp_path / 'again.sqlite'}", settings(), "random", 1)
    search(again, objective_of(space, settings(), BATCH, 3, "cpu"), settings(), 3)
    assert configs(alone) == configs(again)  # one worker: reproducible
    assert configs(alone)[0] == mixed[0] and mixed[1] != configs(alone)[1]


def test_a_trial_abandoned_before_its_first_heartbeat_is_failed(tmp_path):
    study = handle(tmp_path)
    study.ask()  # its worker died before labelling it
    labelled = study.ask()
    labelled.set_user_attr(heartbeat.WORKER, "elsewhere:1")
    view = StudyView(study, False)
    view.refresh()
    # Watched by this process's own monotonic clock, never by comparing machines' clocks: not
    # abandoned when first seen, nor just before ABANDONED_SECONDS, abandoned after.
    assert view.abandoned(now=1000.0) == []
    assert view.abandoned(now=1000.0 + heartbeat.ABANDONED_SECONDS - 1) == []
    assert view.abandoned(now=1000.0 + heartbeat.ABANDONED_SECONDS + 1) == [0]
    heartbeat.fail_unlabelled(study, 0)
    assert [t.state for t in study.get_trials()] == [FAIL, RUNNING]


def test_a_killed_workers_trials_are_failed_and_others_left_running(tmp_path):
    """After killing stuck workers, the supervisor fails their labelled trials and the unlabelled
    ones asked for since the workers started (one may be a killed worker's, asked for and not yet
    labelled); an older unlabelled trial and another worker's trial stay running."""
    study = handle(tmp_path)
    older = study.ask()  # unlabelled, from before this run: another watcher's business
    first = len(study.get_trials())
    mine, theirs, unlabelled, done = (study.ask() for _ in range(4))
    mine.set_user_attr(heartbeat.WORKER, "here:7")
    theirs.set_user_attr(heartbeat.WORKER, "elsewhere:1")
    study.tell(done, 1.0)
    shared = storage.open_storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    failed = heartbeat.fail_running_of(shared, "s", {"here:7"}, "interrupted", unlabelled_from=first)
    assert failed == [mine.number, unlabelled.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {
        older.number: RUNNING,
        mine.number: FAIL,
        theirs.number: RUNNING,
        unlabelled.number: FAIL,
        done.number: COMPLETE,
    }
    assert {t.user_attrs.get("fail_reason") for t in study.get_trials(states=(FAIL,))} == {"interrupted"}
    # without unlabelled_from, only the labelled trials of the gone workers
    assert heartbeat.fail_running_of(shared, "s", {"elsewhere:1"}, "interrupted") == [theirs.number]


def test_worker_endings_are_reported_and_an_unfinished_study_is_an_error():
    ended = [
        Ended(0, 11, 0),
        Ended(1, 12, -signal.SIGKILL),
        Ended(2, 13, STOPPED),
        Ended(3, 14, 2, "10 candidates in a row failed; the last: RuntimeError: x"),
    ]
    assert check(ended, 24, 24) == [
        "worker 1 (pid 12) was killed by SIGKILL; the other workers retried its running trial",
        "worker 3 (pid 14) stopped: 10 candidates in a row failed; the last: RuntimeError: x",
    ]
    with pytest.raises(
        UserError, match=r"^the workers stopped with 20 of 24 trials complete \(worker 1 \(pid 12\)"
    ):
        check(ended, 20, 24)
    assert threads_per_worker(1) == usable_cpus() and threads_per_worker(10_000) == 1
    assert threads_per_worker(4, threads=3) == 3


@pytest.mark.slow
def test_two_identical_commands_with_two_workers_each_share_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    machines = [tmp_path / "a", tmp_path / "b"]
    for folder in machines:
        folder.mkdir()
    searches = [distributed.start_search(url, "shared", 12, 2, folder) for folder in machines]
    for s, folder in zip(searches, machines, strict=True):
        assert s.wait(timeout=1200) == 0, (folder / "stderr").read_text()  # a guard against a hang only
    study = optuna.load_study(study_name="shared", storage=url)
    assert distributed.audit(study, 12) == []
    done = scored_trials(study)
    # How the twelve trials split among the four workers depends on how fast each process starts
    # (one command may finish before the other has imported torch), and so do their proposals: two
    # workers may draw the same configuration by chance, which the audit allows as a reuse. So only
    # what must hold whatever the split is asserted. That workers sharing a seed propose different
    # configurations is pinned down deterministically by
    # test_workers_with_the_same_seed_propose_different_configurations.
    assert all(t.user_attrs[heartbeat.WORKER] for t in done)


def completed_at_least(url, name, count):
    try:
        return len(scored_trials(optuna.load_study(study_name=name, storage=url))) >= count
    except KeyError:  # not created yet
        return False


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_cleanly(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    search = distributed.start_search(url, "stopped", 500, 2, tmp_path)
    deadline = time.monotonic() + 1200  # only stops a hung search; no measure of speed
    while not completed_at_least(url, "stopped", 3):
        assert search.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr").read_text()
        time.sleep(0.5)
    os.killpg(search.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the supervisor and its workers
    assert search.wait(timeout=1200) == 130
    stderr = (tmp_path / "stderr").read_text()
    assert (
        "configurations are scored in study 'stopped'" in stderr
        and "run the same command to resume" in stderr
    )
    study = optuna.load_study(study_name="stopped", storage=url)
    assert not study.get_trials(states=(RUNNING, optuna.trial.TrialState.WAITING))
    assert len(scored_trials(study)) >= 3


def test_workers_spread_over_the_gpus_of_the_host(monkeypatch):
    import torch

    from ntknas.cli.common import resolve_device
    from ntknas.run.workers import device_of

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert [device_of(i, "cuda") for i in range(5)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    assert [device_of(i, "cuda:2") for i in range(3)] == ["cuda:2"] * 3  # one GPU asked for: all on it
    assert [device_of(i, "cpu") for i in range(2)] == ["cpu", "cpu"]
    assert resolve_device("cuda:2") == "cuda:2" and resolve_device("cuda") == "cuda"
    with pytest.raises(
        UserError, match=r"--device cuda:3: this machine has 3 CUDA device\(s\); use cuda:0 to cuda:2"
    ):
        resolve_device("cuda:3")
    with pytest.raises(UserError, match="unknown --device 'cuda:x'"):
        resolve_device("cuda:x")


def test_more_workers_than_memory_holds_are_refused(monkeypatch):
    from ntknas.run import workers

    monkeypatch.setattr(workers, "own_memory", lambda: 300 * 2**20)
    monkeypatch.setattr(workers, "available_memory", lambda: 3 * 2**30)
    workers.check_memory(10)
    with pytest.raises(UserError) as info:
        workers.check_memory(11)
    assert str(info.value) == (
        "--workers 11 would take about 3.2 GiB of memory (300 MiB each: torch and the data), and 3.0 GiB "
        "is available; use --workers 10 or fewer"
    )
    monkeypatch.setattr(workers, "available_memory", lambda: None)
    workers.check_memory(10**9)  # unknown: no check


def test_a_workers_cleanup_errors_are_one_line_and_none_once_it_stops(capsys):
    """A stop lands anywhere, also inside the storage's bookkeeping, whose garbage-collection
    callbacks may then fail: once stopping, a worker says nothing of them (Python would print a
    traceback); before, one line."""
    import multiprocessing
    import types

    from ntknas.run import workers

    event = multiprocessing.get_context("spawn").Event()
    failed = types.SimpleNamespace(exc_value=AssertionError("key is None\nmore"))
    workers._unraisable(event, failed)
    assert (
        capsys.readouterr().err == "warning: a worker's cleanup raised AssertionError: key is None; ignored\n"
    )
    event.set()
    workers._unraisable(event, failed)
    assert capsys.readouterr().err == ""
