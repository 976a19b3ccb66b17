"""Many workers on a real PostgreSQL server (a throwaway cluster): one killed mid-trial loses nothing."""

import distributed
import optuna
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(distributed.unavailable() is not None, reason=str(distributed.unavailable())),
]


@pytest.fixture(scope="module")
def postgres():
    with distributed.cluster() as url:
        yield url


def test_a_worker_killed_mid_trial_loses_nothing(postgres, tmp_path):
    search = distributed.start_search(postgres, "fault", 24, 4, tmp_path)
    try:  # the timeouts only stop a hung run; they are no measure of speed
        victim = distributed.kill_mid_trial(postgres, "fault", after=6, timeout=1200)
        code = search.wait(timeout=1200)
    finally:
        if search.poll() is None:
            search.kill()
    stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert code == 0, stderr
    assert "was killed by SIGKILL; the other workers retried its running trial" in stderr
    assert distributed.PASSWORD not in stdout + stderr

    study = optuna.load_study(study_name="fault", storage=postgres)
    assert distributed.audit(study, 24) == []
    killed = study.trials[victim.number]
    assert killed.state == optuna.trial.TrialState.FAIL and "fail_reason" not in killed.user_attrs
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retries and retries[-1].state == optuna.trial.TrialState.COMPLETE
    assert {t.user_attrs["config"] for t in retries} == {victim.user_attrs["config"]}
    # another worker finished the killed worker's configuration (how the other trials split among
    # the four workers depends on how fast each process starts, so it is not asserted)
    assert retries[-1].user_attrs["worker"] != victim.user_attrs["worker"]
