"""How long the light commands take: ``ntknas --help``, ``spaces``, ``studies`` and ``results``,
each timed as a whole process, through ``python -m ntknas`` and through the console script.

Runs in a temporary folder, after a small real search there (nb201, 3 configurations, N = 8) gives
``studies`` and ``results`` a study to read. Prints, per command and launcher, the median over
``--repeats`` runs of the wall-clock time and of the CPU time (user + system), the wall time's
ratio to the 1 s target, and the load average before and after. ``--compare DIR`` also times the
checkout in DIR (an older commit, say), its runs interleaved with this checkout's.

    python benchmarks/cli_startup.py --repeats 5
    git archive HEAD~3 | tar -x -C /tmp/old && python benchmarks/cli_startup.py --compare /tmp/old
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (["--help"], ["spaces"], ["studies"], ["results"])
TARGET_SECONDS = 1.0
SETUP = [
    *("search", "--space", "nb201", "--trials", "3", "--batch-size", "8", "--sampler", "random"),
    *("--threads", "1"),
]


def launchers() -> dict[str, list[str]]:
    """``python -m ntknas`` and, when installed beside this Python, the ``ntknas`` console script."""
    found = {"python -m ntknas": [sys.executable, "-m", "ntknas"]}
    script = Path(sys.executable).parent / "ntknas"
    if script.is_file():
        found["ntknas (console script)"] = [str(script)]
    return found


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], folder: Path, checkout: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run of ``argv`` in ``folder``, importing ntknas from
    ``checkout`` whichever ntknas is installed; fails loudly if the command fails."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")])),
    }
    cpu, start = children_cpu(), time.perf_counter()
    subprocess.run(argv, cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compare", type=Path, action="append", default=[], help="another checkout to time")
    args = parser.parse_args()
    checkouts = [ROOT, *(p.resolve() for p in args.compare)]
    folder = Path(tempfile.mkdtemp(prefix="ntknas-startup-"))
    runs: dict[tuple[str, str, Path], list[tuple[float, float]]] = {}
    try:
        setup = [sys.executable, "-m", "ntknas", *SETUP]
        subprocess.run(
            setup, cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True
        )
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            for command in COMMANDS:
                for label, launcher in launchers().items():
                    for checkout in checkouts:
                        key = (f"ntknas {' '.join(command)}", label, checkout)
                        runs.setdefault(key, []).append(timed([*launcher, *command], folder, checkout))
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"{os.cpu_count()} CPUs; load average (1, 5, 15 min) {load_before[0]:.2f} {load_before[1]:.2f} "
        f"{load_before[2]:.2f} before, {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} after; "
        f"median of {args.repeats}\n"
    )
    print("| command | launcher | checkout | wall (s) | CPU (s) | wall / 1 s |")
    print("|---|---|---|---:|---:|---:|")
    for (command, label, checkout), timings in runs.items():
        wall = statistics.median(w for w, _ in timings)
        cpu = statistics.median(c for _, c in timings)
        print(
            f"| `{command}` | {label} | {checkout} | {wall:.2f} | {cpu:.2f} | {wall / TARGET_SECONDS:.2f} |"
        )


if __name__ == "__main__":
    main()
