"""The candidate's raw terms (``candidate.raw_terms``) at another seed or batch size, for the
first rows of a features CSV: what averaging initialisations and minibatches (``--repeats``)
would buy. One row per architecture, resumable.

    python benchmarks/ranking/repeats.py features.csv out.csv --seed 1 --batch-size 64 --count 600
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
from candidate import raw_terms
from features import blocks

import search_spaces
from ntknas.inputs import data
from ntknas.objectives.candidates import seeded_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features", help="CSV from features.py (index and arch columns, in its order)")
    parser.add_argument("out", help="output CSV (appended to; existing rows are skipped)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--count", type=int, default=600)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = search_spaces.get("nb201")
    with open(args.features, newline="") as f:
        todo = [(r["index"], r["arch"]) for r in csv.DictReader(f)][: args.count]
    out = Path(args.out)
    done = set()
    if out.exists():
        with out.open(newline="") as f:
            done = {r["index"] for r in csv.DictReader(f)}
    x, _ = data.minibatch(data.load("cifar10-sample"), args.batch_size, args.seed)
    fields = ["index", "seed", "batch_size", "synflow", "az_expressivity", "neg_lmax", "params", "seconds"]
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if not done:
            writer.writeheader()
        for index, arch in todo:
            if index in done:
                continue
            start = time.perf_counter()
            model = seeded_model(space, space.parse(arch), 10, args.seed)
            try:
                terms = {k: repr(v) for k, v in raw_terms(model, x, blocks(model)).items()}
            except (ValueError, RuntimeError):
                terms = {}
            row = {"index": index, "seed": args.seed, "batch_size": args.batch_size, **terms}
            writer.writerow({**row, "seconds": repr(time.perf_counter() - start)})
            f.flush()


if __name__ == "__main__":
    main()
