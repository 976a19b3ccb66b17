"""How many CPU threads torch may use: the CPUs this process may actually run on (its affinity
mask, capped by a container's CPU quota), shared out among the workers."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def usable_cpus() -> int:
    """CPUs this process may use: its CPU affinity, capped by a cgroup (container) CPU quota."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota()
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def cpu_quota(root: Path = CGROUP) -> float | None:
    """The cgroup's CPU quota in CPUs (e.g. 1.5), None when unlimited or unknown.

    cgroup v2: ``cpu.max`` holds ``QUOTA PERIOD`` or ``max PERIOD``; v1: ``cpu/cpu.cfs_quota_us``
    (−1: unlimited) and ``cpu/cpu.cfs_period_us``.
    """
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1_quota, v1_period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if v1_quota.is_file() and v1_period.is_file():
            quota_us = int(v1_quota.read_text())
            return None if quota_us <= 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes: ``threads`` when given, else the usable
    CPUs shared out among the workers, at least one each."""
    if threads is not None:
        return threads
    return max(1, usable_cpus() // workers)
