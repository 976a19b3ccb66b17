"""Verification: train the top picks, store what they reach on their trials, resume, report."""

import csv
import io
import math
import os
import re

import optuna
import pytest
import torch
from test_cli import run
from tiny_study import CONFIGS, SETTINGS, bundled_slice, make_study, write_image_folder

import search_spaces
from ntknas.core.errors import UserError
from ntknas.run import verify
from ntknas.scoring.ranking import tau_with_accuracy

URL = "sqlite:///results/ntknas.db"
nb201 = search_spaces.get("nb201")
ONE_EPOCH = verify.Recipe(epochs=1, batch_size=32)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def reload(name="tiny", url=URL):
    return optuna.load_study(study_name=name, storage=url)


def verified(number, name="tiny"):
    """What is stored as trial ``number``'s verification result."""
    return verify.stored_results(reload(name)).get(number, {})


def every_verified(name="tiny"):
    return [verified(t.number, name) for t in reload(name).trials]


def test_verify_stores_attributes_and_a_rerun_skips_finished_models(workdir):
    study = make_study()
    picks = verify.top_picks(study, 2)
    assert [p.number for p in picks] == [0, 1]  # trial 3 repeats trial 0's configuration
    outcomes = verify.verify(study, URL, picks, bundled_slice(), ONE_EPOCH, device="cpu")
    assert [(o.trial, o.config, o.status) for o in outcomes] == [
        (0, CONFIGS[0], "trained"),
        (1, CONFIGS[1], "trained"),
    ]

    trials = reload().trials
    for o in outcomes:
        stored = verified(o.trial)
        assert stored == o.attrs
        assert stored["verified_epochs"] == 1 and stored["verified_data"] == "sample-slice"
        assert stored["verified_status"] == "trained" and stored["verified_seconds"] > 0
        # the test accuracy is the checkpointed network's on the 32 test images; the train accuracy
        # counts the 64 training images of the epoch's 2 minibatches
        saved = torch.load(verify.checkpoint_path("tiny", o.trial), weights_only=True)
        trained = nb201.build(nb201.parse(o.config), 10)
        trained.load_state_dict(saved["model"])
        split = bundled_slice()
        tested = verify.accuracy(trained, split.test_pixels, split.test_labels, "cpu")
        assert stored["verified_test_acc"] == tested
        assert stored["verified_train_acc"] == saved["train_acc"]
        assert (saved["train_acc"] * 64 / 100).is_integer()
        assert trials[o.trial].user_attrs["config"] == o.config  # the search's attributes stay
        assert trials[o.trial].values == study.trials[o.trial].values
        assert saved["epoch"] == 1 and saved["stamp"]["data"] == "sample-slice"
    assert verified(2) == {} and verified(3) == {}
    first = every_verified()

    again = verify.verify(
        reload(), URL, verify.top_picks(reload(), 2), bundled_slice(), ONE_EPOCH, device="cpu"
    )
    assert [o.status for o in again] == ["skipped", "skipped"]
    assert [o.attrs for o in again] == [o.attrs for o in outcomes]
    assert every_verified() == first


def test_results_show_and_sort_by_verified_accuracy(workdir):
    study = make_study()
    picks = verify.top_picks(study, 2)
    outcomes = verify.verify(study, URL, picks, bundled_slice(), ONE_EPOCH, device="cpu")
    rows = list(
        csv.DictReader(io.StringIO(run("results", "--format", "csv", "--sort", "verified_test_acc").stdout))
    )
    assert {"verified_test_acc", "verified_train_acc", "verified_epochs", "verified_seconds"} <= set(rows[0])
    shown = [float(r["verified_test_acc"]) for r in rows[:2]]
    assert shown == sorted((o.attrs["verified_test_acc"] for o in outcomes), reverse=True)
    assert {r["trial"] for r in rows[:2]} == {"0", "1"} and rows[2]["verified_test_acc"] == ""


def test_results_show_a_diverged_pick_as_null(workdir):
    study = make_study()
    verify.verify(
        study, URL, verify.top_picks(study, 1), bundled_slice(), verify.Recipe(1, 16, lr=1e8), device="cpu"
    )
    table = run("results", "--sort", "verified_test_acc", "--format", "json")
    assert table.exit_code == 0 and '"verified_test_acc": null' in table.stdout


def test_an_interrupted_model_continues_from_its_last_epoch(tmp_path, monkeypatch):
    two_epochs = verify.Recipe(epochs=2, batch_size=32)
    monkeypatch.chdir(tmp_path)
    reference = make_study(url="sqlite:///reference.db")
    [pick] = verify.top_picks(reference, 1)
    [straight] = verify.verify(
        reference,
        "sqlite:///reference.db",
        [pick],
        bundled_slice(),
        two_epochs,
        device="cpu",
        checkpoints=tmp_path / "a",
    )

    study = make_study()

    def stop_in_epoch_2(trial, step):
        if step.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        verify.verify(study, URL, [pick], bundled_slice(), two_epochs, device="cpu", report=stop_in_epoch_2)
    saved = verify.checkpoint_path("tiny", pick.number)
    assert torch.load(saved, weights_only=True)["epoch"] == 1
    assert verified(pick.number) == {}

    steps = []
    [resumed] = verify.verify(
        reload(), URL, [pick], bundled_slice(), two_epochs, device="cpu", report=lambda t, s: steps.append(s)
    )
    assert [(s.epoch, s.step, s.start_epoch) for s in steps] == [(2, 1, 1), (2, 2, 1)]
    assert resumed.status == "trained"
    for key in ("verified_test_acc", "verified_train_acc"):
        assert resumed.attrs[key] == straight.attrs[key]
    a = torch.load(tmp_path / "a" / "tiny" / f"{pick.number}.pt", weights_only=True)["model"]
    b = torch.load(saved, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    # Another recipe does not resume from this checkpoint: it trains from scratch.
    steps.clear()
    other = verify.Recipe(epochs=2, batch_size=16)
    verify.verify(
        reload(), URL, [pick], bundled_slice(), other, device="cpu", report=lambda t, s: steps.append(s)
    )
    assert steps[0].epoch == 1 and steps[0].start_epoch == 0
    assert verified(pick.number)["verified_batch_size"] == 16


def test_a_diverging_model_is_recorded_not_a_crash(workdir):
    study = make_study()
    picks = verify.top_picks(study, 1)
    [outcome] = verify.verify(study, URL, picks, bundled_slice(), verify.Recipe(1, 16, lr=1e8), device="cpu")
    assert outcome.status == "diverged in epoch 1 (non-finite loss)"
    stored = verified(picks[0].number)
    assert math.isnan(stored["verified_test_acc"]) and math.isnan(stored["verified_train_acc"])
    assert stored["verified_status"] == outcome.status


def test_augment_crops_the_padded_image_and_flips_half():
    pixels = torch.randint(
        0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    out = verify.augment(pixels, torch.Generator().manual_seed(0))
    assert out.shape == pixels.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(pixels, (4, 4, 4, 4))
    flipped = 0
    for image, source in zip(out, padded, strict=True):
        crops = [source[:, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(image, c) for c in crops)
        mirrored = any(torch.equal(image, c.flip(2)) for c in crops)
        assert plain or mirrored
        flipped += mirrored and not plain
    assert 20 <= flipped <= 44  # about half of 64
    assert torch.equal(out, verify.augment(pixels, torch.Generator().manual_seed(0)))


def test_kendall_tau_follows_the_objective_direction():
    assert tau_with_accuracy([1, 2, 3], [10, 20, 30], True) == 1
    assert tau_with_accuracy([1, 2, 3], [10, 20, 30], False) == -1
    assert tau_with_accuracy([1, 2, 3], [float("nan"), 20, 30], True) == 1  # diverged ranks last
    assert math.isnan(tau_with_accuracy([1], [10], True))


def test_verify_and_search_on_the_command_line(workdir):
    make_study()
    write_image_folder(workdir / "tinyset", per_class=64)  # 128 training images: one batch of 128
    args = ("verify", "tiny", "--top", 2, "--epochs", 1, "--data", "tinyset", "--batch-size", 8)
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert "Verified: 1 epoch(s) on tinyset, study 'tiny'" in first.stdout
    assert "over these 2 picks" in first.stdout and "k is small" in first.stdout
    attrs = every_verified()
    assert [a.get("verified_data") for a in attrs] == ["tinyset", "tinyset", None, None]
    second = run(*args)
    assert second.exit_code == 0 and second.stdout.count("already verified with these settings, skipped") == 2
    assert every_verified() == attrs

    searched = run(
        "search",
        "--space",
        "nb201",
        "--trials",
        2,
        "--batch-size",
        8,
        "--data",
        "tinyset",
        "--objective",
        "condition_number",
        "--study",
        "s",
        "--verify-top",
        1,
        "--verify-epochs",
        1,
    )
    assert searched.exit_code == 0, searched.output
    [(number, result)] = verify.stored_results(reload("s")).items()
    assert result["verified_data"] == "tinyset"
    assert reload("s").trials[number].value == min(t.value for t in reload("s").trials)


def test_bad_input_is_one_line_and_loses_nothing(workdir):
    make_study()
    write_image_folder(workdir / "flat", splits=("",))  # classes directly: no test split
    cases = [
        (["verify", "nope"], "no study named 'nope'"),
        (
            ["verify", "tiny", "--top", "4"],
            "cannot verify the top 4: study 'tiny' holds 3 distinct completed trials; ask for 3 or fewer",
        ),
        (["verify", "tiny", "--epochs", "0"], "--epochs must be at least 1; got 0"),
        (["verify", "tiny", "--lr", "0"], "--lr must be a positive, finite number; got 0.0"),
        (["verify", "tiny", "--top", "2", "--data", "flat"], "flat has no test/ folder"),
        (["verify", "tiny", "--top", "2", "--data", "missing"], "data path missing does not exist"),
        (["search", "--trials", "2", "--verify-top", "3"], "--verify-top 3 is more than --trials 2"),
        (["search", "--verify-top", "1", "--data", "flat", "--batch-size", "8"], "flat has no test/ folder"),
    ]
    before = (reload().user_attrs, [t.user_attrs for t in reload().trials])
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert (reload().user_attrs, [t.user_attrs for t in reload().trials]) == before
    assert optuna.get_all_study_names(URL) == ["tiny"]


def test_a_recipe_that_cannot_train_replaces_nothing(workdir):
    study = make_study()
    [pick] = verify.top_picks(study, 1)
    [first] = verify.verify(study, URL, [pick], bundled_slice(), ONE_EPOCH, device="cpu")
    checkpoint = verify.checkpoint_path("tiny", pick.number).read_bytes()
    bad = [
        (verify.Recipe(1, 32, lr=math.inf), "--lr must be a positive, finite number; got inf"),
        (verify.Recipe(1, 32, lr=math.nan), "--lr must be a positive, finite number; got nan"),
        (verify.Recipe(1, 32, lr=0.0), "--lr must be a positive, finite number; got 0.0"),
        (verify.Recipe(1, 32, lr=-0.1), "--lr must be a positive, finite number; got -0.1"),
        (
            verify.Recipe(1, 65),
            "--batch-size 65 is larger than the training data (64 images of sample-slice); "
            "use --batch-size 64 or less",
        ),
        (verify.Recipe(0, 32), "--epochs must be at least 1; got 0"),
    ]
    steps = []
    for recipe, message in bad:
        with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
            verify.verify(
                reload(),
                URL,
                [pick],
                bundled_slice(),
                recipe,
                device="cpu",
                report=lambda t, s: steps.append(s),
            )
    assert steps == []  # nothing trained
    assert verified(pick.number) == first.attrs
    assert verify.checkpoint_path("tiny", pick.number).read_bytes() == checkpoint


def test_an_unwritable_checkpoint_folder_is_refused_before_training(workdir):
    study = make_study()
    (workdir / "taken").write_text("a file where the checkpoint folder would go")
    steps = []
    with pytest.raises(
        UserError, match=r"cannot write checkpoint folder .*taken/tiny: .*taken is not a folder"
    ):
        verify.verify(
            study,
            URL,
            verify.top_picks(study, 1),
            bundled_slice(),
            ONE_EPOCH,
            device="cpu",
            checkpoints=workdir / "taken",
            report=lambda t, s: steps.append(s),
        )
    assert steps == [] and verify.stored_results(reload()) == {}


def test_a_planted_link_among_the_checkpoints_is_neither_read_nor_written_through(workdir):
    study = make_study()
    (pick,) = verify.top_picks(study, 1)
    theirs = workdir / "theirs"
    theirs.mkdir()
    (theirs / "kept.pt").write_bytes(b"another account's file")
    root = workdir / "checkpoints"
    root.mkdir()
    os.symlink(theirs, root / "tiny")  # the study's checkpoint folder
    run = dict(device="cpu", checkpoints=root)
    with pytest.raises(
        UserError, match=rf"^checkpoint folder {root / 'tiny'} is a symbolic link to {theirs}, "
    ):
        verify.verify(study, URL, [pick], bundled_slice(), ONE_EPOCH, **run)
    (root / "tiny").unlink()
    (root / "tiny").mkdir()
    os.symlink(theirs / "kept.pt", verify.checkpoint_path("tiny", pick.number, root))  # one checkpoint
    with pytest.raises(
        UserError, match=r"^checkpoint .* is a symbolic link to .*kept.pt, not one ntknas made; remove"
    ):
        verify.verify(study, URL, [pick], bundled_slice(), ONE_EPOCH, **run)
    assert sorted(p.name for p in theirs.iterdir()) == ["kept.pt"]
    assert (theirs / "kept.pt").read_bytes() == b"another account's file"
    assert verify.stored_results(reload()) == {}


def test_stored_results_read_the_study_and_older_per_trial_attributes(workdir):
    study = make_study()
    legacy = {"verified_test_acc": 12.5, "verified_status": "trained", "verified_epochs": 3}
    study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"config": "x", **legacy}))
    assert verify.stored_results(study) == {4: legacy}
    [outcome] = verify.verify(
        study, URL, verify.top_picks(study, 1), bundled_slice(), ONE_EPOCH, device="cpu"
    )
    assert verify.stored_results(reload()) == {4: legacy, outcome.trial: outcome.attrs}
    assert reload().user_attrs[f"verified:{outcome.trial}"] == outcome.attrs
    # a result stored by this version replaces an older per-trial one of the same trial
    study.set_user_attr("verified:4", {"verified_test_acc": 50.0})
    assert verify.stored_results(reload())[4] == {"verified_test_acc": 50.0}
    assert not any(f.name.endswith(".partial") for f in verify.checkpoint_folder("tiny").iterdir())


@pytest.mark.parametrize("name", ["..", ".", "a/../..", "x" * 300])
def test_a_study_name_never_leads_a_checkpoint_outside_its_folder(workdir, name):
    """A study name becomes one folder under results/checkpoints, whatever it holds (path
    separators, dots, a length no file system takes)."""
    study = make_study(name)
    outcomes = verify.verify(study, URL, verify.top_picks(study, 1), bundled_slice(), ONE_EPOCH, device="cpu")
    (written,) = [p for p in workdir.rglob("*.pt")]
    assert written == workdir / verify.checkpoint_path(name, outcomes[0].trial)
    assert written.parent.parent == workdir / verify.CHECKPOINTS
    assert (
        verify.trained_weights(name, outcomes[0].trial, outcomes[0].config, outcomes[0].attrs, SETTINGS.seed)
        is not None
    )


def test_a_stored_result_is_never_replaced_by_a_worse_founded_one(workdir):
    """Fewer epochs on the same data, or a run that diverges, leave a trained result as it is
    (and fewer epochs train nothing); more epochs, or other data, replace it."""
    study = make_study()
    [pick] = verify.top_picks(study, 1)
    two = verify.Recipe(epochs=2, batch_size=32)
    [first] = verify.verify(study, URL, [pick], bundled_slice(), two, device="cpu")
    assert first.status == "trained"
    steps = []
    for recipe in (ONE_EPOCH, verify.Recipe(epochs=2, batch_size=16, lr=1e8)):
        [again] = verify.verify(
            reload(), URL, [pick], bundled_slice(), recipe, device="cpu", report=lambda t, s: steps.append(s)
        )
        assert again.status == "kept" and again.attrs == first.attrs
        assert verified(pick.number) == first.attrs
    assert {s.epochs for s in steps} == {2}  # the 1-epoch run trained nothing; the diverging one ran
    [longer] = verify.verify(reload(), URL, [pick], bundled_slice(), verify.Recipe(3, 32), device="cpu")
    assert longer.status == "trained" and verified(pick.number)["verified_epochs"] == 3
    assert (
        verify.better_founded(verified(pick.number), {"verified_epochs": 1, "verified_data": "other"})
        is False
    )


def test_the_results_table_keeps_its_configuration_in_100_columns():
    from rich.console import Console

    from ntknas.outputs import tables

    config = "block=bottleneck blocks=3-4-4-3 width=64 growth=2 stem=imagenet"
    row = {"trial": 3, "config": config, "ntk_score": -1.23, "verified_test_acc": 92.31}
    row |= {"verified_train_acc": 95.2, "verified_epochs": 10, "verified_seconds": 1234.5}
    console = Console(width=100, file=io.StringIO())
    console.print(tables.verified_table([row], "ntk_score", "Verified"))
    text = console.file.getvalue()
    assert max(map(len, text.splitlines())) <= 100
    cells = [line.split("│")[2].strip() for line in text.splitlines() if line.count("│") > 2]
    assert " ".join(cells) == config  # whole, wrapped at spaces


@pytest.mark.parametrize(
    ("loss", "accuracy", "why"),
    [
        (14.4, 10.0, "loss 14.4 is above 1.5·ln(10) = 3.45"),  # the 15M network, after one epoch
        (math.nan, 31.0, "loss is nan"),
        (2.3, 10.4, "accuracy 10.4% is at chance (10.0%)"),
        (1.9, 31.5, None),  # learning
    ],
)
def test_training_that_does_not_learn_is_named(loss, accuracy, why):
    assert verify.not_learning(loss, accuracy, 10) == why


def test_every_stage_of_verify_writes_lines_to_a_log(workdir, monkeypatch):
    """Without a terminal, each stage writes a progress line while it runs (here at once: the
    logger's first line comes after 0.01 s, and each stage waits for its line before it ends)."""
    from test_progress import logged_lines

    from ntknas.cli import progress
    from ntknas.cli import verify as command
    from ntknas.core.terminal import Terminal
    from ntknas.study import studies

    make_study()
    write_image_folder(workdir / "tinyset", per_class=8)  # 16 training images: 2 batches of 8
    log = Terminal(file=io.StringIO(), width=100)  # not a terminal
    monkeypatch.setattr(command, "out", log)
    monkeypatch.setattr(command, "err", log)
    monkeypatch.setattr(progress, "FIRST_LINE_SECONDS", 0.01)
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.01)
    stages = {
        (studies, "load_study"): "opening study 'tiny': working",
        (verify, "load_splits"): "loading the train and test images of tinyset: working",
        (verify, "seeded_model"): "trial 0 · building the network: working",
        (verify, "accuracy"): "trial 0 · testing on 16 images: working",
    }

    def logged(run_stage, line):
        def waiting(*args, **kwargs):
            result = run_stage(*args, **kwargs)
            logged_lines(log, line)  # waits until the stage's line is written
            return result

        return waiting

    for (module, name), line in stages.items():
        monkeypatch.setattr(module, name, logged(getattr(module, name), line))
    result = run("verify", "tiny", "--top", 1, "--epochs", 1, "--data", "tinyset", "--batch-size", 8)
    assert result.exit_code == 0, result.output
    text = log.file.getvalue()
    for line in [*stages.values(), "trial 0: 0/2, 0s"]:  # the pick's bar, from its first stage on
        assert f"\n{line}" in f"\n{text}", (line, text)
    assert "Verified: 1 epoch(s) on tinyset, study 'tiny'" in text


def test_a_second_verify_of_a_study_on_this_machine_is_refused_while_the_first_runs(workdir):
    """Two would train the same picks into the same checkpoints, and the last to end would store
    its result over the other's: the second is one line, and nothing of the first is touched."""
    import fcntl

    study = make_study()
    picks = verify.top_picks(study, 1)
    lock = verify.checkpoint_folder("tiny") / ".verify.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running verify holds it
        with pytest.raises(UserError) as info:
            verify.verify(study, URL, picks, bundled_slice(), ONE_EPOCH, device="cpu")
    from test_bad_input import KINDS, matches

    row = KINDS["two verify runs of one study at once"]
    assert matches(row.message.replace("nb201", "tiny"), str(info.value)), str(info.value)
    assert verified(picks[0].number) == {}
    outcomes = verify.verify(study, URL, picks, bundled_slice(), ONE_EPOCH, device="cpu")  # released
    assert [o.status for o in outcomes] == ["trained"]


def test_a_result_stored_meanwhile_by_a_longer_run_is_kept(workdir, monkeypatch):
    """Another machine's verify (another checkpoint folder, no shared lock) stored a 2-epoch
    result while this 1-epoch run trained: the better founded one stays."""
    study = make_study()
    picks = verify.top_picks(study, 1)
    longer = {"verified_epochs": 2, "verified_data": "sample-slice", "verified_status": "trained"}
    train = verify.train

    def train_then_another_stores(*args, **kwargs):
        attrs = train(*args, **kwargs)
        verify.store_result(reload(), picks[0].number, {**attrs, **longer})
        return attrs

    monkeypatch.setattr(verify, "train", train_then_another_stores)
    (outcome,) = verify.verify(study, URL, picks, bundled_slice(), ONE_EPOCH, device="cpu")
    assert outcome.status == verify.KEPT and verified(picks[0].number)["verified_epochs"] == 2


def test_a_checkpoint_folder_of_another_storages_study_of_that_name_is_not_overwritten(workdir):
    """Two storages (or a copy of one database) with a study of one name share a checkpoint folder
    name: the second verify is refused before it trains over the first's weights."""
    study = make_study()
    picks = verify.top_picks(study, 1)
    verify.verify(study, URL, picks, bundled_slice(), ONE_EPOCH, device="cpu")
    checkpoint = verify.checkpoint_path("tiny", picks[0].number)
    before = checkpoint.read_bytes()
    other = make_study(url="sqlite:///other.db")
    with pytest.raises(
        UserError, match=r"checkpoint folder .*tiny holds the trained picks of study 'tiny' of"
    ):
        verify.verify(
            other, "sqlite:///other.db", verify.top_picks(other, 1), bundled_slice(), ONE_EPOCH, device="cpu"
        )
    assert checkpoint.read_bytes() == before
    (verify.checkpoint_folder("tiny") / verify.OWNER).unlink()  # a folder an older ntknas left: taken
    assert (
        verify.verify(study, URL, picks, bundled_slice(), ONE_EPOCH, device="cpu")[0].status == verify.SKIPPED
    )


def test_splits_with_different_classes_are_refused_naming_the_classes_that_differ(tmp_path):
    import shutil

    write_image_folder(tmp_path / "photos", per_class=2)
    for name in ("c", "d", "e", "f"):
        shutil.copytree(tmp_path / "photos" / "train" / "a", tmp_path / "photos" / "train" / name)
    shutil.copytree(tmp_path / "photos" / "test" / "a", tmp_path / "photos" / "test" / "horse")
    with pytest.raises(UserError) as refused:
        verify.load_splits(str(tmp_path / "photos"), None)
    assert str(refused.value) == (
        f"the train and test splits of {tmp_path / 'photos'} have different classes (only in train: c, "
        "d, e, ...; only in test: horse); give both splits the same class folders"
    )


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("image_size", 5, "stores space=nb201, image_size=5, which cannot be used here: --image-size 5 does"),
        ("space", "nosuch", "stores space=nosuch, image_size=32, which cannot be used here: unknown search"),
        ("data", "gone", "stores data=gone, "),
        ("batch_size", 100000, "stores data=cifar10-sample, batch_size=100000, image_size=32, which cannot"),
    ],
)
def test_a_stored_setting_that_no_longer_works_is_one_line_naming_it_in_every_rebuilding_command(
    workdir, key, value, said
):
    """export, verify and the eigenvalues that plot and the dashboard draw rebuild networks from a
    study's stored settings: one that cannot be used (edited by hand, a folder moved) is named as
    the study's, never taken for an option the user gave, and nothing is written."""
    from test_bad_input import KINDS, matches

    from ntknas.study import rebuild
    from ntknas.study.settings import Settings

    study = make_study()
    study.set_user_attr(key, value)
    before = [t.user_attrs for t in reload().trials]
    commands = [["export", "tiny", "--out", "out"], ["verify", "tiny", "--top", "1", "--epochs", "1"]]
    for args in commands[: 1 if key == "batch_size" else 2]:  # verify trains with its own batch size
        done = run(*args)
        assert done.exit_code == 2, done.output
        assert done.stderr.startswith(f"error: study 'tiny' {said}"), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        if key == "image_size":
            assert matches(
                f"error: {KINDS['a stored setting that no longer works'].message}", done.stderr.strip()
            )
    with pytest.raises(UserError, match=f"^study 'tiny' {re.escape(said)}"):
        rebuild.eigenvalues(Settings.load(reload()), [CONFIGS[0]], study="tiny", data_root=None, device="cpu")
    assert not (workdir / "out").exists() and [t.user_attrs for t in reload().trials] == before


def test_a_stored_optuna_direction_edited_by_hand_is_refused_where_the_study_is_read_or_resumed(workdir):
    """Optuna's sampler optimises the stored direction while ntknas ranks by the settings': a study
    whose direction was edited by hand would search one way and report the other."""
    import sqlite3

    from test_bad_input import KINDS, matches

    from ntknas.study.studies import open_study

    make_study()
    with sqlite3.connect("results/ntknas.db") as db:
        db.execute("update study_directions set direction = 'MAXIMIZE'")  # condition_number: lower first
    before = [t.user_attrs for t in reload().trials]
    for args in (["results", "tiny"], ["export", "tiny", "--out", "out"], ["verify", "tiny", "--top", "1"]):
        done = run(*args)
        assert done.exit_code == 2, done.output
        assert matches(
            f"error: {KINDS['a stored Optuna direction edited by hand'].message}", done.stderr.strip()
        )
    with pytest.raises(UserError, match="stores the Optuna direction"):
        open_study("tiny", URL, SETTINGS, "random")  # a resumed search
    assert run("studies").exit_code == 0
    assert [t.user_attrs for t in reload().trials] == before and not (workdir / "out").exists()


def test_a_trial_of_a_builtin_space_edited_by_hand_is_not_blamed_on_build(workdir):
    """A built-in space builds the same network for a configuration every time: a rebuilt network
    that differs from the stored one means the trial was changed (or scored by another version),
    and the message says so instead of naming a plugin's build() rule."""
    import json
    import sqlite3

    make_study()
    edited = json.dumps(CONFIGS[2])  # trial 0 now claims another architecture
    with sqlite3.connect("results/ntknas.db") as db:
        db.execute(
            "update trial_user_attributes set value_json = ? where key = 'config' and trial_id = "
            "(select trial_id from trials where number = 0)",
            (edited,),
        )
    done = run("export", "tiny", "--trial", "0", "--out", "out")
    assert done.exit_code == 2, done.output
    assert re.fullmatch(
        r"error: trial 0 stores (params|weights_fingerprint)=\S+, and its configuration '\|nor_conv_1x1~0\|"
        r".*' builds a network with \1=\S+: the trial was changed outside ntknas, or scored by another "
        r"version of space nb201; pick another trial, or search again",
        done.stderr.replace("\n", " ").strip(),
    ), done.stderr
    assert "build()" not in done.stderr and not (workdir / "out").exists()
