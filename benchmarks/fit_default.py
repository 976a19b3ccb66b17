"""How ``ntk_score``'s weights were chosen, reproducibly: fit them on tuning architectures, check
them on the others, against CIFAR-10, CIFAR-100 and ImageNet16-120 accuracy.

Input: per-architecture scores written by ``ntknas benchmark --save`` (one CSV or several, e.g.
two halves scored in parallel) with the columns ``index`` and the metrics in
``ntknas.metrics.NTK_INPUTS``, and the ground-truth CSV they were scored from (for the three
accuracy columns, joined on ``index``). Each term is placed by the shipped reference of the nb201
space (``ntknas.reference``: centre and spread over 200 random architectures of the space, no
accuracies). Rows are put in ``index`` order (the order of the development file), shuffled by
Python's ``random.Random(--shuffle-seed)``; the first ``--tune`` rows tune, the rest are held out.
Weights are fitted on the tuning rows by coordinate ascent on a grid from equal weights,
maximising Kendall τ with CIFAR-10 accuracy + 0.1 × the mean accuracy (%) of a best-of-100 pick
over 1,000 seeded draws (the experiment of ``ntknas benchmark --search``).

Prints the fitted weights; τ and ρ against each dataset and the best-of-100 pick (2,000 draws) on
tuning and held-out rows for the fit and for ``metrics.WEIGHTS``; and on the held-out rows for
the previous default and every other metric column of the CSV.

    ntknas benchmark --ground-truth ../shared/data/nb201_cifar10_dev.csv --scores all --save scores.csv
    python benchmarks/fit_default.py scores.csv --ground-truth ../shared/data/nb201_cifar10_dev.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import random

import numpy as np

import search_spaces
from ntknas import metrics, reference
from ntknas.benchmark import search_experiment
from ntknas.ranking import kendall_tau, oriented, spearman_rho

GRID = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
START = dict.fromkeys(metrics.WEIGHTS, 1.0)
SWEEPS = 3
ACCURACIES = {
    "CIFAR-10": "cifar10_test_acc",
    "CIFAR-100": "cifar100_test_acc",
    "IN16-120": "imagenet16_test_acc",
}
# The previous default (name → (weight, spread), Σ weight × term / spread), for comparison.
PREVIOUS = {
    "-log10_condition_number": (1.5, 0.9801),
    "log10_lambda_max": (-0.5, 0.7005),
    "effective_rank": (-0.5, 13.87),
    "log10_synflow": (1.0, 8.926),
    "log10_params": (0.25, 0.3064),
}

Terms = list[dict[str, float] | None]


def load(paths: list[str], ground_truth: str) -> tuple[Terms, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each row's ``ntk_score`` terms (None: singular), each dataset's accuracies (%, those the
    ground truth has), and every
    metric column oriented so that higher is better (failed: −inf), in index order."""
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    rows.sort(key=lambda r: int(r["index"]))
    with open(ground_truth, newline="", encoding="utf-8-sig") as f:
        truth = {r["index"]: r for r in csv.DictReader(f)}
    terms: Terms = []
    for r in rows:
        try:
            terms.append(metrics.ntk_terms({n: float(r[n]) for n in metrics.NTK_INPUTS}))
        except ValueError:  # an empty cell: a failed metric or a singular kernel
            terms.append(None)
    given = {label: c for label, c in ACCURACIES.items() if c in next(iter(truth.values()))}
    acc = {label: np.array([float(truth[r["index"]][c]) for r in rows]) for label, c in given.items()}
    columns = {
        name: oriented(np.array([float(r[name]) if r[name] else np.nan for r in rows]), m.higher_is_better)
        for name, m in metrics.METRICS.items()
        if name in rows[0] and name != metrics.DEFAULT  # ntk_score's weights are what is being fitted
    }
    if all(n in rows[0] for n in ("condition_number", "lambda_max", "effective_rank", "synflow", "params")):
        columns["previous ntk_score"] = np.array([previous(r) for r in rows])
    return terms, acc, columns


def previous(row: dict[str, str]) -> float:
    """The previous default of one CSV row; −inf when its kernel is singular."""
    try:
        kappa, lam = float(row["condition_number"]), float(row["lambda_max"])
        raw = {
            "-log10_condition_number": -math.log10(kappa),
            "log10_lambda_max": math.log10(lam),
            "effective_rank": float(row["effective_rank"]),
            "log10_synflow": float(row["synflow"]),
            "log10_params": math.log10(float(row["params"])),
        }
    except ValueError:
        return -math.inf
    return sum(w * raw[n] / s for n, (w, s) in PREVIOUS.items())


def score(terms: Terms, weights: dict[str, float], placed: dict[str, tuple[float, float]]) -> np.ndarray:
    """``ntk_score`` of each row with these weights (``metrics.ntk_score_from``)."""
    return np.array([metrics.ntk_score_from(t, placed, weights) for t in terms])


def pick(s: np.ndarray, acc: np.ndarray, draws: int) -> dict[str, float]:
    """``ntknas benchmark --search 100 --runs draws --seed 0`` on these scores."""
    return search_experiment(s, True, acc, 100, draws, 0)


def fit(terms: Terms, acc: np.ndarray, placed: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Coordinate ascent over ``GRID`` from ``START``: τ + 0.1 × pick accuracy (CIFAR-10)."""

    def objective(w: dict[str, float]) -> float:
        s = score(terms, w, placed)
        return kendall_tau(s, acc) + 0.1 * pick(s, acc, 1000)["mean_acc"]

    w = dict(START)
    best = objective(w)
    for _ in range(SWEEPS):
        for name in START:
            for value in GRID:
                trial = {**w, name: value}
                if any(trial.values()) and (v := objective(trial)) > best + 1e-12:
                    best, w = v, trial
    return w


def report(label: str, s: np.ndarray, acc: dict[str, np.ndarray]) -> None:
    p = pick(s, acc["CIFAR-10"], 2000)
    cells = "  ".join(
        f"{name} τ {kendall_tau(s, a):.3f} ρ {spearman_rho(s, a):.3f}" for name, a in acc.items()
    )
    print(
        f"  {label:18s} n={len(s):5d}  {cells}  best of 100: {p['mean_acc']:.2f} ± {p['std_acc']:.2f} % "
        f"(optimum {p['optimum_mean_acc']:.2f} %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", help="CSV(s) from ntknas benchmark --save")
    parser.add_argument("--ground-truth", required=True, help="the CSV they were scored from")
    parser.add_argument("--tune", type=int, default=600)
    parser.add_argument("--shuffle-seed", type=int, default=1)
    args = parser.parse_args()
    terms, acc, columns = load(args.scores, args.ground_truth)
    placed = reference.lookup(search_spaces.get("nb201"), 32, 10).terms
    order = list(range(len(terms)))
    random.Random(args.shuffle_seed).shuffle(order)
    tune, held = np.array(order[: args.tune]), np.array(order[args.tune :])
    tune_terms, held_terms = [terms[i] for i in tune], [terms[i] for i in held]
    tune_acc = {k: a[tune] for k, a in acc.items()}
    held_acc = {k: a[held] for k, a in acc.items()}
    fitted = fit(tune_terms, tune_acc["CIFAR-10"], placed)
    scale = fitted["log10_synflow"] or 1.0  # only the weights' ratios matter
    print(f"fitted weights (scaled so that synflow's is 1): { {n: w / scale for n, w in fitted.items()} }")
    print(f"shipped weights: {metrics.WEIGHTS}")
    for label, weights in (("fitted", fitted), ("shipped", metrics.WEIGHTS)):
        report(f"{label}, tuning", score(tune_terms, weights, placed), tune_acc)
        report(f"{label}, held out", score(held_terms, weights, placed), held_acc)
    print("held out, other scores:")
    for name, values in columns.items():
        report(name, values[held], held_acc)


if __name__ == "__main__":
    main()
