"""What ntknas does when not told otherwise, importable without torch or Optuna (the command line
shows these in its help): where it writes, relative to the working directory (one folder,
``results/``, and the places in it), and how often a running trial shows it is alive."""

from __future__ import annotations

import signal
from pathlib import Path

RESULTS = Path("results")
DATABASE = RESULTS / "ntknas.db"  # the default storage: an SQLite file
DEFAULT_STORAGE = f"sqlite:///{DATABASE.as_posix()}"
PLOTS = RESULTS / "plots"
CHECKPOINTS = RESULTS / "checkpoints"  # verify's training checkpoints
ARTIFACTS = RESULTS / "artifacts"  # the dashboard's uploads, for a database server
HEARTBEAT_SECONDS = 10  # between a running trial's heartbeats (see ntknas.study.heartbeat)
# Signals that end a command (and its workers) as SIGTERM does: SIGTERM, SIGHUP (a closed
# terminal) and SIGQUIT (Ctrl-\), each with exit code 128 + its number.
STOPPING_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name)
)
