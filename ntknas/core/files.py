"""Files ntknas writes (``--save``, ``--out``, checkpoints): checked before any expensive work, and
written atomically, so that a reader never sees a half-written file and an input is never lost."""

from __future__ import annotations

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


def write_atomically(path: str | Path, content: bytes | str, option: str, follow: bool = True) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same folder, flushed to disk
    and renamed over ``path``: readers see the old file or the new one, never a part. With
    ``follow``, a symbolic link at ``path`` is kept and its target replaced, with the target's
    permissions; without, the link itself is replaced and its target left alone. The folder is
    made when missing. ``option`` names the output in the message of a failure."""
    target = Path(os.path.realpath(path) if follow else os.path.abspath(path))
    data = content.encode() if isinstance(content, str) else content
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(target.stat().st_mode) if follow and target.exists() else None
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        try:
            with os.fdopen(handle, "wb") as f:
                f.write(data)
                f.flush()
                if mode is not None:
                    os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_folder(target.parent)
    except OSError as e:
        raise UserError(f"cannot write {option} {path}: {e.strerror or e}; choose a writable path") from None


def _check_folder(folder: Path, what: str) -> None:
    """UserError unless ``folder`` is a writable folder or can be made inside one."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
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
