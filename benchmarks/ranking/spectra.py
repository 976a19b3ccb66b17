"""Spectral features of each architecture's pNTK and of its parts, from the per-group kernels
that ``features.py`` saved (``<kernels>/<index>.npz``: one upper triangle per group of modules).

Groups are NB201's: ``stem.*``, ``cells.0`` … ``cells.16`` (cells 5 and 11 are the reduction
blocks), ``lastact.0`` and ``classifier``; a cell without parameters has no kernel (zero). Stages
follow the feature-map resolution: S1 = stem + cells 0–4 (32×32), S2 = cells 5–10 (16×16),
S3 = cells 11–16 + the last BatchNorm (8×8), H = the classifier.

Per row: the whole kernel's spectrum (``log10_kappa``, ``log10_lmax``, ``log10_lmin``,
``log10_trace``, ``erank``, ``log10_kappa2`` = λ₂/λ_min, ``top_share`` = λ_max/trace); per stage s
its trace share ``share_s``, ``log10_kappa_s`` and ``erank_s``; the same for the partial sums
from the output back (``out2`` = S2+S3+H, ``out3`` = S3+H) and from the input (``in12`` = S1+S2);
the kernel alignment between stages (``align_s_t``); and the per-cell trace profile
(``cell_min_share``: the smallest normal cell's share of its stage's normal-cell trace,
``cell_slope``: mean slope of log10 trace over the five cells of each stage).

Appends to the output CSV; rows already there are skipped.

    python benchmarks/ranking/spectra.py features.csv kernels/ spectra.csv
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
from features import resume

N = 64
STAGES = {
    "S1": ["stem.0", "stem.1", *(f"cells.{i}" for i in range(5))],
    "S2": [f"cells.{i}" for i in range(5, 11)],
    "S3": [*(f"cells.{i}" for i in range(11, 17)), "lastact.0"],
    "H": ["classifier"],
}
SUMS = {"out2": ("S2", "S3", "H"), "out3": ("S3", "H"), "in12": ("S1", "S2")}
NORMAL_CELLS = [list(range(0, 5)), list(range(6, 11)), list(range(12, 17))]


def kernels(path: Path) -> dict[str, np.ndarray]:
    """Group → (N, N) kernel, from the saved upper triangles."""
    iu = np.triu_indices(N)
    out = {}
    with np.load(path) as z:
        for group in z.files:
            k = np.zeros((N, N))
            k[iu] = z[group]
            out[group] = k + np.triu(k, 1).T
    return out


def spectral(k: np.ndarray) -> dict[str, float]:
    """log10 κ, λ_max, λ_min, trace; effective rank; log10 λ₂/λ_min; λ_max/trace."""
    ev = np.linalg.eigvalsh(k)
    lmin, lmax = ev[0], ev[-1]
    ok = lmax > 0 and lmin > N * np.finfo(float).eps * lmax
    p = np.clip(ev, 0, None)
    total = p.sum()
    p = p[p > 0] / total if total > 0 else p[:0]
    return {
        "log10_kappa": math.log10(lmax / lmin) if ok else math.inf,
        "log10_lmax": math.log10(lmax) if lmax > 0 else -math.inf,
        "log10_lmin": math.log10(lmin) if ok else -math.inf,
        "log10_trace": math.log10(np.trace(k)) if np.trace(k) > 0 else -math.inf,
        "erank": math.exp(-(p * np.log(p)).sum()) if len(p) else 0.0,
        "log10_kappa2": math.log10(ev[-2] / lmin) if ok else math.inf,
        "top_share": lmax / total if total > 0 else math.nan,
    }


def row(parts: dict[str, np.ndarray]) -> dict[str, float]:
    zero = np.zeros((N, N))
    stage = {s: sum((parts.get(g, zero) for g in groups), zero) for s, groups in STAGES.items()}
    whole = sum(stage.values(), zero)
    out = spectral(whole)
    trace = np.trace(whole)
    for s, k in stage.items():
        out[f"share_{s}"] = np.trace(k) / trace
        if s != "H":
            sp = spectral(k)
            out[f"log10_kappa_{s}"], out[f"erank_{s}"] = sp["log10_kappa"], sp["erank"]
    for name, members in SUMS.items():
        sp = spectral(sum((stage[s] for s in members), zero))
        out[f"log10_kappa_{name}"], out[f"erank_{name}"] = sp["log10_kappa"], sp["erank"]
    for a, b in (("S1", "S2"), ("S2", "S3"), ("S1", "S3"), ("S3", "H")):
        na, nb = np.linalg.norm(stage[a]), np.linalg.norm(stage[b])
        out[f"align_{a}_{b}"] = float((stage[a] * stage[b]).sum() / (na * nb)) if na * nb > 0 else 0.0
    shares, slopes = [], []
    for cells in NORMAL_CELLS:
        t = np.array([np.trace(parts.get(f"cells.{c}", zero)) for c in cells])
        shares.append(t.min() / t.sum() if t.sum() > 0 else 0.0)
        if (t > 0).all():
            slopes.append(np.polyfit(np.arange(len(t)), np.log10(t), 1)[0])
    out["cell_min_share"] = float(min(shares))
    out["cell_slope"] = float(np.mean(slopes)) if slopes else math.nan
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features", help="CSV from features.py (its index column)")
    parser.add_argument("kernels", help="folder of <index>.npz from features.py")
    parser.add_argument("out", help="output CSV (appended to; existing rows are skipped)")
    args = parser.parse_args()
    with open(args.features, newline="") as f:
        indices = [r["index"] for r in csv.DictReader(f)]
    out = Path(args.out)
    done, header = resume(out)
    with out.open("a", newline="") as f:
        writer = None
        for index in indices:
            path = Path(args.kernels) / f"{index}.npz"
            if index in done or not path.exists():
                continue
            parts = kernels(path)
            values = {"index": index, **{k: repr(float(v)) for k, v in row(parts).items()}} if parts else {}
            if not values:
                continue
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=header or list(values), restval="")
                if header is None:
                    writer.writeheader()
            writer.writerow(values)


if __name__ == "__main__":
    main()
