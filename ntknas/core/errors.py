"""What a user can fix: errors the command line prints on one line with no traceback, and warnings
about input that was skipped."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from search_spaces.guard import first_line  # one reading of any error's message, a plugin's too

__all__ = ["CandidateFailed", "InputWarning", "UserError", "first_line", "input_warnings_to"]


class UserError(Exception):
    """Bad input, described in one line that names the problem and the fix."""


class InputWarning(UserWarning):
    """Input that ntknas skipped (e.g. a special file in an image folder), described in one line."""


class CandidateFailed(Exception):
    """A candidate could not be built or scored; the message is the reason stored on its trial."""


@contextmanager
def input_warnings_to(show: Callable[[str], None]) -> Iterator[None]:
    """Within the block, hand each InputWarning's one-line message to ``show`` (e.g. a console's
    ``warning: ...`` line) instead of Python's two-line display; other warnings show as usual."""
    with warnings.catch_warnings():
        previous = warnings.showwarning

        def route(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, InputWarning):
                show(str(message))
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = route
        warnings.simplefilter("always", InputWarning)
        yield
