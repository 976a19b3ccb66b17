"""Where studies live: an SQLite file under ``results/`` by default, or any Optuna storage URL."""

from __future__ import annotations

import re
import sqlite3
import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy

from ntknas.errors import UserError
from ntknas.heartbeat import Retry

DEFAULT_FILE = Path("results") / "ntknas.db"
# How long an SQLite writer waits for another process's write to finish before giving up.
SQLITE_BUSY_SECONDS = 120
# A running trial is presumed dead after this many missed heartbeats.
GRACE_BEATS = 5
# How often the configuration of a dead worker's trial is retried.
MAX_RETRIES = 3
# Tries at creating Optuna's tables in a new database, which other processes may be creating too.
SCHEMA_ATTEMPTS = 4


def default_url() -> str:
    """``sqlite:///results/ntknas.db`` in the working directory."""
    return f"sqlite:///{DEFAULT_FILE}"


def mask(url: str) -> str:
    """The URL (or a message quoting it) with any password replaced by ``***``, fit to print or
    store: ``user:PASSWORD@host`` (up to the host's ``@``) and ``password=...`` query parameters."""
    url = re.sub(r"(://[^:/@\s]+:)[^/\s]*@", r"\1***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url, flags=re.IGNORECASE)


def open_storage(url: str | None, heartbeat_seconds: int | None = None) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url`` (default: the SQLite file under ``results/``).

    SQLite files are created with their folder and switched to write-ahead logging; a writer waits
    up to ``SQLITE_BUSY_SECONDS`` for another's lock, so several local processes share one file.
    With ``heartbeat_seconds``, running trials record heartbeats; one silent for ``GRACE_BEATS``
    beats is failed and its configuration queued again (at most ``MAX_RETRIES`` times). Raises
    UserError with a one-line reason when unreachable.
    """
    url = url or default_url()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(path) as con:
                con.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as e:
            raise UserError(f"cannot open storage {url}: {e}; check the path and its permissions") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            liveness = {}
            if heartbeat_seconds is not None:
                liveness = {
                    "heartbeat_interval": heartbeat_seconds,
                    "grace_period": GRACE_BEATS * heartbeat_seconds,
                    "heartbeat_stale_trial_callback": Retry(MAX_RETRIES),
                }
            return _rdb_storage(url, liveness)
    except ImportError as e:
        missing = getattr(e.__cause__, "name", None) or "its driver"
        hint = "pip install 'ntknas[postgres]'" if url.startswith("postgres") else f"install {missing}"
        raise UserError(
            f"storage {mask(url)} needs the database driver {missing}, which is missing: {hint}"
        ) from None
    except Exception as e:  # SQLAlchemy raises many kinds, all meaning "cannot use this URL"
        reason = mask(str(getattr(e, "orig", None) or e).strip().splitlines()[0])
        raise UserError(
            f"cannot reach storage {mask(url)}: {reason}; check the URL and that the server is up"
        ) from None


def _rdb_storage(url: str, liveness: dict) -> optuna.storages.RDBStorage:
    """The RDB storage; several processes opening a new database at once race to create Optuna's
    tables, and the losers, which find them half made, try again."""
    attempt = 1
    while True:
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url), **liveness)
        except sqlalchemy.exc.SQLAlchemyError as e:
            lost_race = isinstance(e, sqlalchemy.exc.IntegrityError) or "already exists" in str(e)
            if not lost_race or attempt == SCHEMA_ATTEMPTS:
                raise
            time.sleep(attempt)
            attempt += 1


def _engine_kwargs(url: str) -> dict:
    """SQLite: wait for other writers instead of failing with "database is locked". Servers: test
    pooled connections before use, so a dropped connection is replaced instead of failing a trial."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    return {"pool_pre_ping": True}
