"""ntknas export: a pick's files load back to the very network the search seeded (or verify trained),
with and without ntknas; bad input is one line that leaves everything as it was."""

import errno
import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import optuna
import pytest
import torch
from full_disk import fail_writes
from test_cli import run
from tiny_study import CONFIGS, SETTINGS, bundled_slice, make_study, write_image_folder

import search_spaces
from ntknas.core.errors import UserError
from ntknas.inputs import data
from ntknas.objectives.candidates import seeded_model
from ntknas.outputs import export
from ntknas.run import verify
from ntknas.study.studies import open_study

URL = "sqlite:///results/ntknas.db"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def batch():
    """Eight real, normalised bundled images (8, 3, 32, 32)."""
    return data.minibatch(data.load(data.BUNDLED), 8, seed=1)[0]


def rebuilt(folder: Path) -> torch.nn.Module:
    """The exported network rebuilt as README.md says: built fresh, then weights.pt loaded."""
    record = json.loads((folder / "config.json").read_text())
    space = search_spaces.get(record["space"])
    channels, size, _ = record["input_shape"]
    torch.manual_seed(12345)  # another initialisation than the search's: the weights must come from the file
    model = space.build(space.parse(record["config"]), record["num_classes"], channels, size)
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    return model.eval()


def program(folder: Path) -> torch.nn.Module:
    return torch.export.load(folder / "model.pt2").module()


def readme_namespace(folder: Path, monkeypatch) -> dict:
    """What running the Python blocks of ``folder``'s README.md, in order, in ``folder`` defines."""
    blocks = re.findall(r"```python\n(.*?)```", (folder / "README.md").read_text(), flags=re.S)
    monkeypatch.chdir(folder)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    return namespace


@pytest.mark.slow
def test_the_best_pick_loads_back_to_the_network_the_search_seeded(workdir, batch):
    study = make_study()
    result = run("export", "--out", "pick")
    assert result.exit_code == 0, result.output
    assert "Exported trial 0 of study 'tiny'" in result.stdout
    folder = workdir / "pick"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.pt2", "weights.pt"]
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".")] == []  # no staging folder left

    record = json.loads((folder / "config.json").read_text())
    best = study.trials[0]  # lowest condition number: the study's objective
    assert (record["study"], record["trial"], record["space"], record["config"]) == (
        "tiny",
        0,
        "nb201",
        CONFIGS[0],
    )
    assert record["settings"] == asdict(SETTINGS)
    assert (record["num_classes"], record["input_shape"]) == (10, [3, 32, 32])
    assert record["scores"]["condition_number"] == best.user_attrs["condition_number"]
    assert record["params"] == best.user_attrs["params"] and record["flops"] == best.user_attrs["flops"]
    assert record["verified"] is None and record["weights"]["kind"] == "initial"
    assert record["program"] == {"file": "model.pt2", "input_shape": [None, 3, 32, 32], "dynamic_batch": True}

    space = search_spaces.get("nb201")
    seeded = seeded_model(space, space.parse(CONFIGS[0]), 10, SETTINGS.seed).eval()
    expected = seeded(batch)
    torch.manual_seed(12345)
    unloaded = space.build(space.parse(CONFIGS[0])).eval()
    assert not torch.allclose(unloaded(batch), expected)  # so equal outputs below mean the weights loaded
    assert torch.equal(rebuilt(folder)(batch), expected)
    for images in (batch, batch[:1], batch[:5]):  # any batch size, not only the example's 2
        torch.testing.assert_close(program(folder)(images), seeded(images), rtol=1e-6, atol=1e-6)


def test_the_readme_code_runs_in_the_folder_and_both_ways_agree(workdir, monkeypatch):
    make_study()
    exported = export.export(optuna.load_study(study_name="tiny", storage=URL), 2, Path("pick"))
    assert exported.record["trial"] == 2 and exported.record["config"] == CONFIGS[2]
    text = (workdir / "pick" / "README.md").read_text()
    assert text.count("```python") == 3 and "initial weights" in text
    namespace = readme_namespace(workdir / "pick", monkeypatch)
    assert namespace["logits"].shape == (4, 10)
    torch.testing.assert_close(namespace["model"](namespace["x"]), namespace["logits"], rtol=1e-6, atol=1e-6)


def test_a_network_without_a_dynamic_batch_is_exported_for_one_image(workdir, monkeypatch):
    make_study()
    traced = torch.export.export

    def no_dynamic_batch(model, args, dynamic_shapes=None, **kwargs):
        if dynamic_shapes is not None:
            raise RuntimeError("Constraints violated (batch)!")
        return traced(model, args, **kwargs)

    monkeypatch.setattr(torch.export, "export", no_dynamic_batch)
    exported = export.export(optuna.load_study(study_name="tiny", storage=URL), 0, Path("pick"))
    assert exported.record["program"] == {
        "file": "model.pt2",
        "input_shape": [1, 3, 32, 32],
        "dynamic_batch": False,
    }
    namespace = readme_namespace(workdir / "pick", monkeypatch)  # the README loops over the images
    torch.testing.assert_close(namespace["model"](namespace["x"]), namespace["logits"], rtol=1e-6, atol=1e-6)


def test_a_network_torch_export_cannot_trace_still_gets_its_weights(workdir, monkeypatch):
    make_study()

    def untraceable(*args, **kwargs):
        raise RuntimeError("data-dependent control flow\nmore detail")

    monkeypatch.setattr(torch.export, "export", untraceable)
    result = run("export", "--out", "pick")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        "warning: no model.pt2: torch.export could not trace this network "
        "(RuntimeError: data-dependent control flow)"
    )
    assert sorted(p.name for p in (workdir / "pick").iterdir()) == ["README.md", "config.json", "weights.pt"]
    record = json.loads((workdir / "pick" / "config.json").read_text())
    assert record["program"] == {"file": None, "error": "RuntimeError: data-dependent control flow"}
    namespace = readme_namespace(workdir / "pick", monkeypatch)
    assert "program" not in namespace and namespace["model"](namespace["x"]).shape == (4, 10)


@pytest.mark.slow
def test_a_verified_pick_exports_its_trained_weights(workdir, batch):
    study = make_study()
    splits = bundled_slice()
    (outcome,) = verify.verify(
        study, URL, verify.top_picks(study, 1), splits, verify.Recipe(epochs=1, batch_size=32), device="cpu"
    )
    study = optuna.load_study(study_name="tiny", storage=URL)
    # trial 3 repeats trial 0's configuration: its export is trial 0's network, trained
    exported = export.export(study, 3, Path("pick"))
    record = exported.record
    assert (record["trial"], record["scored_by_trial"], record["config"]) == (3, 0, CONFIGS[0])
    assert exported.weights == "trained" and "1 epoch(s) on sample-slice" in record["weights"]["note"]
    assert record["verified"]["verified_test_acc"] == outcome.test_acc
    assert "trained weights" in (workdir / "pick" / "README.md").read_text()

    model = rebuilt(workdir / "pick")
    # the loaded weights are the ones that reached the stored accuracy, not the initial ones
    assert verify.accuracy(model, splits.test_pixels, splits.test_labels, "cpu") == outcome.test_acc
    space = search_spaces.get("nb201")
    initial = seeded_model(space, space.parse(CONFIGS[0]), 10, SETTINGS.seed).eval()
    assert not torch.allclose(initial(batch), model(batch))
    torch.testing.assert_close(program(workdir / "pick")(batch), model(batch), rtol=1e-6, atol=1e-6)

    verify.checkpoint_path("tiny", 0).unlink()  # without its checkpoint: the initial weights, and why
    again = export.export(study, 0, Path("pick-2"))
    assert (
        again.weights == "initial"
        and "checkpoint results/checkpoints/tiny/0.pt is missing" in (again.record["weights"]["note"])
    )
    assert torch.equal(rebuilt(workdir / "pick-2")(batch), initial(batch))


def test_weights_trained_for_other_classes_are_not_exported(workdir, batch):
    study = make_study()
    write_image_folder(workdir / "two")  # 2 classes: the study's network has 10 outputs
    splits = verify.load_splits(str(workdir / "two"), None)
    verify.verify(
        study, URL, verify.top_picks(study, 1), splits, verify.Recipe(1, batch_size=8), device="cpu"
    )
    exported = export.export(optuna.load_study(study_name="tiny", storage=URL), 0, Path("pick"))
    assert exported.weights == "initial" and "has other shapes" in exported.record["weights"]["note"]
    space = search_spaces.get("nb201")
    seeded = seeded_model(space, space.parse(CONFIGS[0]), 10, SETTINGS.seed).eval()
    assert torch.equal(rebuilt(workdir / "pick")(batch), seeded(batch))


def snapshot(root: Path) -> dict[str, object]:
    """Every file, folder and link under ``root`` but the storage → a digest of its content ("dir"
    for folders, the target for links); and the stored trials."""
    files = {
        str(p.relative_to(root)): f"-> {os.readlink(p)}"
        if p.is_symlink()
        else "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.relative_to(root).parts[0] != "results"
    }
    trials = optuna.load_study(study_name="tiny", storage=URL).get_trials()
    return {**files, "trials": [(t.number, t.state, t.values, t.user_attrs) for t in trials]}


def one_line_error(args: list, workdir: Path) -> str:
    """Run ``ntknas export ...``; assert exit 2, one line on stderr, and nothing changed."""
    before = snapshot(workdir)
    result = run("export", *args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert snapshot(workdir) == before
    return result.stderr.strip()


def test_bad_input_is_one_line_and_changes_nothing(workdir):
    make_study()
    optuna.load_study(study_name="tiny", storage=URL).ask()  # trial 4 is left running
    (workdir / "mine").mkdir()
    (workdir / "mine" / "notes.txt").write_text("the user's own file")
    (workdir / "notes.txt").write_text("a file")

    assert one_line_error(["--trial", 99, "--out", "pick"], workdir) == (
        "error: study 'tiny' has no trial 99 (its trials are 0 to 4); pick one from: ntknas results tiny"
    )
    assert one_line_error(["--trial", 4, "--out", "pick"], workdir) == (
        "error: trial 4 of study 'tiny' is running, not complete; "
        "pick a completed one from: ntknas results tiny"
    )
    assert one_line_error(["--out", "mine"], workdir) == (
        "error: --out mine is not empty; give a new folder, so that nothing is overwritten, e.g. --out mine-2"
    )
    assert one_line_error(["--out", "notes.txt"], workdir) == (
        "error: --out notes.txt is a file; give a new folder, e.g. --out notes.txt-2"
    )
    assert one_line_error(["--out", "/dev/null"], workdir) == (
        "error: --out /dev/null is not a folder (a device or another special file); give a new folder, "
        "e.g. --out null-2"
    )
    assert one_line_error(["--out", "notes.txt/pick"], workdir) == (
        f"error: cannot write --out notes.txt/pick: {workdir / 'notes.txt'} is not a writable folder; "
        "choose another --out"
    )
    assert one_line_error(["--out", ""], workdir) == (
        "error: --out is empty; give it a value, or leave it out for its default"
    )
    for given, shown, new in ((".", ".", "new"), ("mine/..", "mine/..", "mine/../new")):
        assert one_line_error(["--out", given], workdir) == (  # no name to add -2 to: a folder inside
            f"error: --out {shown} is not empty; give a new folder, so that nothing is overwritten, e.g. "
            f"--out {new}"
        )
    (workdir / "empty").mkdir()
    for link, target in (("to-empty", "empty"), ("dangling", "gone"), ("loop", "loop")):
        os.symlink(target, workdir / link)
        assert one_line_error(["--out", link], workdir) == (
            f"error: --out {link} is a symbolic link to {target}; give a new folder, e.g. --out {link}-2"
        )
    assert not any((workdir / "empty").iterdir()) and not (workdir / "gone").exists()
    assert one_line_error(["nope", "--out", "pick"], workdir).startswith("error: no study named 'nope'")
    assert (workdir / "mine" / "notes.txt").read_text() == "the user's own file"


@pytest.mark.parametrize(
    ("skip", "code", "fault"),
    [
        (0, errno.ENOSPC, "disk full writing --out new/deeper/pick (No space left on device): free space"),
        (2, errno.EDQUOT, "disk full writing --out new/deeper/pick (Disk quota exceeded): free space"),
        (3, errno.EIO, "the disk failed writing --out new/deeper/pick (Input/output error): check the disk"),
    ],
)
def test_a_full_disk_anywhere_in_the_folder_is_one_line_and_leaves_nothing(
    workdir, monkeypatch, skip, code, fault
):
    make_study()
    written = fail_writes(monkeypatch, ".pick.", skip=skip, code=code)  # the staged folder's files
    error = one_line_error(["--out", "new/deeper/pick"], workdir)  # no pick, no parent folders made for it
    assert error.startswith(f"error: {fault}") and error.endswith(" run the same command"), error
    assert len(written) == skip + 1 and not (workdir / "new").exists()


def test_an_empty_folder_is_filled_and_an_unknown_study_trial_is_refused(workdir):
    study = make_study()
    (workdir / "empty").mkdir()
    assert export.export(study, 1, Path("empty")).record["config"] == CONFIGS[1]
    assert sorted(p.name for p in (workdir / "empty").iterdir())[0] == "README.md"
    with pytest.raises(UserError, match="has no completed trials"):
        export.export(open_study("bare", URL, SETTINGS, "random"), None, Path("other"))


def test_a_damaged_stored_verification_exports_the_initial_weights_and_says_so(workdir):
    study = make_study()
    study.set_user_attr("verified:0", {"verified_status": "trained"})  # by hand: no data, no epochs
    exported = export.export(optuna.load_study(study_name="tiny", storage=URL), 0, Path("pick"))
    weights = exported.record["weights"]
    assert weights["kind"] == export.INITIAL and weights["note"].endswith(
        "its stored verification is damaged"
    )
