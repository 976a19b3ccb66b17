"""--image-size: a study searched at 48 pixels stores the size, refuses to resume at another, and
scores, verifies, rebuilds and exports its networks at 48; every command checks the size alike."""

import csv
import json
import re
import types

import numpy as np
import optuna
import pytest
import torch
from test_benchmark import TINY
from tiny_study import CONFIGS, write_image_folder
from typer.testing import CliRunner

import search_spaces
from ntknas.cli import app
from ntknas.core.errors import UserError
from ntknas.inputs.image_size import LARGEST
from ntknas.objectives import reference
from ntknas.objectives.candidates import seeded_model
from ntknas.objectives.fit import check_for_space
from ntknas.run import verify
from ntknas.scoring import spectra
from ntknas.scoring.measure import count_flops
from ntknas.study import rebuild
from ntknas.study.settings import Settings
from ntknas.study.storage import default_url
from search_spaces.nb201 import NB201

runner = CliRunner()
NB201_SPACE = search_spaces.get("nb201")
CHEAP = CONFIGS[1]  # skip and none edges: scored in a blink


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def builds(monkeypatch):
    """The image size each nb201 network was built for, in order."""
    sizes = []
    original = NB201.build

    def build(self, config, num_classes=10, channels=3, image_size=32):
        sizes.append(image_size)
        return original(self, config, num_classes, channels, image_size)

    monkeypatch.setattr(NB201, "build", build)
    return sizes


@pytest.fixture
def references(monkeypatch):
    """The (space, image size, classes) each command asked ntk_score's reference for (every
    command asks ``reference.for_space``); each gets the shipped 32-pixel one, so that no reference
    is measured."""
    asked = []

    def shipped(space, image_size, classes, measuring=None, batch=reference.BATCH):
        asked.append((space.name, image_size, classes))
        return reference.lookup(space, 32, 10)

    monkeypatch.setattr(reference, "for_space", shipped)
    return asked


def flops_at(config: str, classes: int, size: int) -> int:
    model = seeded_model(NB201_SPACE, NB201_SPACE.parse(config), classes, 0, (3, size, size))
    return count_flops(model, torch.zeros(1, 3, size, size))


@pytest.mark.slow
def test_a_study_at_48_pixels_is_searched_verified_rebuilt_and_exported_at_48(
    workdir, builds, references, monkeypatch
):
    write_image_folder(workdir / "photos", per_class=4, size=64)
    search = ("search", "--space", "nb201", "--data", "photos", "--trials", 1, "--batch-size", 4)
    searched = run(*search, "--image-size", 48)
    assert searched.exit_code == 0, searched.output
    assert references == [("nb201", 48, 2)]  # ntk_score placed among 48-pixel, 2-class networks
    study = optuna.load_study(study_name="nb201", storage=default_url())
    settings = Settings.load(study)
    assert study.user_attrs["image_size"] == settings.image_size == 48
    assert builds and set(builds) == {48}
    (trial,) = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    config = str(trial.user_attrs["config"])
    assert trial.user_attrs["flops"] == flops_at(config, 2, 48) != flops_at(config, 2, 32)

    refused = run(*search)
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "study 'nb201' was created with image_size=48, not image_size=32" in refused.stderr

    assert re.search(r"│ photos +│ 48 +│ 4 +│", run("studies").stdout)  # data, pixels, batch
    rows = json.loads(run("results", "nb201", "--format", "json").stdout)
    assert [(r["trial"], r["config"]) for r in rows] == [(trial.number, config)]

    # plot and dashboard recompute the spectrum the search stored: on the same 48-pixel minibatch
    (recomputed,) = rebuild.eigenvalues(settings, [config], study="sized", data_root=None, device="cpu")
    assert np.allclose(np.sort(recomputed), spectra.stored(trial), rtol=1e-5)

    trained = []
    augment = verify.augment
    monkeypatch.setattr(
        verify, "augment", lambda pixels, g: trained.append(pixels.shape) or augment(pixels, g)
    )
    builds.clear()
    verified = run("verify", "nb201", "--top", 1, "--epochs", 1, "--batch-size", 4)
    assert verified.exit_code == 0, verified.output
    # the stored image size checked on one network of the space, then the pick; 8 photos, batches of 4
    assert builds == [48, 48] and trained == [(4, 3, 48, 48)] * 2
    assert verify.stored_results(study)[trial.number]["verified_status"] == verify.TRAINED

    exported = run("export", "nb201", "--out", "pick")
    assert exported.exit_code == 0, exported.output
    record = json.loads((workdir / "pick" / "config.json").read_text())
    assert record["input_shape"] == [3, 48, 48] and record["settings"]["image_size"] == 48
    assert record["weights"]["kind"] == "trained" and record["program"]["input_shape"] == [None, 3, 48, 48]
    readme = (workdir / "pick" / "README.md").read_text()
    assert "(4, 3, 48, 48)" in readme and "space.build(config, 2, 3, 48)" in readme
    program = torch.export.load(workdir / "pick" / "model.pt2").module()
    assert program(torch.zeros(3, 3, 48, 48)).shape == (3, 2)


def test_score_and_benchmark_at_48_pixels(workdir, builds, references):
    score = ("score", "--space", "nb201", "--arch", CHEAP, "--batch-size", 4, "--image-size", 48)
    scored = run(*score, "--format", "json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["flops"] == flops_at(CHEAP, 10, 48)
    benchmarked = run(
        "benchmark", "--ground-truth", TINY, "--sample", 2, "--scores", "ntk_score,flops", "--batch-size", 4,
        "--image-size", 48, "--save", "scores.csv", "--format", "json",
    )  # fmt: skip
    assert benchmarked.exit_code == 0, benchmarked.output
    assert json.loads(benchmarked.stdout)["image_size"] == 48
    saved = list(csv.DictReader((workdir / "scores.csv").open()))
    assert [float(r["flops"]) for r in saved] == [flops_at(r["arch"], 10, 48) for r in saved]
    assert references == [("nb201", 48, 10)] * 2 and set(builds) == {48}


def test_a_study_made_before_image_sizes_reads_as_32():
    study = optuna.create_study()
    old = Settings("nb201", "cifar10-sample", 8, "batch", 0, "condition_number")
    for key, value in old.__dict__.items():
        if key != "image_size":
            study.set_user_attr(key, value)
    assert Settings.load(study) == old and old.image_size == 32
    old.check_against(study.study_name, study.user_attrs)
    with pytest.raises(UserError, match="created with image_size=32, not image_size=48"):
        Settings(**{**old.__dict__, "image_size": 48}).check_against(study.study_name, study.user_attrs)


WHOLE = "--image-size must be a whole number of pixels; got '4.5'"
RANGE = (
    "--image-size must be from 1 to 1024 pixels; got {}: pass the side of the square images to score "
    "and train at, e.g. 32 or 224"
)
FIT = (
    "--image-size {} does not fit space nb201: its networks need images of at least 4 pixels, a "
    "multiple of 4; pass --image-size {}"
)
BAD = [
    ("4.5", WHOLE),
    ("0", RANGE.format(0)),
    ("1025", RANGE.format(1025)),
    ("50", FIT.format(50, "48 or 52")),
    ("2", FIT.format(2, 4)),
]
COMMANDS = {
    "search": ("search", "--space", "nb201"),
    "score": ("score", "--space", "nb201", "--arch", CHEAP),
    "benchmark": ("benchmark", "--ground-truth", TINY),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("size", "message"), BAD)
def test_a_bad_size_is_one_line_and_exit_2(workdir, command, size, message):
    result = run(*COMMANDS[command], "--image-size", size)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {message}"
    assert not (workdir / "results").exists()


def test_the_largest_fitting_size_is_offered_within_the_limit():
    check_for_space(NB201_SPACE, 4)
    with pytest.raises(UserError, match=r"nb201: .*; pass --image-size 1020 or 1024$"):
        check_for_space(NB201_SPACE, 1023)


@pytest.mark.parametrize(("low", "step"), [(LARGEST + 1, 1), (8, 2 * LARGEST)])
def test_a_space_that_no_image_size_fits_is_refused_as_the_space_s_fault(low, step):
    impossible = types.SimpleNamespace(name="impossible", min_image_size=low, image_size_multiple=step)
    with pytest.raises(
        UserError, match=rf"^space impossible declares .* no image size up to {LARGEST} is one: fix"
    ):
        check_for_space(impossible, 32)
