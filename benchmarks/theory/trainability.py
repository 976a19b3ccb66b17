"""Experiment 4: is the pNTK condition number at initialisation a measure of trainability?

TE-NAS's premise, and this product's: the better conditioned a network's NTK at initialisation,
the faster gradient descent trains it (in the linear regime the slowest mode of the training
error converges at rate ηλ_min, and η is capped by 2/λ_max). For a handful of NAS-Bench-201
cells, this measures the pNTK condition number (``scores.score``, bn="batch") on one minibatch of
real CIFAR-10 images, then trains the same network on that minibatch (full batch, SGD with
momentum, one learning rate for all) and counts the steps to a fixed cross-entropy. It reports the
rank correlation, whatever it is.

    python benchmarks/theory/trainability.py [--quick] [--out DIR]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from _report import arguments, figure, publish, table, threads

import scores
import search_spaces
from ntknas.inputs import data
from ntknas.scoring.ranking import kendall_tau, spearman_rho
from search_spaces.nb201 import OPS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NAME = "trainability"
LEARNING_RATE, MOMENTUM = 0.03, 0.9
NAMED_CELLS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|",
)


@dataclass(frozen=True)
class Setup:
    cells: tuple[str, ...]
    images: int
    target_loss: float
    max_steps: int


def random_cells(count: int, seed: int) -> tuple[str, ...]:
    """``count`` NB201 arch strings with every edge's operation drawn uniformly (seeded)."""
    space = search_spaces.get("nb201")
    rng = np.random.default_rng(seed)
    return tuple(space.describe(tuple(str(op) for op in rng.choice(OPS, size=6))) for _ in range(count))


FULL = Setup(cells=NAMED_CELLS + random_cells(4, seed=0), images=32, target_loss=0.5, max_steps=100)
QUICK = Setup(cells=NAMED_CELLS[3:], images=8, target_loss=2.0, max_steps=4)


@dataclass(frozen=True)
class Cell:
    """One cell's pNTK scores at initialisation and its training."""

    arch: str
    params: int
    condition_number: float
    steps: int | None  # gradient steps to reach the target loss; None if not within the budget
    final_loss: float


def measure(arch: str, x: torch.Tensor, y: torch.Tensor, setup: Setup, seed: int = 0) -> Cell:
    """Score the freshly initialised cell's network, then train it on (x, y) until the target loss."""
    space = search_spaces.get("nb201")
    torch.manual_seed(seed)
    model = space.build(space.parse(arch))
    cond = scores.score(model, x, bn="batch")["condition_number"]
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    steps = None
    for step in range(setup.max_steps + 1):
        loss = F.cross_entropy(model(x), y)
        if loss.item() <= setup.target_loss:
            steps = step
            break
        if step < setup.max_steps:
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return Cell(arch, sum(p.numel() for p in model.parameters()), cond, steps, loss.item())


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the experiment; write the table and figure; return the rank correlations and the cells."""
    args = arguments(__doc__, argv)
    setup = QUICK if args.quick else FULL
    x, y = data.minibatch(data.load("cifar10-sample"), setup.images, seed=0)
    cells = [measure(arch, x, y, setup) for arch in setup.cells]
    censored = setup.max_steps + 1  # cells that never reach the target rank last, tied
    steps = [c.steps if c.steps is not None else censored for c in cells]
    conds = [c.condition_number for c in cells]
    rho, tau = spearman_rho(conds, steps), kendall_tau(conds, steps)
    reached = [c for c in cells if c.steps is not None]
    rho_reached = (
        spearman_rho([c.condition_number for c in reached], [c.steps for c in reached])
        if len(reached) >= 3
        else math.nan
    )

    order = sorted(range(len(cells)), key=lambda i: cells[i].condition_number)
    rows = [
        [
            i + 1,
            f"`{cells[i].arch}`",
            f"{cells[i].params:,}",
            f"{cells[i].condition_number:.3g}",
            f"> {setup.max_steps}" if cells[i].steps is None else cells[i].steps,
            f"{cells[i].final_loss:.3f}",
        ]
        for i in order
    ]
    headers = ["#", "cell", "parameters", "pNTK condition number", f"steps to loss ≤ {setup.target_loss:g}"]
    text = table([*headers, "final loss"], rows, "rlrrrr")
    fig = _plot(cells, setup)
    body = f"""`python benchmarks/theory/trainability.py`: {len(cells)} NAS-Bench-201 cells, each scored
on the same {setup.images} CIFAR-10 images it is then trained on (full batch, SGD, learning rate
{LEARNING_RATE:g}, momentum {MOMENTUM:g}, BatchNorm on batch statistics), from loss ln 10 ≈ 2.30
until the cross-entropy reaches {setup.target_loss:g} or {setup.max_steps} steps pass; {threads()}.
Cells that never got there rank last, tied. Rank correlation between condition number and steps:
**Spearman ρ = {rho:+.2f}, Kendall τ = {tau:+.2f}** ({_verdict(rho)}; a positive value means better
conditioned cells train in fewer steps, as TE-NAS's premise says). Among the {len(reached)} cells
that reached the target, Spearman ρ = {rho_reached:+.2f} ({_verdict(rho_reached)}). {len(cells)} cells
are a handful: read this as an illustration of the link, not a measurement of its strength.

{text}

TE-NAS (Chen, Gong & Wang 2021) reports a negative correlation between the NTK condition number
and the accuracy reached after full training on NAS-Bench-201; here the target is the optimisation
speed the condition number speaks to directly. The figure plots steps to the target against the
condition number (log scale), numbered as in the table; cells beyond the budget sit on the dotted
line, cells with a singular kernel (infinite condition number) at the right, marked ×."""
    title = "Trainability: condition number at initialisation vs. steps to train"
    doc = publish(args.out, NAME, title, body, fig)
    print(text, f"\nSpearman {rho:+.3f} (reached: {rho_reached:+.3f}), Kendall {tau:+.3f}; wrote {doc}")
    return {"spearman": rho, "kendall": tau, "spearman_reached": rho_reached, "cells": cells}


def _verdict(rho: float) -> str:
    """Words for a rank correlation: its strength and sign."""
    if math.isnan(rho):
        return "undefined: too few cells, or one side constant"
    size = abs(rho)
    if size < 0.3:
        return "no clear association"
    strength = "weak" if size < 0.5 else "moderate" if size < 0.7 else "strong"
    return f"a {strength} {'positive' if rho > 0 else 'negative'} association"


def _plot(cells: list[Cell], setup: Setup) -> Figure:
    fig, (ax,) = figure(1)
    finite = max((c.condition_number for c in cells if math.isfinite(c.condition_number)), default=1.0)
    for i, c in enumerate(cells):
        cond = c.condition_number if math.isfinite(c.condition_number) else finite * 10
        steps = c.steps if c.steps is not None else setup.max_steps + 1
        ax.plot(cond, steps, "o" if math.isfinite(c.condition_number) else "x", color=f"C{i % 10}")
        ax.annotate(str(i + 1), (cond, steps), textcoords="offset points", xytext=(4, 4), fontsize="small")
    ax.axhline(setup.max_steps + 1, color="k", ls=":", lw=1)
    ax.set(
        xscale="log",
        xlabel="pNTK condition number at initialisation (× : infinite)",
        ylabel=f"steps to training loss ≤ {setup.target_loss:g}",
        title="Trainability",
    )
    return fig


if __name__ == "__main__":
    main()
