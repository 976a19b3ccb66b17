"""mkdocs hook: the command-line reference of docs/cli.md, rendered from the typer app itself.

Each ``<!-- cli: NAME -->`` line of cli.md becomes the heading, usage line, help text and option
table of ``ntknas NAME``, read from ``typer.main.get_command(ntknas.cli.app)``: the same objects
``--help`` prints, so the page cannot drift from the program. ``<!-- cli: commands -->`` becomes the
list of every command. A command of the app without its marker, or a marker that names no command,
stops the build.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

PAGE = "cli.md"
MARKER = re.compile(r"^<!-- cli: ([a-z_-]+) -->$", flags=re.M)
COMMANDS = "commands"


def on_config(config):
    """Make the checkout importable, for a build from a checkout that is not installed."""
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    return render(markdown)


def render(markdown: str) -> str:
    """``markdown`` with each marker replaced; raises PluginError on a missing or unknown one."""
    import typer.main

    from ntknas.cli import app

    root = typer.main.get_command(app)
    context = root.context_class(root, info_name="ntknas")
    commands = {name: c for name, c in root.commands.items() if not c.hidden}
    named = MARKER.findall(markdown)
    unknown = sorted(set(named) - {*commands, COMMANDS})
    missing = sorted(set(commands) - set(named))
    repeated = sorted({n for n in named if named.count(n) > 1})
    if unknown or missing or repeated:
        raise PluginError(
            f"{PAGE}: markers for unknown commands {unknown}, commands without a marker {missing}, "
            f"repeated markers {repeated}: write one '<!-- cli: NAME -->' line per command"
        )

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name == COMMANDS:
            return command_list(root, commands)
        return command_section(name, commands[name], context)

    return MARKER.sub(replace, markdown)


def command_list(root, commands: dict) -> str:
    rows = [
        f"| [`ntknas {name}`](#{name}) | {cell(c.get_short_help_str(limit=200))} |"
        for name, c in commands.items()
    ]
    return "\n".join([cell(root.help or ""), "", "| command | what it does |", "|---|---|", *rows])


def command_section(name: str, command, parent) -> str:
    context = command.context_class(command, info_name=name, parent=parent)
    usage = command.get_usage(context).removeprefix("Usage:").strip()
    rows = []
    for param in command.get_params(context):
        record = param.get_help_record(context)
        if record is None or "--help" in param.opts:
            continue
        declaration, text = record
        rows.append(f"| `{declaration}` | {cell(text)} |")
    table = ["| option | description |", "|---|---|", *rows] if rows else ["No options."]
    return "\n".join(
        [
            f"## `ntknas {name}` {{#{name}}}",
            "",
            f"```\n{usage}\n```",
            "",
            unescape(command.help or ""),
            "",
            *table,
        ]
    )


def unescape(text: str) -> str:
    """Help text as markdown: rich's escaped ``\\[`` back to ``[``."""
    return text.replace("\\[", "[")


def cell(text: str) -> str:
    """``text`` on one line of a markdown table."""
    return " ".join(unescape(text).split()).replace("|", "\\|")
