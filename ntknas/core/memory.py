"""This process's memory: what it holds as its own, what the machine (and its cgroup) still has,
and a bound that turns running out of memory into an error instead of a kill."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from ntknas.core import cgroups

MEMINFO = Path("/proc/meminfo")
OWN_MEMORY = Path("/proc/self/smaps_rollup")
STATUS = Path("/proc/self/status")


def own_memory() -> int | None:
    """Bytes of memory this process holds as its own (private pages); where /proc does not say,
    its peak resident size (shared pages included); None when unknown."""
    try:
        fields = dict(line.split(":", 1) for line in OWN_MEMORY.read_text().splitlines()[1:])
        return sum(int(fields[k].split()[0]) * 1024 for k in ("Private_Clean", "Private_Dirty"))
    except (OSError, ValueError, KeyError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere
    except (ImportError, OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory available to new processes: the system's MemAvailable, capped by what the
    cgroup of this process may still take; None when unknown."""
    available = _meminfo("MemAvailable")
    if available is None:
        try:  # no /proc (macOS): the machine's memory
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    for limit, used in _cgroup_memory_files():
        try:
            text = limit.read_text().strip()
            if text != "max":
                available = min(available, max(0, int(text) - int(used.read_text())))
        except (OSError, ValueError):
            continue
    return available


def _cgroup_memory_files() -> list[tuple[Path, Path]]:
    """(limit, usage) files of this process's memory cgroup and its ancestors, v2 and v1."""
    names = {
        True: ("memory.max", "memory.current"),
        False: ("memory.limit_in_bytes", "memory.usage_in_bytes"),
    }
    return [
        (folder / names[v2][0], folder / names[v2][1])
        for folder, v2 in cgroups.folders("memory")
        if (folder / names[v2][0]).is_file()
    ]


def _free_swap() -> int:
    """Bytes of swap space free (SwapFree), 0 where /proc does not say."""
    return _meminfo("SwapFree") or 0


def _meminfo(key: str) -> int | None:
    """Bytes that /proc/meminfo gives for ``key`` (written in kB); None where it does not say."""
    try:
        fields = dict(line.split(":", 1) for line in MEMINFO.read_text().splitlines())
        return int(fields[key].split()[0]) * 1024
    except (OSError, ValueError, KeyError):
        return None


def _data_size() -> int | None:
    """Bytes of this process's data segment (VmData: the private writable memory it has mapped,
    what RLIMIT_DATA bounds); None where /proc does not say."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def bound_to_available() -> Callable[[], None] | None:
    """Bound this process's data memory (the soft RLIMIT_DATA) to what it maps now plus what the
    machine has available (:func:`available_memory`, and free swap, which the kernel fills before
    it kills), so that an allocation the machine cannot give fails at once with an error (torch:
    "can't allocate memory", Python: MemoryError), which is reported in one line, instead of the
    kernel's out-of-memory killer ending the process without a word and leaving its trial running.
    Returns what restores the previous limit; None where nothing was bounded (no RLIMIT_DATA,
    sizes unknown, or a lower limit already set).

    For computing on the CPU only: a GPU's memory is not the process's data, and torch reports a
    GPU running out as an error of its own."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    data, available = _data_size(), available_memory()
    if data is None or available is None:
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        bound = data + available + _free_swap()
        if hard != resource.RLIM_INFINITY:
            bound = min(bound, hard)
        if soft != resource.RLIM_INFINITY and soft <= bound:
            return None
        resource.setrlimit(resource.RLIMIT_DATA, (bound, hard))
    except (AttributeError, OSError, ValueError):  # no RLIMIT_DATA here, or the system refused
        return None
    return lambda: resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
