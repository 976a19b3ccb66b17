"""What libraries and plugins log reaches stderr as one warning line each, never a traceback."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from test_bad_input import KINDS, matches

from ntknas.core.library_logs import OneLine

NOISY_PLUGIN = """\
import logging

try:
    raise ValueError("boom\\nsecond line")
except ValueError:
    logging.getLogger("plugin.noisy").exception("could not %s", "connect")
try:
    raise KeyboardInterrupt
except KeyboardInterrupt:
    logging.getLogger("sqlalchemy.pool").error("Exception terminating connection", exc_info=True)
"""


def record(message: str, *args, error: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(error), error, None) if error is not None else None
    return logging.LogRecord("lib.pool", logging.ERROR, __file__, 1, message, args, exc_info)


@pytest.mark.parametrize(
    ("made", "shown"),
    [
        (record("plain %s", "text"), ["lib.pool: plain text"]),
        (record("two\nlines"), ["lib.pool: two"]),
        (record("closing", error=OSError("gone\nmore")), ["lib.pool: closing: OSError: gone"]),
        (record("terminating", error=KeyboardInterrupt()), []),  # a stop: the command says so
        (record("bad %d", "format"), []),  # a record that cannot be formatted is dropped, not raised
    ],
)
def test_a_record_is_one_line_or_nothing(made, shown):
    lines: list[str] = []
    OneLine(lines.append, quiet=lambda: False).handle(made)
    assert lines == shown


def test_a_quiet_process_shows_no_record():
    lines: list[str] = []
    OneLine(lines.append, quiet=lambda: True).handle(record("closing", error=OSError("gone")))
    assert lines == []


def test_a_plugin_that_logs_a_traceback_shows_one_warning_line(tmp_path):
    (tmp_path / "noisy_space.py").write_text(NOISY_PLUGIN)
    done = subprocess.run(
        [sys.executable, "-m", "ntknas", "score", "--space", "noisy_space:Space", "--arch", "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    warning, error = done.stderr.splitlines()
    assert matches(KINDS["a library or plugin logs an exception"].message, warning)
    assert error.startswith("error: search space 'noisy_space:Space': module 'noisy_space' has no 'Space'")
