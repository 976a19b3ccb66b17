"""What the default score costs per architecture, today's against the previous one, measured side
by side on the same networks in one run.

The previous ``ntk_score`` read the pNTK's spectrum, synflow and the parameter count; today's reads
the pNTK's λ_max, synflow and AZ-NAS expressivity, whose block covariances ``ntknas.scoring.metrics`` forms
during the pNTK's own forward pass. Each part is timed on each of ``--archs`` random NAS-Bench-201
cells (N=64 bundled images, bn=batch, 1 thread, the parts in turn on the same network), then
today's ntk_score as a search computes it (``ntknas.scoring.metrics.compute``), and the ratios of the
medians are printed.

    python benchmarks/ntk_score_cost.py --archs 30
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
from ntknas.scoring.measure import count_params
from ntknas.scoring.registry import SPECTRUM
from scores import proxies


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def spectrum(model: torch.nn.Module, x: torch.Tensor) -> scores.Spectrum:
    return scores.spectrum(scores.pntk(model, x, bn="batch"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = search_spaces.get("nb201")
    x, y = data.minibatch(data.load("cifar10-sample"), 64, 0)
    terms = reference.lookup(space, 32, 10).terms
    parts: dict[str, list[float]] = {"pntk + spectrum": [], "synflow": [], "params": [], "expressivity": []}
    parts["ntk_score"] = []
    for config in reference.sample(space, args.archs):
        model = seeded_model(space, config, 10, 0)
        parts["pntk + spectrum"].append(timed(spectrum, model, x))
        parts["synflow"].append(timed(proxies.synflow, model, x))
        parts["params"].append(timed(count_params, model))
        parts["expressivity"].append(timed(proxies.expressivity, model, x, bn="batch"))
        parts["ntk_score"].append(
            timed(metrics.compute, model, x, y, ["ntk_score", *SPECTRUM], reference=terms)
        )
    previous = [
        a + b + c for a, b, c in zip(parts["pntk + spectrum"], parts["synflow"], parts["params"], strict=True)
    ]
    today = parts["ntk_score"]
    for name, seconds in parts.items():
        print(f"{name:16s} median {1000 * statistics.median(seconds):8.1f} ms")
    old, new = statistics.median(previous), statistics.median(today)
    print(f"previous ntk_score: median {1000 * old:.1f} ms per architecture")
    print(f"today's ntk_score:  median {1000 * new:.1f} ms per architecture")
    print(f"today / previous: {new / old:.2f}x ({args.archs} architectures, N=64, 1 thread)")
    print(f"today / the bare pNTK + spectrum: {new / statistics.median(parts['pntk + spectrum']):.2f}x")


if __name__ == "__main__":
    main()
