"""A study's results as rows, and those rows as a rich table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math

import optuna
from rich.table import Table

from ntknas.errors import UserError
from ntknas.metrics import SPECTRUM
from ntknas.search import OBJECTIVES, completed_trials

MEASURES = ("params", "flops", "seconds")
# What `ntknas verify` stores on a trial: accuracies in %, epochs trained, training seconds.
VERIFIED = {
    "verified_test_acc": "maximize",
    "verified_train_acc": "maximize",
    "verified_epochs": "maximize",
    "verified_seconds": "minimize",
}
# Which way each sortable column is better (params and FLOPs: smaller first); ``trial`` by number.
ORDER = {**OBJECTIVES, **dict.fromkeys(MEASURES, "minimize"), **VERIFIED, "trial": "minimize"}


def trial_rows(study: optuna.Study) -> list[dict[str, object]]:
    """One row per completed trial: trial number, configuration, every stored metric."""
    rows = []
    for t in completed_trials(study):
        row: dict[str, object] = {"trial": t.number, "config": t.user_attrs.get("config", "")}
        for key in ORDER:
            if key in t.user_attrs:
                row[key] = t.user_attrs[key]
        rows.append(row)
    return rows


def columns_for(objective: str, compact: bool = False, verified: bool = False) -> list[str]:
    """Columns in display order: the objective, then (unless ``compact``) the spectrum scores,
    the measures, and with ``verified`` the verification results (only the test accuracy when
    ``compact``)."""
    others = [] if compact else [s for s in SPECTRUM if s != objective]
    checked = [] if not verified else ["verified_test_acc"] if compact else list(VERIFIED)
    return ["trial", "config", objective, *others, *MEASURES, *checked]


def has_verified(rows: list[dict[str, object]]) -> bool:
    """Whether any row carries a verification result."""
    return any("verified_test_acc" in row for row in rows)


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
