"""A study's results as rows, and those rows as a rich table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math

import optuna
from rich.table import Table

from ntknas.errors import UserError
from ntknas.search import OBJECTIVES, completed_trials

MEASURES = ("params", "flops", "seconds")
# Which way each sortable column is better; ``trial`` sorts by number.
ORDER = {**OBJECTIVES, **dict.fromkeys(MEASURES, "minimize"), "trial": "minimize"}


def trial_rows(study: optuna.Study) -> list[dict[str, object]]:
    """One row per completed trial: trial number, configuration, scores and measures."""
    rows = []
    for t in completed_trials(study):
        row: dict[str, object] = {"trial": t.number, "config": t.user_attrs.get("config", "")}
        for key in (*OBJECTIVES, *MEASURES):
            row[key] = t.user_attrs.get(key)
        rows.append(row)
    return rows


def columns_for(objective: str, compact: bool = False) -> list[str]:
    """Columns in display order: the objective first among the scores; only it when ``compact``."""
    scores = [objective] if compact else [objective, *(s for s in OBJECTIVES if s != objective)]
    return ["trial", "config", *scores, *MEASURES]


def sort_rows(rows: list[dict[str, object]], by: str) -> list[dict[str, object]]:
    """Rows best first by column ``by``; missing and NaN values last."""
    if by not in ORDER:
        raise UserError(f"cannot sort by {by!r}; choose one of: {', '.join(ORDER)}")
    sign = 1 if ORDER[by] == "minimize" else -1

    def key(row: dict[str, object]) -> tuple[int, float]:
        value = row.get(by)
        if not isinstance(value, int | float) or math.isnan(value):
            return 1, 0.0
        return 0, sign * value

    return sorted(rows, key=key)


def _cell(column: str, value: object) -> str:
    if value is None:
        return ""
    if column == "params":
        return f"{value / 1e6:.3f}M"
    if column == "flops":
        return f"{value / 1e6:.1f}M"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(rows: list[dict[str, object]], columns: list[str], title: str) -> Table:
    """A rich table of ``rows``."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column == "config" else "right", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(c, row.get(c)) for c in columns))
    return table


def to_csv(rows: list[dict[str, object]], columns: list[str]) -> str:
    """CSV with a header line; non-finite numbers as ``inf``/``nan``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_json(rows: list[dict[str, object]], columns: list[str]) -> str:
    """A JSON list of objects; non-finite numbers become null (strict JSON)."""

    def clean(value: object) -> object:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return json.dumps([{c: clean(row.get(c)) for c in columns} for row in rows], indent=2)
