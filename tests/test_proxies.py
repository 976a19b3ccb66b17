"""The literature's baselines and the metrics registry, on cases small enough to compute by hand."""

import math

import numpy as np
import pytest
import torch
from test_untouched import assert_same, snapshot
from torch import nn

from ntknas import metrics
from scores import proxies


def identity_relu_net() -> nn.Module:
    net = nn.Sequential(nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(4))
    return net


def test_naswot_is_logdet_of_the_hamming_kernel():
    x = torch.tensor([[1.0, -1, 2, 3], [-1, -2, 1, 1], [2, 2, -1, 1]])
    codes = (x > 0).numpy().astype(float)
    expected = np.array([[4 - np.abs(a - b).sum() for b in codes] for a in codes])
    assert proxies.naswot(identity_relu_net(), x) == pytest.approx(np.linalg.slogdet(expected)[1], abs=1e-12)


def test_synflow_of_a_linear_net_is_twice_its_output():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5, bias=False), nn.Linear(5, 2, bias=False))
    w1, w2 = net[0].weight.detach().abs().double(), net[1].weight.detach().abs().double()
    r = float((w2 @ w1 @ torch.ones(3, dtype=torch.float64)).sum())  # Euler: Σ θ ∂R/∂θ = 2R
    assert proxies.synflow(net, torch.randn(4, 3)) == pytest.approx(math.log10(2 * r), rel=1e-12)


def test_jacob_cov_of_a_linear_model():
    torch.manual_seed(0)
    net = nn.Linear(5, 3)
    n, k = 4, 1e-5  # identical input gradients: correlation matrix all ones, eigenvalues (n, 0, ...)
    expected = -(math.log(n + k) + 1 / (n + k) + (n - 1) * (math.log(k) + 1 / k))
    assert proxies.jacob_cov(net, torch.randn(n, 5)) == pytest.approx(expected, rel=1e-9)
    constant = nn.Sequential(nn.Linear(5, 3), nn.Flatten(), nn.Linear(3, 2))
    with torch.no_grad():
        constant[0].weight.zero_()
    assert proxies.jacob_cov(constant, torch.randn(n, 5)) == -math.inf


def test_grad_norm_matches_autograd():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3))
    x, y = torch.randn(4, 5), torch.tensor([0, 1, 2, 1])
    loss = nn.functional.cross_entropy(net(x), y)
    g1, g2 = torch.autograd.grad(loss, [net[0].weight, net[2].weight])
    assert proxies.grad_norm(net, x, y) == pytest.approx(float(g1.norm() + g2.norm()), rel=1e-6)


def test_label_gradient_alignment():
    y = torch.tensor([0, 1, 0, 1])
    same = (y[:, None] == y[None, :]).double()
    assert proxies.label_gradient_alignment(same * 3 + 1, y) == pytest.approx(1.0)
    assert proxies.label_gradient_alignment(-same, y) == pytest.approx(-1.0)
    assert proxies.label_gradient_alignment(torch.ones(4, 4), y) == 0.0


def test_proxies_leave_the_model_untouched():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    net.train()
    x, y = torch.randn(5, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    before = snapshot(net)
    proxies.naswot(net, x)
    proxies.synflow(net, x)
    proxies.jacob_cov(net, x)
    proxies.grad_norm(net, x, y)
    assert_same(before, snapshot(net))


def test_metrics_compute_and_the_default():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    values = metrics.compute(net, x, y, list(metrics.METRICS))
    assert set(values) == {*metrics.METRICS, "seconds"}
    assert values["params"] == sum(p.numel() for p in net.parameters())
    terms = {
        "-log10_condition_number": -math.log10(values["condition_number"]),
        "log10_lambda_max": math.log10(values["lambda_max"]),
        "effective_rank": values["effective_rank"],
        "log10_synflow": values["synflow"],
        "log10_params": math.log10(values["params"]),
    }
    expected = (
        1.5 * terms["-log10_condition_number"] / 0.9801
        - 0.5 * terms["log10_lambda_max"] / 0.7005
        - 0.5 * terms["effective_rank"] / 13.87
        + terms["log10_synflow"] / 8.926
        + 0.25 * terms["log10_params"] / 0.3064
    )
    assert values[metrics.DEFAULT] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        metrics.compute(net, x, y, ["accuracy"])


def small_batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, 2, 2, generator=g), torch.arange(6) % 3


def test_a_failing_metric_spoils_only_itself():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 3))  # no ReLU: no NASWOT
    x, y = small_batch()
    errors = {}
    values = metrics.compute(net, x, y, list(metrics.METRICS), errors=errors)
    assert list(errors) == ["naswot"] and math.isnan(values["naswot"])
    assert str(errors["naswot"]) == "naswot needs nn.ReLU modules in the model; it has none"
    others = [n for n in metrics.METRICS if n != "naswot"]
    alone = metrics.compute(net, x, y, others)
    assert all(values[n] == alone[n] and math.isfinite(alone[n]) for n in others)
    # without `errors`, the first failure raises
    with pytest.raises(ValueError, match=r"naswot needs nn\.ReLU"):
        metrics.compute(net, x, y, ["params", "naswot"])


def test_a_failing_kernel_spoils_only_what_reads_it():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    nn.init.constant_(net[1].bias, float("inf"))  # every output is non-finite
    x, y = small_batch()
    errors = {}
    values = metrics.compute(net, x, y, list(metrics.METRICS), errors=errors)
    kernel = {n for n, m in metrics.METRICS.items() if m.kernel}
    assert set(errors) == kernel | {"naswot", "jacob_cov", "grad_norm"}
    assert all(
        str(e).startswith("model output has 18 non-finite values (NaN/inf) of 18") for e in errors.values()
    )
    assert values["params"] == 12 * 8 + 8 + 8 * 3 + 3 and values["flops"] == 2 * (12 * 8 + 8 * 3)
    assert all(math.isnan(values[n]) for n in errors)


def test_metrics_leave_the_callers_model_where_it_is():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    net.train()
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    before = snapshot(net)
    metrics.compute(net, x, y, list(metrics.METRICS), device="cpu")
    assert_same(before, snapshot(net))
