"""The analytic NTK against Monte Carlo, closed forms and wide networks; the theory experiments end to end."""

import importlib
import math
import re
from pathlib import Path

import pytest
import torch

import scores
from ntknas.scoring.ranking import kendall_tau, spearman_rho
from scores.analytic import ACTIVATIONS, analytic_nngp
from scores.hooks import uncovered

THEORY = Path(__file__).resolve().parents[1] / "benchmarks" / "theory"
GAUSSIANS = [(1.0, 1.0, 0.5), (2.0, 0.5, -0.6), (1.5, 1.5, 1.5), (1.0, 2.0, 0.0), (0.3, 3.0, 0.9)]


def inputs(seed: int = 0) -> torch.Tensor:
    """Six inputs in R³ of different norms and angles, including an antipodal pair."""
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[1] = -x[0]
    return x


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize(("a", "b", "c"), GAUSSIANS)
def test_gaussian_moments_match_monte_carlo(activation, a, b, c):
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(2, 400_000, generator=g, dtype=torch.float64)
    u = math.sqrt(a) * z1
    v = c / math.sqrt(a) * z1 + math.sqrt(max(b - c * c / a, 0.0)) * z2
    if activation == "relu":
        phi, dphi = torch.relu, lambda t: (t > 0).double()
    else:
        phi, dphi = torch.erf, lambda t: 2 / math.sqrt(math.pi) * torch.exp(-t * t)
    moments = ACTIVATIONS[activation][0]
    expected = moments(*(torch.tensor(t, dtype=torch.float64) for t in (a, b, c)))
    for samples, value in zip((phi(u) * phi(v), dphi(u) * dphi(v)), expected, strict=True):
        standard_error = float(samples.std()) / math.sqrt(samples.numel())
        assert abs(float(samples.mean()) - float(value)) < 5 * standard_error + 1e-12


def test_relu_closed_forms():
    x = inputs()
    n0 = x.shape[1]
    q = 2 * (x * x).sum(1) / n0  # Σ¹(x, x) with σ_w² = 2, σ_b = 0: preserved by every ReLU layer
    # The arc-cosine kernels have a square-root cusp at cosine ±1, where rounding errors of 1e-16
    # in the cosine become 1e-8 in the kernel: hence rtol 1e-7.
    for depth in (1, 2, 5):
        theta = scores.analytic_ntk(x, x, depth)
        torch.testing.assert_close(theta.diagonal(), depth * q, rtol=1e-7, atol=0)
        torch.testing.assert_close(analytic_nngp(x, x, depth).diagonal(), q, rtol=1e-7, atol=0)
    # x and −x: Σ² and Σ̇² vanish, so Θ² = 0; at depth 3 the cosine is 0 and Θ³ = Σ³ = q/π.
    assert abs(float(scores.analytic_ntk(x[:1], x[1:2], 2))) < 1e-7 * float(q[0])
    torch.testing.assert_close(scores.analytic_ntk(x[:1], x[1:2], 3)[0, 0], q[0] / math.pi, rtol=1e-7, atol=0)
    # orthogonal unit inputs in R²: Σ¹ = Θ¹ = 0 between them, so Θ² = 0·Σ̇² + Σ² = 1/π
    e = torch.eye(2, dtype=torch.float64)
    assert float(scores.analytic_ntk(e[:1], e[1:], 2)) == pytest.approx(1 / math.pi, rel=1e-12)
    # depth 1 is the linear model σ_w²/n₀ x·x' + σ_b²
    linear = scores.analytic_ntk(x, x, 1, sigma_w=0.7, sigma_b=0.2, activation="erf")
    torch.testing.assert_close(linear, 0.49 / n0 * x @ x.T + 0.04)


@pytest.mark.parametrize(("activation", "sigma_w", "sigma_b"), [("relu", 1.3, 0.4), ("erf", 1.5, 0.3)])
def test_nngp_is_the_output_covariance_of_ntk_mlp(activation, sigma_w, sigma_b):
    # with one hidden layer the output covariance over initialisations is exactly Σ², at any width
    x = inputs()[:3]
    torch.manual_seed(0)
    outputs = torch.stack(
        [
            scores.ntk_mlp([3, 8, 1], sigma_w=sigma_w, sigma_b=sigma_b, activation=activation)(x)[:, 0]
            for _ in range(4000)
        ]
    ).detach()
    covariance = outputs.T @ outputs / len(outputs)
    expected = analytic_nngp(x, x, 2, sigma_w=sigma_w, sigma_b=sigma_b, activation=activation)
    standard_error = (outputs[:, :, None] * outputs[:, None, :]).std(0) / math.sqrt(len(outputs))
    assert ((covariance - expected).abs() < 5 * standard_error).all()


def test_ntk_mlp_is_the_ntk_parameterisation():
    torch.manual_seed(0)
    model = scores.ntk_mlp([5, 7, 2], sigma_w=1.5, sigma_b=0.3, activation="erf")
    first, last = (m.weight for m in model if isinstance(m, torch.nn.Linear))
    assert first.shape == (7, 6) and last.shape == (2, 8)  # the last column of each is the bias
    x = torch.randn(4, 5, dtype=torch.float64)
    hidden = torch.erf(1.5 / math.sqrt(5) * x @ first[:, :5].T + 0.3 * first[:, 5])
    expected = 1.5 / math.sqrt(7) * hidden @ last[:, :7].T + 0.3 * last[:, 7]
    torch.testing.assert_close(model(x), expected)
    no_bias = scores.ntk_mlp([5, 7, 2])
    assert [p.shape for p in no_bias.parameters()] == [(7, 5), (2, 7)]
    assert not uncovered(model)  # the pNTK's fast path covers it


def test_one_output_pntk_is_the_entk():
    torch.manual_seed(0)
    model = scores.ntk_mlp([3, 32, 32, 1], sigma_b=0.2)
    x = inputs()
    torch.testing.assert_close(scores.pntk(model, x), scores.entk(model, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("activation", "sigma_w", "sigma_b"), [("relu", 2**0.5, 0.1), ("erf", 1.5, 0.3)])
def test_entk_of_a_wide_network_is_the_analytic_ntk(activation, sigma_w, sigma_b):
    x = inputs()
    kwargs = {"sigma_w": sigma_w, "sigma_b": sigma_b, "activation": activation}
    limit = scores.analytic_ntk(x, x, 2, **kwargs)
    distance = {}
    for width in (64, 16384):
        torch.manual_seed(0)
        k = scores.entk(scores.ntk_mlp([3, width, 1], **kwargs), x)
        distance[width] = float((k - limit).norm() / limit.norm())
    assert distance[16384] < 0.02 < distance[64]


def test_pntk_of_a_wide_deep_network_is_the_analytic_ntk():
    x = inputs()
    limit = scores.analytic_ntk(x, x, 4, sigma_b=0.1)
    kernels = []
    for seed in range(3):
        torch.manual_seed(seed)
        kernels.append(scores.pntk(scores.ntk_mlp([3, 4096, 4096, 4096, 1], sigma_b=0.1), x))
    assert float((sum(kernels) / 3 - limit).norm() / limit.norm()) < 0.05


def test_bad_arguments():
    x = torch.ones(2, 3)
    with pytest.raises(ValueError, match="unknown activation"):
        scores.analytic_ntk(x, x, 2, activation="tanh")
    with pytest.raises(ValueError, match="at least 1"):
        scores.analytic_ntk(x, x, 0)
    with pytest.raises(ValueError, match="inputs must be"):
        scores.analytic_ntk(x, torch.ones(2, 4), 2)
    with pytest.raises(ValueError, match="unknown activation"):
        scores.ntk_mlp([3, 1], activation="tanh")


@pytest.fixture(scope="module")
def theory(tmp_path_factory):
    """Every experiment's quick run, through run_all, into one temporary docs folder."""
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("docs") / "theory"
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(THEORY))
        results = importlib.import_module("run_all").main(["--quick", "--out", str(out)])
        report = importlib.import_module("_report")
    return out, results, report


def test_each_experiment_writes_its_section_and_figure(theory):
    out, results, report = theory
    doc = out.with_suffix(".md").read_text()
    assert doc.startswith(report.INTRO)
    positions = [doc.index(f"<!-- section: {name} -->") for name in report.SECTIONS]
    assert positions == sorted(positions) and list(results) == list(report.SECTIONS)
    for name in report.SECTIONS:
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        section = doc.split(f"<!-- section: {name} -->")[1].split(f"<!-- end: {name} -->")[0]
        assert f"](theory/{name}.png)" in section and doc.count(f"<!-- end: {name} -->") == 1
        assert re.search(r"^\| .* \|$\n^\|( -{3}:? \|)+$", section, flags=re.M)  # a table


def test_rerunning_an_experiment_replaces_only_its_section(theory):
    out, _, report = theory
    before = out.with_suffix(".md").read_text()
    fig, _ = report.figure(1)
    report.publish(out, "lazy_training", "Replaced", "new body", fig)
    after = out.with_suffix(".md").read_text()
    assert "## Replaced\n\nnew body" in after and after.count("<!-- section: lazy_training -->") == 1
    assert "Lazy training: wide networks" in before and "Lazy training: wide networks" not in after
    for name in ("width_convergence", "pntk_vs_entk", "trainability"):
        section = f"<!-- section: {name} -->"
        assert before[before.index(section) :].split("<!-- end")[0] in after


def test_width_convergence_quick(theory):
    result = theory[1]["width_convergence"]
    distances = list(result["distances"].values())
    assert distances[-1] < distances[0] and result["slope"] < -0.2


def test_pntk_vs_entk_quick(theory):
    result = theory[1]["pntk_vs_entk"]
    assert set(result["rates"]) == {"MLP, NTK param.", "CNN, He init", "CNN, PyTorch default init"}
    assert result["rates"]["MLP, NTK param."][0] < 0  # the error shrinks with width
    small, large = result["costs"].values()
    assert large["entk"][0] > 0 and large["ours"][0] > 0
    for memory in (large["entk"][1], small["entk"][1]):
        assert memory is None or memory > 0


def test_lazy_training_quick(theory):
    result = theory[1]["lazy_training"]
    assert result["eta"] > 0
    for name, stats in result["stats"].items():
        assert stats[-1][0] < stats[0][0], name  # the widest network stays closest to its linearisation


def test_trainability_quick(theory):
    result = theory[1]["trainability"]
    cells = {c.arch.count("none"): c for c in result["cells"]}
    degenerate = cells[5]  # every path to the output goes through `none`: the output is constant
    assert degenerate.condition_number == math.inf and degenerate.steps is None
    # the correlations are those of the cells' own numbers, cells that never reached the target last
    conds = [c.condition_number for c in result["cells"]]
    steps = [math.inf if c.steps is None else c.steps for c in result["cells"]]
    assert result["spearman"] == pytest.approx(spearman_rho(conds, steps), abs=1e-12)
    assert result["kendall"] == pytest.approx(kendall_tau(conds, steps), abs=1e-12)
