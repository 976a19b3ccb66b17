"""Files ntknas writes (``--save``, ``--out``, checkpoints): checked before any expensive work, and
written atomically, so that a reader never sees a half-written file and an input is never lost."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path

from ntknas.core.errors import UserError

# A name that is a folder name as it is: letters, digits, _, . and -, up to 100 characters
# (at most 200 bytes in UTF-8, well within a file system's 255), and not . or .. (nor ..., which
# some tools read as a path too).
PLAIN = re.compile(r"[\w.-]{1,100}")
# What a write that fails for want of room says: no space, a quota reached, a file too large.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def folder_name(name: str) -> str:
    """``name`` (e.g. a study name) made into one safe folder name: ``name`` itself when it is
    plain (see ``PLAIN``), else its plain characters (at most 40, each other one as ``_``) and a
    digest of the whole of it. It never holds a ``/``, is never ``.`` or ``..``, fits in any file
    system, and two names never get the same folder (``a/b`` and ``a_b`` included)."""
    if PLAIN.fullmatch(name) and name.strip(".") and len(name.encode()) <= 200:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    plain = re.sub(r"[^\w.-]", "_", name)[:40].strip(".")
    return f"{plain}-{digest}" if plain else digest


def check_writable(path: str | Path, option: str) -> Path:
    """``path`` when a file can be written there: not a folder or a special file, not read-only,
    in a folder that exists and is writable or can be made inside one. ``option`` names the
    output in the message (e.g. ``--save file``)."""
    path = Path(path)
    if path.exists():
        if path.is_dir():
            raise UserError(f"cannot write {option} {path}: it is a folder; give a file path")
        if not stat.S_ISREG(path.stat().st_mode):
            raise UserError(f"cannot write {option} {path}: it is not a regular file; give a file path")
        if not os.access(path, os.W_OK):
            raise UserError(f"cannot write {option} {path}: the file is read-only; choose another path")
    _check_folder(path.parent, f"{option} {path}")
    return path


def check_writable_folder(path: str | Path, option: str) -> Path:
    """``path`` when files can be written into it: a writable folder, or a new one that can be made
    inside a writable folder."""
    path = Path(path)
    _check_folder(path, f"{option} {path}")
    return path


def check_not_input(path: str | Path, option: str, inputs: dict[str, str | Path]) -> None:
    """UserError when ``path`` is the same file as one of ``inputs`` (option → path), by name, by
    symbolic link or by hard link: an output never replaces an input."""
    for name, given in inputs.items():
        if Path(path).exists() and Path(given).exists() and os.path.samefile(path, given):
            raise UserError(
                f"{option} {path} is the {name} file {given}; writing it would destroy that input: "
                "choose another path"
            )


def write_failure(error: OSError, what: str) -> str:
    """The one line on ``error``, raised writing ``what`` (e.g. ``--out pick``): what happened and
    the fix. Every writer of files reports its failures through this."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno in DISK_FULL:
        return f"disk full writing {what} ({reason}): free space and run the same command"
    if error.errno == errno.EIO:
        return f"the disk failed writing {what} ({reason}): check the disk, then run the same command"
    return f"cannot write {what}: {reason}; choose a writable path"


# What to do about a path that the system refused, by the reason it gave.
PATH_FIXES = {
    errno.ENAMETOOLONG: "give a shorter path",
    errno.EACCES: "check its permissions, or give another path",
    errno.EPERM: "check its permissions, or give another path",
    errno.ELOOP: "it leads through a loop of links: fix the link, or give another path",
    errno.ENOTDIR: "a part of it is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder: give a file",
    errno.ENOENT: "check the path",
}


def path_failure(error: OSError) -> str | None:
    """The one line on ``error``, raised using a path a user named (too long, unreadable, a loop
    of links, ...): the path, what happened and the fix; None when it names no path."""
    if error.filename is None:
        return None
    reason = error.strerror or type(error).__name__
    fix = PATH_FIXES.get(error.errno, "check the path")
    return f"cannot use {os.fsdecode(error.filename)}: {reason[:1].lower()}{reason[1:]}; {fix}"


def missing(path: str | Path) -> str | None:
    """Why ``path`` names nothing to read, in a phrase ("does not exist", "is a loop of symbolic
    links", "is a broken symbolic link to T", or the system's reason); None when it names a file
    or folder."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a loop of symbolic links"
        if os.path.islink(path):
            return f"is a broken symbolic link to {os.readlink(path)}"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return "does not exist"
        reason = e.strerror or type(e).__name__
        return f"cannot be read ({reason[:1].lower()}{reason[1:]})"
    except ValueError:  # a NUL byte
        return "is not a valid path (it holds a NUL character)"
    return None


def refuse_link(path: str | Path, what: str) -> None:
    """UserError when ``path``, a file or folder this tool names and writes itself (``what``, e.g.
    "checkpoint"), is a symbolic link: another account or program put it there, and neither it
    nor what it points to is read or written."""
    if os.path.islink(path):
        raise UserError(
            f"{what} {path} is a symbolic link to {os.readlink(path)}, not one ntknas made; "
            "remove the link and run the same command"
        )


def make_folders(folder: str | Path, mode: int = 0o777) -> None:
    """Make ``folder`` (with ``mode``, less the umask) and its missing parents, as
    ``Path.mkdir(parents=True, exist_ok=True)`` does, but level by level in a loop: a path
    thousands of folders deep is an OSError of the system (too long) or made, never Python's
    RecursionError. FileExistsError when a part is a file; on any error, the folders it made are
    removed again."""
    chain = [Path(os.path.abspath(folder))]  # the folder, then its parents up to one that exists
    while not chain[-1].is_dir() and chain[-1].parent != chain[-1]:
        chain.append(chain[-1].parent)
    made: list[Path] = []
    try:
        for part in reversed(chain):
            if part.is_dir():
                continue
            try:
                part.mkdir(mode if part == chain[0] else 0o777)
                made.append(part)
            except FileExistsError:
                if not part.is_dir():
                    raise
    except OSError:
        for part in reversed(made):  # nothing partial is left behind
            with contextlib.suppress(OSError):
                part.rmdir()
        raise


def write_new(path: str | Path, data: bytes) -> None:
    """Write ``data`` to the new file ``path`` (never a link or an existing file) and flush it to
    disk. OSError when that fails: the caller removes the partial file, with its folder."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)  # the umask applies
    try:
        _write_all(handle, data)
        os.fsync(handle)
    finally:
        os.close(handle)


def write_atomically(path: str | Path, content: bytes | str, option: str, follow: bool = True) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same folder, flushed to disk
    and renamed over ``path``: readers see the old file or the new one, never a part. With
    ``follow``, a symbolic link at ``path`` is kept and its target replaced, with the target's
    permissions; without, the link itself is replaced and its target left alone. The folder is
    made when missing. ``option`` names the output in the message of a failure
    (:func:`write_failure`), after which nothing new is left behind."""
    target = Path(os.path.realpath(path) if follow else os.path.abspath(path))
    data = content.encode() if isinstance(content, str) else content
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        make_folders(target.parent)
        mode = stat.S_IMODE(target.stat().st_mode) if follow and target.exists() else None
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        try:
            try:
                _write_all(handle, data)
                if mode is not None:
                    os.fchmod(handle, mode)
                os.fsync(handle)
            finally:
                os.close(handle)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_folder(target.parent)
    except OSError as e:
        raise UserError(write_failure(e, f"{option} {path}")) from None


def _write_all(handle: int, data: bytes) -> None:
    """Write all of ``data`` to the open file ``handle`` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view) :]


def _check_folder(folder: Path, what: str) -> None:
    """UserError unless ``folder`` is a writable folder or can be made inside one."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link, or a loop: nothing can be written through it
            raise UserError(
                f"cannot write {what}: {existing} is a link that leads nowhere (dangling, or a loop); "
                "choose another path"
            )
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write {what}: {existing} is not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {what}: the folder {existing} is not writable; choose another path")


def _fsync_folder(folder: Path) -> None:
    """Flush the folder's entry of a renamed file to disk (where the platform allows it)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
