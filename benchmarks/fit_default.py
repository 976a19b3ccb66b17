"""How ``ntk_score``'s weights were chosen, reproducibly: fit them on tuning architectures of
several spaces at once for the worst of them, and check them on the held-out others.

Input, per space: a CSV of per-architecture metrics and accuracy, written by ``ntknas benchmark
--save`` or by ``benchmarks/ranking/space_features.py``, given as ``SPACE=PATH`` (the space's
accuracy column is the first of ``TARGETS`` the file has, or ``--target SPACE=COLUMN``). Each
term of ``ntknas.scoring.metrics.TERMS`` is placed by the shipped reference of its space
(``ntknas.objectives.reference``: centre and spread over a seeded random sample of the space, no
accuracies). Each space's rows, in ``index`` order, are shuffled by Python's
``random.Random(--shuffle-seed)``; the first ``--tune`` fraction tunes, the rest is held out.
Weights are fitted on the tuning rows by coordinate ascent on ``GRID`` from equal weights,
maximising the smallest Spearman ρ over the spaces plus 0.1 × their mean (a score is judged by
its worst space).

Prints the fitted weights; then, per space (worst first by the shipped default), τ and ρ of the
fitted and shipped weights on tuning and held-out rows, and on the held-out rows every other
score of the file with the default's rank among them.

    python benchmarks/ranking/space_features.py nb201 ../shared/data/nb201_cifar10_dev.csv nb201.csv
    python benchmarks/ranking/space_features.py nbmacro ../shared/data/nbmacro_cifar10_dev.csv macro.csv
    python benchmarks/fit_default.py nb201=nb201.csv nbmacro=macro.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from typing import NamedTuple

import numpy as np

import search_spaces
from ntknas.objectives import reference
from ntknas.scoring import metrics
from ntknas.scoring.ranking import kendall_tau, oriented, spearman_rho

GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0)
SWEEPS = 3
TARGETS = ("cifar10_test_acc", "test_acc", "accuracy")
# The previous default (ntk_score version 2): synflow, expressivity and −log10 λ_max.
PREVIOUS = {"log10_synflow": 1.0, "expressivity": 1.0, "-log10_lambda_max": 0.25}

Terms = list[dict[str, float] | None]


class Space(NamedTuple):
    """One space's rows: their terms (None: singular), accuracies, reference, and every metric
    column oriented so that higher is better."""

    name: str
    terms: Terms
    acc: np.ndarray
    placed: dict[str, tuple[float, float]]
    columns: dict[str, np.ndarray]

    def part(self, idx: np.ndarray) -> Space:
        return Space(
            self.name,
            [self.terms[i] for i in idx],
            self.acc[idx],
            self.placed,
            {n: c[idx] for n, c in self.columns.items()},
        )


def load(name: str, path: str, target: str | None = None, batch: int = reference.BATCH) -> Space:
    """The rows of ``path`` (a space's metrics and accuracies, scored on batches of ``batch``
    images), in ``index`` order."""
    with open(path, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["index"]))
    target = target or next(t for t in TARGETS if t in rows[0])
    named = [t for t, (reads, _) in metrics.TERMS.items() if all(m in rows[0] for m in reads)]
    inputs = {m for t in named for m in metrics.TERMS[t][0]} | {"condition_number", "lambda_max", "params"}
    terms: Terms = []
    for r in rows:
        try:
            terms.append(metrics.ntk_terms({n: float(r[n]) for n in inputs}, named))
        except ValueError:  # an empty cell: a failed metric
            terms.append(None)
    columns = {
        n: oriented(np.array([float(r[n]) if r[n] else np.nan for r in rows]), m.higher_is_better)
        for n, m in metrics.METRICS.items()
        if n in rows[0] and n != metrics.DEFAULT
    }
    placed = reference.for_space(search_spaces.get(name), 32, 10, batch=batch).terms
    return Space(name, terms, np.array([float(r[target]) for r in rows]), placed, columns)


def score(terms: Terms, weights: dict[str, float], placed: dict[str, tuple[float, float]]) -> np.ndarray:
    """``ntk_score`` of each row with these weights (``metrics.ntk_score_from``)."""
    return np.array([metrics.ntk_score_from(t, placed, weights) for t in terms])


def rhos(spaces: list[Space], weights: dict[str, float]) -> list[float]:
    return [spearman_rho(score(s.terms, weights, s.placed), s.acc) for s in spaces]


def fit(spaces: list[Space]) -> dict[str, float]:
    """Coordinate ascent over ``GRID`` from equal weights of the terms every space's file has:
    min ρ + 0.1 × mean ρ over the spaces."""
    held = [set(next(t for t in s.terms if t is not None)) for s in spaces]
    names = [n for n in metrics.TERMS if all(n in h for h in held)]

    def objective(w: dict[str, float]) -> float:
        r = rhos(spaces, w)
        return min(r) + 0.1 * float(np.mean(r))

    w = dict.fromkeys(names, 1.0)
    best = objective(w)
    for _ in range(SWEEPS):
        for name in names:
            for value in GRID:
                trial = {**w, name: value}
                if any(trial.values()) and (v := objective(trial)) > best + 1e-12:
                    best, w = v, trial
    return {n: v for n, v in w.items() if v}


def split(space: Space, fraction: float, seed: int) -> tuple[Space, Space]:
    order = list(range(len(space.acc)))
    random.Random(seed).shuffle(order)
    cut = round(fraction * len(order))
    return space.part(np.array(order[:cut])), space.part(np.array(order[cut:]))


def table(space: Space, weights: dict[str, float]) -> list[tuple[str, float, float]]:
    """(score, τ, ρ) of the default, the previous default and every column, best ρ first."""
    found = [
        (f"{metrics.DEFAULT} (default)", score(space.terms, weights, space.placed)),
        ("previous ntk_score", score(space.terms, PREVIOUS, space.placed)),
        *space.columns.items(),
    ]
    out = [(n, kendall_tau(v, space.acc), spearman_rho(v, space.acc)) for n, v in found]
    return sorted(out, key=lambda r: -r[2] if math.isfinite(r[2]) else math.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", help="SPACE=CSV, one per space")
    parser.add_argument("--target", action="append", default=[], help="SPACE=COLUMN (the accuracy)")
    parser.add_argument("--tune", type=float, default=0.5, help="fraction of each space's rows that tunes")
    parser.add_argument("--shuffle-seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=reference.BATCH, help="the files' batch size")
    args = parser.parse_args()
    targets = dict(t.split("=", 1) for t in args.target)
    spaces = [load(n, p, targets.get(n), args.batch) for n, p in (s.split("=", 1) for s in args.scores)]
    parts = [split(s, args.tune, args.shuffle_seed) for s in spaces]
    tune, held = [p[0] for p in parts], [p[1] for p in parts]
    fitted = fit(tune)
    print(f"fitted weights: {fitted}")
    print(f"shipped weights: {metrics.WEIGHTS}")
    for label, weights in (("fitted", fitted), ("shipped", metrics.WEIGHTS)):
        for part, group in (("tuning", tune), ("held out", held)):
            cells = "  ".join(f"{s.name} ρ {r:.3f}" for s, r in zip(group, rhos(group, weights), strict=True))
            print(f"  {label:8s} {part:9s} {cells}")
    for space in sorted(held, key=lambda s: rhos([s], metrics.WEIGHTS)[0]):
        print(f"\n{space.name}, held out ({len(space.acc)} architectures): score, τ, ρ")
        for rank, (name, tau, rho) in enumerate(table(space, metrics.WEIGHTS), 1):
            print(f"  {rank:2d}. {name:28s} {tau:6.3f} {rho:6.3f}")


if __name__ == "__main__":
    main()
