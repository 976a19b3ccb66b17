"""The ``ntknas`` command line: one module per command.

Each module imports torch (and the other heavy libraries) inside its command, so that ``--help``,
``spaces``, ``studies`` and ``results`` start without it.
"""

from __future__ import annotations

import optuna
import typer

from ntknas.cli import benchmark, dashboard, export, plot, results, score, search, spaces, studies, verify

app = typer.Typer(
    help="Training-free neural architecture search with the pseudo neural tangent kernel (pNTK).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
for name, module in (
    ("search", search),
    ("results", results),
    ("verify", verify),
    ("plot", plot),
    ("export", export),
    ("dashboard", dashboard),
    ("studies", studies),
    ("spaces", spaces),
    ("score", score),
    ("benchmark", benchmark),
):
    app.command(name)(module.command)


def main() -> None:
    """Entry point of the ``ntknas`` console script."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # Optuna's per-trial INFO lines; warnings still show
    app()
