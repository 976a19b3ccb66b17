"""How ``ntk_score``'s weights were chosen, reproducibly: fit them on tuning architectures, check
them on the others.

Input: per-architecture scores written by ``ntknas benchmark --save`` (one CSV or several, e.g.
two halves scored in parallel) with the columns ``index``, ``cifar10_test_acc`` and the metrics in
``ntknas.metrics.NTK_INPUTS``. Rows are put in ``index`` order (the order of the development
file), shuffled by Python's ``random.Random(--shuffle-seed)``; the first ``--tune`` rows tune, the
rest are held out. On the tuning rows: each term's spread (standard deviation, no accuracies),
then weights by coordinate ascent on a grid, maximising Kendall τ + 0.1 × the mean accuracy (%)
of a best-of-100 pick over 1,000 seeded draws (the experiment of ``ntknas benchmark --search``).
Prints the fitted ``TERMS``; τ, ρ and the best-of-100 pick (2,000 draws) on tuning and held-out
rows for the fit and for ``metrics.TERMS``; and on the held-out rows for every other metric
column of the CSV.

    ntknas benchmark --ground-truth ../shared/data/nb201_cifar10_dev.csv \\
        --scores condition_number,lambda_max,effective_rank,synflow,params --save scores.csv
    python benchmarks/fit_default.py scores.csv
"""

from __future__ import annotations

import argparse
import csv
import random

import numpy as np

from ntknas import metrics
from ntknas.benchmark import search_experiment
from ntknas.ranking import kendall_tau, oriented, spearman_rho

GRID = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
START = {"-log10_condition_number": 1.0, "log10_synflow": 1.0, "log10_params": 1.0}
SWEEPS = 3


Weights = dict[str, tuple[float, float]]  # as metrics.TERMS: name → (weight, spread)


def load(paths: list[str]) -> tuple[list[dict[str, float] | None], np.ndarray, dict[str, np.ndarray]]:
    """Each row's ``ntk_score`` terms (None: singular), accuracies (%), and every metric column
    oriented so that higher is better (failed: −inf), in index order."""
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    rows.sort(key=lambda r: int(r["index"]))
    terms = []
    for r in rows:
        try:
            terms.append(metrics.ntk_terms({n: float(r[n]) for n in metrics.NTK_INPUTS}))
        except ValueError:  # an empty cell: the architecture failed
            terms.append(None)
    columns = {
        name: oriented(np.array([float(r[name]) if r[name] else np.nan for r in rows]), m.higher_is_better)
        for name, m in metrics.METRICS.items()
        if name in rows[0] and name != metrics.DEFAULT  # ntk_score's weights are what is being fitted
    }
    return terms, np.array([float(r["cifar10_test_acc"]) for r in rows]), columns


def score(terms: list[dict[str, float] | None], weights: Weights) -> np.ndarray:
    """``ntk_score`` of each row with these weights (``metrics.combine``)."""
    return np.array([metrics.combine(t, weights) for t in terms])


def pick(s: np.ndarray, acc: np.ndarray, draws: int) -> dict[str, float]:
    """``ntknas benchmark --search 100 --runs draws --seed 0`` on these scores."""
    return search_experiment(s, True, acc, 100, draws, 0)


def fit(terms: list[dict[str, float] | None], acc: np.ndarray, spreads: dict[str, float]) -> Weights:
    """Coordinate ascent over ``GRID`` from ``START``: τ + 0.1 × pick accuracy."""

    def objective(w: dict[str, float]) -> float:
        s = score(terms, {n: (w[n], spreads[n]) for n in spreads})
        return kendall_tau(s, acc) + 0.1 * pick(s, acc, 1000)["mean_acc"]

    w = {n: START.get(n, 0.0) for n in spreads}
    best = objective(w)
    for _ in range(SWEEPS):
        for name in spreads:
            for value in GRID:
                trial = {**w, name: value}
                if any(trial.values()) and (v := objective(trial)) > best + 1e-12:
                    best, w = v, trial
    return {n: (w[n], spreads[n]) for n in spreads}


def report(label: str, s: np.ndarray, acc: np.ndarray) -> None:
    p = pick(s, acc, 2000)
    print(
        f"  {label:9s} n={len(acc):5d}  τ {kendall_tau(s, acc):.3f}  ρ {spearman_rho(s, acc):.3f}  "
        f"best of 100: {p['mean_acc']:.2f} ± {p['std_acc']:.2f} % (optimum {p['optimum_mean_acc']:.2f} %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", help="CSV(s) from ntknas benchmark --save")
    parser.add_argument("--tune", type=int, default=600)
    parser.add_argument("--shuffle-seed", type=int, default=1)
    args = parser.parse_args()
    terms, acc, columns = load(args.scores)
    order = list(range(len(acc)))
    random.Random(args.shuffle_seed).shuffle(order)
    tune, held = np.array(order[: args.tune]), np.array(order[args.tune :])
    spreads = {n: float(np.std([terms[i][n] for i in tune if terms[i]])) for n in metrics.TERMS}
    tune_terms, held_terms = [terms[i] for i in tune], [terms[i] for i in held]
    fitted = fit(tune_terms, acc[tune], spreads)
    print("fitted TERMS (name: (weight, spread)):")
    for n, (weight, spread) in fitted.items():
        print(f"  {n}: ({weight:g}, {spread:.4g})")
    for label, weights in (("fitted", fitted), ("shipped", metrics.TERMS)):
        print(f"{label} weights:")
        report("tuning", score(tune_terms, weights), acc[tune])
        report("held out", score(held_terms, weights), acc[held])
    equal = {n: (START.get(n, 0.0), spreads[n]) for n in spreads}
    print("equal weights on κ, synflow and size (the form of the previous default):")
    report("held out", score(held_terms, equal), acc[held])
    for name, values in columns.items():
        print(f"{name}:")
        report("held out", values[held], acc[held])


if __name__ == "__main__":
    main()
