"""Scoring time per architecture: today's ``ntk_score`` (``metrics.compute``) beside the
candidate's terms (``candidate.raw_terms``), in the same process on one thread, alternating which
goes first; and a check that the candidate's terms equal the feature CSV's.

    python benchmarks/ranking/timing.py features.csv [--count 40]
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time

import numpy as np
import torch
from candidate import raw_terms
from features import BATCH, blocks

import search_spaces
from ntknas.inputs import data
from ntknas.objectives.candidates import seeded_model
from ntknas.scoring import metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features", help="CSV from features.py (its first rows are timed)")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = search_spaces.get("nb201")
    with open(args.features, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["synflow"]][: args.count]
    x, y = data.minibatch(data.load("cifar10-sample"), BATCH, args.seed)
    today, ours, ratio, worst = [], [], [], 0.0
    for i, r in enumerate(rows):
        model = seeded_model(space, space.parse(r["arch"]), 10, args.seed)
        runs = {}
        for which in ("today", "ours") if i % 2 == 0 else ("ours", "today"):
            start = time.perf_counter()
            if which == "today":
                metrics.compute(model, x, y, ["ntk_score"], bn="batch", device="cpu")
            else:
                terms = raw_terms(model, x, blocks(model))
            runs[which] = time.perf_counter() - start
        today.append(runs["today"])
        ours.append(runs["ours"])
        ratio.append(runs["ours"] / runs["today"])
        expr = sum(float(r[f"expr_{b}"]) for b in range(18))
        for got, want in ((terms["synflow"], float(r["synflow"])), (terms["az_expressivity"], expr)):
            worst = max(worst, abs(got - want) / max(1.0, abs(want)))
        if i == 0:
            print(f"first arch: terms {terms}")
    print(
        f"{len(rows)} architectures, 1 thread: ntk_score median {statistics.median(today):.3f} s, "
        f"candidate median {statistics.median(ours):.3f} s; per-arch ratio median "
        f"{statistics.median(ratio):.2f} "
        f"(IQR {np.percentile(ratio, 25):.2f}–{np.percentile(ratio, 75):.2f}); "
        f"total ratio {sum(ours) / sum(today):.2f}"
    )
    print(f"largest relative difference from the CSV's synflow/expressivity: {worst:.1e}")
    assert math.isfinite(worst)


if __name__ == "__main__":
    main()
