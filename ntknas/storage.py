"""Where studies live: an SQLite file under ``results/`` by default, or any Optuna storage URL."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import optuna

from ntknas.errors import UserError

DEFAULT_FILE = Path("results") / "ntknas.db"


def default_url() -> str:
    """``sqlite:///results/ntknas.db`` in the working directory."""
    return f"sqlite:///{DEFAULT_FILE}"


def mask(url: str) -> str:
    """The URL with any password replaced by ``***``, fit to print or store."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str | None) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url`` (default: the SQLite file under ``results/``).

    SQLite files are created with their folder and switched to write-ahead logging, which lets
    several processes share one file. Raises UserError with a one-line reason when unreachable.
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
        return optuna.storages.RDBStorage(url, heartbeat_interval=None)
    except ImportError as e:
        missing = getattr(e.__cause__, "name", None) or "its driver"
        hint = "pip install 'ntknas[postgres]'" if url.startswith("postgres") else f"install {missing}"
        raise UserError(
            f"storage {mask(url)} needs the database driver {missing}, which is missing: {hint}"
        ) from None
    except Exception as e:  # SQLAlchemy raises many kinds, all meaning "cannot use this URL"
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise UserError(
            f"cannot reach storage {mask(url)}: {reason}; check the URL and that the server is up"
        ) from None
