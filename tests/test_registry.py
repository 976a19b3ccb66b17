"""One metric registry: each metric declared once, directions derived from it, duplicates refused,
and third-party metrics from the `ntknas.metrics` entry-point group usable as any other; and
`scores.register_layer`, which puts a custom layer on the kernel's fast path."""

import importlib.metadata
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

import scores
from ntknas.cli import app
from ntknas.scoring import metrics, registry
from scores import layers
from scores.hooks import uncovered

PLUGIN = """
from ntknas import metric

@metric("module_count", higher_is_better=False, summary="modules in the network (a test plugin)")
def module_count(c):
    return float(len(list(c.model.modules())))
"""


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry as a new process finds it: built-ins declared, plugins not yet loaded."""
    monkeypatch.setattr(registry, "_DECLARED", dict(registry._DECLARED))
    monkeypatch.setattr(registry, "_loaded", False)


def plugins(monkeypatch, tmp_path, **modules: str) -> None:
    """Install modules ``name=source`` as metric plugins of the entry-point group (each test its
    own module names: a module imported once is not imported again)."""
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [importlib.metadata.EntryPoint(n, n, registry.ENTRY_POINT_GROUP) for n in modules]
    monkeypatch.setattr(
        registry, "entry_points", lambda group: points if group == registry.ENTRY_POINT_GROUP else []
    )


def test_every_metric_is_declared_once_with_a_direction_and_a_summary():
    assert registry.DEFAULT in registry.METRICS
    assert {*registry.SPECTRUM, *registry.COSTS} <= set(registry.METRICS)
    for name, m in registry.METRICS.items():
        assert m.name == name and isinstance(m.higher_is_better, bool) and m.summary and callable(m.compute)
    assert not registry.METRICS["condition_number"].higher_is_better
    assert registry.METRICS["ntk_score"].reads_kernel and not registry.METRICS["naswot"].reads_kernel


def test_a_second_declaration_of_a_name_is_refused(fresh_registry):
    with pytest.raises(
        ValueError, match=r"metric 'synflow' is declared twice: by ntknas\.scoring\.metrics\."
    ):
        registry.metric("synflow", higher_is_better=True, summary="again")(lambda c: 0.0)


def test_a_plugin_metric_is_computed_searched_and_oriented_as_declared(fresh_registry, monkeypatch, tmp_path):
    plugins(monkeypatch, tmp_path, my_metrics=PLUGIN)
    assert registry.METRICS["module_count"].higher_is_better is False
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x, y = torch.randn(4, 3, 2, 2), torch.arange(4) % 3
    assert metrics.compute(net, x, y, ["module_count"])["module_count"] == 3.0
    monkeypatch.chdir(tmp_path)
    args = ["search", "--space", "nb201", "--data", "synthetic", "--batch-size", "8", "--trials", "2"]
    done = CliRunner().invoke(app, [*args, "--objective", "module_count", "--sampler", "random"])
    assert done.exit_code == 0, done.output
    assert "Best: trial" in done.stdout and "(lower is better)" in done.stdout


def test_a_plugin_that_fails_to_import_is_skipped_with_one_warning(fresh_registry, monkeypatch, tmp_path):
    plugins(monkeypatch, tmp_path, broken="raise SystemExit(3)\n", more_metrics=PLUGIN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = list(registry.METRICS)
    assert "module_count" in names and "ntk_score" in names
    (warning,) = [w for w in caught if "broken" in str(w.message)]
    assert "metric plugin 'broken' (broken) could not be loaded" in str(warning.message)


class OwnConv(nn.Conv2d):
    """A convolution with a forward of its own: not covered until registered."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def test_a_registered_layer_takes_the_fast_path_with_the_same_kernel(monkeypatch):
    monkeypatch.setattr(layers, "_HANDLERS", dict(layers._HANDLERS))
    torch.manual_seed(0)
    net = nn.Sequential(OwnConv(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5))
    x = torch.randn(6, 3, 8, 8)
    assert uncovered(net)
    slow = scores.pntk(net, x, implementation="func")
    scores.register_layer(OwnConv, nn.Conv2d)
    assert not uncovered(net)
    fast = scores.pntk(net, x, implementation="hooks")
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="ReLU has no rule to borrow"):
        scores.register_layer(OwnConv, nn.ReLU)
    with pytest.raises(TypeError, match=r"needs an nn\.Module subclass"):
        scores.register_layer(int, nn.Conv2d)
