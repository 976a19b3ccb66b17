"""What the default score costs per architecture over the bare pNTK, measured side by side on the
same networks in one run.

``ntk_score`` (version 3) reads the pNTK's λ_max and flatness (from its spectrum), synflow, AZ-NAS
expressivity and NASWOT; expressivity's block covariances and NASWOT's activation codes are formed
by hooks during the pNTK's own forward pass (``ntknas.scoring.metrics``). On each of the first
``--nb201``/``--resnet`` architectures of each space's reference sample (N = 64 bundled images,
bn=batch, ``--threads`` torch threads), the bare pNTK with its spectrum and ntk_score as a search
computes it (``ntknas.scoring.metrics.compute`` of ntk_score and the spectrum's metrics) are timed
in turn, the first to go alternating, so that the machine's load falls on both alike; the ratio of
the medians and the median of the ratios are printed per space.

    python benchmarks/ntk_score_cost.py --nb201 30 --resnet 6
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import scores
import search_spaces
from ntknas.inputs import data
from ntknas.objectives import reference
from ntknas.objectives.candidates import seeded_model
from ntknas.scoring import metrics
from ntknas.scoring.registry import SPECTRUM


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def bare(model: torch.nn.Module, x: torch.Tensor) -> scores.Spectrum:
    return scores.spectrum(scores.pntk(model, x, bn="batch"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nb201", type=int, default=30, help="NB201 cells to time")
    parser.add_argument("--resnet", type=int, default=6, help="resnet networks to time")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = data.minibatch(data.load("cifar10-sample"), 64, 0)
    print(f"N = 64, bn=batch, {args.threads} thread(s); seconds are medians over the architectures")
    columns = ("pNTK + spectrum", "ntk_score", "ratio of medians", "median ratio")
    print(f"{'space':8} {'archs':>5} " + " ".join(f"{c:>16}" for c in columns))
    for name, count in (("nb201", args.nb201), ("resnet", args.resnet)):
        space = search_spaces.get(name)
        terms = reference.lookup(space, 32, 10).terms
        seconds: dict[str, list[float]] = {"pntk": [], "score": []}
        for i, config in enumerate(reference.sample(space, count)):
            model = seeded_model(space, config, 10, 0)
            bare(model, x)  # warm: the first pass allocates what both reuse
            jobs = {
                "pntk": (bare, (model, x), {}),
                "score": (metrics.compute, (model, x, y, ["ntk_score", *SPECTRUM]), {"reference": terms}),
            }
            for key in ("pntk", "score") if i % 2 == 0 else ("score", "pntk"):
                fn, positional, keywords = jobs[key]
                seconds[key].append(timed(fn, *positional, **keywords))
        pntk, score = seconds["pntk"], seconds["score"]
        ratios = [s / p for s, p in zip(score, pntk, strict=True)]
        p, s = statistics.median(pntk), statistics.median(score)
        print(f"{name:8} {count:>5} {p:16.3f} {s:16.3f} {s / p:15.2f}x {statistics.median(ratios):15.2f}x")


if __name__ == "__main__":
    main()
