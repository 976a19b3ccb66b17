"""Rows of results (:mod:`ntknas.study.records`) as a rich table, CSV or JSON: one format per column.

Integer columns (trial numbers, parameter and FLOP counts, epochs, reuses) are integers in every
output (in tables with thousands separators); the others are floats, at full precision in CSV and
JSON and to 4 significant digits in tables, a column in scientific notation throughout when any of
its values needs it. JSON is strict: non-finite numbers become ``null``.
Importable without torch or Optuna.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping

from rich.table import Table

from ntknas.core import jsonout
from ntknas.scoring.registry import METRICS, SPECTRUM, direction_words
from ntknas.study.records import SECONDS, VERIFIED
from search_spaces.base import clipped

MEASURES = ("params", "flops", SECONDS)
# Characters of a configuration that a table shows (a plugin's may run to pages; CSV and JSON
# keep it whole).
CONFIG_SHOWN = 300
INTEGER_COLUMNS = frozenset({"trial", "params", "flops", "verified_epochs", "reuses", "batch_size"})


def columns_for(objective: str, compact: bool = False, verified: bool = False) -> list[str]:
    """Columns in display order: the objective, the spectrum scores, the measures (params, FLOPs,
    seconds), reuses, and with ``verified`` the verification results. ``compact`` (a narrow
    terminal) keeps the objective, params, reuses and the verified test accuracy."""
    if compact:
        shown = [objective, "params", "reuses", *(["verified_test_acc"] if verified else [])]
    else:
        shown = [objective, *SPECTRUM, *MEASURES, "reuses", *(VERIFIED if verified else [])]
    return list(dict.fromkeys(["trial", "config", *shown]))  # each once, the objective first


def has_verified(rows: list[dict[str, object]]) -> bool:
    """Whether any row carries a verification result."""
    return any("verified_test_acc" in row for row in rows)


def typed(column: str, value: object) -> object:
    """``value`` in its column's type: integer columns as int, other numbers as float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if column in INTEGER_COLUMNS and math.isfinite(value) and value == int(value):
        return int(value)
    return float(value)


def cell(column: str, value: object, spec: str = ".4g") -> str:
    """A table cell: integers with thousands separators, floats formatted by ``spec`` (see
    :func:`float_spec`)."""
    value = typed(column, value)
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:{spec}}"
    return str(value)


def float_spec(column: str, values: Iterable[object]) -> str:
    """The format of a column's floats in a table: 4 significant digits, in scientific notation
    for all of them when any needs it (``1.604e+06`` beside ``5.243e+02``, not ``524.3``)."""
    floats = [v for v in (typed(column, v) for v in values) if isinstance(v, float) and math.isfinite(v)]
    return ".3e" if any("e" in f"{v:.4g}" for v in floats) else ".4g"


def render(
    rows: list[dict[str, object]], columns: list[str], title: str, headers: Mapping[str, str] | None = None
) -> Table:
    """A rich table of ``rows``; ``headers`` shows some columns under another name. A configuration
    longer than ``CONFIG_SHOWN`` characters is cut there, with an ellipsis."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        header = (headers or {}).get(column, column)
        if column == "config":
            table.add_column(header, overflow="fold")
        else:  # numbers and their headers are never broken; the configuration folds instead
            table.add_column(header, justify="right", no_wrap=True)
    specs = {c: float_spec(c, (row.get(c) for row in rows)) for c in columns}
    for row in rows:
        cells = {c: cell(c, row.get(c), specs[c]) for c in columns}
        if "config" in cells:
            cells["config"] = clipped(cells["config"], CONFIG_SHOWN)
        table.add_row(*cells.values())
    return table


# The verified columns' headers in verify's table, short enough to leave the configuration room in
# a 100-column terminal.
VERIFIED_HEADERS = {
    "verified_test_acc": "test acc %",
    "verified_train_acc": "train acc %",
    "verified_epochs": "epochs",
    "verified_seconds": "seconds",
}


def verified_table(rows: list[dict[str, object]], objective: str, title: str) -> Table:
    """verify's results: each pick's trial, configuration, ``objective`` and verified columns, in
    the order of ``rows``."""
    return render(rows, ["trial", "config", objective, *VERIFIED], title, VERIFIED_HEADERS)


def key_values(title: str, values: dict[str, object]) -> Table:
    """A two-column table of named values (one network's scores, say)."""
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in values.items():
        table.add_row(key, cell(key, value))
    return table


def listing(title: str, columns: Iterable[str], rows: Iterable[Iterable[object]]) -> Table:
    """A plain table: ``columns`` headers and rows of already formatted cells."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(c) for c in row))
    return table


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless ``count`` is 1: ``1 more proposal``, ``3 more proposals``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def direction_note(column: str, higher_is_better: bool) -> str:
    """``"ntk_score: higher is better"``."""
    return f"{column}: {direction_words(higher_is_better)}"


def to_csv(rows: list[dict[str, object]], columns: list[str]) -> str:
    """CSV with a header line; integer columns as integers, non-finite numbers as ``inf``/``nan``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: typed(c, row.get(c)) for c in columns} for row in rows)
    return buffer.getvalue()


def to_json(rows: list[dict[str, object]], columns: list[str]) -> str:
    """A JSON list of objects, integer columns as integers; strict JSON (non-finite → null)."""
    return jsonout.dumps([{c: typed(c, row.get(c)) for c in columns} for row in rows], indent=2)


def benchmark_table(report: dict) -> Table:
    """The ranking table of ``ntknas benchmark``'s report (``ntknas.run.benchmark.report``)."""
    if "scored" in report:
        title = f"Ranking quality on {report['n']} architectures (scores read from {report['scored']})"
    else:
        title = (
            f"Ranking quality on {report['n']} architectures (N={report['batch_size']}, "
            f"{report['image_size']} px, bn={report['bn']}, "
            f"{report['repeats']} repeat(s), {report['seconds_per_architecture']:.2f} s per architecture)"
        )
    table = Table(title=title, title_justify="left")
    for column in ("score", "orientation", "Kendall τ", "Spearman ρ"):
        table.add_column(column, justify="left" if column in ("score", "orientation") else "right")

    def tau(item: tuple[str, dict]) -> float:
        value = item[1]["kendall_tau"]
        return -2.0 if value is None or math.isnan(value) else value

    for name, row in sorted(report["scores"].items(), key=tau, reverse=True):
        marker = " (default)" if name == report["default_score"] else ""
        orientation = "higher is better" if METRICS[name].higher_is_better else "negated: lower is better"
        cells = [
            "n/a" if row[k] is None or math.isnan(row[k]) else f"{row[k]:+.3f}"
            for k in ("kendall_tau", "spearman_rho")
        ]
        table.add_row(name + marker, orientation, *cells)
    return table


def search_line(report: dict) -> str:
    """One line on ``ntknas benchmark --search``'s simulated searches."""
    s = report["search"]
    within = ""
    if "budget" in s:
        within = (
            f" within the budget {s['budget']} ({s['within_budget']:,} architectures qualify; the best "
            f"of them reaches {s['budget_optimum_acc']:.2f} %)"
        )
    return (
        f"Search: best of {s['k']} random architectures{within} by {s['score']}, "
        f"{s['runs']} runs: {s['mean_acc']:.2f} ± {s['std_acc']:.2f} % (random pick "
        f"{s['random_mean_acc']:.2f} %, best of the draw {s['optimum_mean_acc']:.2f} %)"
    )
