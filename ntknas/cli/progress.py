"""Long work that shows itself: a live bar in a terminal, and in a log or a pipe (where rich draws
nothing until the end) a plain line per running task once it has run ``FIRST_LINE_SECONDS``, then
every ``LOG_SECONDS``. Every command's progress goes through :func:`progress_bar` or :func:`phase`.
Importable without torch, Optuna or numpy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ntknas.core.terminal import PlainColumn

# A log's first line on a task, then the time between its lines: under the 30 s a command may
# stay silent. A shorter task (opening a study, loading data) leaves the log alone, so that an
# error right after it is the only line on stderr, as a terminal (where the bar is erased) shows it.
FIRST_LINE_SECONDS = 20.0
LOG_SECONDS = 20.0
LAST_LINE: list[float] = []  # when this process last wrote a progress line (time.monotonic())


class LoggedProgress(Progress):
    """rich's Progress that, on a console that is not a terminal, also prints one line per
    unfinished task after ``FIRST_LINE_SECONDS``, then every ``LOG_SECONDS`` (from a thread)."""

    def __init__(self, *columns, **kwargs) -> None:
        super().__init__(*columns, **kwargs)
        self._stopped = threading.Event()
        self._logger: threading.Thread | None = None

    @property
    def logs(self) -> bool:
        """Whether this progress writes lines (its console is not a terminal)."""
        return not self.console.is_terminal

    def start(self) -> None:
        super().start()
        if self.logs and self._logger is None:
            self._stopped.clear()
            self._logger = threading.Thread(target=self._log_every, name="ntknas-progress", daemon=True)
            self._logger.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._logger is not None:
            self._logger.join()
            self._logger = None
        super().stop()

    def write_line(self, task: Task) -> None:
        """Print ``task``'s state as one plain line: what, how far, time taken, its note."""
        done = f"{task.completed:g}/{task.total:g}" if task.total is not None else "working"
        note = task.fields.get("note", "")
        line = f"{task.description}: {done}, {_duration(task.elapsed or 0.0)}{f' · {note}' if note else ''}"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        LAST_LINE[:] = [time.monotonic()]

    def _log_every(self) -> None:
        wait = first_wait(time.monotonic())
        while not self._stopped.wait(wait):
            for task in self.tasks:
                if not task.finished:
                    self.write_line(task)
            wait = LOG_SECONDS


def first_wait(now: float) -> float:
    """Seconds before a new bar's first log line: ``FIRST_LINE_SECONDS``, less when another bar
    wrote a line within the last ``LOG_SECONDS``, so that the log keeps its pace (a line every
    ``LOG_SECONDS``) from one bar to the next (at least a second, unless the first line comes
    sooner)."""
    if not LAST_LINE or now - LAST_LINE[-1] >= LOG_SECONDS:  # none lately: a short phase stays quiet
        return FIRST_LINE_SECONDS
    return max(min(1.0, FIRST_LINE_SECONDS), min(FIRST_LINE_SECONDS, LOG_SECONDS - (now - LAST_LINE[-1])))


def _duration(seconds: float) -> str:
    """``seconds`` as ``1m05s`` (or ``42s``)."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_bar(console: Console, transient: bool = False) -> LoggedProgress:
    """A progress bar: description, bar, done/total, elapsed, ETA and a free-text field ``note``;
    a ``transient`` one draws nothing but its log lines when the console is not a terminal."""
    return LoggedProgress(
        PlainColumn("{task.description}", style="bold"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        PlainColumn("{task.fields[note]}"),
        console=console,
        transient=transient,
        disable=transient and not console.is_terminal,  # else it leaves an empty line in a log
    )


@contextmanager
def phase(what: str, console: Console) -> Iterator[Callable[[int, int | None], None]]:
    """Show ``what`` is being done while the block runs (a transient bar, or log lines); yields
    ``step(done, total)`` to report how far it got (``total`` None while unknown)."""
    with progress_bar(console, transient=True) as bar:
        task = bar.add_task(what, total=None, note="")
        yield lambda done, total: bar.update(task, completed=done, total=total)
