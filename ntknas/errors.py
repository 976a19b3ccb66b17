"""What a user can fix: errors the command line prints on one line with no traceback, and warnings
about input that was skipped."""


class UserError(Exception):
    """Bad input, described in one line that names the problem and the fix."""


class InputWarning(UserWarning):
    """Input that ntknas skipped (e.g. a special file in an image folder), described in one line."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (empty when it has none)."""
    return (str(error).strip().splitlines() or [""])[0]
