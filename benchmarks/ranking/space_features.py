"""Ranking features of a benchmark's architectures in any space, one CSV row each, resumable.

Each architecture is built and scored as ``ntknas benchmark`` does (``seeded_model(space, config,
10, seed)``, ``data.minibatch(data.load("cifar10-sample"), 64, seed)``, bn="batch"). Per row:
the ground truth's columns, every metric of ``FEATURES`` (``ntknas.scoring.metrics``), the number of
feature blocks and of weighted layers, and the pNTK's eigenvalues (space-separated, ascending),
from which any spectral feature can be derived afterwards. ``--shard i/k`` takes every k-th row
from the i-th, so k processes can share a file; rows already written are skipped. Rows are
scored in a seeded random order, so a run stopped at any point has scored a random sample.

    python benchmarks/ranking/space_features.py nbmacro ../shared/data/nbmacro_cifar10_dev.csv macro.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import random
from pathlib import Path

import torch

import search_spaces
from ntknas.inputs import data
from ntknas.objectives.candidates import seeded_model
from ntknas.scoring import metrics, spectra
from scores.proxies import LAYERS, feature_blocks

FEATURES = (*metrics.SPECTRUM, "synflow", "expressivity", "naswot", "params", "flops")
BATCH = 64


def features(space, arch: str, batch: tuple[torch.Tensor, torch.Tensor], seed: int) -> dict[str, object]:
    """The features of one architecture on one minibatch."""
    x, y = batch
    model = seeded_model(space, space.parse(arch), 10, seed, tuple(x.shape[1:]))
    errors: dict[str, Exception] = {}
    values = metrics.compute(model, x, y, FEATURES, bn="batch", errors=errors, eigenvalues=True)
    row: dict[str, object] = {n: values[n] for n in FEATURES}
    row["eigenvalues"] = " ".join(f"{v:.10g}" for v in sorted(values.get(spectra.ATTR, [])))
    row["blocks"] = len(feature_blocks(model))
    row["layers"] = sum(isinstance(m, LAYERS) for m in model.modules())
    row["seconds"] = values["seconds"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("space")
    p.add_argument("ground_truth")
    p.add_argument("out")
    p.add_argument("--order-seed", type=int, default=0, help="rows are scored in an order shuffled by this")
    p.add_argument("--shard", default="0/1", help="i/k: every k-th row from the i-th")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    space = search_spaces.get(args.space)
    with open(args.ground_truth, newline="", encoding="utf-8-sig") as f:
        truth = list(csv.DictReader(f))
    random.Random(args.order_seed).shuffle(truth)  # any prefix of the output is a random sample
    i, k = map(int, args.shard.split("/"))
    out = Path(args.out)
    done = set()
    if out.exists():
        with out.open(newline="") as f:
            done = {r["index"] for r in csv.DictReader(f)}
    batch = data.minibatch(data.load(data.BUNDLED), BATCH, args.seed)
    writer = None
    with out.open("a", newline="") as f:
        for row in truth[i::k]:
            if row["index"] in done:
                continue
            values = {**row, **features(space, row["arch"], batch, args.seed)}
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(values))
                if not done:
                    writer.writeheader()
            writer.writerow(values)
            f.flush()


if __name__ == "__main__":
    main()
