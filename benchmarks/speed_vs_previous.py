"""Candidates per minute of today's code against a previous version's, side by side in one run, and
what ntk_score costs over the bare pNTK in each.

The previous code is ``git archive REF`` unpacked in a temporary folder. Each version runs in a
worker process of its own, and the two take the same candidates (the first ``--resnet``/``--nb201``
configurations of today's reference sample of each space) in turn, candidate by candidate, the
first to go alternating, so that the machine's load falls on both alike. A candidate costs what a
search spends on it: building the seeded network, counting its FLOPs, measuring ntk_score and the
pNTK's spectrum (``ntknas.objectives.candidates.evaluate``); the bare pNTK and its spectrum are then timed on
the same network. N = ``--n`` bundled CIFAR-10 images, bn=batch, CPU, ``--threads`` torch threads.
The two versions' ntk_score values are compared too.

    python benchmarks/speed_vs_previous.py [--previous main] [--resnet 4] [--nb201 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve(n: int, threads: int) -> None:
    """In a worker process: for each line ``space<TAB>config`` on stdin, one JSON line on stdout
    with the candidate's seconds (``candidate``: the search's work on it; ``score``: its metrics;
    ``pntk``: the bare pNTK and spectrum), its ntk_score and where ntknas was imported from. Uses
    only API that the previous version shares with today's."""
    import torch

    import ntknas
    import scores
    import search_spaces
    from ntknas.inputs import data
    from ntknas.objectives import reference
    from ntknas.objectives.candidates import evaluate, seeded_model

    torch.set_num_threads(threads)
    x, y = data.minibatch(data.load(data.BUNDLED), n, 0)
    settings = {"objective": "ntk_score", "bn": "batch", "seed": 0, "device": "cpu"}
    for line in sys.stdin:
        space_name, text = line.rstrip("\n").split("\t")
        space = search_spaces.get(space_name)
        terms = reference.lookup(space, int(x.shape[-1]), 10).terms
        start = time.perf_counter()
        attrs = evaluate(space, space.parse(text), (x, y), 10, reference=terms, **settings)
        candidate = time.perf_counter() - start
        model = seeded_model(space, space.parse(text), 10, 0)
        start = time.perf_counter()
        scores.spectrum(scores.pntk(model, x, bn="batch", device="cpu"))
        row = {"candidate": candidate, "score": attrs["seconds"], "pntk": time.perf_counter() - start}
        print(json.dumps({**row, "ntk_score": attrs["ntk_score"], "from": ntknas.__file__}), flush=True)


class Worker:
    """A :func:`serve` process that imports ntknas from ``tree``."""

    def __init__(self, tree: Path, n: int, threads: int) -> None:
        self.tree = tree
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
        args = [sys.executable, __file__, "--serve", "--n", str(n), "--threads", str(threads)]
        self.process = subprocess.Popen(
            args, env=env, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def score(self, space: str, config: str) -> dict:
        """The worker's measurements of one candidate."""
        self.process.stdin.write(f"{space}\t{config}\n")
        self.process.stdin.flush()
        row = json.loads(self.process.stdout.readline())
        if not row["from"].startswith(str(self.tree)):
            raise RuntimeError(f"the worker for {self.tree} imported ntknas from {row['from']}")
        return row

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def snapshot(ref: str, folder: Path) -> Path:
    """Today's repository at ``ref``, unpacked into ``folder``."""
    command = ["git", "archive", "--format=tar", ref]
    archive = subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def relative_difference(a: float, b: float) -> float:
    """|a − b| / |b|; 0 when they are equal (infinities included)."""
    return 0.0 if a == b else abs(a - b) / abs(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", default="main", help="git revision of the previous code")
    parser.add_argument("--resnet", type=int, default=4, help="resnet candidates")
    parser.add_argument("--nb201", type=int, default=8, help="nb201 candidates")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.n, args.threads)
        return

    sys.path.insert(0, str(ROOT))
    import search_spaces
    from ntknas.objectives import reference

    counts = {"resnet": args.resnet, "nb201": args.nb201}
    rows: dict[tuple[str, str], list[dict]] = {}
    loads = []
    with tempfile.TemporaryDirectory() as folder:
        workers = {
            "previous": Worker(snapshot(args.previous, Path(folder)), args.n, args.threads),
            "today": Worker(ROOT, args.n, args.threads),
        }
        turn = 0
        for space, count in counts.items():
            chosen = search_spaces.get(space)
            for config in reference.sample(chosen, count):
                order = list(workers) if turn % 2 == 0 else list(reversed(workers))
                for version in order:
                    rows.setdefault((space, version), []).append(
                        workers[version].score(space, chosen.describe(config))
                    )
                turn += 1
                loads.append(os.getloadavg()[0])
        for worker in workers.values():
            worker.close()
    print(
        f"N={args.n}, bn=batch, CPU, {args.threads} torch thread(s), previous = {args.previous}; "
        f"load average (1 min) from {min(loads):.1f} to {max(loads):.1f}\n"
    )
    print(
        "| space | candidates | previous /min | today /min | today / previous "
        "| ntk_score / pNTK, previous | today | ntk_score max rel. diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    medians = []
    for space, count in counts.items():
        old, new = rows[space, "previous"], rows[space, "today"]
        rate = [60 * len(rs) / sum(r["candidate"] for r in rs) for rs in (old, new)]
        cost = [sum(r["score"] for r in rs) / sum(r["pntk"] for r in rs) for rs in (old, new)]
        diff = max(relative_difference(a["ntk_score"], b["ntk_score"]) for a, b in zip(old, new, strict=True))
        print(
            f"| {space} | {count} | {rate[0]:.1f} | {rate[1]:.1f} | {rate[1] / rate[0]:.2f}× "
            f"| {cost[0]:.2f}× | {cost[1]:.2f}× | {diff:.1e} |"
        )
        ratios = [statistics.median(r["score"] / r["pntk"] for r in rs) for rs in (old, new)]
        faster = statistics.median(a["candidate"] / b["candidate"] for a, b in zip(old, new, strict=True))
        medians.append(f"{space}: ntk_score / pNTK {ratios[0]:.2f}× → {ratios[1]:.2f}×, {faster:.2f}× faster")
    print(f"\nMedians over candidates, previous → today: {'; '.join(medians)}")


if __name__ == "__main__":
    main()
