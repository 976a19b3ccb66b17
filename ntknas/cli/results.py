"""``ntknas results``: a study's candidates as a table, CSV or JSON."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ntknas.cli.common import WIDE, StorageOpt, StudyArg, check_choice, out, user_errors, warn, write_out
from ntknas.core.checks import check_positive_int
from ntknas.core.terminal import for_stream
from ntknas.outputs import tables

FORMATS = ("table", "csv", "json")


def command(
    study: StudyArg = None,
    top: Annotated[
        int | None,
        typer.Option(
            help="Rows shown \\[default: 10 in a table, every candidate in CSV and JSON].", show_default=False
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="Column to sort by \\[default: the study's objective].", show_default=False),
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    storage: StorageOpt = None,
) -> None:
    """Show a study's candidates, best first, as a table, CSV or JSON.

    One row per distinct configuration, with how many later trials reused its values.
    """
    from ntknas.study import records
    from ntknas.study.settings import Settings
    from ntknas.study.studies import load_study

    with user_errors(storage):
        check_choice("--format", output, FORMATS)
        if top is not None:
            check_positive_int("--top", top)
        loaded = load_study(study, storage)
        settings = Settings.load(loaded)
        every = records.rows(loaded)
        by = sort or settings.objective
        directions = {**records.column_directions(), **settings.directions_by_column()}
        rows = records.sort_rows(every, by, directions)
        if not every:
            warn(f"study '{loaded.study_name}' has no scored candidate: {records.why_no_rows(loaded)}")
        elif (hidden := records.unshown(loaded)) is not None:
            warn(f"not shown: {hidden}")
        if top is not None or output == "table":
            rows = rows[: top or 10]
    compact = output == "table" and out.width < WIDE
    columns = tables.columns_for(settings.objective, compact, verified=tables.has_verified(every))
    if output == "csv":
        write_out(for_stream(tables.to_csv(rows, columns), sys.stdout))
    elif output == "json":
        write_out(tables.to_json(rows, columns) + "\n")
    else:
        budget = f"; budget {settings.budget.describe()}" if settings.budget else ""
        title = (
            f"Top {len(rows)} of {len(every)} in study '{loaded.study_name}' by {by} "
            f"({tables.direction_note(by, directions[by])}{budget})"
        )
        out.print(tables.render(rows, columns, title))
