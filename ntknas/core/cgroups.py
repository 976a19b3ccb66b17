"""This process's cgroups, v2 and v1, read one way for every limit ntknas honours (the CPU quota
that sizes torch's threads, the memory that bounds the number of workers)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
MEMBERSHIP = Path("/proc/self/cgroup")


def folders(controller: str, root: Path = ROOT, membership: Path = MEMBERSHIP) -> list[tuple[Path, bool]]:
    """Each cgroup folder (and whether it is cgroup v2) from this process's own cgroup up to the
    root of each hierarchy that can hold ``controller``'s limits (``cpu``, ``memory``).

    ``membership`` (``/proc/self/cgroup``) names the process's cgroups; inside a container whose
    cgroup is the root of ``root``, the root's files are the container's. v1 hierarchies are
    looked for at ``root/<controller>`` and, for ``cpu``, ``root/cpu,cpuacct``.
    """
    paths = {"v2": "/", "v1": "/"}
    try:
        for line in membership.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":
                paths["v2"] = path
            elif controller in controllers.split(","):
                paths["v1"] = path
    except (OSError, ValueError):
        pass
    v1 = [root / controller] + ([root / "cpu,cpuacct"] if controller == "cpu" else [])
    bases = {"v2": [root], "v1": v1}
    found = []
    for version, path in paths.items():
        for base in bases[version]:
            relative = Path(path.lstrip("/"))
            for part in (relative, *relative.parents):
                if (base / part).is_dir():
                    found.append((base / part, version == "v2"))
    return found
