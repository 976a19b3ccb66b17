"""Time and peak memory of the pNTK, side by side in one run.

For each model, at N images of CIFAR size (real images from the bundled sample), this measures:
the floor (one forward and one backward pass of the batch, as a training step does), ours
(``scores.pntk``, bn="batch", one forward and one backward pass), a TE-NAS-style loop (one backward
pass per sample), and torch.func (``vmap(grad)`` per-sample gradients contracted to the pNTK).
Each method runs in a fresh subprocess: peak memory is the peak resident set size above the
process's size before the first call on the CPU, or the peak CUDA allocation above the baseline
on a GPU. Times are medians over repeats after one warm-up call.

    python benchmarks/pntk_speed.py [--n 64] [--models resnet18,...] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

MODELS = ("resnet18", "nb201-large")
NB201_LARGE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
METHODS = ("floor", "ours", "loop", "func")
REPEATS = {"floor": 7, "ours": 7, "loop": 1, "func": 3}


def build(name: str) -> torch.nn.Module:
    """A freshly initialised model by benchmark name."""
    import torchvision

    if name == "resnet18":
        return torchvision.models.resnet18(num_classes=10)
    if name == "nb201-large":  # the largest NAS-Bench-201 network: every edge a 3×3 convolution
        import search_spaces

        space = search_spaces.get("nb201")
        return space.build(space.parse(NB201_LARGE))
    raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def runner(model_name: str, method: str, n: int, device: str) -> dict:
    """Run one method in this process; return its seconds, peak memory and kernel."""
    import scores
    from ntknas.inputs import data

    torch.manual_seed(0)
    model = build(model_name).to(device)
    x, _ = data.minibatch(data.load("cifar10-sample"), n, seed=0)
    x = x.to(device)

    def floor() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()

    def kernel(implementation: str):
        return lambda: scores.pntk(model, x, bn="batch", device=device, implementation=implementation)

    call = {"floor": floor, "ours": kernel("hooks"), "loop": kernel("loop"), "func": kernel("func")}[method]
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    result = call()
    peak = torch.cuda.max_memory_allocated() - base if device == "cuda" else _peak_rss_bytes() - base
    times = []
    for _ in range(REPEATS[method]):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    k = result.tolist() if isinstance(result, torch.Tensor) else None
    return {"seconds": statistics.median(times), "peak_bytes": max(0, peak), "kernel": k}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(model_name: str, method: str, n: int, device: str) -> dict:
    """Run one method in a fresh subprocess."""
    cmd = [sys.executable, __file__, "--child", model_name, method, "--n", str(n), "--device", device]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "METHOD"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(runner(*args.child, args.n, args.device)))
        return
    cpu = f"CPU, {torch.get_num_threads()} threads"
    where = torch.cuda.get_device_name() if args.device == "cuda" else cpu
    print(f"pNTK at N={args.n}, CIFAR-sized inputs, bn=batch, on {where}, torch {torch.__version__}\n")
    print(
        "| model | method | time (ms) | × floor | peak memory (MiB) | memory vs torch.func | diff to ours |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for model_name in args.models.split(","):
        rows = {m: measure(model_name, m, args.n, args.device) for m in METHODS}
        report(model_name, rows)


def report(model_name: str, rows: dict[str, dict]) -> None:
    """Print one model's table rows and its summary line."""
    ours = torch.tensor(rows["ours"]["kernel"])
    t = {m: rows[m]["seconds"] for m in METHODS}
    mem = {m: rows[m]["peak_bytes"] for m in METHODS}
    for method in METHODS:
        k = rows[method]["kernel"]
        diff = "" if k is None else f"{float((torch.tensor(k) - ours).norm() / ours.norm()):.1e}"
        print(
            f"| {model_name} | {method} | {t[method] * 1e3:.0f} | {t[method] / t['floor']:.2f} | "
            f"{mem[method] / 2**20:.0f} | {mem[method] / max(1, mem['func']):.2f} | {diff} |"
        )
    print(
        f"\n{model_name}: ours is {t['ours'] / t['floor']:.2f}× the floor, "
        f"{t['func'] / t['ours']:.1f}× faster than torch.func, {t['loop'] / t['ours']:.1f}× faster "
        f"than the loop; peak memory {mem['ours'] / max(1, mem['func']):.2f}× torch.func's\n"
    )


if __name__ == "__main__":
    main()
