"""How many architectures does a space's reference need? ``ntk_score`` places its terms by their
centre and spread over a random sample of the space's architectures (``ntknas.objectives.reference``);
measuring that sample is what a new space, image size, class count or batch size pays before its
first candidate. This script draws reference samples of each size from a space's scored rows (the
dev files' architectures are a random sample of the space) and prints, per size, how far Kendall's
τ of ``ntk_score`` with the accuracy moves from τ under the reference of all rows: the mean, the
95th percentile and the largest |Δτ| over the draws.

    python benchmarks/reference_size.py nb201=benchmarks/ranking/features/nb201.csv \
        nbmacro=benchmarks/ranking/features/nbmacro.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import random

import numpy as np

from ntknas.scoring import metrics
from ntknas.scoring.ranking import kendall_tau

ACCURACY = ("cifar10_test_acc", "test_acc")  # NB201's column, NAS-Bench-Macro's
SIZES = (4, 6, 8, 12, 16, 24, 32, 64)


def load(path: str) -> tuple[list[dict[str, float] | None], np.ndarray]:
    """Each row's raw ntk_score terms (None when its kernel is singular) and its accuracy."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    column = next(c for c in ACCURACY if c in rows[0])
    terms = []
    for row in rows:
        found = metrics.ntk_terms({n: float(row[n]) for n in metrics.NTK_INPUTS})
        ok = found is not None and all(math.isfinite(v) for v in found.values())
        terms.append(found if ok else None)
    return terms, np.array([float(r[column]) for r in rows])


def placed(sample: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Centre and spread of each weighted term over ``sample``, as the reference computes them."""
    out = {}
    for name in metrics.WEIGHTS:
        v = np.array([t[name] for t in sample])
        out[name] = (float(v.mean()), float(v.std()) or 1.0)
    return out


def tau(terms: list[dict[str, float] | None], acc: np.ndarray, reference) -> float:
    scores = [metrics.ntk_score_from(t, reference) for t in terms]
    return kendall_tau(np.array(scores), acc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spaces", nargs="+", help="NAME=FEATURES.csv")
    parser.add_argument("--draws", type=int, default=100, help="reference samples per size")
    args = parser.parse_args()
    print(f"|Δτ| of ntk_score vs the reference of all rows, over {args.draws} random reference samples")
    print(f"{'space':10} {'size':>5} {'mean':>7} {'p95':>7} {'max':>7}")
    for spec in args.spaces:
        name, path = spec.split("=", 1)
        terms, acc = load(path)
        usable = [t for t in terms if t is not None]
        full = tau(terms, acc, placed(usable))
        print(f"{name:10} {'all':>5} τ {full:.4f} ({len(usable)} rows)")
        rng = random.Random(0)
        for size in SIZES:
            moved = np.array(
                [abs(tau(terms, acc, placed(rng.sample(usable, size))) - full) for _ in range(args.draws)]
            )
            print(
                f"{name:10} {size:>5} {moved.mean():7.4f} {np.percentile(moved, 95):7.4f} {moved.max():7.4f}"
            )


if __name__ == "__main__":
    main()
