"""The consoles every command prints through: a string reaches the terminal as the text it is.

Study names, configurations, paths and a plugin's descriptions come from storage, users and
third-party code; rich would read ``[bold]`` or ``[/x]`` in them as markup (styling them, or
failing) and ``:smile:`` as an emoji. :class:`Terminal` never does either, for every string it
renders (printed, a table's cell or title), and shows control characters (escape sequences,
newlines, bidirectional overrides) as escapes such as ``\\x1b``, so that nothing printed can
restyle the terminal or fake another line. Styling is given as rich ``Text`` objects instead.
Importable without torch, Optuna or numpy.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import Task, TextColumn
from rich.text import Text


def visible(text: str) -> str:
    """``text`` with each non-printable character (control characters, line breaks, format
    characters such as bidirectional overrides) written as its Python escape, e.g. ``\\n``."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def for_stream(text: str, stream: object) -> str:
    """``text`` (lines of CSV, say) as written to ``stream``: as it is, unless ``stream`` is a
    terminal, where each line is made :func:`visible` (a stored escape sequence would otherwise
    act on the terminal: clear it, recolour it, retitle it)."""
    isatty = getattr(stream, "isatty", None)
    if not (callable(isatty) and isatty()):
        return text
    return "".join(visible(line.rstrip("\r\n")) + "\n" for line in text.splitlines(keepends=True))


class OutputClosed(Exception):
    """The reader of the command's output went away (``ntknas results | head``): what is left to
    print goes nowhere, and the command ends with exit code 141 (128 + SIGPIPE), as a Unix tool
    the pipe stopped does."""


def standard_streams() -> None:
    """Give Python a standard stream it started without (``ntknas ... >&-`` closes one, and
    ``sys.stdout`` is then None): one that reads or writes nothing."""
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode))  # kept open for the life of the process


def closed_output(stream: object) -> OutputClosed:
    """After a write to ``stream`` found its reader gone: the rest of the output goes to nothing
    (so that the final flush cannot fail again), and the exception that ends the command."""
    fileno = getattr(stream, "fileno", None)
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), fileno())
    except (OSError, ValueError, TypeError):  # a stream without a file (captured, in a test)
        pass
    return OutputClosed("the output's reader closed it")


def _stderr() -> object:
    """``sys.stderr`` as it is now (a test may replace it), seen through the proxy a live progress
    display puts in its place (which would send a line back to the console that writes it)."""
    return getattr(sys.stderr, "rich_proxied_file", sys.stderr)


class _Stderr:
    """:func:`_stderr`, whose writes never fail: a warning or an error line that cannot be shown
    (``2>/dev/full``, a closed pipe) is dropped, and the command goes on, or ends with its own exit
    code."""

    def write(self, text: str) -> int:
        try:
            return _stderr().write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            _stderr().flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str):
        if name == "rich_proxied_file":  # this is no proxy: rich is to write through it
            raise AttributeError(name)
        return getattr(_stderr(), name)


class Terminal(Console):
    """A rich console that renders every string verbatim (see the module's docstring). On stderr,
    a write that fails is dropped; on stdout, one whose reader went away raises
    :class:`OutputClosed`."""

    def __init__(self, *, stderr: bool = False, **options) -> None:
        if stderr:
            options.setdefault("file", _Stderr())
        super().__init__(markup=False, emoji=False, **options)

    def on_broken_pipe(self) -> None:
        """rich's hook for a write whose reader went away."""
        raise closed_output(self.file)

    def render_str(self, text: str, **options) -> Text:
        """The one way a string becomes rich text: never markup, never emoji, made visible."""
        return super().render_str(visible(text), **{**options, "markup": False, "emoji": False})


class PlainColumn(TextColumn):
    """A progress bar's text column whose fields (a study or space name, a note) stay text."""

    def render(self, task: Task) -> Text:
        return Text(visible(self.text_format.format(task=task)), style=self.style)
