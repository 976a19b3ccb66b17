"""Experiment 3 (Lee et al. 2019): wide networks train like their linearisation, and their NTK barely moves.

A small regression task on real CIFAR-10 images: vehicles (+1) against animals (−1). Two-hidden-layer
ReLU MLPs in NTK parameterisation (``scores.ntk_mlp``, float64) are trained by full-batch gradient
descent on ``½ Σ_i (f(x_i) − y_i)²`` with η = 1/λ_max of the analytic NTK on the training images,
the same for every width. The linearised model ``f₀ + ∇f₀·(θ − θ₀)`` under the same descent has a
closed form in the empirical NTK at initialisation Θ₀ (kernel regression as t → ∞)::

    f_lin_t(X) = y + (I − ηΘ₀)ᵗ (f₀(X) − y)
    f_lin_t(x) = f₀(x) − Θ₀(x, X) Θ₀⁻¹ (I − (I − ηΘ₀)ᵗ) (f₀(X) − y)

The gap between network and linearisation, and the kernel's relative change, shrink with width.

    python benchmarks/theory/lazy_training.py [--quick] [--out DIR]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from _report import arguments, figure, power_law_panel, publish, table, threads
from _stats import loglog_slope, mean_std, relative_distance

import scores
from ntknas.inputs import data

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NAME = "lazy_training"
DEPTH = 3
VEHICLES = ("airplane", "automobile", "ship", "truck")


@dataclass(frozen=True)
class Setup:
    widths: tuple[int, ...]
    seeds: int
    train: int
    test: int
    steps: int
    every: int  # steps between recorded outputs


FULL = Setup(widths=(64, 128, 256, 512, 1024, 2048), seeds=3, train=32, test=32, steps=200, every=10)
QUICK = Setup(widths=(16, 64), seeds=1, train=8, test=8, steps=10, every=5)


@dataclass(frozen=True)
class Run:
    """One trained network: outputs of network and linearisation at the recorded steps, and the kernel."""

    steps: list[int]
    train: torch.Tensor  # (S, N) network outputs on the training images
    test: torch.Tensor  # (S, M) on the test images
    train_lin: torch.Tensor  # (S, N) linearised model
    test_lin: torch.Tensor  # (S, M)
    kernel_change: float  # ‖Θ_T − Θ₀‖_F / ‖Θ₀‖_F on the training images


@dataclass(frozen=True)
class Task:
    """Flattened float64 images and the training targets: +1 for a vehicle, −1 for an animal."""

    x: torch.Tensor  # (N, 3072) training images
    y: torch.Tensor  # (N,)
    x_test: torch.Tensor  # (M, 3072)


def make_task(train: int, test: int) -> Task:
    """``train`` training and ``test`` test images of the bundled CIFAR-10 sample, class-balanced."""

    def split(name: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        images = data.load("cifar10-sample", split=name)
        x, labels = data.minibatch(images, count, seed=0)
        vehicle = torch.tensor([c in VEHICLES for c in images.classes])
        return x.flatten(1).to(torch.float64), vehicle[labels].to(torch.float64) * 2 - 1

    (x, y), (x_test, _) = split("train", train), split("test", test)
    return Task(x, y, x_test)


def largest_rms_gap(net: torch.Tensor, lin: torch.Tensor) -> float:
    """The largest root-mean-square difference (over samples) between two (S, N) output histories."""
    return float((net - lin).pow(2).mean(1).sqrt().max())


def linearised(
    theta: torch.Tensor,
    cross: torch.Tensor,
    f0: torch.Tensor,
    f0_test: torch.Tensor,
    y: torch.Tensor,
    eta: float,
    steps: list[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs (S, N) on the training and (S, M) on the test images of the linearised model after ``steps``.

    ``theta``: Θ₀ on the training images (N, N); ``cross``: Θ₀(test, train) (M, N).
    """
    lam, v = torch.linalg.eigh(theta)
    residual = v.T @ (f0 - y)
    t = torch.tensor(steps, dtype=lam.dtype)[:, None]
    decay = (1 - eta * lam) ** t  # (S, N)
    train = y + (decay * residual) @ v.T
    test = f0_test - ((1 - decay) / lam * residual) @ v.T @ cross.T
    return train, test


def train(width: int, seed: int, task: Task, eta: float, setup: Setup) -> Run:
    """Train one network of hidden width ``width`` and compare it with its linearisation."""
    x, y, x_test = task.x, task.y, task.x_test
    torch.manual_seed(seed)
    model = scores.ntk_mlp([x.shape[1], width, width, 1])
    k0 = scores.pntk(model, torch.cat([x, x_test]))
    n = x.shape[0]
    optimiser = torch.optim.SGD(model.parameters(), lr=eta)
    steps, outputs = [], []
    for step in range(setup.steps + 1):
        if step % setup.every == 0:
            with torch.no_grad():
                outputs.append((model(x)[:, 0], model(x_test)[:, 0]))
            steps.append(step)
        if step == setup.steps:
            break
        optimiser.zero_grad()
        (0.5 * (model(x)[:, 0] - y).pow(2).sum()).backward()
        optimiser.step()
    kernel_change = relative_distance(scores.pntk(model, x), k0[:n, :n])
    train_lin, test_lin = linearised(k0[:n, :n], k0[n:, :n], *outputs[0], y, eta, steps)
    net_train, net_test = (torch.stack(o) for o in zip(*outputs, strict=True))
    return Run(steps, net_train, net_test, train_lin, test_lin, kernel_change)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the experiment; write the table and figure; return the gaps and kernel changes by width."""
    args = arguments(__doc__, argv)
    setup = QUICK if args.quick else FULL
    task = make_task(setup.train, setup.test)
    x, y = task.x, task.y
    eta = 1 / float(torch.linalg.eigvalsh(scores.analytic_ntk(x, x, DEPTH))[-1])
    runs = {w: [train(w, seed, task, eta, setup) for seed in range(setup.seeds)] for w in setup.widths}

    measures = {
        "test gap": lambda r: largest_rms_gap(r.test, r.test_lin),
        "train gap": lambda r: largest_rms_gap(r.train, r.train_lin),
        "kernel change": lambda r: r.kernel_change,
    }
    stats = {name: [mean_std([f(r) for r in runs[w]]) for w in setup.widths] for name, f in measures.items()}
    rates = {name: loglog_slope(setup.widths, [m for m, _ in s]) for name, s in stats.items()}
    loss = {w: sum(0.5 * float((r.train[-1] - y).pow(2).sum()) for r in runs[w]) / len(runs[w]) for w in runs}
    rows = [
        [w, *[f"{stats[name][i][0]:.4f} ± {stats[name][i][1]:.4f}" for name in measures], f"{loss[w]:.4f}"]
        for i, w in enumerate(setup.widths)
    ]
    text = table(["width", *measures, f"train loss at step {setup.steps}"], rows)
    fig = _plot(runs, stats)
    body = f"""`python benchmarks/theory/lazy_training.py`: {setup.train} training and {setup.test} test
images, {setup.steps} steps of full-batch gradient descent at η = 1/λ_max(Θ_∞) = {eta:.4f},
depth-{DEPTH} ReLU MLPs, {setup.seeds} seeds per width; {threads()}. Gaps are the largest
root-mean-square difference between the network's outputs and its linearisation's over training
(targets are ±1); the kernel change is ‖Θ_T − Θ₀‖_F / ‖Θ₀‖_F. With width, the test gap falls as
width^{rates["test gap"]:.2f}, the training gap as width^{rates["train gap"]:.2f} and the kernel
change as width^{rates["kernel change"]:.2f}; Lee et al. bound all three by O(width^−1/2).

{text}

Left and middle, as in Lee et al.'s figures comparing network and linearised outputs during
training: three test outputs of the network (solid) and of its linearisation (dashed) at the
smallest and the largest width; the narrow network leaves its linearisation, the wide one
follows it. Right: the gaps and the kernel change against width."""
    doc = publish(args.out, NAME, "Lazy training: wide networks follow their linearisation", body, fig)
    print(text, f"\nrates {rates}; wrote {doc}")
    return {"rates": rates, "stats": stats, "eta": eta}


def _plot(runs: dict[int, list[Run]], stats: dict[str, list[tuple[float, float]]]) -> Figure:
    fig, axes = figure(3)
    widths = list(runs)
    for ax, width in zip(axes[:2], (widths[0], widths[-1]), strict=True):
        run = runs[width][0]
        for i, colour in zip(range(3), ("tab:blue", "tab:orange", "tab:green"), strict=True):
            ax.plot(run.steps, run.test[:, i], "-", color=colour, label="network" if i == 0 else None)
            ax.plot(run.steps, run.test_lin[:, i], "--", color=colour, label="linearised" if i == 0 else None)
        ax.set(xlabel="gradient step", ylabel="f(x) on three test images", title=f"width {width}")
        ax.legend(fontsize="small")
    series = {name: (widths, [m for m, _ in s], [sd for _, sd in s]) for name, s in stats.items()}
    power_law_panel(axes[2], series)
    axes[2].set(xlabel="hidden width", ylabel="gap / relative kernel change", title="Convergence with width")
    return fig


if __name__ == "__main__":
    main()
