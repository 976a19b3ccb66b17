"""Where studies live: an SQLite file under ``results/`` by default, or any Optuna storage URL.

A storage is opened for writing (search, verify) or read-only (results, studies, plot). Neither
touches a database that Optuna did not make, and a read-only open never creates or changes a file.
Storage URLs and any message that may quote their secrets pass through :func:`mask` and
:func:`redact` before they are printed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, unquote

import optuna
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from ntknas.core import defaults
from ntknas.core.errors import InputWarning, UserError
from ntknas.core.extras import install_hint
from ntknas.core.files import make_folders, missing
from ntknas.study import sqlite_wait
from ntknas.study.heartbeat import Retry
from search_spaces.guard import message_of

DEFAULT_FILE = defaults.DATABASE
# How long an SQLite writer waits for another process's write to finish before giving up (in
# Python, announced after a few seconds, and stopped by Ctrl-C or SIGTERM: ntknas.study.sqlite_wait).
SQLITE_BUSY_SECONDS = 30
# A running trial is presumed dead after this many missed heartbeats.
GRACE_BEATS = 5
# How often the configuration of a dead worker's trial is retried.
MAX_RETRIES = 3
# Tries at creating Optuna's tables in a new database, which other processes may be creating too.
SCHEMA_ATTEMPTS = 4
HIDDEN = "***"
# The options the Python SQLite driver takes in an SQLite URL's query.
SQLITE_OPTIONS = frozenset(
    {"timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements", "uri"}
)
PLACEHOLDER = "ntknasHIDDENvalue"  # stands for a hidden query value while SQLAlchemy renders a URL
# The tables Optuna's RDB storage makes (every schema since 2.4), and columns that identify them.
OPTUNA_TABLES = frozenset(
    {
        "alembic_version",
        "studies",
        "study_directions",
        "study_system_attributes",
        "study_user_attributes",
        "trial_heartbeats",
        "trial_intermediate_values",
        "trial_params",
        "trial_system_attributes",
        "trial_user_attributes",
        "trial_values",
        "trials",
        "version_info",
    }
)
FINGERPRINT = {
    "studies": {"study_id", "study_name"},
    "trials": {"trial_id", "number", "study_id", "state"},
    "version_info": {"version_info_id", "schema_version", "library_version"},
    "alembic_version": {"version_num"},
}


# What a database says when the disk under it is full, and when its file is damaged (an SQLite
# file whose header is damaged is no longer "a database" at all).
DISK_FULL = ("database or disk is full", "no space left on device")
MALFORMED = ("database disk image is malformed", "disk i/o error")
DAMAGED = (*MALFORMED, "file is not a database")


def fault(error: BaseException, url: str | None) -> str | None:
    """One line on a fault of the storage at ``url`` that ``error`` (or an error it came from)
    reports, naming the place and the fix: a full disk, a damaged database, or one another program
    kept locked for longer than a writer waits; None for others.
    An OSError is a file's, never the storage's (its writer names it: ntknas.core.files.write_failure)."""
    seen: BaseException | None = error
    while seen is not None:
        text = "" if isinstance(seen, OSError) else message_of(seen).lower()
        where = mask(url or default_url())
        if _raised_in_storage(seen, KeyError) and "record does not exist" in text:
            return (
                f"a study or trial in storage {where} was deleted while this command used it (by the "
                "dashboard or another program); run the same command to start again"
            )
        if _unreadable_record(seen):
            return damaged(where, f"Optuna cannot read a value it holds: {type(seen).__name__}: {seen}")
        if any(words in text for words in DISK_FULL):
            return f"disk full writing storage {where}: free space and run the same command to resume"
        damage = next((words for words in DAMAGED if words in text), None)
        if damage is not None:
            return damaged(where, damage)
        if "readonly database" in text or "read-only database" in text:
            return (
                f"storage {where} could not be written (the database is read-only): make it writable, "
                "or give --storage a copy, then run the same command to resume"
            )
        if "database is locked" in text:
            return (
                f"storage {where} stayed locked by another program for {SQLITE_BUSY_SECONDS} s: let it "
                "finish (or stop it), then run the same command to resume"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def _unreadable_record(error: BaseException) -> bool:
    """Whether ``error`` is Optuna's storage failing to decode what the database holds (a value
    edited by hand or damaged: a choice out of range, text that is not JSON, a missing value, a
    state or value type no enumeration holds, a distribution without its keys): a ValueError,
    LookupError, TypeError or AssertionError raised inside ``optuna.storages`` (SQLAlchemy's
    decoding beneath it included) or ``optuna.distributions``. A KeyError counts only from
    ``optuna.distributions``: in the storage it is a record that does not exist."""
    if isinstance(error, KeyError):
        return _raised_in_storage(error, KeyError, storages=False)
    return _raised_in_storage(error, (ValueError, LookupError, TypeError, AssertionError))


def _raised_in_storage(error: BaseException, kinds: type | tuple[type, ...], storages: bool = True) -> bool:
    """Whether ``error`` is one of ``kinds`` raised inside ``optuna.distributions`` or (with
    ``storages``) ``optuna.storages``."""
    if not isinstance(error, kinds):
        return False
    where = [Path(frame.filename).parts for frame in traceback.extract_tb(error.__traceback__)]
    return any(
        parts[-2:] == ("optuna", "distributions.py")
        or (storages and "storages" in parts[-3:-1] and "optuna" in parts)
        for parts in where
    )


def damaged(where: str, reason: str) -> str:
    """The one line on the damaged storage ``where`` (a masked URL): the problem and the fix."""
    return f"storage {where} is damaged ({reason}); restore it from a copy, or give --storage a new path"


def default_url() -> str:
    """``sqlite:///results/ntknas.db`` in the working directory."""
    return defaults.DEFAULT_STORAGE


def mask(url: str) -> str:
    """``url`` fit to print or store: its password and any password-like query parameter
    (``password=``, ``pwd=``, ``sslpassword=``, ``token=``, ...) shown as ``***``, as parsed by
    SQLAlchemy. A string SQLAlchemy cannot parse is shown only when it cannot hold a secret (no
    ``@``, ``=`` or spaces), else as ``scheme://***``."""
    parsed = _parse(url)
    if parsed is None:
        if not any(c in url for c in "@=") and not any(c.isspace() for c in url):
            return url
        scheme, found, _ = url.partition("://")
        return f"{scheme}://{HIDDEN}" if found and scheme.replace("+", "").isalnum() else HIDDEN
    query = {k: (PLACEHOLDER if _secret_key(k) else v) for k, v in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True).replace(PLACEHOLDER, HIDDEN)


def redact(text: str, url: str | None) -> str:
    """``text`` (e.g. a driver's error message) with ``url`` masked and each of its secrets
    replaced by ``***`` in every form a message may quote it: as given, %-escaped, form-escaped,
    escaped for a libpq connection string, or as Python's repr shows it."""
    if not url:
        return text
    text = text.replace(url, mask(url))
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


def open_storage(
    url: str | optuna.storages.BaseStorage | None,
    heartbeat_seconds: int | None = None,
    *,
    read_only: bool = False,
) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url`` (default: the SQLite file under ``results/``); a storage
    object is used as it is (its own heartbeat and retry settings hold).

    For writing, SQLite files are created with their folder and switched to write-ahead logging; a
    writer waits up to ``SQLITE_BUSY_SECONDS`` for another's lock, so several local processes share
    one file. With ``heartbeat_seconds``, running trials record heartbeats; one silent for
    ``GRACE_BEATS`` beats is failed and its configuration queued again (at most ``MAX_RETRIES``
    times). ``read_only`` opens an existing database without creating or changing any file (see
    :func:`_read_only_uri`), so it also works on a read-only archive. A database another program
    made is refused untouched. Raises UserError with a one-line reason, its secrets masked.
    """
    if isinstance(url, optuna.storages.BaseStorage):
        return url
    url = url or default_url()
    parsed = _parse(url)
    if parsed is None:
        raise UserError(
            f"storage URL {mask(url)} is not a URL SQLAlchemy can read; write it as "
            f"dialect+driver://user:password@host:port/database (e.g. {default_url()})"
        )
    scheme = parsed.drivername
    if scheme != scheme.lower():
        raise UserError(
            f"storage URL {mask(url)} writes its scheme {scheme} with capitals, which SQLAlchemy does not "
            f"read; write it in lower case ({scheme.lower()}://...)"
        )
    if parsed.get_backend_name() == "sqlite" and parsed.host:
        path = "/".join(p for p in (parsed.host, parsed.database) if p)
        raise UserError(
            f"storage URL {mask(url)} names a host ({parsed.host}), which an SQLite file has not: write "
            f"sqlite:///PATH, three slashes before a relative path (sqlite:///{path}), four before an "
            "absolute one"
        )
    if "@" in (make_url(url).host or ""):
        raise UserError(
            f"storage URL {mask(url)} has an '@' in its user name or password; write each '@' there "
            "as %40 (and '/' as %2F, ':' as %3A)"
        )
    connect = url
    try:
        if parsed.get_backend_name() == "sqlite":
            connect = _prepare_sqlite(parsed, url, read_only)
        else:
            _check_server_schema(url, read_only)
        with warnings.catch_warnings():  # Optuna marks the heartbeat arguments experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            liveness = {}
            if heartbeat_seconds is not None and not read_only:
                liveness = {
                    "heartbeat_interval": heartbeat_seconds,
                    "grace_period": GRACE_BEATS * heartbeat_seconds,
                    "heartbeat_stale_trial_callback": Retry(MAX_RETRIES),
                }
            return _rdb_storage(connect, liveness, read_only)
    except UserError:
        raise
    except ImportError as e:
        missing = getattr(e.__cause__, "name", None) or getattr(e, "name", None) or "its driver"
        hint = install_hint("postgres") if url.startswith("postgres") else f"install {missing}"
        raise UserError(
            f"storage {mask(url)} needs the database driver {missing}, which is missing: {hint}"
        ) from None
    except Exception as e:  # SQLAlchemy raises many kinds, all meaning "cannot use this URL"
        problem = fault(e, url)  # but a full disk or a damaged file under a reachable one
        if problem is not None:
            raise UserError(problem) from None
        reason = redact(str(getattr(e, "orig", None) or e).strip().splitlines()[0], url)
        raise UserError(
            f"cannot reach storage {mask(url)}: {reason}; check the URL and that the server is up"
        ) from None


def _parse(url: str) -> URL | None:
    """``url`` as SQLAlchemy reads it, None when it cannot. An ``@`` left unescaped in the password
    makes SQLAlchemy split the user info at the first ``@``; here the user info ends at the last
    one, as the user meant, so that no piece of the password is shown as the host."""
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return None
    if parsed.host and "@" in parsed.host:
        rest, host = parsed.host.rsplit("@", 1)
        userinfo = f"{parsed.username or ''}{'' if parsed.password is None else ':' + parsed.password}@{rest}"
        username, _, password = userinfo.partition(":")
        parsed = parsed.set(username=username, password=password or None, host=host)
    return parsed


def _secret_key(key: str) -> bool:
    key = key.lower()
    return any(word in key for word in ("password", "secret", "token")) or key in ("pwd", "passwd", "pass")


def _secrets(url: str) -> set[str]:
    """Every form in which a message may quote the password or secret parameters of ``url``."""
    parsed = _parse(url)
    if parsed is None:
        return set()
    values = [parsed.password, make_url(url).password]
    for key, value in parsed.query.items():
        if _secret_key(key):
            values += [value] if isinstance(value, str) else list(value)
    forms = set()
    for value in filter(None, values):
        libpq = value.replace("\\", "\\\\").replace("'", "\\'")
        forms |= {value, quote(value, safe=""), quote_plus(value), libpq, repr(value)[1:-1]}
    return forms


def file_watch(url: str | None) -> Callable[[], None]:
    """A check to call while a command writes storage ``url``: for an SQLite file, UserError once
    the file at its path is no longer the one opened (moved, deleted or replaced: SQLite goes on
    writing to a file no path names, and to a journal the next open of the path discards); for
    other storages, nothing."""
    path = sqlite_file(url)
    opened = _identity(path) if path is not None else None
    if opened is None:
        return lambda: None

    def check() -> None:
        if _identity(path) != opened:
            raise UserError(
                f"storage file {path} was moved or deleted while this command wrote it: what it wrote "
                f"since may be only in {path.name}-wal beside it; put the file back at {path} (before "
                "anything opens that path), then run the same command to resume"
            )

    return check


def _identity(path: Path) -> tuple[int, int] | None:
    """The device and inode of the file at ``path``, or None when there is none."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def sqlite_file(url: str | None) -> Path | None:
    """The database file of SQLite storage URL ``url`` (None: the default), read as SQLite reads
    it (see :func:`_sqlite_file`); None for another database or an in-memory one."""
    parsed = _parse(url or default_url())
    if parsed is None or parsed.get_backend_name() != "sqlite":
        return None
    return _sqlite_file(parsed)


def _sqlite_file(parsed: URL) -> Path | None:
    """The file of an SQLite URL, also when given as an SQLite URI (``sqlite:///file:PATH?uri=true``,
    read as SQLite reads it: the path %-decoded, ending at ``?`` or ``#``); None for an in-memory
    database."""
    database = parsed.database or ""
    if _uri(parsed) and database.startswith("file:"):
        path = database.removeprefix("file:").split("#")[0].partition("?")[0]
        if path.startswith("//"):  # file://HOST/PATH, where SQLite takes only an empty or local host
            path = "/" + path[2:].partition("/")[2]
        if _uri_options(parsed).get("mode") == "memory":
            return None
        database = unquote(path)
    if database in ("", ":memory:"):
        return None
    return Path(database)


def _uri_options(parsed: URL) -> dict[str, str]:
    """The options of an SQLite URI (``sqlite:///file:PATH?mode=ro&uri=true``), lower-cased: those
    inside the file name and those of the URL, the last of each name winning."""
    database = (parsed.database or "").split("#")[0]
    inside = {k: v[-1] for k, v in parse_qs(database.partition("?")[2]).items()}
    given = {k: v if isinstance(v, str) else v[-1] for k, v in parsed.query.items()}
    return {k.lower(): str(v).lower() for k, v in {**inside, **given}.items()}


def _read_only_options(parsed: URL) -> str | None:
    """The option of an SQLite URI that opens it read-only (``mode=ro``, ``immutable=1``), if any."""
    if not _uri(parsed):
        return None
    options = _uri_options(parsed)
    if options.get("mode") == "ro":
        return "mode=ro"
    if options.get("immutable", "0") not in ("0", "false", "no", "off"):
        return f"immutable={options['immutable']}"
    return None


def _uri(parsed: URL) -> bool:
    """Whether an SQLite URL asks for its database to be read as an SQLite URI (``uri=true``)."""
    return str(parsed.query.get("uri", "")).lower() in ("true", "1", "yes", "on", "t", "y")


def _check_options(parsed: URL, url: str) -> None:
    """UserError for a query that an SQLite URL, unless an SQLite URI, cannot mean: a ``?`` in a
    file name, which would open the file named by what precedes it (``sqlite:///we?ird.db`` opens
    ``we``); and for a path under ``~``, which SQLite takes as a folder named ``~``."""
    query = url.partition("?")[2]
    if _uri(parsed) and not (parsed.database or "").startswith("file:"):
        raise UserError(
            f"storage URL {mask(url)} asks for an SQLite URI (uri=true), which SQLite reads only from a "
            f"name starting with file: (else it creates a file named with the options); write "
            f"sqlite:///file:PATH?OPTIONS&uri=true, or drop uri=true"
        )
    unknown = sorted({item.partition("=")[0] for item in query.split("&") if item} - SQLITE_OPTIONS)
    if unknown and not _uri(parsed):
        raise UserError(
            f"storage URL {mask(url.partition('?')[0])}?… has option(s) SQLite does not know "
            f"({', '.join(unknown)}): it "
            f"would open {parsed.database} and read them after the '?'; if the '?' is part of the file "
            f"name, write it as %3F; else drop them (SQLite's: {', '.join(sorted(SQLITE_OPTIONS))})"
        )
    database = parsed.database or ""
    if database == "~" or database.startswith("~/"):
        raise UserError(
            f"storage URL {mask(url)} starts its path with ~, which SQLite does not expand (it would "
            f"use a file or folder named ~ here); write the full path: "
            f"sqlite:///{Path(database).expanduser()}"
        )


def _prepare_sqlite(parsed: URL, url: str, read_only: bool) -> str:
    """Check an SQLite file before Optuna touches it; return the URL to connect with.

    Read-only: the file must exist and hold Optuna's tables; it is opened through an SQLite URI
    that writes nothing (:func:`_read_only_uri`). For writing: an existing file must be
    writable, in a writable folder, and hold Optuna's tables or none; a new one is created with
    its folder and switched to write-ahead logging.
    """
    _check_options(parsed, url)
    path = _sqlite_file(parsed)
    if path is None:
        if read_only:
            raise UserError(
                f"storage {mask(url)} is an in-memory database, which holds no studies; give --storage "
                "the SQLite file that does (sqlite:///PATH)"
            )
        raise UserError(
            f"storage {mask(url)} is an in-memory database: what this command stores would be lost "
            "when it ends; give --storage a file (sqlite:///PATH)"
        )
    if read_only:
        if (problem := missing(path)) is not None:
            raise UserError(
                f"storage file {path} {problem}; check the path (read-only commands never create one)"
            )
        tables = _sqlite_schema(path, url)
        if not tables:
            raise UserError(f"storage file {path} holds no studies: it is an empty database")
        _check_schema(tables, path)
        database, _, options = _read_only_uri(path).partition("?")
        query = {**dict(o.split("=") for o in options.split("&")), "uri": "true"}
        return URL.create("sqlite", database=database, query=query).render_as_string(hide_password=False)
    read_only_option = _read_only_options(parsed)
    if read_only_option is not None:
        raise UserError(
            f"storage {mask(url)} opens the database read-only ({read_only_option}); this command writes "
            "to it: drop that option, or give --storage a writable file"
        )
    if path.exists():
        _check_schema(_sqlite_schema(path, url), path)
        if not os.access(path, os.R_OK | os.W_OK):
            raise UserError(
                f"storage file {path} is read-only; this command writes to it: make it writable, or "
                "give --storage a copy"
            )
        folder = path.parent.resolve()
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(
                f"storage folder {folder} is not writable, and SQLite writes its journal beside "
                f"{path.name}; make the folder writable, or give --storage a copy elsewhere"
            )
    try:
        make_folders(path.parent)
        _write_ahead_logging(path, url)
    except (OSError, sqlite3.Error) as e:
        raise UserError(f"cannot open storage {mask(url)}: {e}; check the path and its permissions") from None
    return url


def _write_ahead_logging(path: Path, url: str) -> None:
    """Switch the SQLite file ``path`` (of storage ``url``) to write-ahead logging, unless another
    process already did. The switch needs the file to itself, and SQLite refuses it at once
    ("database is locked"), without waiting, while another process holds it, as when several
    commands open one new file together: the connection tries again until
    ``SQLITE_BUSY_SECONDS`` have passed."""
    with contextlib.closing(sqlite_wait.connect(str(path), mask(url), SQLITE_BUSY_SECONDS)) as con:
        if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            con.execute("PRAGMA journal_mode=WAL")


def _sqlite_schema(path: Path, url: str) -> dict[str, set[str]]:
    """Table name → column names of the SQLite file ``path`` (of storage ``url``), read without
    changing it (a read-only connection); UserError when it is not a file, not an SQLite
    database, or a damaged one (SQLite's quick check reads every page: ~2 ms per MB), so that
    no command reads a damaged file, nor writes to it and damages it more."""
    if not path.is_file():
        raise UserError(f"storage {path} is not a file; give --storage an SQLite file (sqlite:///PATH)")
    try:
        con = sqlite_wait.connect(_read_only_uri(path), mask(url), SQLITE_BUSY_SECONDS, uri=True)
    except sqlite3.Error as e:
        raise UserError(f"cannot open storage file {path}: {e}; check the path and its permissions") from None
    try:
        try:
            problems = [r[0] for r in con.execute("PRAGMA quick_check")]
        except sqlite3.OperationalError as e:
            if "readonly" not in str(e) or not Path(f"{path}-journal").exists():
                raise
            con.close()  # a write another program left unfinished: roll it back, as SQLite does
            con = _rolled_back(path, url)
            problems = [r[0] for r in con.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise UserError(damaged(mask(url), problems[0].strip().splitlines()[-1]))
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            name: {r[1] for r in con.execute(f'PRAGMA table_info("{name}")')}
            for name in names
            if not name.startswith("sqlite_")
        }
    except sqlite3.DatabaseError as e:
        if any(words in str(e).lower() for words in MALFORMED):
            raise UserError(damaged(mask(url), str(e))) from None
        raise UserError(
            f"{path} is not an SQLite database ({e}); give --storage a file made by ntknas, or a new path"
        ) from None
    finally:
        con.close()


def _rolled_back(path: Path, url: str) -> sqlite3.Connection:
    """A read-only connection to ``path`` after rolling back the unfinished write that a process
    which died mid-write left in its rollback journal (SQLite does so on any writing open; a
    read-only one cannot), with one warning line saying so."""
    with contextlib.closing(sqlite_wait.connect(str(path), mask(url), SQLITE_BUSY_SECONDS)) as con:
        con.execute("PRAGMA quick_check").fetchall()
    warnings.warn(
        f"storage {mask(url)}: rolled back a write that another program left unfinished "
        f"({path.name}-journal), as SQLite does; what was committed is unchanged",
        InputWarning,
        stacklevel=3,
    )
    return sqlite_wait.connect(_read_only_uri(path), mask(url), SQLITE_BUSY_SECONDS, uri=True)


def _read_only_uri(path: Path) -> str:
    """An SQLite URI that opens ``path`` without writing anything: immutable (no lock or journal
    file made) unless a write-ahead log or a rollback journal beside it may hold another process's
    latest or unfinished writes and the folder lets SQLite share it; then in read-only mode, which
    reads through the log and waits for a writer's lock."""
    writable = os.access(path, os.W_OK) and os.access(path.parent.resolve(), os.W_OK | os.X_OK)
    live = writable and any(Path(f"{path}-{log}").exists() for log in ("wal", "journal"))
    return f"file:{quote(str(path.resolve()))}?mode=ro" + ("" if live else "&immutable=1")


def _check_schema(tables: dict[str, set[str]], where: object, *, shared: bool = False) -> None:
    """UserError unless ``tables`` (name → columns) are Optuna's, or none. A ``shared`` database (a
    server's) may hold other programs' tables beside them, but none of Optuna's names with another
    schema."""
    others = sorted(set(tables) - OPTUNA_TABLES)
    clash = sorted(t for t, needed in FINGERPRINT.items() if t in tables and not needed <= tables[t])
    if clash or (others and not shared):
        found = f"its {', '.join(clash)} table is not Optuna's" if clash else f"it holds {_listed(others)}"
        raise UserError(
            f"{where} is not a database of Optuna studies ({found}); ntknas leaves it as it is: "
            "give --storage a database made by ntknas, or a new path"
        )


def _listed(tables: list[str]) -> str:
    shown = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
    return f"table{'s' if len(tables) > 1 else ''} {shown}"


def _check_server_schema(url: str, read_only: bool) -> None:
    """Refuse a server database whose tables clash with Optuna's names (other tables are allowed:
    a server database is often shared), or, to read, one without Optuna's tables, before Optuna
    creates or reads anything there."""
    engine = sqlalchemy.create_engine(url, **_engine_kwargs(url))
    try:
        inspector = sqlalchemy.inspect(engine)
        names = set(inspector.get_table_names())
        tables = {t: {c["name"] for c in inspector.get_columns(t)} for t in FINGERPRINT if t in names}
    finally:
        engine.dispose()
    _check_schema(tables, f"storage {mask(url)}", shared=True)
    if read_only and not {"studies", "version_info"} <= names:
        raise UserError(f"storage {mask(url)} holds no studies: it has none of Optuna's tables")


def _rdb_storage(url: str, liveness: dict, read_only: bool) -> optuna.storages.RDBStorage:
    """The RDB storage; several processes opening a new database at once race to create Optuna's
    tables, and the losers, which find them half made, try again. Read-only: no table is made."""
    attempt = 1
    while True:
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=_engine_kwargs(url), skip_table_creation=read_only, **liveness
            )
        except sqlalchemy.exc.SQLAlchemyError as e:
            text = str(e)
            lost_race = isinstance(e, sqlalchemy.exc.IntegrityError) or "already exists" in text
            lost_race = lost_race or "database is locked" in text  # SQLite: another is creating them
            if not lost_race or attempt == SCHEMA_ATTEMPTS:
                raise
            time.sleep(attempt)
            attempt += 1


def _engine_kwargs(url: str) -> dict:
    """SQLite: wait for other writers instead of failing with "database is locked" (with the
    standard driver, in Python: :mod:`ntknas.study.sqlite_wait`). Servers: test pooled connections
    before use, so a dropped connection is replaced instead of failing a trial."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return {"pool_pre_ping": True}
    if parsed.get_driver_name() == "pysqlite":
        return {"connect_args": sqlite_wait.connect_args(mask(url), SQLITE_BUSY_SECONDS)}
    return {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
