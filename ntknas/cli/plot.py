"""``ntknas plot``: a study as PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ntknas.cli.common import (
    DataRootOpt,
    DeviceOpt,
    StorageOpt,
    StudyArg,
    err,
    out,
    resolve_device,
    user_errors,
)
from ntknas.cli.progress import phase
from ntknas.core import defaults
from ntknas.core.checks import check_positive_int


def command(
    study: StudyArg = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder the PNG files go to.")] = defaults.PLOTS,
    top: Annotated[int, typer.Option(help="Top picks whose pNTK eigenspectrum is drawn.")] = 5,
    data_root: DataRootOpt = None,
    device: DeviceOpt = "auto",
    storage: StorageOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace files in --out named like a plot that ntknas did not draw \\[default: False].",
            show_default=False,
        ),
    ] = False,
) -> None:
    """Draw a study as PNG files.

    Score vs. parameters (Pareto front and budget marked), the search history, the eigenspectra
    of the top picks and, once verified, score vs. verified accuracy.

    The eigenspectra are recomputed from the study's settings (its data, batch size, BatchNorm
    mode and seed); --data-root is needed when the study searched --data cifar10. A file in --out
    named like a plot that ntknas did not draw (a picture of your own, a link) is left alone: the
    command stops, unless --force.
    """
    from ntknas.outputs import plots
    from ntknas.study import rebuild, records
    from ntknas.study.settings import Settings
    from ntknas.study.studies import load_study

    with user_errors(storage):
        check_positive_int("--top", top)
        plots.require_matplotlib()
        plots.check_out(out_dir, force)
        dev = resolve_device(device)
        loaded = load_study(study, storage)
        settings = Settings.load(loaded)
        rows = records.rows(loaded)
        picks = records.ranked(rows, settings)[:top]
        configs = [str(r["config"]) for r in picks]
        with phase(f"recomputing the pNTK of the top {len(picks)} picks for their eigenspectra", err) as step:
            values = rebuild.eigenvalues(
                settings, configs, study=loaded.study_name, data_root=data_root, device=dev, step=step
            )
        spectra = {int(r["trial"]): v for r, v in zip(picks, values, strict=True)}
        paths = plots.write_all(loaded.study_name, settings, rows, out_dir, spectra, force)
    for path in paths:
        out.print(f"wrote {path}", highlight=False)
