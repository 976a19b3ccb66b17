"""Experiment 1 (Jacot et al. 2018, Fig. 1): the empirical NTK tends to the analytic NTK as 1/√width.

Depth-4 ReLU MLPs in NTK parameterisation with Jacot et al.'s settings (σ_w = 1, bias scale
β = σ_b = 0.1), on inputs on the unit circle, several seeds per width. For one output the pNTK is
the empirical NTK; ``scores.pntk`` computes it in one forward and one backward pass, which keeps
width 8192 (134M parameters) affordable. The relative Frobenius distance to
``scores.analytic_ntk`` is fitted on a log-log scale (theory: slope −0.5).

    python benchmarks/theory/width_convergence.py [--quick] [--out DIR]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from _report import arguments, figure, power_law_panel, publish, table, threads
from _stats import loglog_slope, mean_std, relative_distance

import scores

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NAME = "width_convergence"
DEPTH, SIGMA_W, SIGMA_B = 4, 1.0, 0.1


@dataclass(frozen=True)
class Setup:
    widths: tuple[int, ...]
    seeds: int
    points: int


FULL = Setup(widths=(64, 128, 256, 512, 1024, 2048, 4096, 8192), seeds=8, points=32)
QUICK = Setup(widths=(32, 256, 2048), seeds=2, points=8)


def circle(points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Angles γ (points,) evenly spaced over [−π, π), γ = 0 included, and x = (cos γ, sin γ) (points, 2)."""
    gamma = torch.arange(points, dtype=torch.float64) * (2 * math.pi / points) - math.pi
    return gamma, torch.stack([gamma.cos(), gamma.sin()], dim=1)


def empirical_ntk(width: int, seed: int, x: torch.Tensor) -> torch.Tensor:
    """The NTK (N, N) of one freshly initialised depth-4 MLP of hidden width ``width``."""
    torch.manual_seed(seed)
    model = scores.ntk_mlp([2, *[width] * (DEPTH - 1), 1], sigma_w=SIGMA_W, sigma_b=SIGMA_B)
    return scores.pntk(model, x)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the experiment; write the table and figure; return the slope and mean distances."""
    args = arguments(__doc__, argv)
    setup = QUICK if args.quick else FULL
    gamma, x = circle(setup.points)
    limit = scores.analytic_ntk(x, x, DEPTH, sigma_w=SIGMA_W, sigma_b=SIGMA_B)
    origin = int(torch.argmin(gamma.abs()))
    shown = (setup.widths[0], setup.widths[-1])
    distances: dict[int, list[float]] = {}
    rows_at_origin: dict[int, list[torch.Tensor]] = {w: [] for w in shown}
    for width in setup.widths:
        distances[width] = []
        for seed in range(setup.seeds):
            k = empirical_ntk(width, seed, x)
            distances[width].append(relative_distance(k, limit))
            if width in rows_at_origin:
                rows_at_origin[width].append(k[origin])
    stats = {w: mean_std(d) for w, d in distances.items()}
    slope = loglog_slope(setup.widths, [stats[w][0] for w in setup.widths])

    rows = [[w, f"{m:.4f} ± {s:.4f}", f"{m * math.sqrt(w):.2f}"] for w, (m, s) in stats.items()]
    text = table(["width", "‖Θ_emp − Θ_∞‖_F / ‖Θ_∞‖_F", "× √width"], rows)
    fig = _plot(gamma, x[origin], rows_at_origin, stats)
    (w0, w1), (d0, d1) = shown, (stats[shown[0]][0], stats[shown[1]][0])
    body = f"""`python benchmarks/theory/width_convergence.py`: depth-{DEPTH} ReLU MLPs (`scores.ntk_mlp`,
σ_w = {SIGMA_W:g}, σ_b = {SIGMA_B:g}) on {setup.points} inputs on the unit circle, {setup.seeds} seeds per
width; {threads()}. The relative Frobenius distance between the empirical NTK and
`scores.analytic_ntk` falls as **width^{slope:.2f}** (theory: width^−0.5; the last column stays
roughly constant).

{text}

Left, as in Jacot et al.'s Fig. 1 (widths 500 and 10000 there): Θ(x₀, x) against the angle γ
between x₀ = (1, 0) and x, one line per seed. At width {w0} the seeds scatter around the analytic
curve (mean distance {d0:.3f}); at width {w1} they lie on it (mean distance {d1:.4f}), as the
paper's width-10000 networks do. Right: the distance against width, with the fitted power law."""
    doc = publish(args.out, NAME, "Empirical NTK → analytic NTK as width grows", body, fig)
    print(text, f"\nslope {slope:.3f}; wrote {doc}")
    return {"slope": slope, "distances": {w: m for w, (m, _) in stats.items()}}


def _plot(
    gamma: torch.Tensor,
    x0: torch.Tensor,
    rows_at_origin: dict[int, list[torch.Tensor]],
    stats: dict[int, tuple[float, float]],
) -> Figure:
    fig, (left, right) = figure(2)
    dense, xs = circle(256)
    for (width, ks), colour in zip(rows_at_origin.items(), ("tab:orange", "tab:blue"), strict=True):
        for i, k in enumerate(ks):
            label = f"width {width}" if i == 0 else None
            left.plot(gamma, k, "-", color=colour, lw=0.9, alpha=0.8, label=label)
    limit = scores.analytic_ntk(x0[None], xs, DEPTH, sigma_w=SIGMA_W, sigma_b=SIGMA_B)[0]
    left.plot(dense, limit, "k-", lw=2.5, label="analytic (∞ width)")
    left.set(xlabel="angle γ between x₀ and x (rad)", ylabel="Θ(x₀, x)", title="NTK at initialisation")
    left.legend()
    widths = list(stats)
    means, sds = [stats[w][0] for w in widths], [stats[w][1] for w in widths]
    power_law_panel(right, {"distance": (widths, means, sds)})
    right.set(xlabel="hidden width", ylabel="‖Θ_emp − Θ_∞‖_F / ‖Θ_∞‖_F", title="Convergence with width")
    return fig


if __name__ == "__main__":
    main()
