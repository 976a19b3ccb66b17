"""Every command's --help, rendered as a user sees it: each option's help text whole (nothing in
brackets eaten as markup), every default shown, docstring paragraphs unwrapped."""

import inspect
import re

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from ntknas.cli import app

WIDE = {"COLUMNS": "400"}  # wide enough that no paragraph or option row needs wrapping
COMMANDS = list(typer.main.get_command(app).commands)


def rendered(text: str) -> str:
    """``text`` as markdown help renders it: escaped brackets plain, code spans without backticks,
    whitespace collapsed."""
    return " ".join(text.replace("\\[", "[").replace("`", "").split())


def help_of(application: typer.Typer, *argv: str) -> str:
    result = CliRunner().invoke(application, [*argv, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def panels(output: str) -> str:
    """The text of the Arguments, Options and Commands panels, borders dropped, on one line."""
    return " ".join(
        " ".join(line.strip("│ ") for line in output.splitlines() if line.startswith("│")).split()
    )


def option_problems(application: typer.Typer, name: str) -> list[str]:
    """What is wrong with the options of command ``name`` in its --help: a help text not shown
    whole, a default not shown, a required option not marked."""
    command = typer.main.get_command(application).commands[name]
    params = sorted((p for p in command.params if p.name != "help"), key=lambda p: p.opts[0].startswith("--"))
    if not params:
        return []
    text = panels(help_of(application, name))
    # Each parameter's row runs from its name and type to the next one's (arguments come first).
    starts = []
    for p in params:
        label = p.opts[0] if p.opts[0].startswith("--") else p.name
        found = re.compile(rf"(?<![\w-]){re.escape(label)} <\w+>").search(text, starts[-1] if starts else 0)
        if not found:
            return [f"{label} missing"]
        starts.append(found.start())
    problems = []
    for p, start, end in zip(params, starts, [*starts[1:], len(text)], strict=True):
        row, label = text[start:end], p.opts[0]
        if rendered(p.help) not in row:
            problems.append(f"{label}: help shown as {row!r}")
        if p.required and "[required]" not in row:
            problems.append(f"{label}: not marked required")
        if not p.required and p.default is not None and f"[default: {p.default}]" not in row:
            problems.append(f"{label}: default {p.default!r} not shown")
        if p.default is None and p.show_default is False and "[default: " not in rendered(p.help):
            problems.append(f"{label}: hides its default without saying it")
    return problems


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_shows_its_whole_help_and_its_default(name):
    assert option_problems(app, name) == []


@pytest.mark.parametrize("name", COMMANDS)
def test_docstring_paragraphs_are_shown_whole_and_unwrapped(name):
    lines = {line.strip() for line in help_of(app, name).splitlines()}
    docstring = typer.main.get_command(app).commands[name].help
    for paragraph in inspect.cleandoc(docstring).split("\n\n"):
        assert rendered(paragraph) in lines, f"ntknas {name} --help breaks or alters: {paragraph!r}"


@pytest.mark.parametrize("argv", [[], *([name] for name in COMMANDS)])
def test_help_has_no_type_label(argv):
    line = " ".join(next(row for row in help_of(app, *argv).splitlines() if "--help" in row).split())
    assert line == "│ --help Show this message and exit. │"


def test_main_help_lists_every_command_with_its_summary():
    text = panels(help_of(app))
    for name, command in typer.main.get_command(app).commands.items():
        assert f"{name} {rendered(command.help.splitlines()[0])}" in text


def test_option_problems_finds_eaten_brackets_and_hidden_defaults():
    """Rich markup eats "[the study's]"; a default shown nowhere is reported."""
    probe = typer.Typer(rich_markup_mode="rich")

    @probe.command()
    def show(
        sort: str = typer.Option(None, help="Column [default: the study's].", show_default=False),
        top: int = typer.Option(3, help="Rows.", show_default=False),
        seed: int = typer.Option(None, help="Seed.", show_default=False),
    ) -> None:
        """Probe."""

    @probe.command()
    def other() -> None:
        """Another, so that ``show`` stays a subcommand."""

    assert option_problems(probe, "show") == [
        "--sort: help shown as '--sort <str> Column . '",
        "--top: default 3 not shown",
        "--seed: hides its default without saying it",
    ]
