"""How many CPU threads torch may use: the CPUs this process may actually run on (its affinity
mask, capped by the CPU quota of its cgroup, as containers and batch schedulers set), shared out
among the workers."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, MutableMapping
from pathlib import Path

from ntknas.core.cgroups import MEMBERSHIP, ROOT, folders


def usable_cpus(root: Path = ROOT, membership: Path = MEMBERSHIP) -> int:
    """CPUs this process may use: its CPU affinity, capped by its cgroup's CPU quota (rounded
    down: 1.5 CPUs of quota run one thread at full speed, two throttled)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(root, membership)
    if quota is not None:
        count = min(count, math.floor(quota))
    return max(1, count)


def cpu_quota(root: Path = ROOT, membership: Path = MEMBERSHIP) -> float | None:
    """The tightest CPU quota, in CPUs (e.g. 1.5), on this process's cgroup and its ancestors;
    None when unlimited or unknown.

    cgroup v2: ``cpu.max`` holds ``QUOTA PERIOD`` or ``max PERIOD``; v1: ``cpu.cfs_quota_us``
    (−1: unlimited) and ``cpu.cfs_period_us`` under the ``cpu`` hierarchy. ``membership``
    (``/proc/self/cgroup``) names the process's cgroup; inside a container whose cgroup is the
    root of ``root``, the root's files are the container's.
    """
    quotas = [q for folder, v2 in folders("cpu", root, membership) if (q := _quota(folder, v2)) is not None]
    return min(quotas, default=None)


def _quota(folder: Path, v2: bool) -> float | None:
    """The CPU quota set on one cgroup folder, in CPUs; None when unlimited, absent or unreadable."""
    try:
        if v2:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((folder / "cpu.cfs_quota_us").read_text())
        return None if quota_us <= 0 else quota_us / int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError, ZeroDivisionError):
        return None


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes: ``threads`` when given, else the usable
    CPUs shared out among the workers, at least one each."""
    if threads is not None:
        return threads
    return max(1, usable_cpus() // workers)


# OpenMP's and MKL's settings that torch's libraries read when they load, each with the values they
# accept and how to say so.
LIBRARY_SETTINGS = {
    "OMP_NUM_THREADS": (
        re.compile(r"\s*[1-9]\d*\s*(,\s*[1-9]\d*\s*)*", re.ASCII),
        "a positive whole number such as 2",
    ),
    "MKL_NUM_THREADS": (re.compile(r"\s*[1-9]\d*\s*", re.ASCII), "a positive whole number such as 2"),
    "OMP_WAIT_POLICY": (re.compile(r"\s*(active|passive)\s*", re.ASCII | re.IGNORECASE), "ACTIVE or PASSIVE"),
}


def drop_invalid_settings(environ: MutableMapping[str, str], warn: Callable[[str], None]) -> None:
    """Remove from ``environ`` (before torch loads) each of ``LIBRARY_SETTINGS`` whose value its
    library does not accept, with one warning line naming it and the fix, instead of OpenMP's own
    "libgomp: Invalid value" line or MKL's silent fall back to one thread."""
    for name, (valid, expected) in LIBRARY_SETTINGS.items():
        value = environ.get(name)
        if value is not None and not valid.fullmatch(value):
            del environ[name]
            warn(f"environment variable {name}={value!r} is not {expected}; ignored: fix it or unset it")
