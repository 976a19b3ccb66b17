"""What the default score costs per architecture, today's against the previous one, measured side
by side on the same networks in one run.

The previous ``ntk_score`` read the pNTK's spectrum, synflow and the parameter count; today's reads
the pNTK's λ_max, synflow and AZ-NAS expressivity (one more forward pass, no backward). Each part is
timed on each of ``--archs`` random NAS-Bench-201 cells (N=64 bundled images, bn=batch, 1 thread,
the parts in turn on the same network), and the ratio of the medians is printed.

    python benchmarks/ntk_score_cost.py --archs 30
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import scores
import search_spaces
from ntknas import data, reference
from ntknas.candidates import seeded_model
from ntknas.measure import count_params
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
    x, _ = data.minibatch(data.load("cifar10-sample"), 64, 0)
    parts: dict[str, list[float]] = {"pntk + spectrum": [], "synflow": [], "params": [], "expressivity": []}
    for config in reference.sample(space, args.archs):
        model = seeded_model(space, config, 10, 0)
        parts["pntk + spectrum"].append(timed(spectrum, model, x))
        parts["synflow"].append(timed(proxies.synflow, model, x))
        parts["params"].append(timed(count_params, model))
        parts["expressivity"].append(timed(proxies.expressivity, model, x, bn="batch"))
    previous = [
        a + b + c for a, b, c in zip(parts["pntk + spectrum"], parts["synflow"], parts["params"], strict=True)
    ]
    today = [
        a + b + c
        for a, b, c in zip(parts["pntk + spectrum"], parts["synflow"], parts["expressivity"], strict=True)
    ]
    for name, seconds in parts.items():
        print(f"{name:16s} median {1000 * statistics.median(seconds):8.1f} ms")
    old, new = statistics.median(previous), statistics.median(today)
    print(f"previous ntk_score: median {1000 * old:.1f} ms per architecture")
    print(f"today's ntk_score:  median {1000 * new:.1f} ms per architecture")
    print(f"today / previous: {new / old:.2f}x ({args.archs} architectures, N=64, 1 thread)")


if __name__ == "__main__":
    main()
