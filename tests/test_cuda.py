"""On a CUDA device, every metric and proxy runs with the model and its inputs on the GPU, gives the
CPU's value, and leaves the caller's model where it was (``bash benchmarks/cuda_check.sh`` runs
these and a GPU speed check). Skipped, with the reason, where there is no CUDA device."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_benchmark import TINY
from test_untouched import assert_same, snapshot

import search_spaces
from ntknas.inputs import data
from ntknas.objectives import reference
from ntknas.objectives.candidates import seeded_model
from ntknas.run import benchmark
from ntknas.scoring import metrics
from scores import proxies

NB201_REFERENCE = reference.lookup(search_spaces.get("nb201"), 32, 10).terms
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device: this check needs a GPU"
)
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cuda_check.sh"
CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"


def cell_and_batch(dtype=torch.float64):
    """A small NAS-Bench-201 network and a real minibatch, in ``dtype`` (float64: the GPU's and the
    CPU's arithmetic then agree to rounding, so any difference is a device-handling defect)."""
    space = search_spaces.get("nb201")
    model = seeded_model(space, space.parse(CELL), 10, 0).to(dtype)
    x, y = data.minibatch(data.load("cifar10-sample"), 16, seed=0)
    return model, x.to(dtype), y


@needs_cuda
def test_every_metric_on_cuda_equals_its_cpu_value():
    model, x, y = cell_and_batch()
    names = list(metrics.METRICS)
    on_cpu = metrics.compute(model, x, y, names, device="cpu", reference=NB201_REFERENCE)
    errors = {}
    on_gpu = metrics.compute(model, x, y, names, device="cuda", errors=errors, reference=NB201_REFERENCE)
    assert errors == {}
    for name in names:
        assert math.isfinite(on_gpu[name]), name
        assert on_gpu[name] == pytest.approx(on_cpu[name], rel=1e-6, abs=1e-9), name


@needs_cuda
def test_the_callers_model_stays_on_the_cpu_untouched():
    model, x, y = cell_and_batch(torch.float32)
    before = snapshot(model)
    metrics.compute(model, x, y, list(metrics.METRICS), device="cuda", reference=NB201_REFERENCE)
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert {b.device.type for b in model.buffers()} == {"cpu"}
    assert_same(before, snapshot(model))


@needs_cuda
def test_proxies_run_on_the_models_device_whatever_the_inputs():
    model, x, y = cell_and_batch()
    gpu = seeded_model(search_spaces.get("nb201"), search_spaces.get("nb201").parse(CELL), 10, 0)
    gpu = gpu.to(torch.float64).cuda()
    for proxy, args in (
        (proxies.naswot, (x,)),
        (proxies.synflow, (x,)),
        (proxies.jacob_cov, (x,)),
        (proxies.grad_norm, (x, y)),
    ):
        assert proxy(gpu, *args) == pytest.approx(proxy(model, *args), rel=1e-6), proxy.__name__  # CPU inputs
    kernel = torch.eye(16, dtype=torch.float64)
    assert proxies.label_gradient_alignment(kernel, y.cuda()) == proxies.label_gradient_alignment(kernel, y)


@needs_cuda
def test_score_all_on_cuda_gives_no_nan():
    truth = benchmark.load_ground_truth(TINY)
    failures = []
    values, _ = benchmark.score_all(
        truth,
        search_spaces.get("nb201"),
        list(metrics.METRICS),
        data_source="cifar10-sample",
        batch_size=16,
        bn="batch",
        repeats=1,
        seed=0,
        device="cuda",
        failed=lambda *failure: failures.append(failure),
        reference=NB201_REFERENCE,
    )
    assert failures == []
    assert not any(np.isnan(v).any() for v in values.values())


def test_the_gpu_check_script_parses_and_fails_without_a_gpu(tmp_path):
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    if torch.cuda.is_available():
        return  # on a GPU machine the script runs this module itself
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert (
        tmp_path / "cuda_check.log"
    ).read_text() == f"cuda_check: torch {torch.__version__} sees no CUDA device\n"
