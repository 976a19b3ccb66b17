"""The per-architecture features of ``features.py`` and ``spectra.py`` as one table, the candidate
terms read from it, their normalisation by a reference sample, and the evaluation protocol
(tuning/held-out split, rank correlations, best-of-100 pick)."""

from __future__ import annotations

import csv
import math
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ntknas.run.benchmark import search_experiment
from ntknas.scoring.ranking import kendall_tau, spearman_rho

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for fit_default
from fit_default import previous

ACCURACIES = {"c10": "cifar10_test_acc", "c100": "cifar100_test_acc", "in16": "imagenet16_test_acc"}
BLOCKS = 18  # the stem and 17 cells
Table = dict[str, np.ndarray]


def read(features: str, *more: str) -> Table:
    """Every row of ``features`` joined with its rows in the ``more`` CSVs (``spectra.py``,
    ``layer_features.py``), sorted by index; every column as a float array (NaN: empty or absent,
    e.g. an architecture that failed or is not scored yet), ``index`` as int (reference rows
    ``ref<i>`` become −1 − i) and ``arch`` as strings."""
    extra: list[dict[str, dict[str, str]]] = []
    blank: dict[str, str] = {}
    for path in more:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            extra.append({r["index"]: r for r in reader})
            blank.update(dict.fromkeys(reader.fieldnames or [], ""))
    with open(features, newline="") as f:
        rows = []
        for r in csv.DictReader(f):
            row = {**blank, **r}
            for e in extra:
                row.update(e.get(r["index"], {}))
            rows.append(row)
    key = [int(r["index"]) if not r["index"].startswith("ref") else -1 - int(r["index"][3:]) for r in rows]
    rows = [r for _, r in sorted(zip(key, rows, strict=True), key=lambda p: p[0])]
    table: Table = {"index": np.array(sorted(key)), "arch": np.array([r["arch"] for r in rows])}
    for name in rows[0]:
        if name not in table:
            table[name] = np.array([float(r[name]) if r.get(name) else math.nan for r in rows])
    return table


def rows(table: Table, which: np.ndarray) -> Table:
    return {k: v[which] for k, v in table.items()}


def _block_sum(t: Table, prefix: str) -> np.ndarray:
    return np.sum([t[f"{prefix}_{b}"] for b in range(BLOCKS) if f"{prefix}_{b}" in t], axis=0)


def _az_progressivity(t: Table) -> np.ndarray:
    e = np.stack([t[f"expr_{b}"] for b in range(BLOCKS)])
    return np.min(e[1:] - e[:-1], axis=0)


def _previous_default(t: Table) -> np.ndarray:
    """The previous default (``fit_default.previous``) of these columns."""
    out = []
    for i in range(len(t["index"])):
        row = {
            "condition_number": str(10 ** t["log10_kappa"][i]),
            "lambda_max": str(10 ** t["log10_lmax"][i]),
            "effective_rank": str(t["erank"][i]),
            "synflow": str(t["synflow"][i]),
            "params": str(t["params"][i]),
        }
        out.append(previous(row))
    return np.array(out)


# Candidate terms, oriented so that higher is better (raw units; see ``normalise``).
TERMS: dict[str, Callable[[Table], np.ndarray]] = {
    "previous_ntk_score": _previous_default,
    "neg_kappa": lambda t: -t["log10_kappa"],
    "neg_lmax": lambda t: -t["log10_lmax"],
    "lmin": lambda t: t["log10_lmin"],
    "neg_erank": lambda t: -t["erank"],
    "trace": lambda t: t["log10_trace"],
    "neg_kappa2": lambda t: -t["log10_kappa2"],
    "synflow": lambda t: t["synflow"],
    "params": lambda t: np.log10(t["params"]),
    "flops": lambda t: np.log10(t["flops"]),
    "naswot": lambda t: t["naswot"],
    "swap": lambda t: np.log10(t["swap"]),
    "az_expressivity": lambda t: _block_sum(t, "expr"),
    "az_progressivity": _az_progressivity,
    "az_trainability": lambda t: _block_sum(t, "train") / (BLOCKS - 1),
    "meco": lambda t: _block_sum(t, "meco"),
    **{
        f"expr_{s}": (lambda t, blocks=blocks: np.sum([t[f"expr_{b}"] for b in blocks], axis=0))
        for s, blocks in (("S1", range(1, 6)), ("S2", range(6, 12)), ("S3", range(12, 18)))
    },
    **{
        f"meco_{s}": (lambda t, blocks=blocks: np.sum([t[f"meco_{b}"] for b in blocks], axis=0))
        for s, blocks in (("S1", range(1, 6)), ("S2", range(6, 12)), ("S3", range(12, 18)))
    },
    **{f"share_{s}": (lambda t, s=s: t[f"share_{s}"]) for s in ("S1", "S2", "S3", "H")},
    **{
        f"neg_kappa_{s}": (lambda t, s=s: -t[f"log10_kappa_{s}"])
        for s in ("S1", "S2", "S3", "out2", "out3", "in12")
    },
    **{f"erank_{s}": (lambda t, s=s: t[f"erank_{s}"]) for s in ("S1", "S2", "S3", "out2", "out3", "in12")},
    **{
        f"align_{a}_{b}": (lambda t, a=a, b=b: t[f"align_{a}_{b}"])
        for a, b in (("S1", "S2"), ("S2", "S3"), ("S1", "S3"), ("S3", "H"))
    },
    "cell_min_share": lambda t: t["cell_min_share"],
    "cell_slope": lambda t: t["cell_slope"],
    "top_share": lambda t: t["top_share"],
    "neg_trace": lambda t: -t["log10_trace"],
    **{
        f"expr_conv_{agg}{stage}": (lambda t, c=f"expr_conv_{agg}{stage}": t[c] if c in t else np.nan)
        for agg in ("sum", "mean")
        for stage in ("", "_r0", "_r1", "_r2")
    },
}


def finite(v: np.ndarray) -> np.ndarray:
    """Non-finite values (failed, singular) become −inf: rank last."""
    return np.where(np.isfinite(v), v, -np.inf)


def normalise(v: np.ndarray, ref: np.ndarray, how: str) -> np.ndarray:
    """A term's values placed in its reference distribution ``ref`` (the same term on a seeded
    random sample of the space, no accuracies): ``z`` = (v − mean)/std over the finite reference
    values; ``cdf`` = the mid-rank empirical CDF (ties count half, +½ smoothing, in (0, 1));
    ``logcdf`` = log of it (AZ-NAS's Σ log(rank/N) with the reference as the population)."""
    v, ref = finite(v), finite(ref)
    good = ref[np.isfinite(ref)]
    if how in ("z", "logphi") or how.startswith("logphi/"):
        z = (v - good.mean()) / good.std()
        if how.startswith("logphi/"):  # a wider (softer) normal: log Φ(z / width)
            return log_phi(z / float(how.split("/")[1]))
        return z if how == "z" else log_phi(z)
    if how in ("rz", "logphi_r"):
        q1, q2, q3 = np.percentile(good, [25, 50, 75])
        z = (v - q2) / ((q3 - q1) / 1.349)
        return z if how == "rz" else log_phi(z)
    s = np.sort(ref)
    below = np.searchsorted(s, v, side="left")
    upto = np.searchsorted(s, v, side="right")
    u = (below + 0.5 * (upto - below) + 0.5) / (len(s) + 1)
    return np.log(u) if how == "logcdf" else u


def log_phi(z: np.ndarray) -> np.ndarray:
    """log Φ(z), the standard normal CDF, accurate in both tails; −inf stays −inf."""
    z = np.asarray(z, dtype=np.float64)
    out = np.full(z.shape, -np.inf)
    ok = np.isfinite(z) | (z == np.inf)
    erfc = np.vectorize(math.erfc)
    zz = np.where(ok, np.clip(z, -30, 30), 0.0)
    out[ok] = np.log(0.5 * erfc(-zz[ok] / math.sqrt(2)))
    return out


def split(indices: np.ndarray, tune: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the tuning and held-out rows: the development file's rows in index order,
    shuffled by ``random.Random(seed)`` (``fit_default.py``'s protocol), the first ``tune`` tuning.
    Rows absent from ``indices`` (not yet scored) are skipped."""
    order = sorted(indices.tolist())
    random.Random(seed).shuffle(order)
    where = {v: i for i, v in enumerate(indices.tolist())}
    first = set(order[:tune])
    tuning = np.array([where[v] for v in order if v in first])
    held = np.array([where[v] for v in order if v not in first])
    return tuning, held


def fast_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall τ-b, vectorised (for fitting; equals ``ntknas.scoring.ranking.kendall_tau``)."""
    a = np.where(np.isfinite(a), a, -1e300)
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    n = len(a)
    pairs = n * (n - 1)
    concord = float((da * db).sum())
    ta, tb = float((da == 0).sum() - n), float((db == 0).sum() - n)
    return concord / math.sqrt((pairs - ta) * (pairs - tb))


def pick(s: np.ndarray, acc: np.ndarray, draws: int = 2000) -> dict[str, float]:
    """Best of 100 random architectures by the score (``ntknas benchmark --search 100``)."""
    return search_experiment(s, True, acc, 100, draws, 0)


def evaluate(s: np.ndarray, t: Table, draws: int = 2000) -> dict[str, float]:
    """τ and ρ against each accuracy column, and the best-of-100 pick on CIFAR-10."""
    out = {}
    for short, column in ACCURACIES.items():
        out[f"tau_{short}"] = kendall_tau(s, t[column])
        out[f"rho_{short}"] = spearman_rho(s, t[column])
    p = pick(s, t[ACCURACIES["c10"]], draws)
    out["pick"], out["pick_std"], out["optimum"] = p["mean_acc"], p["std_acc"], p["optimum_mean_acc"]
    return out
