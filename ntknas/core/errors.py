"""What a user can fix: errors the command line prints on one line with no traceback, and warnings
about input that was skipped."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from search_spaces.guard import first_line  # one reading of any error's message, a plugin's too

__all__ = ["CandidateFailed", "InputWarning", "UserError", "first_line", "memory_problem", "warnings_to"]


class UserError(Exception):
    """Bad input, described in one line that names the problem and the fix."""


class InputWarning(UserWarning):
    """Input that ntknas skipped (e.g. a special file in an image folder), described in one line."""


class CandidateFailed(Exception):
    """A candidate could not be built or scored; the message is the reason stored on its trial."""


@contextmanager
def warnings_to(show: Callable[[str], None]) -> Iterator[None]:
    """Within the block, hand every warning to ``show`` as one line (e.g. a console's ``warning:
    ...`` line) instead of Python's display of the file, line and source: an InputWarning's
    message, each time it is raised; any other (torch's, a plugin's, the scorer's own) as the
    first line of its message, after its category unless it is a plain UserWarning, as often as
    Python's filters let it through (once per place, by default)."""
    with warnings.catch_warnings():

        def route(message, category, filename, lineno, file=None, line=None) -> None:
            text = str(message) if issubclass(category, InputWarning) else first_line(message)
            show(text if issubclass(category, InputWarning | UserWarning) else f"{category.__name__}: {text}")

        warnings.showwarning = route
        warnings.simplefilter("always", InputWarning)
        yield


def memory_problem(error: BaseException) -> str | None:
    """The one line on ``error`` when it says that memory ran out (Python's MemoryError, torch's
    OutOfMemoryError on a GPU, or its CPU allocator's RuntimeError), naming the fix; else None."""
    text = str(error)
    if not (
        isinstance(error, MemoryError)
        or type(error).__name__ == "OutOfMemoryError"
        or re.search(r"(?i)can't allocate memory|out of memory", text)
    ):
        return None
    asked = re.search(r"(?i)tried to allocate ([\d.]+ ?\w+)", text)
    return (
        f"not enough memory{f' (it tried to allocate {asked[1]})' if asked else ''}; use a smaller "
        "--batch-size or --image-size, a smaller model, or fewer --workers"
    )
