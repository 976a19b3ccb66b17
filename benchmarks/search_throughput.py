"""Candidates per minute, side by side in one run, at N=64 on the bundled CIFAR-10 sample.

For each space: the full search loop (``ntknas.run.search.search`` with a seeded random sampler and an
SQLite study: sampling, building, FLOPs, scoring, storing), then scoring alone for the same
random configurations with our scorer and with a plain torch.func per-sample-gradient scorer
(``implementation="func"``).

    python benchmarks/search_throughput.py [--trials 60] [--baseline-trials 15]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna
import torch

import scores
import search_spaces
from ntknas.core.seeds import derive_seed
from ntknas.inputs import data
from ntknas.run.search import objective_of, search
from ntknas.study.settings import Settings
from ntknas.study.studies import open_study


def per_minute(count: int, seconds: float) -> float:
    return 60 * count / seconds


def full_search(
    space_name: str, trials: int, batch: tuple[torch.Tensor, torch.Tensor], folder: Path
) -> tuple[float, list[str]]:
    """Candidates per minute of the whole loop, and the configurations it scored."""
    settings = Settings(space_name, data.BUNDLED, batch[0].shape[0], "batch", 0, "condition_number")
    study = open_study(space_name, f"sqlite:///{folder / 'bench.db'}", settings, "random")
    start = time.perf_counter()
    search(study, objective_of(search_spaces.get(space_name), settings, batch, 10, "cpu"), settings, trials)
    seconds = time.perf_counter() - start
    configs = [t.user_attrs["config"] for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
    return per_minute(trials, seconds), configs


def scoring_only(space_name: str, configs: list[str], x: torch.Tensor, implementation: str) -> float:
    """Candidates per minute of building and scoring alone."""
    space = search_spaces.get(space_name)
    start = time.perf_counter()
    for text in configs:
        torch.manual_seed(derive_seed(0, text))
        scores.score(
            space.build(space.parse(text)), x, bn="batch", device="cpu", implementation=implementation
        )
    return per_minute(len(configs), time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--baseline-trials", type=int, default=15)
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()
    batch = data.minibatch(data.load(data.BUNDLED), args.n, seed=0)
    x = batch[0]
    print(f"Candidates per minute at N={args.n}, bn=batch, CPU with {torch.get_num_threads()} threads\n")
    print(f"Full search: {args.trials} random candidates; scoring only: the first {args.baseline_trials}.\n")
    print(
        "| space | full search (ours) | scoring only (ours) | scoring only (torch.func) | ours / torch.func |"
    )
    print("|---|---:|---:|---:|---:|")
    for space_name in search_spaces.names():
        with tempfile.TemporaryDirectory() as folder:
            rate, configs = full_search(space_name, args.trials, batch, Path(folder))
        sample = configs[: args.baseline_trials]
        ours = scoring_only(space_name, sample, x, "hooks")
        func = scoring_only(space_name, sample, x, "func")
        print(f"| {space_name} | {rate:.0f} | {ours:.0f} | {func:.0f} | {ours / func:.1f}× |")


if __name__ == "__main__":
    main()
