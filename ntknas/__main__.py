"""``python -m ntknas`` runs the command line."""

import signal
import sys


def _stop(signum, frame):
    """Ctrl-C or SIGTERM while the command line loads: exit quietly, 128 + the signal."""
    sys.exit(128 + signum)


signal.signal(signal.SIGINT, _stop)
signal.signal(signal.SIGTERM, _stop)

from ntknas.cli import main  # noqa: E402  (after the handlers: loading takes a moment)

signal.signal(signal.SIGINT, signal.default_int_handler)
main()
