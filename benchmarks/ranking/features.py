"""Every candidate ranking feature of NAS-Bench-201 architectures, one row each, resumable.

For each architecture (built by ``ntknas.run.search.seeded_model(space, config, 10, seed)``, scored on
``data.minibatch(data.load("cifar10-sample"), 64, seed)`` with bn="batch", as ``ntknas benchmark``
does) this writes one CSV row of cheap proxies and saves the pNTK split per block
(``scores.layer_kernels``, one (N, N) float64 kernel per group of modules, upper triangles) to
``<kernels>/<index>.npz``, from which ``spectra.py`` derives the spectral features.

Per row: accuracies (when given), ``params``, ``flops``, ``synflow`` (log10), ``naswot``; SWAP
(distinct sample-wise ReLU patterns, Peng et al. 2024); per block b (the stem and each cell, in
order): AZ-NAS's expressivity ``expr_b`` (entropy of the feature covariance's normalised
spectrum), its trainability ``train_b`` (−σ − 1/σ + 2, σ the top singular value of the block's
Jacobian estimated from one Rademacher-probe backward through the block, Lee & Ham 2024) and
MeCo's ``meco_b`` (smallest eigenvalue of the channel correlation matrix, Jiang et al. 2023,
mean over 8 samples); and the seconds each part took.

Rows already in the output CSV are skipped, so an interrupted run resumes where it stopped.

    python benchmarks/ranking/features.py dev /work/shared/data/nb201_cifar10_dev.csv out.csv kernels/
    python benchmarks/ranking/features.py reference 200 reference.csv kernels_ref/ --exclude dev.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import scores
import search_spaces
from ntknas.inputs import data
from ntknas.objectives.candidates import seeded_model
from ntknas.scoring.measure import count_flops, count_params
from scores import proxies
from scores.bn import bn_mode
from search_spaces.nb201 import EDGES, OPS

ACCURACIES = ("cifar10_test_acc", "cifar100_test_acc", "imagenet16_test_acc")
BATCH = 64
MECO_SAMPLES = 8


def group_of(name: str) -> str:
    """The kernel group of a module: its first two name components (``stem.0``, ``cells.7``)."""
    return ".".join(name.split(".")[:2])


def blocks(model: nn.Module) -> list[nn.Module]:
    """The stem and every cell of an NB201 network, in order (AZ-NAS's feature points)."""
    return [model.stem, *model.cells]


def block_features(model: nn.Module, x: torch.Tensor, seed: int) -> dict[str, float]:
    """AZ-NAS expressivity and trainability and MeCo per block, from one forward pass and one
    probe backward through each block (batch statistics as constants)."""
    feats: list[torch.Tensor] = []
    handles = [b.register_forward_hook(lambda m, a, out: feats.append(out)) for b in blocks(model)]
    values: dict[str, float] = {}
    g = torch.Generator().manual_seed(seed)
    try:
        with torch.enable_grad(), bn_mode(model, "batch"):
            model(x)
            for b, f in enumerate(feats):
                values[f"expr_{b}"] = expressivity(f.detach())
                values[f"meco_{b}"] = meco(f.detach()[:MECO_SAMPLES])
            # Each block's input is the previous block's output tensor, so one probe per block.
            inputs = [None, *feats[:-1]]
            for b in range(len(feats) - 1, 0, -1):
                f_out, f_in = feats[b], inputs[b]
                probe = (torch.randint(0, 2, f_out.shape, generator=g) * 2 - 1).to(f_out.dtype)
                g_in = None
                if f_out.requires_grad and f_in.requires_grad:
                    (g_in,) = torch.autograd.grad(
                        f_out, f_in, grad_outputs=probe, retain_graph=True, allow_unused=True
                    )
                values[f"train_{b}"] = trainability(torch.zeros_like(f_in) if g_in is None else g_in, probe)
    finally:
        for h in handles:
            h.remove()
    return values


def expressivity(f: torch.Tensor, dtype: torch.dtype = torch.float64) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance over all N·H·W positions
    (the covariance formed in ``dtype``, its spectrum in float64)."""
    c = f.shape[1]
    v = f.permute(0, 2, 3, 1).reshape(-1, c).to(dtype)
    v = v - v.mean(0, keepdim=True)
    s = torch.linalg.eigvalsh((v.T @ v / v.shape[0]).to(torch.float64)).clamp_min(0)
    if not s.sum() > 0:
        return 0.0  # constant features: nothing expressed
    p = s / s.sum()
    return float(-(p * torch.log(p + 1e-8)).sum())


def meco(f: torch.Tensor) -> float:
    """Mean over samples of λ_min of the channel Pearson correlation matrix (C × C over H·W)."""
    v = f.flatten(2).to(torch.float64)  # (S, C, HW)
    v = v - v.mean(2, keepdim=True)
    norm = v.norm(dim=2, keepdim=True)
    v = torch.where(norm > 0, v / norm.clamp_min(1e-300), torch.zeros_like(v))
    corr = v @ v.mT
    eye = torch.eye(corr.shape[-1], dtype=corr.dtype)
    corr = torch.where(norm.squeeze(-1)[:, :, None] * norm.squeeze(-1)[:, None, :] > 0, corr, eye)
    return float(torch.linalg.eigvalsh(corr)[:, 0].mean())


def trainability(g_in: torch.Tensor, g_out: torch.Tensor) -> float:
    """AZ-NAS: −σ − 1/σ + 2 for σ the top singular value of the channel cross-covariance of the
    probe and its back-propagated gradient; −inf for an identity block."""
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf
    if g_in.shape[2] != g_out.shape[2]:
        g_in = F.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
    a = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1]).to(torch.float64)
    b = g_out.permute(0, 2, 3, 1).reshape(-1, g_out.shape[1]).to(torch.float64)
    sigma = float(torch.linalg.svdvals(a.T @ b / b.shape[0]).max())
    return -sigma - 1 / (sigma + 1e-6) + 2


def swap(model: nn.Module, x: torch.Tensor) -> float:
    """SWAP (Peng et al. 2024): distinct sample-wise activation patterns over every ReLU unit;
    a unit's pattern is the on/off bits of its input over the N ≤ 64 samples."""
    n = x.shape[0]
    weights = (torch.ones(n, dtype=torch.int64) << torch.arange(n)).view(n, 1)
    patterns: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        on = (args[0].detach() > 0).reshape(n, -1).to(torch.int64)
        patterns.append(torch.unique((on * weights).sum(0)))

    forward_hooked(model, x, nn.ReLU, hook)
    return float(torch.unique(torch.cat(patterns)).numel())


def forward_hooked(model: nn.Module, x: torch.Tensor, kind: type, hook) -> None:
    """One forward pass (no gradients, batch statistics) with ``hook`` on every ``kind`` module."""
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kind)]
    try:
        with torch.no_grad(), bn_mode(model, "batch"):
            model(x)
    finally:
        for h in handles:
            h.remove()


def resume(out: Path) -> tuple[set[str], list[str] | None]:
    """The indices an output CSV already holds, and its header (none when it does not exist)."""
    if not out.exists():
        return set(), None
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        return {r["index"] for r in reader}, reader.fieldnames


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def row_features(
    space, arch: str, x: torch.Tensor, seed: int
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """One architecture's CSV features and its per-group kernels (upper triangles)."""
    model = seeded_model(space, space.parse(arch), 10, seed)
    kernels, t_kernel = timed(
        lambda: scores.layer_kernels(model, x, groups=group_of, bn="batch", device="cpu")
    )
    row: dict[str, float] = {"seconds_kernel": t_kernel}
    row["synflow"], row["seconds_synflow"] = timed(proxies.synflow, model, x)
    row["naswot"], row["seconds_naswot"] = timed(lambda: proxies.naswot(model, x, bn="batch"))
    row["swap"], row["seconds_swap"] = timed(swap, model, x)
    blockwise, row["seconds_blocks"] = timed(block_features, model, x, seed)
    row.update(blockwise)
    row["params"] = float(count_params(model))
    row["flops"] = float(count_flops(model, x[:1]))
    iu = np.triu_indices(x.shape[0])
    return row, {g: k.numpy()[iu] for g, k in kernels.items()}


def reference_archs(count: int, seed: int, exclude: set[str]) -> list[tuple[str, str]]:
    """``count`` distinct NB201 archs drawn uniformly (seeded), none in ``exclude``."""
    space = search_spaces.get("nb201")
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        arch = space.describe(tuple(rng.choice(OPS) for _ in range(len(EDGES))))
        if arch not in exclude:
            out[arch] = None
    return [(f"ref{i}", a) for i, a in enumerate(out)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("dev", "reference"))
    parser.add_argument("source", help="dev: the development CSV; reference: how many archs")
    parser.add_argument("out", help="output CSV (appended to; existing rows are skipped)")
    parser.add_argument("kernels", help="folder for the per-group kernels")
    parser.add_argument("--exclude", help="reference: a CSV whose archs are left out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shuffle-seed", type=int, default=1, help="dev: row order (tuning rows first)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = search_spaces.get("nb201")
    truth: dict[str, dict[str, str]] = {}
    if args.mode == "dev":
        with open(args.source, newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: int(r["index"]))
        random.Random(args.shuffle_seed).shuffle(rows)
        todo = [(r["index"], r["arch"]) for r in rows]
        truth = {r["index"]: r for r in rows}
    else:
        exclude = set()
        if args.exclude:
            with open(args.exclude, newline="") as f:
                exclude = {r["arch"] for r in csv.DictReader(f)}
        todo = reference_archs(int(args.source), args.seed, exclude)
    out, kernels = Path(args.out), Path(args.kernels)
    kernels.mkdir(parents=True, exist_ok=True)
    done, header = set(), None
    if out.exists():
        with out.open(newline="") as f:
            reader = csv.DictReader(f)
            done, header = {r["index"] for r in reader}, reader.fieldnames
    x, _ = data.minibatch(data.load("cifar10-sample"), BATCH, args.seed)
    writer, f = None, out.open("a", newline="")
    try:
        for i, (index, arch) in enumerate(todo):
            if index in done:
                continue
            start = time.perf_counter()
            try:
                feats, parts = row_features(space, arch, x, args.seed)
            except (ValueError, RuntimeError) as e:
                print(f"{index}: failed: {e}", flush=True)
                feats, parts = {}, {}
            feats["seconds_total"] = time.perf_counter() - start
            np.savez(kernels / f"{index}.npz", **parts)
            row = {"index": index, "arch": arch, **{a: truth.get(index, {}).get(a, "") for a in ACCURACIES}}
            row.update({k: repr(float(v)) for k, v in feats.items()})
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=header or list(row), restval="")
                if header is None:
                    writer.writeheader()
            writer.writerow(row)
            f.flush()
            if i % 50 == 0:
                print(f"{i + 1}/{len(todo)} {index} {feats['seconds_total']:.2f}s", flush=True)
    finally:
        f.close()


if __name__ == "__main__":
    main()
