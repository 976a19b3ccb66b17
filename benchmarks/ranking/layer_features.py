"""Generic feature-map expressivity: AZ-NAS's expressivity read at every convolution's input
(what ``scores.pntk``'s forward hooks already capture), for any CNN, one row per architecture.

For each ``nn.Conv2d`` call of one forward pass (bn="batch", the pNTK's forward) the input
(N, C, H, W) is scored by the entropy of the normalised spectrum of its channel covariance over
the N·H·W positions (``features.expressivity``, covariance in float32); inputs shared by several
convolutions count once. Per row: the sum and the mean over the layers, overall (``expr_conv_sum``,
``expr_conv_mean``) and per resolution stage (``_r0``: the largest feature maps after the first
layer, ``_r1``, ``_r2``: each halving; the network's first convolution, which reads the image,
is left out), and the count of layers; ``seconds``.

    python benchmarks/ranking/layer_features.py features.csv out.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch
from features import BATCH, expressivity, forward_hooked, resume
from torch import nn

import search_spaces
from ntknas.inputs import data
from ntknas.objectives.candidates import seeded_model


def conv_input_expressivity(model: nn.Module, x: torch.Tensor) -> list[tuple[int, float]]:
    """(height, expressivity) of every distinct convolution input but the image."""
    seen: dict[int, tuple[torch.Tensor, int, float]] = {}  # id → (tensor kept alive, height, value)

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        a = args[0]
        if id(a) not in seen and a is not x:
            seen[id(a)] = (a, a.shape[2], expressivity(a.detach(), torch.float32))

    forward_hooked(model, x, nn.Conv2d, hook)
    return [(h, e) for _, h, e in seen.values()]


def summarise(layers: list[tuple[int, float]]) -> dict[str, float]:
    heights = sorted({h for h, _ in layers}, reverse=True)
    out = {"layers": float(len(layers))}
    groups = {"": [e for _, e in layers]}
    for r, h in enumerate(heights[:3]):
        groups[f"_r{r}"] = [e for hh, e in layers if hh == h]
    for suffix, values in groups.items():
        out[f"expr_conv_sum{suffix}"] = float(np.sum(values)) if values else 0.0
        out[f"expr_conv_mean{suffix}"] = float(np.mean(values)) if values else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features", help="CSV from features.py (index and arch columns)")
    parser.add_argument("out", help="output CSV (appended to; existing rows are skipped)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = search_spaces.get("nb201")
    with open(args.features, newline="") as f:
        todo = [(r["index"], r["arch"]) for r in csv.DictReader(f)]
    out = Path(args.out)
    done, header = resume(out)
    x, _ = data.minibatch(data.load("cifar10-sample"), BATCH, args.seed)
    with out.open("a", newline="") as f:
        writer = None
        for index, arch in todo:
            if index in done:
                continue
            start = time.perf_counter()
            model = seeded_model(space, space.parse(arch), 10, args.seed)
            row = {"index": index, **summarise(conv_input_expressivity(model, x))}
            row["seconds"] = time.perf_counter() - start
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=header or list(row), restval="")
                if header is None:
                    writer.writeheader()
            writer.writerow({k: v if k == "index" else repr(float(v)) for k, v in row.items()})
            f.flush()


if __name__ == "__main__":
    main()
