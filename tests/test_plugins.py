"""A third-party search space, installed as a package that registers it under the
``ntknas.search_spaces`` entry-point group (or named as ``module:Class``), gets every command:
spaces, search (one worker and two spawned ones), results, verify, plot, export, the dashboard's
note. Broken plugins are one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from test_cli import run
from tiny_study import write_image_folder

import search_spaces
from ntknas.study.studies import scored_trials
from ntknas.study.verified import stored_results

REPO = Path(__file__).resolve().parents[1]
URL = "sqlite:///results/ntknas.db"
SMALL = ["--trials", "3", "--batch-size", "8", "--sampler", "random"]
# setuptools is already installed: no download
OFFLINE = ["--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check"]
PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "ntknas-toy"
version = "0.1"

[project.entry-points."ntknas.search_spaces"]
toy = "ntknas_toy.space:ToySpace"
toy_missing = "ntknas_toy.missing:Space"
toy_wrong = "ntknas_toy.space:NotASpace"
"""
SPACE = '''\
"""A plugin search space: a convolutional stem (on the input's channels) and 1 to 3 layers."""

import json
import os

from search_spaces import ConfigError, SearchSpace

WIDTHS, DEPTHS = (4, 8), (1, 2, 3)


class ToySpace(SearchSpace):
    name = "toy"
    summary = "a conv stem and 1 to 3 conv layers of 4 or 8 channels"
    size = len(WIDTHS) * len(DEPTHS)

    def sample(self, trial):
        return trial.suggest_categorical("width", WIDTHS), trial.suggest_categorical("depth", DEPTHS)

    def build(self, config, num_classes=10, channels=3, image_size=32):
        from torch import nn

        with open(os.environ["TOY_BUILD_LOG"], "a") as log:  # what ntknas passed, for the test
            log.write(json.dumps([num_classes, channels, image_size]) + "\\n")
        width, depth = config
        layers = [nn.Conv2d(channels, width, 3, padding=1)]
        for _ in range(depth):
            layers += [nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1)]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def describe(self, config):
        return f"width={config[0]} depth={config[1]}"

    def parse(self, text):
        try:
            parts = dict(part.split("=") for part in text.split())
            config = int(parts["width"]), int(parts["depth"])
        except (KeyError, ValueError):
            raise ConfigError(f"malformed toy config {text!r}; e.g. width=4 depth=1") from None
        if config[0] not in WIDTHS or config[1] not in DEPTHS:
            raise ConfigError(f"toy config {text!r} is not in the space")
        return config


class NotASpace:
    name = "wrong"
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict[str, Path]:
    """The folder the toy plugin is installed into (``site``), and a folder holding its module
    alone (``bare``: no distribution metadata, so no entry point)."""
    root = tmp_path_factory.mktemp("plugin")
    source, bare = root / "ntknas-toy", root / "bare"
    for folder in (source, bare):
        (folder / "ntknas_toy").mkdir(parents=True)
        (folder / "ntknas_toy" / "__init__.py").write_text("")
        (folder / "ntknas_toy" / "space.py").write_text(SPACE)
    (source / "pyproject.toml").write_text(PYPROJECT)
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", *OFFLINE, "--target", str(site), str(source)],
        check=True,
        capture_output=True,
    )
    assert (site / "ntknas_toy" / "space.py").exists()
    return {"site": site, "bare": bare}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("work")


def ntknas(workdir: Path, path: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m ntknas ARGS`` in ``workdir``, with ``path`` (a plugin's folder) and the repository
    on PYTHONPATH; the toy space logs each build to ``workdir/builds.jsonl``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(path), str(REPO)]),
        "OMP_NUM_THREADS": "1",
        "TOY_BUILD_LOG": str(workdir / "builds.jsonl"),
    }
    return subprocess.run(
        [sys.executable, "-m", "ntknas", *args], cwd=workdir, env=env, capture_output=True, text=True
    )


def builds(workdir: Path) -> list[list[int]]:
    """What each build of the toy space received: [num_classes, channels, image_size]; emptied."""
    log = workdir / "builds.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [json.loads(line) for line in lines]


def stored(workdir: Path, name: str) -> optuna.Study:
    """Study ``name`` in ``workdir``'s default storage, read afresh."""
    return optuna.load_study(study_name=name, storage=f"sqlite:///{workdir / 'results' / 'ntknas.db'}")


@pytest.fixture(scope="module")
def searched(plugin, workdir) -> Path:
    """Study 'toy' in ``workdir``: three toy networks scored on synthetic images."""
    result = ntknas(workdir, plugin["site"], "search", "--space", "toy", *SMALL, "--data", "synthetic")
    assert result.returncode == 0, result.stderr
    return workdir


def test_spaces_lists_the_plugin_and_warns_of_broken_ones(plugin, workdir):
    result = ntknas(workdir, plugin["site"], "spaces")
    assert result.returncode == 0, result.stderr
    assert (
        "toy" in result.stdout and "ntknas_toy.space:ToySpace" in result.stdout and "nb201" in result.stdout
    )
    assert result.stderr.splitlines() == [
        "warning: plugin space 'toy_missing' (ntknas_toy.missing:Space): cannot import 'ntknas_toy.missing' "
        "(No module named 'ntknas_toy.missing'); is its package installed, or its folder on PYTHONPATH?",
        "warning: plugin space 'toy_wrong' (ntknas_toy.space:NotASpace): ntknas_toy.space:NotASpace is not "
        "a search_spaces.SearchSpace subclass",
    ]


@pytest.mark.slow
def test_search_results_verify_plot_and_export_a_plugin_space(plugin, searched, monkeypatch):
    workdir = searched
    study = stored(workdir, "toy")
    assert study.user_attrs["space"] == "toy" and len(scored_trials(study)) == 3
    # the check that its networks run on the image size, ntk_score's reference (all 6 networks of the
    # space, measured once, and its first network again at looking up the cache and at writing it:
    # the cache's name holds it), then the 3 trials; synthetic data: 10 classes of 3 × 32 × 32 images
    assert builds(workdir) == [[10, 3, 32]] * (1 + 6 + 2 + 3)
    again = ntknas(
        workdir,
        plugin["site"],
        "search",
        "--space",
        "toy",
        *SMALL,
        "--data",
        "synthetic",
        "--storage",
        "sqlite:///results/t2.db",
    )
    assert again.returncode == 0 and "reference" not in again.stderr, again.stderr
    # the image-size check, the cache's name (its first network), then the 3 trials: the reference
    # came from the cache
    assert builds(workdir) == [[10, 3, 32]] * (1 + 1 + 3)

    rows = json.loads(ntknas(workdir, plugin["site"], "results", "--format", "json").stdout)
    assert len(rows) == 3 and all(r["config"].startswith("width=") and r["params"] > 0 for r in rows)

    verified = ntknas(workdir, plugin["site"], "verify", "--top", "1", "--epochs", "1", "--batch-size", "250")
    assert verified.returncode == 0, verified.stderr
    assert builds(workdir) == [[10, 3, 32]] * 2  # the stored image size checked on one network; the pick
    best = rows[0]
    assert stored_results(stored(workdir, "toy"))[best["trial"]]["verified_status"] == "trained"

    plotted = ntknas(workdir, plugin["site"], "plot", "--top", "2", "--out", "plots")
    assert plotted.returncode == 0, plotted.stderr
    assert {p.name for p in (workdir / "plots").iterdir()} >= {"spectrum.png", "history.png", "verified.png"}
    assert builds(workdir) == [[10, 3, 32]] * (1 + 2)  # the image-size check; the top 2's spectra

    exported = ntknas(workdir, plugin["site"], "export", "--out", "pick")
    assert exported.returncode == 0, exported.stderr
    record = json.loads((workdir / "pick" / "config.json").read_text())
    assert (record["space"], record["trial"], record["weights"]["kind"]) == ("toy", best["trial"], "trained")
    assert "is a plugin: install its package" in (workdir / "pick" / "README.md").read_text()

    # back in this process: the program needs no plugin; rebuilding the network does
    monkeypatch.syspath_prepend(str(plugin["site"]))
    monkeypatch.setenv("TOY_BUILD_LOG", str(workdir / "builds.jsonl"))
    space = search_spaces.get("toy")
    model = space.build(space.parse(record["config"]), 10, 3, 32).eval()
    model.load_state_dict(torch.load(workdir / "pick" / "weights.pt", weights_only=True))
    x = torch.randn(5, 3, 32, 32)
    program = torch.export.load(workdir / "pick" / "model.pt2").module()
    torch.testing.assert_close(program(x), model(x), rtol=1e-6, atol=1e-6)


def test_the_dashboard_notes_a_plugin_space(plugin, searched, monkeypatch):
    dashboard = pytest.importorskip("ntknas.outputs.dashboard")
    pytest.importorskip("optuna_dashboard")
    monkeypatch.syspath_prepend(str(plugin["site"]))  # the dashboard rebuilds the plugin's networks here
    monkeypatch.setenv("TOY_BUILD_LOG", str(searched / "builds.jsonl"))
    annotator = dashboard.Annotator.open(
        f"sqlite:///{searched / 'results' / 'ntknas.db'}", "toy", searched / "a"
    )
    assert annotator.sync(data_root=None, device="cpu") == 3
    trial = annotator.study.trials[0]
    note = dashboard.note(annotator.settings, trial, None)
    assert f"**Architecture** (toy) `{trial.user_attrs['config']}`" in note


@pytest.mark.slow
def test_a_module_class_space_without_an_entry_point_in_two_spawned_workers(plugin, tmp_path):
    write_image_folder(tmp_path / "two")  # 2 classes: the space must build 2 outputs
    name = "ntknas_toy.space:ToySpace"
    bare = plugin["bare"]  # importable, but no installed distribution: no entry point
    listed = ntknas(tmp_path, bare, "spaces")
    assert listed.returncode == 0 and "toy" not in listed.stdout
    result = ntknas(tmp_path, bare, "search", "--space", name, *SMALL, "--data", "two", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert len(scored_trials(stored(tmp_path, name))) == 3
    # the image-size check (with 10 outputs), ntk_score's reference for 2 classes (the space's 6
    # networks, measured before the workers start, and the first again for the cache's name at
    # lookup and at writing), then the 3 trials, built in the workers, which imported the module
    assert builds(tmp_path) == [[10, 3, 32]] + [[2, 3, 32]] * (6 + 2 + 3)
    assert stored(tmp_path, name).user_attrs["space"] == name
    exported = ntknas(tmp_path, bare, "export", "--out", "pick")
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / "pick" / "config.json").read_text())["num_classes"] == 2


@pytest.mark.parametrize(
    "space,message",
    [
        (
            "toy_missing",
            "plugin space 'toy_missing' (ntknas_toy.missing:Space): cannot import 'ntknas_toy.missing' "
            "(No module named 'ntknas_toy.missing'); is its package installed, or its folder on PYTHONPATH?",
        ),
        (
            "toy_wrong",
            "plugin space 'toy_wrong' (ntknas_toy.space:NotASpace): ntknas_toy.space:NotASpace is not a "
            "search_spaces.SearchSpace subclass",
        ),
        (
            "ntknas_toy.space:Nothing",
            "search space 'ntknas_toy.space:Nothing': module 'ntknas_toy.space' has no 'Nothing'",
        ),
        (
            "nowhere.space:Space",
            "search space 'nowhere.space:Space': cannot import 'nowhere.space' (No module named 'nowhere'); "
            "is its package installed, or its folder on PYTHONPATH?",
        ),
    ],
)
def test_a_broken_plugin_is_a_one_line_error(plugin, tmp_path, monkeypatch, space, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(plugin["site"]))
    result = run("search", "--space", space, "--trials", 1, "--batch-size", 8, "--data", "synthetic")
    assert result.exit_code == 2 and result.stderr.splitlines() == [f"error: {message}"]
    assert not (tmp_path / "results").exists()  # no study made
