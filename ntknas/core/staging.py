"""A new folder of files, written whole or not at all: checked before any work, filled in a
hidden folder beside it, and renamed into place only once every file is written."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ntknas.core.errors import UserError
from ntknas.core.files import make_folders, write_failure

# What renaming the staged folder onto ``out`` says when ``out`` is there already, and not empty.
TAKEN = frozenset({errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR})


def check_new_folder(out: Path, option: str = "--out") -> None:
    """UserError unless ``out`` can become a new folder: absent (or an empty folder, not a link)
    under a folder this process may write to. Nothing is created."""
    try:
        if out.is_symlink():  # what it points to is not this tool's to replace, nor to write into
            raise UserError(
                f"{option} {out} is a symbolic link to {os.readlink(out)}; give a new folder, "
                f"e.g. {option} {free_name(out)}"
            )
        if out.exists():
            if not out.is_dir():
                what = "a file" if out.is_file() else "not a folder (a device or another special file)"
                raise UserError(
                    f"{option} {out} is {what}; give a new folder, e.g. {option} {free_name(out)}"
                )
            if any(out.iterdir()):
                raise UserError(
                    f"{option} {out} is not empty; give a new folder, so that nothing is overwritten, "
                    f"e.g. {option} {free_name(out)}"
                )
        ancestor = out.absolute().parent
        while not ancestor.exists():
            ancestor = ancestor.parent
    except OSError as e:
        raise UserError(f"cannot use {option} {out}: {e.strerror or e}; choose another {option}") from None
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(
            f"cannot write {option} {out}: {ancestor} is not a writable folder; choose another {option}"
        )


def free_name(out: Path) -> Path:
    """The first of ``out-2``, ``out-3``, ... that does not exist; for a folder given without a
    name of its own (``.``, ``..``, ``/``, or an empty --out), a new one inside it; for one in a
    folder this process cannot (or should not: ``/dev``) write to, in the working directory."""
    if out.name in ("", ".."):
        out = out / "new"
        if not out.exists():
            return out
    parent = out.absolute().parent
    if not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)) or parent == Path("/dev"):
        out = Path(out.name)  # a name beside one in a folder no one writes to (/dev): here instead
    n = 2
    while (candidate := out.with_name(f"{out.name}-{n}")).exists():
        n += 1
    return candidate


@contextmanager
def staged(out: Path, option: str = "--out") -> Iterator[Path]:
    """A new hidden folder beside ``out`` to write into; renamed to ``out`` when the block ends
    normally, removed (with any parent folders made for it) when it raises. ``out`` must be
    absent or an empty folder (see :func:`check_new_folder`). An OSError in the block is a write
    that failed (a full disk, a quota, a disk error): it becomes the one line of
    :func:`~ntknas.core.files.write_failure`, and nothing is left behind."""
    made: list[Path] = []
    try:
        made = [p for p in out.absolute().parents if not p.exists()]
        make_folders(out.absolute().parent)
        temp = out.absolute().with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
        temp.mkdir()
    except OSError as e:
        _remove_folders(made)
        raise UserError(write_failure(e, f"{option} {out}")) from None
    try:
        try:
            yield temp
        except OSError as e:
            raise UserError(write_failure(e, f"{option} {out}")) from None
        try:
            os.rename(temp, out)  # atomic; replaces ``out`` only when it is an empty folder
        except OSError as e:
            if e.errno not in TAKEN:
                raise UserError(write_failure(e, f"{option} {out}")) from None
            raise UserError(
                f"cannot create {option} {out}: {e.strerror or e}; give a new folder, e.g. {option} "
                f"{free_name(out)}"
            ) from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        _remove_folders(made)
        raise


def _remove_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) where they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass
