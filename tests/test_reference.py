"""Each space's reference for ntk_score: shipped for the built-in spaces, measured once and cached
for any other, and what the search places its candidates by."""

import contextlib
import json
import math
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
import torch
from test_bad_input import KINDS, matches
from torch import nn

import search_spaces
from ntknas.core.errors import InputWarning, UserError
from ntknas.objectives import reference
from ntknas.objectives.candidates import seeded_model
from ntknas.scoring import metrics
from search_spaces import SearchSpace


class Widths(SearchSpace):
    """Four MLPs of different widths: small enough to measure its whole reference."""

    name = "widths"
    summary = "MLPs with one hidden layer of 32, 64, 128 or 256 units"
    size = 4

    def sample(self, trial):
        return trial.suggest_categorical("width", [32, 64, 128, 256])

    def build(self, config, num_classes=10, channels=3, image_size=32):
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * image_size**2, config),
            nn.ReLU(),
            nn.Linear(config, num_classes),
        )

    def describe(self, config):
        return f"width={config}"

    def parse(self, text):
        return int(text.removeprefix("width="))


class Dead(Widths):
    """Networks whose outputs ignore their parameters' first layer: every pNTK is singular."""

    name = "dead"

    def build(self, config, num_classes=10, channels=3, image_size=32):
        net = super().build(config, num_classes, channels, image_size)
        nn.init.zeros_(net[1].weight)
        nn.init.zeros_(net[1].bias)
        nn.init.zeros_(net[3].weight)
        return net


@pytest.mark.parametrize("name", ["nb201", "nbmacro", "resnet"])
def test_the_builtin_spaces_ship_their_reference(name):
    shipped = reference.lookup(search_spaces.get(name), 32, 10)
    assert (shipped.space, shipped.image_size, shipped.classes, shipped.batch, shipped.sampled) == (
        name,
        32,
        10,
        64,
        reference.SHIPPED_SIZE,
    )
    size = reference.SHIPPED_SIZE
    assert 0.9 * size <= shipped.measured <= size  # a few cells have a singular pNTK
    assert set(shipped.terms) == set(metrics.TERMS)  # every term a refit may weigh
    assert all(math.isfinite(c) and s > 0 for c, s in shipped.terms.values())
    assert reference.lookup(search_spaces.get(name), 32, 10, 32) is None  # other batches: measured


@pytest.mark.slow
def test_the_nb201_reference_is_measured_by_the_protocol():
    """The first architectures of the protocol's sample, scored now, lie where the shipped
    reference says the sample lies (64 take a minute; 6 are within 3 spreads of the centre)."""
    space = search_spaces.get("nb201")
    configs = reference.sample(space, 6)
    assert configs == reference.sample(space, reference.SHIPPED_SIZE)[:6]  # seeded: the same draws every time
    few = reference.measure(space, 32, 10, size=6)
    shipped = reference.lookup(space, 32, 10).terms
    for name, (centre, _) in few.terms.items():
        assert abs(centre - shipped[name][0]) < 3 * shipped[name][1], name


def test_another_space_is_measured_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    space = Widths()
    assert reference.lookup(space, 8, 3) is None
    progress, shown = [], []

    @contextlib.contextmanager
    def measuring(what):
        shown.append(what)
        yield lambda done, total: progress.append((done, total))
        shown.append("done")

    measured = reference.for_space(space, 8, 3, measuring)
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]  # the whole space: it has 4 networks
    assert shown == ["8px, 3 classes, 64 images", "done"]
    assert (measured.sampled, measured.measured, measured.image_size, measured.classes) == (4, 4, 8, 3)
    path = reference.cache_path(space, 8, 3)
    assert path.parent == tmp_path / "ntknas" / "references"
    assert path.name.startswith("widths-8px-3classes-64images-")

    # the terms are the mean and standard deviation of the space's networks' own terms
    x, y = reference_batch(8)
    rows = []
    for width in (32, 64, 128, 256):
        values = metrics.compute(seeded_model(space, width, 3, 0, (3, 8, 8)), x, y, metrics.NTK_INPUTS)
        rows.append(metrics.ntk_terms(values))
    for name, (centre, spread) in measured.terms.items():
        v = torch.tensor([r[name] for r in rows], dtype=torch.float64)
        assert centre == pytest.approx(float(v.mean()), rel=1e-12)
        assert spread == pytest.approx(float(v.std(unbiased=False)), rel=1e-12)

    monkeypatch.setattr(reference, "measure", lambda *a, **k: pytest.fail("measured again"))
    assert reference.for_space(space, 8, 3, measuring) == measured
    assert shown == ["8px, 3 classes, 64 images", "done"]  # a cached reference is not measuring
    assert reference.lookup(space, 8, 4) is None  # another number of classes is another reference
    assert reference.lookup(space, 8, 3, 32) is None  # and another batch size

    stale = json.loads(path.read_text())
    path.write_text(json.dumps({**stale, "version": reference.VERSION + 1}))
    with pytest.warns(InputWarning, match="a reference of another version"):
        assert reference.lookup(space, 8, 3) is None  # another protocol's cache is not used


def test_a_space_whose_code_changed_is_measured_again(tmp_path, monkeypatch):
    """The cache is named after the space's class and size, its module's source and its first
    network: a build() that makes other networks under the same class and size (a plugin edited
    between two commands) is not placed in the old reference, nor is an edit of its module."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "edited_space.py").write_text(
        "from torch import nn\nfrom test_reference import Widths\n\n\nclass Edited(Widths):\n"
        "    name = 'edited'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import edited_space

    space = edited_space.Edited()
    reference.for_space(space, 8, 3)
    assert reference.lookup(space, 8, 3) is not None
    build = Widths.build
    monkeypatch.setattr(edited_space.Edited, "build", lambda self, c, *a, **k: build(self, 2 * c, *a, **k))
    assert reference.lookup(space, 8, 3) is None  # wider networks: measured again
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert reference.lookup(space, 8, 3) is not None  # the same code again: the same cache
    with (tmp_path / "edited_space.py").open("a") as f:
        f.write("# an edit in the module's code\n")
    assert reference.lookup(space, 8, 3) is None


def reference_batch(image_size):
    from ntknas.inputs import data
    from ntknas.inputs.sources import BUNDLED

    return data.minibatch(data.load(BUNDLED), reference.BATCH, reference.SEED, image_size)


def test_an_unwritable_cache_costs_a_measurement_not_the_search(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    measured = reference.for_space(Widths(), 8, 3)
    assert measured.measured == 4 and reference.lookup(Widths(), 8, 3) is None


def test_a_space_of_singular_networks_cannot_place_ntk_score(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    why = (
        "only 0 of 4 sampled architectures give every term of ntk_score "
        "(the first left out: its pNTK is singular (condition number inf))"
    )
    with pytest.raises(UserError, match=re.escape(why)):
        reference.for_space(Dead(), 8, 3)

    # `score` shows the other scores, and says why ntk_score is not among them
    from typer.testing import CliRunner

    from ntknas.cli import app

    args = ["score", "--space", f"{__name__}:Dead", "--arch", "width=32", "--data", "synthetic"]
    done = CliRunner().invoke(app, [*args, "--batch-size", "8", "--image-size", "8", "--format", "json"])
    assert done.exit_code == 0, done.output
    assert done.stderr.replace("\n", " ").strip() == f"warning: ntk_score is n/a: in space dead, {why}"
    shown = json.loads(done.stdout)
    assert (
        shown["config"] == "width=32"
        and shown["ntk_score"] is None
        and shown["params"] == 192 * 32 + 32 + 330
    )


def test_a_reference_too_large_for_memory_stops_at_its_first_network(tmp_path, monkeypatch):
    """Running out of memory is the batch's or the image size's fault, not the space's: one line
    naming the fix, after one network (the others would fail alike), and no other metric's error
    is taken for it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def out_of_memory(model, x, y, names, *, errors, **kwargs):
        calls.append(model)
        errors["condition_number"] = RuntimeError(
            "can't allocate memory: you tried to allocate 268435456 bytes"
        )
        return dict.fromkeys([*names, "seconds"], math.nan)

    monkeypatch.setattr(reference.metrics, "compute", out_of_memory)
    with pytest.raises(UserError) as error:
        reference.for_space(Widths(), 8, 3)
    assert str(error.value) == (
        "not enough memory (it tried to allocate 268435456 bytes); use a smaller --batch-size or "
        "--image-size, a smaller model, or fewer --workers"
    )
    assert len(calls) == 1


def test_the_cache_lives_in_xdg_cache_home_or_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        reference.cache_path(Widths(), 8, 3).parent == tmp_path / "home" / ".cache" / "ntknas" / "references"
    )


def planted(path, kind):
    """Put a hostile file of ``kind`` at ``path``; return what must stay untouched (a link's target)."""
    good = json.loads(path.read_text())
    path.unlink()
    if kind == "link":
        target = path.parent.parent / "victim.txt"
        target.write_text("the user's own file\n")
        path.symlink_to(target)
        return target
    if kind == "fifo":
        os.mkfifo(path)
        return None
    changed = {
        "nan": {**good, "terms": {n: ["nan", s] for n, (c, s) in good["terms"].items()}},
        "spread0": {**good, "terms": {n: [c, 0.0] for n, (c, s) in good["terms"].items()}},
        "other space": {**good, "space": "nb201"},
        "other size": {**good, "image_size": 32},
        "not a reference": [1, 2],
    }[kind]
    path.write_text(json.dumps(changed))
    return None


@pytest.mark.parametrize(
    "kind", ["link", "fifo", "nan", "spread0", "other space", "other size", "not a reference"]
)
def test_a_planted_cache_file_is_measured_again_with_a_warning(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    measured = reference.for_space(Widths(), 8, 3)
    path = reference.cache_path(Widths(), 8, 3)
    target = planted(path, kind)
    with pytest.warns(InputWarning) as warned:
        assert reference.for_space(Widths(), 8, 3) == measured
    [message] = [str(w.message) for w in warned]
    assert message.startswith(f"cached reference {path} ")
    assert matches(KINDS["a planted reference cache file"].message, message), message
    assert path.is_file() and not path.is_symlink() and reference.lookup(Widths(), 8, 3) == measured
    if target is not None:
        assert target.read_text() == "the user's own file\n"


def test_the_cache_folder_is_private_and_never_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = reference.cache_folder()
    assert stat.S_IMODE(folder.stat().st_mode) == stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    (tmp_path / "elsewhere").mkdir()
    shutil.rmtree(tmp_path / "cache" / "ntknas")
    (tmp_path / "cache" / "ntknas").symlink_to(tmp_path / "elsewhere")  # planted by another account
    assert reference.cache_folder() is None and reference.cache_path(Widths(), 8, 3) is None
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("HOME")
    monkeypatch.setattr(Path, "home", lambda: (_ for _ in ()).throw(RuntimeError("no home")))
    assert reference.cache_folder() is None  # no shared temporary folder instead
    assert reference.for_space(Widths(), 8, 3).measured == 4
