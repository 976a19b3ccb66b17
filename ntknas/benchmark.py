"""Ranking quality against known accuracies: score architectures, correlate, simulate search."""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ntknas import data, metrics
from ntknas.candidates import seeded_model
from ntknas.errors import UserError
from ntknas.ranking import kendall_tau, oriented, spearman_rho
from search_spaces import SearchSpace

COLUMNS = ("index", "arch", "cifar10_test_acc")


@dataclass(frozen=True)
class GroundTruth:
    """Architectures (``index``, ``arch`` strings) and their trained test accuracy (%)."""

    index: tuple[str, ...]
    arch: tuple[str, ...]
    acc: np.ndarray

    def subset(self, rows: np.ndarray) -> GroundTruth:
        return GroundTruth(
            tuple(self.index[i] for i in rows), tuple(self.arch[i] for i in rows), self.acc[rows]
        )


def load_ground_truth(path: str | Path) -> GroundTruth:
    """Read a CSV with columns ``index,arch,cifar10_test_acc`` (others are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"ground-truth file {path} does not exist; give a CSV with columns {','.join(COLUMNS)}"
        )
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path} lacks column(s) {', '.join(missing)}; it needs {','.join(COLUMNS)}")
        rows = list(reader)
    if not rows:
        raise UserError(f"{path} has no rows")
    try:
        acc = np.array([float(r["cifar10_test_acc"]) for r in rows])
    except ValueError:
        raise UserError(f"{path}: cifar10_test_acc must be numbers (accuracy in %)") from None
    return GroundTruth(tuple(r["index"] for r in rows), tuple(r["arch"] for r in rows), acc)


def sample(truth: GroundTruth, count: int | None, seed: int) -> GroundTruth:
    """``count`` rows drawn without replacement (seeded); all rows when ``count`` is None."""
    if count is None:
        return truth
    if not 2 <= count <= len(truth.acc):
        raise UserError(f"--sample must be between 2 and {len(truth.acc)} (the CSV's rows); got {count}")
    return truth.subset(np.sort(np.random.default_rng(seed).choice(len(truth.acc), count, replace=False)))


def score_all(
    truth: GroundTruth,
    space: SearchSpace,
    names: list[str],
    *,
    data_source: str,
    batch_size: int,
    bn: str,
    repeats: int,
    seed: int,
    device: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """Every metric of every architecture, averaged over ``repeats`` (each with its own minibatch
    and initialisation), and the mean seconds per architecture. A failed architecture gets NaN.
    """
    images = data.load(data_source, "train")
    batches = [data.minibatch(images, batch_size, seed + r) for r in range(repeats)]
    configs = [space.parse(a) for a in truth.arch]  # malformed strings fail before any scoring
    values = {n: np.full(len(configs), np.nan) for n in names}
    start = time.perf_counter()
    for i, config in enumerate(configs):
        runs = []
        for r, (x, y) in enumerate(batches):
            try:
                model = seeded_model(space, config, len(images.classes), seed + r, tuple(x.shape[1:]))
                runs.append(metrics.compute(model, x, y, names, bn=bn, device=device))
            except (ValueError, RuntimeError):
                runs = []
                break
        for n in names:
            if runs:
                values[n][i] = float(np.mean([run[n] for run in runs]))
        if progress:
            progress(i + 1)
    return values, (time.perf_counter() - start) / max(1, len(configs))


def check_save(path: str | Path) -> None:
    """UserError unless a CSV can be written at ``path`` (checked before any scoring)."""
    path = Path(path)
    if path.is_dir() or (path.parent.exists() and not os.access(path.parent, os.W_OK)):
        raise UserError(f"cannot write --save file {path}; choose a writable file path")


def write_scores(path: str | Path, truth: GroundTruth, values: dict[str, np.ndarray]) -> None:
    """Write one row per architecture: ``index,arch,cifar10_test_acc`` and each metric's value
    (empty when the architecture failed)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([*COLUMNS, *values])
            for i, (index, arch) in enumerate(zip(truth.index, truth.arch, strict=True)):
                cells = [repr(float(v[i])) if math.isfinite(v[i]) else "" for v in values.values()]
                writer.writerow([index, arch, repr(float(truth.acc[i])), *cells])
    except OSError as e:
        raise UserError(f"cannot write --save file {path}: {e.strerror}; choose a writable path") from None


def correlations(values: dict[str, np.ndarray], acc: np.ndarray) -> dict[str, dict[str, float]]:
    """Kendall τ and Spearman ρ of each metric with accuracy, oriented so that positive means
    "higher score → better architecture"; non-finite scores rank last."""
    table = {}
    for name, v in values.items():
        o = oriented(v, metrics.METRICS[name].higher_is_better)
        table[name] = {"kendall_tau": kendall_tau(o, acc), "spearman_rho": spearman_rho(o, acc)}
    return table


def check_search(k: int, runs: int, available: int) -> None:
    """UserError unless drawing ``k`` of ``available`` architectures ``runs`` times makes sense."""
    if not 1 <= k <= available:
        raise UserError(f"--search must be between 1 and {available} (the scored architectures); got {k}")
    if runs < 1:
        raise UserError(f"--runs must be at least 1; got {runs}")


def search_experiment(
    values: np.ndarray, higher_is_better: bool, acc: np.ndarray, k: int, runs: int, seed: int
) -> dict[str, float]:
    """``runs`` times, draw ``k`` architectures and keep the best by the score: the true accuracy
    of the pick (mean, std over runs), beside a random pick and the draw's optimum."""
    check_search(k, runs, len(acc))
    rng = np.random.default_rng(seed)
    score = oriented(values, higher_is_better)
    picked, randomly, best = [], [], []
    for _ in range(runs):
        draw = rng.choice(len(acc), k, replace=False)
        top = draw[score[draw] == score[draw].max()]
        picked.append(float(acc[top].mean()))  # ties: the expected accuracy of a tied pick
        randomly.append(float(acc[draw].mean()))
        best.append(float(acc[draw].max()))
    return {
        "k": k,
        "runs": runs,
        "mean_acc": float(np.mean(picked)),
        "std_acc": float(np.std(picked)),
        "random_mean_acc": float(np.mean(randomly)),
        "optimum_mean_acc": float(np.mean(best)),
    }


def report(
    values: dict[str, np.ndarray],
    truth: GroundTruth,
    *,
    seconds_per_architecture: float,
    batch_size: int,
    bn: str,
    repeats: int,
    search: dict[str, float] | None = None,
) -> dict[str, object]:
    """The benchmark's result: Kendall τ and Spearman ρ of each metric with accuracy, the settings,
    and the simulated search when there is one (``null`` for undefined correlations in JSON)."""
    result: dict[str, object] = {
        "n": len(truth.acc),
        "default_score": metrics.DEFAULT,
        "scores": correlations(values, truth.acc),
        "seconds_per_architecture": seconds_per_architecture,
        "batch_size": batch_size,
        "bn": bn,
        "repeats": repeats,
    }
    if search is not None:
        result["search"] = search
    return result
