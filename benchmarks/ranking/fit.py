"""Fit candidate ranking scores on 600 tuning NAS-Bench-201 architectures and check them on the
development file's other architectures, against the previous default and the baselines.

A candidate is Σ_t w_t · norm_t(term_t): each term (``table.TERMS``, oriented so that higher is
better) is normalised by its distribution over a reference sample of the space's own
architectures (seeded, uniform, no accuracies; ``features.py reference``), as a z-score
(``z``) or as the log of its empirical CDF (``logcdf``, AZ-NAS's Σ log(rank/N) with the
reference as the population); the weights are shared across spaces. Weights are fitted by
coordinate ascent on a grid, maximising Kendall τ with CIFAR-10 accuracy + 0.1 × the
best-of-100 pick (%), as ``benchmarks/fit_default.py`` does, on the tuning rows only.

Prints, for the held-out rows: τ and ρ against CIFAR-10, CIFAR-100 and ImageNet16-120 accuracy
and the best-of-100 pick, for the baselines, today's default, ``CANDIDATE`` (fixed weights, the
recommendation) and a refit of the candidate's terms; then the refit on other 600-architecture
folds (shuffle seeds), each checked on the rest.

    python benchmarks/ranking/fit.py NOTES   # NOTES: the folder with the CSVs of features.py/spectra.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import table as T

from ntknas.scoring.ranking import average_ranks

GRID = (-2.0, -1.0, -0.5, -0.25, -0.125, 0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
SWEEPS = 3
FOLDS = (1, 2, 3, 4)

# The recommendation: term → weight, with the normalisation of every term.
CANDIDATE_NORM = "logphi/2"
CANDIDATE: dict[str, float] = {"synflow": 1.0, "az_expressivity": 0.75, "neg_lmax": 0.25}
OTHER_REFERENCES = 10  # 200-architecture samples of the held-out rows' features (no accuracies)

BASELINES = (
    "previous_ntk_score",
    "params",
    "synflow",
    "naswot",
    "neg_kappa",
    "meco",
    "swap",
    "az_expressivity",
)
AZ_NAS = {"az_expressivity": 1.0, "az_progressivity": 1.0, "az_trainability": 1.0, "flops": 1.0}


def normalised(t: T.Table, ref: T.Table, terms, how: str) -> dict[str, np.ndarray]:
    return {name: T.normalise(T.TERMS[name](t), T.TERMS[name](ref), how) for name in terms}


def candidate(t: T.Table, ref: T.Table, weights: dict[str, float]) -> np.ndarray:
    """The candidate with these weights; −inf where the pNTK is singular (κ = ∞), as today."""
    s = combine(normalised(t, ref, weights, CANDIDATE_NORM), weights)
    return np.where(np.isfinite(t["log10_kappa"]), s, -np.inf)


def combine(parts: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Σ weight × normalised term; NaN-free (a −inf term makes the score −inf)."""
    used = [n for n, w in weights.items() if w]
    s = sum(weights[n] * parts[n] for n in used)
    failed = np.any([parts[n] == -np.inf for n in used], axis=0)
    return np.where(failed | np.isnan(s), -np.inf, s)


def objective(parts: dict[str, np.ndarray], t: T.Table, target: str, draws: int = 1000):
    """The fit's objective of weights: Kendall τ with CIFAR-10 accuracy (``c10``) or the mean τ
    over the three datasets (``mean3``), + 0.1 × the CIFAR-10 best-of-100 pick (%)."""
    columns = [T.ACCURACIES["c10"]] if target == "c10" else list(T.ACCURACIES.values())

    def value(w: dict[str, float]) -> float:
        s = combine(parts, w)
        tau = np.mean([T.fast_tau(s, t[c]) for c in columns])
        return tau + 0.1 * T.pick(s, t[T.ACCURACIES["c10"]], draws)["mean_acc"]

    return value


def fit(parts: dict[str, np.ndarray], t: T.Table, start: dict[str, float], target: str) -> dict[str, float]:
    """Coordinate ascent over ``GRID`` from ``start`` on ``objective``."""
    value = objective(parts, t, target)
    w = dict(start)
    best = value(w)
    for _ in range(SWEEPS):
        for name in parts:
            for v in GRID:
                trial = {**w, name: v}
                if any(trial.values()) and (x := value(trial)) > best + 1e-12:
                    best, w = x, trial
    return w


def population_rank_sum(t: T.Table, terms) -> np.ndarray:
    """AZ-NAS as published: Σ_m log(rank_m / n) with ranks within the scored population itself."""
    total = np.zeros(len(t["index"]))
    for name in terms:
        v = T.finite(T.TERMS[name](t))
        total += np.log(average_ranks(v) / len(v))
    return total


def line(label: str, e: dict[str, float]) -> str:
    return (
        f"  {label:34s} τ10 {e['tau_c10']:.3f} ρ10 {e['rho_c10']:.3f} | τ100 {e['tau_c100']:.3f} "
        f"ρ100 {e['rho_c100']:.3f} | τ16 {e['tau_in16']:.3f} ρ16 {e['rho_in16']:.3f} | "
        f"best of 100 {e['pick']:.2f} ± {e['pick_std']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notes", type=Path, help="folder with dev_/reference_ features and spectra CSVs")
    parser.add_argument("--tune", type=int, default=600)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--target", choices=("c10", "mean3"), default="c10", help="refits' objective")
    args = parser.parse_args()
    t = T.read(args.notes / "dev_features.csv", args.notes / "dev_spectra.csv")
    ref = T.read(args.notes / "reference_features.csv", args.notes / "reference_spectra.csv")
    tune, held = T.split(t["index"], args.tune, 1)
    tt, th = T.rows(t, tune), T.rows(t, held)
    print(f"{len(tune)} tuning, {len(held)} held-out architectures; reference sample {len(ref['index'])}")
    print(f"optimum of each draw: {T.evaluate(th['cifar10_test_acc'], th, args.draws)['optimum']:.2f} %")
    print("held out:")
    for name in BASELINES:
        print(line(name, T.evaluate(T.finite(T.TERMS[name](th)), th, args.draws)))
    print(
        line("AZ-NAS, Σ log(rank/n) in held-out", T.evaluate(population_rank_sum(th, AZ_NAS), th, args.draws))
    )
    az_ref = combine(normalised(th, ref, AZ_NAS, "logcdf"), AZ_NAS)
    print(line("AZ-NAS, Σ log CDF of reference", T.evaluate(az_ref, th, args.draws)))
    print(line("candidate", T.evaluate(candidate(th, ref, CANDIDATE), th, args.draws)))
    print(line("candidate on the tuning rows", T.evaluate(candidate(tt, ref, CANDIDATE), tt, args.draws)))
    rng = np.random.default_rng(1)
    others = [
        T.evaluate(candidate(th, T.rows(th, rng.choice(len(held), 200, replace=False)), CANDIDATE), th, 500)
        for _ in range(OTHER_REFERENCES)
    ]
    print(f"candidate normalised by {OTHER_REFERENCES} other 200-architecture reference samples:")
    for key in ("tau_c10", "rho_c10", "tau_c100", "rho_c100", "tau_in16", "rho_in16", "pick"):
        v = [e[key] for e in others]
        print(f"  {key:8s} mean {np.mean(v):.3f}  range {min(v):.3f} to {max(v):.3f}")
    refit = fit(normalised(tt, ref, CANDIDATE, CANDIDATE_NORM), tt, CANDIDATE, args.target)
    print(f"refit on the tuning rows ({args.target}): {refit}")
    print(line("refit", T.evaluate(candidate(th, ref, refit), th, args.draws)))
    print("refits of the candidate's terms on other folds (held out: the rest):")
    for seed in FOLDS:
        ft, fh = T.split(t["index"], args.tune, seed)
        a, b = T.rows(t, ft), T.rows(t, fh)
        w = fit(normalised(a, ref, CANDIDATE, CANDIDATE_NORM), a, CANDIDATE, args.target)
        print(f"  fold {seed}: {w}")
        print(line(f"fold {seed} refit", T.evaluate(candidate(b, ref, w), b, args.draws)))
        print(line(f"fold {seed} candidate", T.evaluate(candidate(b, ref, CANDIDATE), b, args.draws)))
        print(
            line(
                f"fold {seed} previous", T.evaluate(T.finite(T.TERMS["previous_ntk_score"](b)), b, args.draws)
            )
        )


if __name__ == "__main__":
    main()
