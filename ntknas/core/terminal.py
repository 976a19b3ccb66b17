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


class Terminal(Console):
    """A rich console that renders every string verbatim (see the module's docstring)."""

    def __init__(self, **options) -> None:
        super().__init__(markup=False, emoji=False, **options)

    def render_str(self, text: str, **options) -> Text:
        """The one way a string becomes rich text: never markup, never emoji, made visible."""
        return super().render_str(visible(text), **{**options, "markup": False, "emoji": False})


class PlainColumn(TextColumn):
    """A progress bar's text column whose fields (a study or space name, a note) stay text."""

    def render(self, task: Task) -> Text:
        return Text(visible(self.text_format.format(task=task)), style=self.style)
