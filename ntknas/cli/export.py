"""``ntknas export``: a study's pick as files to train or deploy it without ntknas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ntknas.cli.common import INTERRUPTED, DataRootOpt, StorageOpt, StudyArg, err, out, user_errors, warn
from ntknas.outputs import tables


def command(
    out_dir: Annotated[
        Path, typer.Option("--out", help="New folder to write (absent or empty: nothing is overwritten).")
    ],
    study: StudyArg = None,
    trial: Annotated[
        int | None,
        typer.Option(help="Trial number \\[default: the best by the study's objective].", show_default=False),
    ] = None,
    data_root: DataRootOpt = None,
    storage: StorageOpt = None,
) -> None:
    """Export a study's pick: its configuration, weights and a torch.export program.

    The folder gets config.json (configuration, settings, scores, size, verified results),
    weights.pt (a state_dict: the weights the search initialised the network with, or the trained
    ones once `ntknas verify` trained it), model.pt2 (the network in eval mode, for
    torch.export.load) and README.md (how to load each). It is written whole or not at all.
    """
    from ntknas.core.staging import check_new_folder
    from ntknas.outputs import export
    from ntknas.outputs.export_docs import PROGRAM, WEIGHTS, contents
    from ntknas.study.studies import load_study

    with user_errors(storage):
        check_new_folder(out_dir)
        loaded = load_study(study, storage)
        try:
            done = export.export(loaded, trial, out_dir, data_root=data_root)
        except KeyboardInterrupt:
            err.print(f"interrupted: nothing was written to {out_dir}")
            raise typer.Exit(INTERRUPTED) from None
    record = done.record
    if done.program_error is not None:
        warn(f"no {PROGRAM}: torch.export could not trace this network ({done.program_error})")
    if record["verified"] and done.weights == export.INITIAL:
        warn(f"{WEIGHTS} holds the initial weights: {record['weights']['note']}")
    out.print(
        f"Exported trial {record['trial']} of study '{record['study']}' ({record['config']}) to {out_dir}:",
        highlight=False,
        soft_wrap=True,
    )
    out.print(tables.listing("", ("file", "what"), contents(record)))
