"""Many workers on one PostgreSQL study: trials per minute with 1, 2 and 4 local workers, then a
fault run in which one of 4 workers is killed (SIGKILL) in the middle of a trial.

Starts a throwaway PostgreSQL cluster (``tests/distributed.py``: a temporary directory, a loopback
port; as root the server runs as the ``postgres`` user), and runs ``ntknas search --workers N`` as
a process on small NAS-Bench-201 candidates (8 synthetic images, random sampler, heartbeats every
second). Trials per minute count from the first trial's start to the last trial's end (worker
start-up excluded); wall seconds include it. The server is stopped and its directory removed at
the end, whatever happens.

    python benchmarks/workers_postgres.py [--trials 24] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import distributed


def throughput(url: str, workers: int, trials: int, folder: Path) -> tuple[float, float]:
    """Trials per minute of ``workers`` local workers on a new study, and the command's wall seconds."""
    started = time.perf_counter()
    search = distributed.start_search(url, f"throughput-{workers}", trials, workers, folder)
    if search.wait(timeout=1800) != 0:
        raise RuntimeError((folder / "stderr").read_text())
    wall = time.perf_counter() - started
    done = optuna.load_study(study_name=f"throughput-{workers}", storage=url).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,)
    )
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return 60 * len(done) / span.total_seconds(), wall


def fault(url: str, trials: int, folder: Path) -> list[str]:
    """Kill one of 4 workers mid-trial; what happened, line by line, and what the audit found."""
    started = time.perf_counter()
    search = distributed.start_search(url, "fault", trials, 4, folder)
    try:
        victim = distributed.kill_mid_trial(url, "fault", after=trials // 4, timeout=600)
        code = search.wait(timeout=1800)
    finally:
        if search.poll() is None:
            search.kill()
    study = optuna.load_study(study_name="fault", storage=url)
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    states = [t.state.name for t in study.trials]
    return [
        f"exit code {code} after {time.perf_counter() - started:.0f} s",
        f"killed {victim.user_attrs['worker']} in trial {victim.number}: {victim.user_attrs['config']}",
        f"trial {victim.number} ended {study.trials[victim.number].state.name}; retried as trial(s) "
        + ", ".join(f"{t.number} ({t.state.name})" for t in retries),
        f"trials: {states.count('COMPLETE')} complete, {states.count('FAIL')} failed, "
        f"{states.count('RUNNING') + states.count('WAITING')} left running or waiting",
        "audit: " + ("; ".join(distributed.audit(study, trials)) or "consistent"),
        *(f"stderr: {line}" for line in (folder / "stderr").read_text().splitlines()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    if (reason := distributed.unavailable()) is not None:
        sys.exit(f"cannot start PostgreSQL: {reason}")
    with distributed.cluster() as url, tempfile.TemporaryDirectory() as tmp:
        print("| workers | trials | trials/min | wall (s) |\n|---:|---:|---:|---:|")
        for n in args.workers:
            folder = Path(tmp) / f"w{n}"
            folder.mkdir()
            rate, wall = throughput(url, n, args.trials, folder)
            print(f"| {n} | {args.trials} | {rate:.0f} | {wall:.0f} |", flush=True)
        folder = Path(tmp) / "fault"
        folder.mkdir()
        print("\nFault run: 4 workers, one killed with SIGKILL in the middle of a trial")
        for line in fault(url, args.trials, folder):
            print(f"- {line}")


if __name__ == "__main__":
    main()
