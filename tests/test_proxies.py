"""The literature's baselines and the metrics registry, on cases small enough to compute by hand."""

import copy
import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
from test_untouched import assert_same, snapshot
from torch import nn

from ntknas.scoring import metrics
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


class Fork(nn.Module):
    """Two ReLUs read the same input; with ``shift``, it is shifted in place between them."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.a, self.b, self.shift = nn.ReLU(), nn.ReLU(), shift

    def forward(self, x):
        first = self.a(x)
        if self.shift:
            x.sub_(self.shift)
        return first + self.b(x)


def test_naswot_codes_every_activation_of_a_shared_input():
    """An input that two activations read counts twice (its kernel formed once); changed in place
    between them, it is coded again."""
    x = torch.tensor([[1.0, -1, 2, 3], [-1, -2, 1, 1], [2, 2, -1, 1]])

    def hamming(z):
        codes = (z > 0).numpy().astype(float)
        return np.array([[4 - np.abs(a - b).sum() for b in codes] for a in codes])

    assert not np.array_equal(hamming(x), hamming(x - 1.5))
    for shift, expected in ((0.0, 2 * hamming(x)), (1.5, hamming(x) + hamming(x - 1.5))):
        net = Fork(shift)
        with proxies.ActivationCodes(net) as probe, torch.no_grad():
            net(x.clone())
        np.testing.assert_array_equal(probe.kernel.numpy(), expected)


@pytest.mark.parametrize("dtype, rel", [(torch.float64, 1e-15), (torch.float32, 1e-7)])
def test_synflow_of_a_linear_net_is_twice_its_output(dtype: torch.dtype, rel: float):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5, bias=False), nn.Linear(5, 2, bias=False)).to(dtype)
    w1, w2 = net[0].weight.detach().abs().double(), net[1].weight.detach().abs().double()
    r = float((w2 @ w1 @ torch.ones(3, dtype=torch.float64)).sum())  # Euler: Σ θ ∂R/∂θ = 2R
    assert proxies.synflow(net, torch.randn(4, 3, dtype=dtype)) == pytest.approx(math.log10(2 * r), rel=rel)


@pytest.mark.parametrize("depth", [4, 40, 80])
def test_synflow_runs_again_in_float64_where_float32_overflows(depth: int):
    """A deep linear chain's signal grows by a factor of 30 per layer: past float32's 3.4e38 at
    about 26 layers. Depth L gives R = 30**L and Σ θ ∂R/∂θ = L·R, in float64 to 1e-13 at every
    depth and from float32's own pass to 1e-7 where it fits."""
    net = nn.Sequential(*(nn.Linear(30, 30, bias=False) for _ in range(depth)))
    for layer in net:
        nn.init.constant_(layer.weight, -1.0)  # |θ| = 1: every unit sums 30 ones
    expected = math.log10(depth) + depth * math.log10(30) + math.log10(30)  # 30 outputs
    assert proxies.synflow(net, torch.randn(2, 30)) == pytest.approx(
        expected, rel=1e-7 if depth < 26 else 1e-13
    )


def test_synflow_linearises_saturating_activations():
    """ReLU6 clips the all-ones signal of |θ|; synflow reads the linearised network, which a
    ReLU network already is on that signal."""
    torch.manual_seed(0)
    layers = [nn.Linear(3, 64), None, nn.Linear(64, 64), None, nn.Linear(64, 2)]
    nets = {}
    for act in (nn.ReLU6, nn.ReLU, nn.Identity):
        torch.manual_seed(0)
        nets[act] = nn.Sequential(*(layer if layer is not None else act() for layer in layers)).double()
        nets[act].load_state_dict(nets[nn.ReLU6].state_dict())
    for net in nets.values():
        nn.init.constant_(net[2].weight, 0.5)  # 64 inputs of about 1 each: well past ReLU6's 6
    x = torch.randn(4, 3, dtype=torch.float64)
    values = {act: proxies.synflow(net, x) for act, net in nets.items()}
    assert values[nn.ReLU6] == values[nn.ReLU] == values[nn.Identity]
    as_is = {act: unlinearised_synflow(net) for act, net in nets.items()}
    assert as_is[nn.ReLU] == pytest.approx(values[nn.ReLU], rel=1e-12)
    assert as_is[nn.ReLU6] < values[nn.ReLU6] - 1  # clipping would have cost a factor above 10


def unlinearised_synflow(net: nn.Module) -> float:
    """log10 Σ θ ∂R/∂θ of ``net`` with |θ| and an all-ones input, its activations left in place."""
    net = copy.deepcopy(net).double()
    params = list(net.parameters())
    for p in params:
        p.data.abs_()
    grads = torch.autograd.grad(net(torch.ones(1, 3, dtype=torch.float64)).sum(), params)
    return math.log10(sum(float((p * g).detach().sum()) for p, g in zip(params, grads, strict=True)))


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
    values = metrics.compute(net, x, y, list(metrics.METRICS), reference=REFERENCE)
    assert set(values) == {*metrics.METRICS, "seconds"}
    assert values["params"] == sum(p.numel() for p in net.parameters())
    log_phi = lambda z: math.log(NormalDist().cdf(z))  # noqa: E731
    raw = {  # each term as its definition reads, from the metrics computed above
        "log10_synflow": values["synflow"],
        "expressivity": values["expressivity"],
        "-log10_lambda_max": -math.log10(values["lambda_max"]),
        "flatness": values["flatness"],
        "naswot": values["naswot"],
        "log10_flops": math.log10(values["flops"]),
    }
    expected = sum(
        weight * log_phi((raw[name] - REFERENCE[name][0]) / (2 * REFERENCE[name][1]))
        for name, weight in metrics.WEIGHTS.items()
    )
    assert values[metrics.DEFAULT] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        metrics.compute(net, x, y, ["accuracy"])
    with pytest.raises(ValueError, match="ntk_score needs the search space's reference"):
        metrics.compute(net, x, y, [metrics.DEFAULT])


def test_ntk_score_ranks_a_singular_kernel_last_and_saturates_good_terms():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(4, 3, 2, 2)
    twice = torch.cat([x, x[:1]])  # a repeated sample: the pNTK is singular, κ = ∞
    values = metrics.compute(net, twice, torch.arange(5) % 3, [metrics.DEFAULT], reference=REFERENCE)
    assert values[metrics.DEFAULT] == -math.inf
    # every term far above its centre: each log Φ → 0; below it: log Φ(z / 2)
    assert (
        metrics.ntk_score_from(
            dict.fromkeys(metrics.WEIGHTS, 1e6), dict.fromkeys(metrics.WEIGHTS, (0.0, 1.0))
        )
        == 0.0
    )
    low = metrics.ntk_score_from(
        dict.fromkeys(metrics.WEIGHTS, -6.0), dict.fromkeys(metrics.WEIGHTS, (0.0, 1.0))
    )
    assert low == pytest.approx(sum(metrics.WEIGHTS.values()) * math.log(NormalDist().cdf(-3.0)), rel=1e-9)


def block_outputs_entropy(outputs: list[torch.Tensor]) -> float:
    """Σ entropy of the normalised spectrum of each output's channel covariance, in numpy."""
    total = 0.0
    for out in outputs:
        v = np.moveaxis(out.detach().double().numpy(), 1, -1).reshape(-1, out.shape[1])
        v = v - v.mean(0)
        s = np.clip(np.linalg.eigvalsh(v.T @ v / len(v)), 0, None)
        p = s / s.sum()
        total += float(-(p * np.log(p + 1e-8)).sum())
    return total


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.bn(self.conv(x)))


def test_expressivity_sums_the_spectral_entropy_of_each_blocks_features():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.Sequential(Block(6), Block(6)), nn.Flatten(), nn.Linear(6 * 16, 3)
    )
    x = torch.randn(5, 3, 4, 4)
    outputs = []
    handles = [b.register_forward_hook(lambda m, a, out: outputs.append(out)) for b in net[1]]
    with torch.no_grad():
        net(x)  # training mode: batch statistics, as bn="batch"
    for h in handles:
        h.remove()
    assert proxies.feature_blocks(net) == [net[1][0], net[1][1]]
    assert proxies.expressivity(net, x) == pytest.approx(block_outputs_entropy(outputs), rel=1e-7)
    # isotropic features over C channels: entropy log C
    plain = nn.Sequential(nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        plain[0].weight.copy_(torch.eye(4))
    corners = torch.tensor([[1.0, 0, 0, 0], [-1, 0, 0, 0], [0, 1, 0, 0], [0, -1, 0, 0]])
    corners = torch.cat([corners, corners[:, [2, 3, 0, 1]]])
    assert proxies.expressivity(plain, corners) == pytest.approx(math.log(4), abs=1e-7)


@pytest.mark.parametrize(
    ("space_name", "config"),
    [
        ("resnet", "block=bottleneck blocks=1-2-1-1 width=16 growth=2 stem=deep"),  # 512 channels, M = 8
        ("nb201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"),
    ],
)
def test_expressivity_from_the_pntks_pass_equals_its_own_pass(space_name: str, config: str):
    import search_spaces

    space = search_spaces.get(space_name)
    torch.manual_seed(0)
    net = space.build(space.parse(config), 10, 3, 8)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, 8, 8, generator=g), torch.arange(8) % 10
    outputs, passes = [], []
    blocks = proxies.feature_blocks(net)
    handles = [b.register_forward_hook(lambda m, a, out: outputs.append(out)) for b in blocks]
    handles.append(net.register_forward_hook(lambda m, a, out: passes.append(out.shape[0])))
    alone = proxies.expressivity(net, x)
    by_hand = block_outputs_entropy(outputs)  # the (C, C) covariances, though M < C in the last blocks
    passes.clear()
    shared = metrics.compute(net, x, y, ["expressivity", "lambda_max"])
    for h in handles:
        h.remove()
    # one forward pass served the pNTK and expressivity; then two samples alone, to check that the
    # network treats samples apart (scores.coupling)
    assert passes == [8, 2]
    # the products in float32, as the pNTK's (a float32 network's outputs are no finer than that)
    assert 0 < alone == pytest.approx(by_hand, rel=1e-7)
    assert shared["expressivity"] == pytest.approx(alone, rel=1e-9)
    assert shared["lambda_max"] == metrics.compute(net, x, y, ["lambda_max"])["lambda_max"]


@pytest.mark.parametrize(
    ("space_name", "config"),
    [("nb201", "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"),
     ("nbmacro", "12010200")],
)  # fmt: skip
def test_naswot_and_expressivity_from_the_pntks_pass_equal_their_own_passes(space_name: str, config: str):
    import search_spaces

    space = search_spaces.get(space_name)
    torch.manual_seed(0)
    net = space.build(space.parse(config), 10, 3, 16)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, 16, 16, generator=g), torch.arange(8) % 10
    passes = []
    handle = net.register_forward_hook(lambda m, a, out: passes.append(out.shape[0]))
    alone = {"naswot": proxies.naswot(net, x), "expressivity": proxies.expressivity(net, x)}
    passes.clear()
    shared = metrics.compute(net, x, y, ["naswot", "expressivity", "lambda_max"])
    handle.remove()
    assert passes == [8, 2]  # one pass served the pNTK, NASWOT and expressivity; two samples alone
    assert math.isfinite(alone["naswot"]) and shared["naswot"] == pytest.approx(alone["naswot"], rel=1e-12)
    assert shared["expressivity"] == pytest.approx(alone["expressivity"], rel=1e-9)


def test_feature_blocks_of_the_spaces_and_of_torchvision():
    import torchvision

    import search_spaces

    nb201 = search_spaces.get("nb201")
    cell = nb201.build(
        nb201.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
    )
    assert proxies.feature_blocks(cell) == list(cell.cells)  # 15 cells and 2 reduction blocks
    assert len(cell.cells) == 17
    resnet = torchvision.models.resnet18(num_classes=3)
    blocks = proxies.feature_blocks(resnet)
    assert len(blocks) == 8 and all(isinstance(b, torchvision.models.resnet.BasicBlock) for b in blocks)
    bare = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(16, 2))
    assert proxies.feature_blocks(bare) == [bare[0], bare[2], bare[4]]
    constant = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with torch.no_grad():
        constant[1].weight.zero_()
    assert proxies.expressivity(constant, torch.randn(4, 3, 2, 2)) == 0.0  # nothing expressed


REFERENCE = {
    "log10_synflow": (1.0, 2.0),
    "expressivity": (3.0, 1.5),
    "-log10_lambda_max": (-1.0, 0.5),
    "flatness": (-1.0, 0.3),
    "naswot": (20.0, 4.0),
    "log10_flops": (4.0, 0.5),
}


def small_batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, 2, 2, generator=g), torch.arange(6) % 3


def test_a_failing_metric_spoils_only_itself():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Linear(8, 3))  # no activation: no NASWOT
    x, y = small_batch()
    errors = {}
    values = metrics.compute(net, x, y, list(metrics.METRICS), errors=errors, reference=REFERENCE)
    spoiled = ["naswot", *([metrics.DEFAULT] if "naswot" in metrics.NTK_INPUTS else [])]
    assert list(errors) == spoiled and all(math.isnan(values[n]) for n in spoiled)
    assert str(errors["naswot"]) == (
        "naswot needs activation modules (nn.ReLU, nn.GELU, ...) in the model; it has none"
    )
    others = [n for n in metrics.METRICS if n not in spoiled]
    alone = metrics.compute(net, x, y, others, reference=REFERENCE)
    assert all(values[n] == alone[n] and math.isfinite(alone[n]) for n in others)
    # without `errors`, the first failure raises
    with pytest.raises(ValueError, match=r"naswot needs activation modules"):
        metrics.compute(net, x, y, ["params", "naswot"])


def test_a_failing_kernel_spoils_only_what_reads_it():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    nn.init.constant_(net[1].bias, float("inf"))  # every output is non-finite
    x, y = small_batch()
    errors = {}
    values = metrics.compute(net, x, y, list(metrics.METRICS), errors=errors, reference=REFERENCE)
    kernel = {n for n, m in metrics.METRICS.items() if m.reads_kernel}
    assert set(errors) == kernel | {"naswot", "jacob_cov", "grad_norm", "expressivity"}
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
    metrics.compute(net, x, y, list(metrics.METRICS), device="cpu", reference=REFERENCE)
    assert_same(before, snapshot(net))
