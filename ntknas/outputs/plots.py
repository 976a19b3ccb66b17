"""Pictures of a study as PNG files: score vs. size with the Pareto front, the optimisation
history, the eigenspectra of the top picks and, once verified, score vs. trained accuracy.

matplotlib is an optional extra (the ``plot`` extra), imported only here, when
drawing, and used without pyplot (no global state, no display: the Agg canvas).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ntknas.core import defaults, files
from ntknas.core.errors import UserError
from ntknas.core.extras import install_hint
from ntknas.scoring.ranking import tau_with_accuracy
from ntknas.scoring.registry import direction_words
from ntknas.study.settings import Settings

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FOLDER = defaults.PLOTS
SIZE = (6.4, 4.2)  # inches
DPI = 110
FILES = ("score_vs_params.png", "history.png", "spectrum.png", "verified.png")
# Written into each PNG's metadata: a file that carries it, ntknas drew, and may draw again.
SOFTWARE = "ntknas"


def require_matplotlib() -> None:
    """Raise UserError, saying how to install it, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError(f"matplotlib is not installed: {install_hint('plot')}") from None


def check_out(out: Path, force: bool = False) -> None:
    """UserError unless PNG files can be written into folder ``out`` (an existing writable folder,
    or one that can be made) without replacing a file ntknas did not draw (a link, a picture of
    the user's own), unless ``force``, nor anything that is not a file (a folder, ...) at all:
    checked before the eigenspectra are recomputed."""
    files.check_writable_folder(out, "--out folder")
    for name in FILES:  # --force replaces files, never a folder (nor a FIFO, a device, ...)
        with contextlib.suppress(FileNotFoundError):
            mode = os.lstat(out / name).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                raise UserError(
                    f"--out folder {out} holds {name}, which is not a file, where a plot goes; move it, "
                    "or choose another --out"
                )
    foreign = [name for name in FILES if not force and not _replaceable(out / name)]
    if foreign:
        raise UserError(
            f"--out folder {out} holds {', '.join(foreign)}, which ntknas did not write; "
            "choose another --out, or pass --force to replace them"
        )


def _replaceable(path: Path) -> bool:
    """Whether a plot may be written at ``path``: nothing is there, or a PNG file ntknas drew."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    if not stat.S_ISREG(info.st_mode):
        return False
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get("Software") == SOFTWARE
    except (OSError, UnidentifiedImageError):
        return False


def write_all(
    name: str,
    settings: Settings,
    rows: list[dict],
    out: Path,
    spectra: dict[int, np.ndarray],
    force: bool = False,
) -> list[Path]:
    """Write every picture that study ``name``'s result rows (``ntknas.study.records.rows``) allow
    into folder ``out``, each atomically, replacing only files ntknas drew (any, with ``force``;
    a link itself, never its target); return the files. ``spectra`` maps trial numbers (the top
    picks) to their pNTK eigenvalues."""
    require_matplotlib()
    check_out(out, force)
    objective, higher = settings.objective, settings.higher_is_better
    rows = [r for r in rows if _finite(r.get(objective))]
    if not rows:
        raise UserError(
            f"study '{name}' has no completed trial with a finite {objective}: nothing to draw yet; "
            f"search first (ntknas search --study {name} ...)"
        )
    drawn = {
        "score_vs_params.png": _score_vs_params(rows, objective, higher, settings.max_params),
        "history.png": _history(rows, objective, higher),
    }
    if spectra:
        drawn["spectrum.png"] = spectrum_figure(
            spectra, f"pNTK eigenspectrum of the top {len(spectra)} picks"
        )
    checked = [r for r in rows if _finite(r.get("verified_test_acc"))]
    if checked:
        drawn["verified.png"] = _verified(checked, objective, higher)
    for file_name, figure in drawn.items():
        png = io.BytesIO()
        figure.savefig(png, format="png", metadata={"Software": SOFTWARE})
        files.write_atomically(out / file_name, png.getvalue(), "plot", follow=False)
    return [out / file_name for file_name in drawn]


def pareto_front(cost: np.ndarray, score: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Indices of the points no other point beats on both lower ``cost`` and better ``score``,
    by increasing cost."""
    oriented = score if higher_is_better else -score
    front, best = [], -math.inf
    for i in np.lexsort((-oriented, cost)):  # by cost, the better score first among equal costs
        if oriented[i] > best:
            front.append(i)
            best = oriented[i]
    return np.array(front, dtype=int)


def _score_vs_params(rows: list[dict], objective: str, higher: bool, max_params: int | None) -> Figure:
    figure, ax = _axes(f"{objective} vs. parameters ({len(rows)} candidates)")
    params = np.array([r["params"] for r in rows], dtype=float)
    score = np.array([r[objective] for r in rows], dtype=float)
    front = pareto_front(params, score, higher)
    if max_params is not None:
        ax.axvline(max_params, color="tab:gray", linestyle="--", label=f"budget: {max_params:,} parameters")
    ax.scatter(params, score, s=18, alpha=0.5, color="tab:blue", label="candidate")
    ax.step(params[front], score[front], where="post", color="tab:red", linewidth=1)
    ax.scatter(params[front], score[front], s=36, color="tab:red", label="Pareto front", zorder=3)
    ax.set_xscale("log")
    _score_axis(ax, score, objective, higher, "y")
    ax.set_xlabel("parameters")
    ax.legend()
    return figure


def _history(rows: list[dict], objective: str, higher: bool) -> Figure:
    figure, ax = _axes(f"Search history: {objective}")
    rows = sorted(rows, key=lambda r: r["trial"])
    trial = np.array([r["trial"] for r in rows])
    score = np.array([r[objective] for r in rows], dtype=float)
    best = np.maximum.accumulate if higher else np.minimum.accumulate
    ax.scatter(trial, score, s=18, alpha=0.6, color="tab:blue", label="trial")
    ax.step(trial, best(score), where="post", color="tab:red", label="best so far")
    _score_axis(ax, score, objective, higher, "y")
    ax.set_xlabel("trial")
    ax.legend()
    return figure


def spectrum_figure(spectra: dict[int, np.ndarray], title: str, size: tuple[float, float] = SIZE) -> Figure:
    """The pNTK eigenvalues of trials (number → eigenvalues, any order), largest first, on a log
    scale; non-positive ones (round-off of a singular kernel) are left out. ``size`` in inches
    at ``DPI``. Needs matplotlib."""
    figure, ax = _axes(title, size)
    for number, values in spectra.items():
        descending = np.sort(values)[::-1]
        positive = descending > 0
        rank = np.arange(1, len(values) + 1)
        kappa = descending[0] / descending[-1] if descending[-1] > 0 else math.inf
        ax.plot(rank[positive], descending[positive], marker=".", label=f"trial {number} (κ = {kappa:.3g})")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue index (largest first)")
    ax.set_ylabel("eigenvalue")
    ax.legend(fontsize=8)
    return figure


def _verified(rows: list[dict], objective: str, higher: bool) -> Figure:
    score = np.array([r[objective] for r in rows], dtype=float)
    acc = np.array([r["verified_test_acc"] for r in rows], dtype=float)
    epochs = sorted({r.get("verified_epochs") for r in rows})
    tau = tau_with_accuracy(score, acc, higher)
    figure, ax = _axes(
        f"Verified test accuracy vs. {objective} ({len(rows)} picks, "
        f"{'/'.join(map(str, epochs))} epochs; Kendall τ = {'n/a' if math.isnan(tau) else f'{tau:+.2f}'})"
    )
    ax.scatter(score, acc, s=36, color="tab:green")
    ax.margins(0.15)
    for r, x, y in zip(rows, score, acc, strict=True):
        ax.annotate(f"trial {r['trial']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    _score_axis(ax, score, objective, higher, "x")
    ax.set_ylabel("verified test accuracy (%)")
    return figure


def _axes(title: str, size: tuple[float, float] = SIZE) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(True, alpha=0.3)
    return figure, ax


def _score_axis(ax: Axes, score: np.ndarray, objective: str, higher: bool, axis: str) -> None:
    """Label the score axis, log-scaled when the scores are positive and span decades."""
    getattr(ax, f"set_{axis}label")(f"{objective} ({direction_words(higher)})")
    if score.min() > 0 and score.max() / score.min() > 100:
        getattr(ax, f"set_{axis}scale")("log")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
