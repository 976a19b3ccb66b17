"""A full disk (or a quota, or a failing disk) at the one boundary where ntknas writes files:
``os.write`` (ntknas.core.files). Writes to files whose path holds a marker fail, after half of the
data went to the file, as a disk that fills up mid-file does."""

import errno
import os


def fail_writes(monkeypatch, marker: str, skip: int = 0, code: int = errno.ENOSPC) -> list[str]:
    """From the ``skip``-th write on (0: the first) to a file whose path holds ``marker``, write
    half of the data and raise OSError ``code``. Returns the paths written (or tried), in order."""
    written: list[str] = []
    write = os.write

    def full(handle: int, data) -> int:
        path = os.readlink(f"/proc/self/fd/{handle}")
        if marker not in path:
            return write(handle, data)
        written.append(path)
        if len(written) <= skip:
            return write(handle, data)
        write(handle, bytes(data[: len(data) // 2]))
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", full)
    return written
