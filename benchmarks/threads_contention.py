"""Seconds per trial of a short search beside another CPU-bound job, for several thread settings,
measured side by side.

Each setting runs the same search (``ntknas search --space nb201 --sampler random``, same seed,
so every setting scores the same architectures) in a fresh SQLite study, while ``--jobs``
busy loops (``while True: pass``) compete for the CPU. The settings take turns, round after round,
so that a change in the machine's load hits them all alike. Seconds per trial are read from the
trials' own start and completion times (torch's import is left out); scoring seconds are the
median of the trials' ``seconds``. OMP_NUM_THREADS, MKL_NUM_THREADS, OMP_WAIT_POLICY and
GOMP_SPINCOUNT are removed from the searches' environment, so defaults are what a user gets.

    python benchmarks/threads_contention.py --trials 15 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna

from ntknas.core.threads import threads_per_worker

ROOT = Path(__file__).resolve().parents[1]
# Variables that set torch's threads or OpenMP's waiting: left to the settings measured.
UNSET = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
SEARCH = ["-m", "ntknas", "search", "--space", "nb201", "--sampler", "random", "--study", "probe"]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment, with ntknas importable from this checkout, nothing in ``UNSET``, and
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def torch_default_threads() -> int:
    """torch.get_num_threads() in a fresh process, as a user's torch starts."""
    probe = [sys.executable, "-c", "import torch; print(torch.get_num_threads())"]
    return int(subprocess.run(probe, env=clean_env(), capture_output=True, text=True, check=True).stdout)


def settings(torch_threads: int, ours: int) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Label → (extra search options, extra environment) of each setting measured: torch's own
    thread count as OpenMP waits by default (a thread at a barrier spins about 3 ms, 300,000 spins,
    before it sleeps; set explicitly, as ntknas now asks for PASSIVE unless told), then ntknas's
    defaults as a user gets them (nothing set), then one thread."""
    spin = {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "300000"}
    measured = {
        f"torch's default ({torch_threads} threads), OpenMP spinning": (
            ["--threads", str(torch_threads)],
            spin,
        )
    }
    if ours != torch_threads:
        measured[f"ntknas's threads ({ours}), OpenMP spinning"] = ([], spin)
    measured[f"ntknas's default ({ours} threads, OMP_WAIT_POLICY=PASSIVE)"] = ([], {})
    measured["--threads 1"] = (["--threads", "1"], {})
    return measured


def seconds_per_trial(
    options: list[str], env: dict[str, str], trials: int, batch_size: int
) -> tuple[float, float]:
    """Search ``trials`` candidates in a fresh study; seconds per trial (first start to last
    completion, over the trials) and the median scoring seconds."""
    with tempfile.TemporaryDirectory(prefix="ntknas-threads-") as folder:
        url = f"sqlite:///{folder}/study.db"
        command = [sys.executable, *SEARCH, "--trials", str(trials), "--batch-size", str(batch_size)]
        subprocess.run([*command, "--storage", url, *options], env=env, check=True, capture_output=True)
        done = optuna.load_study(study_name="probe", storage=url).get_trials(
            states=(optuna.trial.TrialState.COMPLETE,)
        )
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return span.total_seconds() / len(done), statistics.median(t.user_attrs["seconds"] for t in done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1, help="busy loops running beside the searches")
    parser.add_argument("--only", action="append", help="measure only the settings whose label has this")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    measured = {
        label: setting
        for label, setting in settings(torch_default_threads(), threads_per_worker(1)).items()
        if not args.only or any(word in label for word in args.only)
    }
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.jobs)]
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label in measured}
    try:
        for r in range(args.rounds):
            labels = list(measured)
            for label in labels[r % len(labels) :] + labels[: r % len(labels)]:  # a new order each round
                options, extra = measured[label]
                load = os.getloadavg()[0]
                per_trial, scoring = seconds_per_trial(
                    options, clean_env(**extra), args.trials, args.batch_size
                )
                results[label].append((per_trial, scoring, load))
                print(f"round {r + 1}: {label}: {per_trial:.2f} s/trial (load {load:.1f})", file=sys.stderr)
    finally:
        for job in busy:
            job.kill()
            job.wait()
    print(
        f"{os.cpu_count()} CPUs, {args.jobs} busy loop(s) beside; nb201, {args.trials} trials, "
        f"N={args.batch_size}; median over {args.rounds} round(s)\n"
    )
    print("| setting | s/trial | scoring s (median) | load average (1 min) during |")
    print("|---|---:|---:|---|")
    for label, runs in results.items():
        per_trial = statistics.median(p for p, _, _ in runs)
        scoring = statistics.median(s for _, s, _ in runs)
        loads = ", ".join(f"{load:.1f}" for _, _, load in runs)
        print(f"| {label} | {per_trial:.2f} | {scoring:.3f} | {loads} |")


if __name__ == "__main__":
    main()
