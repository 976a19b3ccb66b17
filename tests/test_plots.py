"""`ntknas plot`: PNG pictures of a study, with eigenspectra recomputed as the search measured them."""

import sys

import numpy as np
import pytest
from PIL import Image
from test_cli import run
from tiny_study import CONFIGS, bundled_slice, make_study

from ntknas.core import extras
from ntknas.outputs import plots
from ntknas.run import verify
from ntknas.study import rebuild
from ntknas.study.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_pictures(folder, names):
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    for name in names:
        path = folder / name
        assert path.read_bytes()[:8] == PNG
        assert 10_000 < path.stat().st_size < 150_000, name
        with Image.open(path) as image:
            image.verify()
            assert image.size == (704, 462)


def test_plot_writes_every_picture_and_the_verified_one_once_verified(workdir):
    study = make_study()
    result = run("plot", "tiny", "--out", "before", "--top", 2)
    assert result.exit_code == 0, result.output
    assert_pictures(workdir / "before", ["score_vs_params.png", "history.png", "spectrum.png"])
    assert "wrote before/spectrum.png" in result.stdout

    verify.verify(
        study, None, verify.top_picks(study, 2), bundled_slice(), verify.Recipe(1, 32), device="cpu"
    )
    result = run("plot", "--out", "after")
    assert result.exit_code == 0, result.output
    assert_pictures(workdir / "after", ["score_vs_params.png", "history.png", "spectrum.png", "verified.png"])


def test_recomputed_spectra_are_the_ones_the_search_scored(workdir):
    study = make_study()
    spectra = rebuild.eigenvalues(
        Settings.load(study), list(CONFIGS[:3]), study=study.study_name, data_root=None, device="cpu"
    )
    for trial, values in zip(study.trials[:3], spectra, strict=True):
        assert len(values) == 8 and np.all(np.diff(values) >= 0)
        assert values[-1] / values[0] == pytest.approx(trial.user_attrs["condition_number"], rel=1e-9)
        assert values.sum() == pytest.approx(trial.user_attrs["trace"], rel=1e-9)


def test_pareto_front_keeps_points_no_other_beats_on_both():
    params = np.array([100, 200, 200, 300, 400, 50])
    score = np.array([5.0, 7.0, 6.0, 6.5, 9.0, 1.0])
    assert plots.pareto_front(params, score, higher_is_better=True).tolist() == [5, 0, 1, 4]
    assert plots.pareto_front(params, score, higher_is_better=False).tolist() == [5]


def test_missing_matplotlib_is_a_one_line_hint(workdir, monkeypatch):
    make_study()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run("plot", "tiny")
    assert result.exit_code == 2
    hint = f'pip install -e ".[plot]" (in {extras.CHECKOUT})'  # the tests run from a checkout
    assert result.stderr.strip() == f"error: matplotlib is not installed: {hint}"
    assert not (workdir / "results" / "plots").exists()


def test_unwritable_folder_is_a_one_line_error(workdir):
    make_study()
    (workdir / "taken").write_text("a file, not a folder")
    result = run("plot", "tiny", "--out", "taken", "--top", 1)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: cannot write --out folder taken: taken is not a folder; choose another path"
    )


def test_plot_replaces_only_its_own_pictures_unless_forced(workdir):
    make_study()
    assert run("plot", "tiny", "--out", "p", "--top", 1).exit_code == 0
    assert run("plot", "tiny", "--out", "p", "--top", 1).exit_code == 0  # its own: drawn again
    (workdir / "mine.txt").write_text("the user's own file\n")
    (workdir / "p" / "history.png").unlink()
    (workdir / "p" / "history.png").symlink_to(workdir / "mine.txt")
    (workdir / "p" / "verified.png").write_bytes(PNG + b"the user's own picture")
    refused = run("plot", "tiny", "--out", "p", "--top", 1)
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "error: --out folder p holds history.png, verified.png, which ntknas did not write; "
        "choose another --out, or pass --force to replace them"
    )
    forced = run("plot", "tiny", "--out", "p", "--top", 1, "--force")
    assert forced.exit_code == 0, forced.output
    assert (workdir / "mine.txt").read_text() == "the user's own file\n"  # the link's target: untouched
    assert not (workdir / "p" / "history.png").is_symlink()
    assert (workdir / "p" / "verified.png").read_bytes() == PNG + b"the user's own picture"  # not drawn
    (workdir / "p" / "verified.png").unlink()
    assert_pictures(workdir / "p", ["score_vs_params.png", "history.png", "spectrum.png"])
    (workdir / "p" / "history.png").unlink()
    (workdir / "p" / "history.png").mkdir()  # not a file: --force replaces files, never a folder
    before = {p.name: p.read_bytes() for p in (workdir / "p").glob("*.png") if p.is_file()}
    folder = run("plot", "tiny", "--out", "p", "--top", 1, "--force")
    assert folder.exit_code == 2 and folder.stderr.strip() == (
        "error: --out folder p holds history.png, which is not a file, where a plot goes; move it, or "
        "choose another --out"
    )
    assert {p.name: p.read_bytes() for p in (workdir / "p").glob("*.png") if p.is_file()} == before
