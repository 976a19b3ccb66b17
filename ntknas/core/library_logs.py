"""What the libraries a command uses log (SQLAlchemy's connection pool, torch, a plugin's own
logger): one warning line each on stderr, never a traceback.

Without a handler, Python prints a logged exception with its whole traceback. SQLAlchemy logs one
whenever a stop (Ctrl-C, SIGTERM) lands while it closes a connection, and re-raises: the command
already says what stopped, so such records are dropped, as are all records once ``quiet()`` holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ntknas.core.errors import first_line
from search_spaces.base import clipped


class OneLine(logging.Handler):
    """Write each WARNING-or-worse record as ``warning: <logger>: <message>[: <error>]``."""

    def __init__(self, write: Callable[[str], None], quiet: Callable[[], bool]) -> None:
        super().__init__(logging.WARNING)
        self.write = write
        self.quiet = quiet

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, KeyboardInterrupt) or self.quiet():
            return
        try:
            text = clipped((record.getMessage().strip().splitlines() or [""])[0])
            if error is not None:
                text += f": {type(error).__name__}: {first_line(error)}"
            self.write(f"{record.name}: {text}")
        except Exception:  # a record that cannot be shown (a bad format, stderr gone) is dropped
            return


def one_line_each(write: Callable[[str], None], quiet: Callable[[], bool] = lambda: False) -> None:
    """Route every record that reaches the root logger through :class:`OneLine` (``write`` gets
    the line without its ``warning:`` prefix); call once per process, at its start."""
    logging.root.addHandler(OneLine(write, quiet))
