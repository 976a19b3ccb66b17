"""Per-trial overhead of the search loop against the size of the study.

A search with a near-free objective (a tiny MLP space scored on 6 synthetic samples) runs to
``--trials`` completed trials in one process; seconds per trial are read from the trials' own
completion times, over trials 0–100 against the last 100. Also counts the study reads per trial
(calls of the storage's ``get_all_trials``, Optuna's own included).

    python benchmarks/loop_overhead.py --trials 10000                    # SQLite in a temp folder
    python benchmarks/loop_overhead.py --trials 2000 --postgres          # a throwaway PostgreSQL cluster
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch
from torch import nn

from ntknas.run.search import objective_of, search
from ntknas.study.settings import Settings
from ntknas.study.studies import open_study
from search_spaces import SearchSpace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import distributed

WINDOW = 100


class TinyWidths(SearchSpace):
    """MLPs with one hidden layer of 1–64 units, each in 10,000 variants (a tag that changes
    nothing): near-free to score, large enough that 10,000 random draws rarely repeat."""

    name = "tiny-widths"
    summary = "benchmark space"
    size = 64 * 10_000

    def sample(self, trial: optuna.Trial) -> int:
        return trial.suggest_int("width", 1, 64) * 10_000 + trial.suggest_int("tag", 0, 9_999)

    def build(self, config: int, num_classes: int = 10, channels: int = 3, image_size: int = 32) -> nn.Module:
        width = config // 10_000
        return nn.Sequential(nn.Flatten(), nn.Linear(12, width), nn.Tanh(), nn.Linear(width, num_classes))

    def describe(self, config: int) -> str:
        return f"width={config}"

    def parse(self, text: str) -> int:
        return int(text.removeprefix("width="))


def counting_reads(storage: optuna.storages.BaseStorage) -> collections.Counter:
    """Count the calls of ``get_all_trials`` on ``storage`` (and on its cached wrapper's backend)."""
    calls: collections.Counter = collections.Counter()
    original = storage.get_all_trials

    def counted(*args, **kwargs):
        calls["get_all_trials"] += 1
        return original(*args, **kwargs)

    storage.get_all_trials = counted
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--storage", default=None, help="Optuna storage URL [default: SQLite in a temp dir]")
    parser.add_argument("--postgres", action="store_true", help="run on a throwaway PostgreSQL cluster")
    parser.add_argument("--sampler", default="random")
    parser.add_argument("--heartbeat", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with distributed.cluster() if args.postgres else contextlib.nullcontext(args.storage) as url:
        run(url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'overhead.db'}", args)


def run(url: str, args: argparse.Namespace) -> None:
    """Search to ``args.trials`` completed trials on ``url`` and print the figures."""
    settings = Settings("tiny-widths", "synthetic", 6, "batch", 0, "condition_number")
    study = open_study(f"overhead-{time.time_ns()}", url, settings, args.sampler, args.heartbeat)
    calls = counting_reads(study._storage)
    x = torch.randn(6, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    batch = (x, torch.arange(6) % 3)
    began = time.perf_counter()
    search(study, objective_of(TinyWidths(), settings, batch, 3, "cpu"), settings, args.trials)
    wall = time.perf_counter() - began
    done = sorted(t.datetime_complete for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    total = len(study.get_trials())

    def per_trial(a: int, b: int) -> float:
        return (done[b] - done[a]).total_seconds() / (b - a)

    first, last = per_trial(0, WINDOW), per_trial(len(done) - 1 - WINDOW, len(done) - 1)
    print(f"storage: {url.split(':')[0]}, sampler: {args.sampler}, {len(done)} completed of {total} trials")
    print(f"wall time: {wall:.1f} s ({wall / len(done) * 1000:.1f} ms per completed trial)")
    print(f"seconds per trial, trials 0-{WINDOW}: {first * 1000:.1f} ms")
    print(f"seconds per trial, last {WINDOW}: {last * 1000:.1f} ms")
    print(f"last / first: {last / first:.2f}x")
    print(f"study reads (get_all_trials) per trial: {calls['get_all_trials'] / total:.1f}")


if __name__ == "__main__":
    main()
