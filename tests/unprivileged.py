"""Runs Python where file permissions bind. Root ignores them; so as root the snippet runs without
the capabilities that override them (``setpriv`` drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH),
and as any other user it runs as that user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DROP = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def unavailable() -> str | None:
    """Why permissions cannot be made to bind here, or None when they can."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "running as root without setpriv (util-linux) to drop the capabilities that bypass permissions"
    return None


def run(code: str, cwd: Path) -> str:
    """Run ``code`` (Python) in ``cwd`` where permissions bind; return its stdout, or fail with its
    stderr."""
    prefix = DROP if os.geteuid() == 0 else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [*prefix, sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
