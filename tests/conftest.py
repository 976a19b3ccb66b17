"""Suite-wide setup: measured references (ntknas.objectives.reference) are cached in a folder of this run,
never in the user's ~/.cache; subprocesses inherit it."""

import os
import tempfile

os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="ntknas-tests-cache-")
