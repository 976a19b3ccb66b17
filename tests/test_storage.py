"""Storage: secrets never shown, read-only opens that change nothing, and databases ntknas did not
make left exactly as they were."""

import contextlib
import gc
import hashlib
import os
import sqlite3
import sys
from pathlib import Path

import distributed
import optuna
import pytest
import unprivileged

from ntknas.core.errors import InputWarning, UserError
from ntknas.study.storage import mask, open_storage, redact

URLS = [
    ("postgresql+psycopg://u:s3cr@t@db:5432/x", "postgresql+psycopg://u:***@db:5432/x"),
    ("postgresql://u:p%40ss%2Fw%20rd@db/x", "postgresql://u:***@db/x"),
    ("postgresql://u:pa ss/w:d@db/x", "postgresql://u:***@db/x"),
    ("postgresql://u:%25s3%25@db/x", "postgresql://u:***@db/x"),
    (
        "postgresql://u@db/x?sslmode=require&password=s3cret",
        "postgresql://u@db/x?password=***&sslmode=require",
    ),
    (
        "postgresql://u@db/x?PWD=a&sslpassword=b&token=c",
        "postgresql://u@db/x?PWD=***&sslpassword=***&token=***",
    ),
    ("mysql://u:pw@[::1]:3306/db", "mysql://u:***@[::1]:3306/db"),
    ("sqlite:///results/ntknas.db", "sqlite:///results/ntknas.db"),
    ("sqlite:////tmp/a b/x.db", "sqlite:////tmp/a b/x.db"),
    ("sqlite://", "sqlite://"),
    # what SQLAlchemy cannot parse is shown only when it cannot hold a secret
    ("results.db", "results.db"),
    ("host=db user=u password=s3cret", "***"),
    ("postgresql//u:s3cret@db/x", "***"),
    ("post gres://u:s3cret@db/x", "***"),
]


@pytest.mark.parametrize("url,shown", URLS, ids=[u for u, _ in URLS])
def test_mask(url, shown):
    assert mask(url) == shown


def test_redact_catches_every_form_a_driver_may_echo():
    url = "postgresql://u:p%40ss%2Fw%20rd'q\\x@db/x?sslpassword=k%26ey"
    message = (
        f"cannot use {url}: password=p@ss/w rd'q\\x; dsn 'password=p@ss/w rd\\'q\\\\x'; "
        "repr 'p@ss/w rd\\'q\\\\x'; "
        "quoted p%40ss%2Fw%20rd%27q%5Cx or p%40ss%2Fw+rd%27q%5Cx; ssl key k&ey"
    )
    shown = redact(message, url)
    assert shown == (
        "cannot use postgresql://u:***@db/x?sslpassword=***: password=***; dsn 'password=***'; repr '***'; "
        "quoted *** or ***; ssl key ***"
    )
    assert redact("no secret here", None) == "no secret here"


@pytest.mark.parametrize(
    "url,secrets",
    [
        ("postgresql://u:p%40ss%2Fw%20rd@127.0.0.1:1/db", ["p@ss/w rd", "p%40ss%2Fw%20rd"]),
        ("postgresql://u@127.0.0.1:1/db?password=s3cret", ["s3cret"]),
        ("postgresql://u:p@ss@127.0.0.1:1/db", ["p@ss", "ss@"]),
        ("host=127.0.0.1 password=s3cret", ["s3cret"]),
    ],
)
def test_errors_never_show_a_password(url, secrets):
    with pytest.raises(UserError) as info:
        open_storage(url)
    message = str(info.value)
    assert "\n" not in message and not any(s in message for s in secrets), message


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` → its SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def archive(tmp_path):
    """A folder holding a study database made by ntknas, its journal folded into the file."""
    storage = open_storage(f"sqlite:///{tmp_path / 'db' / 'studies.db'}")
    study = optuna.create_study(study_name="kept", storage=storage)
    study.add_trial(optuna.trial.create_trial(value=1.5))
    storage.engine.dispose()
    with sqlite3.connect(tmp_path / "db" / "studies.db") as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for leftover in ("studies.db-wal", "studies.db-shm"):
        (tmp_path / "db" / leftover).unlink(missing_ok=True)
    return tmp_path / "db"


def test_read_only_opens_change_nothing(archive, tmp_path):
    before = digest(archive)
    storage = open_storage(f"sqlite:///{archive / 'studies.db'}", read_only=True)
    assert optuna.get_all_study_names(storage) == ["kept"]
    study = optuna.load_study(study_name="kept", storage=storage)
    assert [t.value for t in study.trials] == [1.5]
    with pytest.raises(optuna.exceptions.StorageInternalError) as refused:
        study.set_user_attr("x", 1)
    assert "attempt to write a readonly database" in str(refused.value.__cause__)
    storage.engine.dispose()
    assert digest(archive) == before
    with pytest.raises(UserError) as info:
        open_storage(f"sqlite:///{tmp_path / 'mistyped.db'}", read_only=True)
    assert str(info.value) == (
        f"storage file {tmp_path / 'mistyped.db'} does not exist; check the path (read-only commands never "
        "create one)"
    )
    assert not (tmp_path / "mistyped.db").exists()


def test_a_read_only_open_sees_a_running_writers_latest_trials(tmp_path):
    writer = open_storage(f"sqlite:///{tmp_path / 'live.db'}")  # stays open, as a running search's
    study = optuna.create_study(study_name="live", storage=writer)
    study.add_trial(optuna.trial.create_trial(value=2.0))
    assert (tmp_path / "live.db-wal").stat().st_size > 0  # the trial is in the log, not yet the file
    reader = open_storage(f"sqlite:///{tmp_path / 'live.db'}", read_only=True)
    assert [t.value for t in optuna.load_study(study_name="live", storage=reader).trials] == [2.0]


def test_read_only_archives_open_where_permissions_bind(archive):
    if unprivileged.unavailable():
        pytest.skip(unprivileged.unavailable())
    before = digest(archive)
    (archive / "studies.db").chmod(0o444)
    archive.chmod(0o555)
    try:
        out = unprivileged.run(
            "import optuna\n"
            "from ntknas.study.storage import open_storage\n"
            "study = optuna.load_study(study_name='kept', storage=open_storage('sqlite:///studies.db', "
            "read_only=True))\n"
            "print([t.value for t in study.trials])\n"
            "for url in ('sqlite:///studies.db', 'sqlite:///elsewhere.db'):\n"
            "    try:\n"
            "        open_storage(url)\n"
            "    except Exception as e:\n"
            "        print(e)\n",
            archive,
        )
    finally:
        archive.chmod(0o755)
    assert out.splitlines() == [
        "[1.5]",
        "storage file studies.db is read-only; this command writes to it: make it writable, or give "
        "--storage a copy",
        "cannot open storage sqlite:///elsewhere.db: unable to open database file; check the path and its "
        "permissions",
    ]
    assert digest(archive) == before


def foreign(tmp_path: Path) -> dict[str, Path]:
    """Files that are not databases of Optuna studies."""
    with sqlite3.connect(tmp_path / "app.db") as con:
        con.execute("CREATE TABLE inventory (item TEXT, count INTEGER)")
        con.execute("INSERT INTO inventory VALUES ('bolts', 12)")
    with sqlite3.connect(tmp_path / "clash.db") as con:
        con.execute("CREATE TABLE studies (id INTEGER, title TEXT)")
        con.execute("CREATE TABLE version_info (v TEXT)")
    (tmp_path / "notes.db").write_text("meeting notes, not a database\n" * 40)
    return {name: tmp_path / name for name in ("app.db", "clash.db", "notes.db")}


def test_databases_ntknas_did_not_make_are_refused_untouched(tmp_path):
    files = foreign(tmp_path)
    before = digest(tmp_path)
    expected = {
        "app.db": "is not a database of Optuna studies (it holds table inventory)",
        "clash.db": "is not a database of Optuna studies (its studies, version_info table is not Optuna's)",
        "notes.db": "is not an SQLite database (file is not a database)",
    }
    for name, path in files.items():
        for read_only in (False, True):
            with pytest.raises(UserError) as info:
                open_storage(f"sqlite:///{path}", read_only=read_only)
            assert str(info.value).startswith(f"{path} {expected[name]}"), str(info.value)
    assert digest(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == sorted(files)  # no journal or lock file made either


def test_sqlite_uris_are_checked_as_the_files_they_name(tmp_path, archive):
    """An SQLite URI (sqlite:///file:PATH?uri=true) names a file as a path does, and gets the
    same checks: another program's database is refused untouched, a read-only open never makes a
    file; an in-memory database (which would lose what a search stores) is refused."""
    files = foreign(tmp_path)
    before = digest(tmp_path)
    for path in files.values():
        escaped = str(path).replace(".db", "%2Edb")
        for url in (
            f"sqlite:///file:{path}?uri=true",
            f"sqlite:///file:{escaped}?mode=rwc&uri=true",
            f"sqlite:///file://localhost{path}?uri=true",
        ):
            for read_only in (False, True):
                with pytest.raises(UserError, match=f"^{path} is not a"):
                    open_storage(url, read_only=read_only)
    missing = tmp_path / "mistyped.db"
    with pytest.raises(UserError, match="does not exist"):
        open_storage(f"sqlite:///file:{missing}?mode=rwc&uri=true", read_only=True)
    assert not missing.exists() and digest(tmp_path) == before
    kept = open_storage(f"sqlite:///file:{archive / 'studies.db'}?uri=true", read_only=True)
    assert optuna.get_all_study_names(kept) == ["kept"]
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        with pytest.raises(UserError, match="is an in-memory database, which holds no studies"):
            open_storage(url, read_only=True)
        with pytest.raises(
            UserError, match="is an in-memory database: what this command stores would be lost"
        ):
            open_storage(url)


def test_an_empty_file_is_initialised_only_for_writing(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(
        UserError, match=r"storage file .*empty\.db holds no studies: it is an empty database"
    ):
        open_storage(f"sqlite:///{tmp_path / 'empty.db'}", read_only=True)
    assert (tmp_path / "empty.db").read_bytes() == b""
    storage = open_storage(f"sqlite:///{tmp_path / 'empty.db'}")
    optuna.create_study(study_name="new", storage=storage)
    assert optuna.get_all_study_names(open_storage(f"sqlite:///{tmp_path / 'empty.db'}", read_only=True)) == [
        "new"
    ]


@pytest.mark.postgres
@pytest.mark.skipif(distributed.unavailable() is not None, reason=str(distributed.unavailable()))
def test_a_server_database_with_a_clashing_table_is_refused():
    import sqlalchemy

    with distributed.cluster() as url:
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as con:
            con.exec_driver_sql("CREATE TABLE inventory (item TEXT)")  # another program's table: fine
        with pytest.raises(UserError, match="holds no studies: it has none of Optuna's tables"):
            open_storage(url, read_only=True)
        optuna.create_study(study_name="beside", storage=open_storage(url))
        assert optuna.get_all_study_names(open_storage(url, read_only=True)) == ["beside"]
        other = url.rsplit("/", 1)[0] + "/template1"
        with sqlalchemy.create_engine(other).begin() as con:
            con.exec_driver_sql("CREATE TABLE studies (id INTEGER, title TEXT)")
        with pytest.raises(UserError) as info:
            open_storage(other)
        assert str(info.value) == (
            f"storage {mask(other)} is not a database of Optuna studies (its studies table is not Optuna's); "
            "ntknas leaves it as it is: give --storage a database made by ntknas, or a new path"
        )
        assert distributed.PASSWORD not in str(info.value)
        engine.dispose()


def test_opening_waits_for_another_process_that_holds_the_new_file_locked(tmp_path):
    """Two commands opening one new SQLite file at once: the second waits for the first's lock
    (held here 6 s, longer than sqlite3's default 5 s wait) instead of failing."""
    import threading

    path = tmp_path / "shared.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(6.0, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        with pytest.warns(InputWarning, match="is locked by another program: waiting up to 30 s"):
            storage = open_storage(f"sqlite:///{path}")
    finally:
        release.join()
        holder.close()
    assert storage.get_all_studies() == []


def _open_at(path: str, start: float, outcomes) -> None:
    """Open the storage at ``path`` once the clock reaches ``start``; put "ok" or the error."""
    import time

    from ntknas.study.storage import open_storage

    while time.time() < start:
        pass
    try:
        open_storage(f"sqlite:///{path}")
        outcomes.put("ok")
    except UserError as e:
        outcomes.put(str(e))


@pytest.mark.slow
def test_processes_opening_one_new_sqlite_file_together_all_succeed(tmp_path):
    """Four commands opening one new file at the same instant. SQLite refuses the switch to
    write-ahead logging at once, without waiting, to some of them ("database is locked"); before
    they looked again, 5 of 15 such rounds had a process fail."""
    import multiprocessing
    import time

    context = multiprocessing.get_context("spawn")
    for round_ in range(6):
        path, outcomes = tmp_path / f"shared{round_}.db", context.Queue()
        start = time.time() + 3  # after every process has imported ntknas.study.storage
        processes = [context.Process(target=_open_at, args=(str(path), start, outcomes)) for _ in range(4)]
        for p in processes:
            p.start()
        for p in processes:
            p.join()
        assert sorted(outcomes.get() for _ in processes) == ["ok"] * 4


def _locked_file(path) -> sqlite3.Connection:
    """A WAL database at ``path`` whose write lock the returned connection holds."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (x)")
        con.commit()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_a_waiting_connection_writes_once_the_lock_is_released_and_says_it_waited(tmp_path, monkeypatch):
    import threading

    from ntknas.study import sqlite_wait

    monkeypatch.setattr(sqlite_wait, "NOTICE_SECONDS", 0.2)
    holder = _locked_file(tmp_path / "a.db")
    release = threading.Timer(1.0, lambda: holder.execute("ROLLBACK"))
    release.start()
    con = sqlite_wait.connect(str(tmp_path / "a.db"), "the store", 30)
    with pytest.warns(InputWarning) as shown:
        con.execute("INSERT INTO t VALUES (1)")
        con.commit()
    release.join()
    assert [str(w.message) for w in shown] == [
        "storage the store is locked by another program: waiting up to 30 s for it (Ctrl-C stops)"
    ]
    assert con.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_a_signal_stops_a_connection_waiting_for_a_lock(tmp_path):
    """SQLite's own wait is in C, where no signal handler runs; the connection waits in Python."""
    import signal

    from ntknas.study import sqlite_wait

    class Stopped(Exception):
        pass

    def stop(signum, frame):
        raise Stopped

    holder = _locked_file(tmp_path / "a.db")
    con = sqlite_wait.connect(str(tmp_path / "a.db"), "the store", 3600)
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(Stopped):
            con.execute("INSERT INTO t VALUES (1)")  # without the signal: an hour's wait
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        holder.close()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Python 3.10's sqlite3 errors carry no error code")
def test_a_write_that_can_never_succeed_is_not_retried(tmp_path):
    """Another write after this transaction's snapshot: SQLite says "locked" (SQLITE_BUSY_SNAPSHOT)
    but no wait can help, so the error comes at once instead of after the whole wait."""
    from ntknas.study import sqlite_wait

    _locked_file(tmp_path / "a.db").close()
    con = sqlite_wait.connect(str(tmp_path / "a.db"), "the store", 3600, isolation_level=None)
    con.execute("BEGIN")
    con.execute("SELECT * FROM t").fetchall()
    with contextlib.closing(sqlite3.connect(tmp_path / "a.db")) as other:
        other.execute("INSERT INTO t VALUES (2)")
        other.commit()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        con.execute("INSERT INTO t VALUES (3)")  # retried, it would wait an hour


def test_a_write_a_dead_program_left_unfinished_is_rolled_back_and_the_study_read(tmp_path):
    """A rollback-journal database whose writer died mid-write (its pages spilled into the file): read
    as it was last committed, with one warning, not called "not an SQLite database"."""
    import subprocess
    import sys

    import tiny_study
    from test_bad_input import KINDS, matches

    path = tmp_path / "h.db"
    tiny_study.make_study(url=f"sqlite:///{path}")
    gc.collect()  # the study's connections closed: the file to ourselves
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA journal_mode=DELETE")  # another program's rollback-journal database
    before = _values(open_storage(f"sqlite:///{path}", read_only=True))
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"con = sqlite3.connect({str(path)!r})\n"
            "con.execute('PRAGMA cache_size=1')\n"
            "con.execute('BEGIN')\n"
            'con.execute("UPDATE trial_values SET value = -1")\n'
            'con.execute("UPDATE trial_user_attributes SET value_json = \'\\"x\\"\'")\n'
            "print('spilled', flush=True)\ntime.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline() == "spilled\n"
    writer.kill()  # dies mid-write: its journal stays beside the file
    writer.wait()
    assert (tmp_path / "h.db-journal").exists()
    with pytest.warns(InputWarning) as shown:
        storage = open_storage(f"sqlite:///{path}", read_only=True)
    (line,) = [str(w.message) for w in shown]
    assert matches(KINDS["a write another program left unfinished"].message, line), line
    assert _values(storage) == before and before


def _values(storage) -> list:
    return [t.values for t in optuna.load_study(study_name="tiny", storage=storage).trials]


def test_a_storage_file_moved_away_while_written_is_one_line(tmp_path):
    """SQLite goes on writing to a file no path names once it is moved (and to a journal the next
    open of the path discards): the watch says so, naming the file and how to put it back."""
    from ntknas.study.storage import file_watch

    url = f"sqlite:///{tmp_path / 'a.db'}"
    optuna.create_study(study_name="s", storage=url)
    check = file_watch(url)
    check()  # still there: nothing to say
    (tmp_path / "a.db").rename(tmp_path / "b.db")
    with pytest.raises(UserError) as info:
        check()
    from test_bad_input import KINDS, matches

    row = KINDS["a storage file moved away while written"]
    assert matches(row.message.replace("ntknas.db", "a.db"), str(info.value)), str(info.value)
    (tmp_path / "b.db").rename(tmp_path / "a.db")
    check()  # put back
    (tmp_path / "a.db").unlink()
    (tmp_path / "a.db").write_bytes(b"")  # another file at the path
    with pytest.raises(UserError, match="put the file back at"):
        check()
    file_watch("postgresql://u@localhost/x")()  # no file to watch: nothing


@pytest.mark.parametrize(
    "options", ["mode=rw&uri=true", "cache=shared&uri=true", "uri=true&mode=rwc", "uri=1"]
)
def test_an_sqlite_uri_without_file_prefix_is_refused_before_it_makes_a_stray_file(tmp_path, options):
    """SQLite reads a name as a URI only from file:; else it creates a file named with the options,
    which search would write and every other command (reading the path before '?') would not."""
    from ntknas.study.storage import open_storage

    url = f"sqlite:///{tmp_path / 'q.db'}?{options}"
    for read_only in (False, True):
        with pytest.raises(UserError, match=r"asks for an SQLite URI \(uri=true\), which SQLite reads only"):
            open_storage(url, read_only=read_only)
    assert list(tmp_path.iterdir()) == []
