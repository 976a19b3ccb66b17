"""The error a user can fix: the command line prints its message on one line, no traceback."""


class UserError(Exception):
    """Bad input, described in one line that names the problem and the fix."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (empty when it has none)."""
    return (str(error).strip().splitlines() or [""])[0]


class CandidateFailed(Exception):
    """A candidate could not be built or scored; the message is the reason stored on its trial."""
