"""``ntknas verify``: train a study's top picks from scratch and store what they reach."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Annotated

import typer
from rich.progress import TaskID

from ntknas.cli.common import (
    DataRootOpt,
    DeviceOpt,
    StorageOpt,
    StudyArg,
    ThreadsOpt,
    err,
    out,
    resolve_device,
    stop_requests,
    use_threads,
    user_errors,
    warn,
)
from ntknas.cli.progress import LoggedProgress, phase, progress_bar
from ntknas.core.checks import check_positive_finite, check_positive_int
from ntknas.inputs.sources import BUNDLED, CIFAR10
from ntknas.outputs import tables
from ntknas.run.recipe import Recipe
from ntknas.study import records

DEFAULTS = Recipe()


def command(
    study: StudyArg = None,
    top: Annotated[int, typer.Option(help="Best configurations to train, by the study's objective.")] = 5,
    epochs: Annotated[int, typer.Option(help="Training epochs of each network.")] = DEFAULTS.epochs,
    data_source: Annotated[
        str | None,
        typer.Option(
            "--data",
            help=f"{BUNDLED}, {CIFAR10}, or an ImageFolder with train/ and test/ \\[default: the study's].",
            show_default=False,
        ),
    ] = None,
    data_root: DataRootOpt = None,
    batch_size: Annotated[int, typer.Option(help="Training minibatch size.")] = DEFAULTS.batch_size,
    lr: Annotated[
        float, typer.Option(help="Initial learning rate, decayed to zero on a cosine.")
    ] = DEFAULTS.lr,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    storage: StorageOpt = None,
) -> None:
    """Train a study's top picks from scratch and store the accuracy each reaches.

    SGD (Nesterov momentum 0.9, weight decay 5e-4), cosine learning rate, random crop and flip:
    the NAS-Bench-201 recipe. Re-running the same command skips verified picks and resumes an
    interrupted one from its last epoch.
    """
    with user_errors(storage):
        check_positive_int("--top", top)
        check_positive_int("--epochs", epochs)
        check_positive_int("--batch-size", batch_size)
        check_positive_finite("--lr", lr)
        with phase("opening the study" if study is None else f"opening study '{study}'", err):
            from ntknas.run import verify  # torch and Optuna: seconds on a busy machine
            from ntknas.study.rebuild import from_settings
            from ntknas.study.settings import Settings
            from ntknas.study.studies import load_study

            dev = resolve_device(device)
            use_threads(threads)
            loaded = load_study(study, storage)
            picks = verify.top_picks(loaded, top)
            settings = Settings.load(loaded)
        source = data_source or settings.data
        # the study's own data, when none is given: a failure to read it is the stored setting's
        own = from_settings(settings, loaded.study_name, ("data", "image_size"))
        with (
            phase(f"loading the train and test images of {source}", err),
            own if data_source is None else nullcontext(),
        ):
            splits = verify.load_splits(source, data_root, settings.image_size)
    verify_picks(loaded, storage, picks, splits, Recipe(epochs, batch_size, lr), dev)


def verify_picks(study, storage: str | None, picks: list, splits, recipe: Recipe, device: str) -> None:
    """Train ``picks`` with one progress bar each, then show what they reached and Kendall τ."""
    from ntknas.run import verify
    from ntknas.scoring.ranking import tau_with_accuracy
    from ntknas.study.settings import Settings

    settings = Settings.load(study)
    objective = settings.objective
    folder = verify.checkpoint_folder(study.study_name)
    with user_errors(storage), stop_requests() as stopping:
        try:
            with progress_bar(out) as bar:
                bars = PickBars(bar, recipe, splits)
                outcomes = verify.verify(
                    study, storage, picks, splits, recipe, device=device, report=bars.report, stage=bars.stage
                )
        except KeyboardInterrupt:
            ended = "terminated" if stopping.terminated else "interrupted"
            err.print(
                f"{ended}: finished picks are stored in study '{study.study_name}', the others resume "
                f"from their last epoch (checkpoints in {folder}); run the same command to resume"
            )
            raise typer.Exit(stopping.exit_code()) from None
    for o in outcomes:
        if o.status == verify.SKIPPED:
            out.print(f"trial {o.trial}: already verified with these settings, skipped", highlight=False)
        elif o.status == verify.KEPT:
            out.print(
                f"trial {o.trial}: kept its stored result ({o.attrs['verified_epochs']} epoch(s) on "
                f"{o.attrs['verified_data']}), better founded than this run's (fewer epochs, or "
                "diverged)",
                highlight=False,
            )
        elif o.status != verify.TRAINED:
            diverged = f"trial {o.trial}: {o.status}; stored with NaN accuracy; {lower_lr(recipe)}"
            out.print(diverged, highlight=False)
    rows = [{"trial": o.trial, "config": o.config, objective: o.score, **o.attrs} for o in outcomes]
    title = f"Verified: {recipe.epochs} epoch(s) on {splits.name}, study '{study.study_name}'"
    best_first = records.sort_rows(rows, "verified_test_acc")
    out.print(tables.verified_table(best_first, objective, title))
    k = len(outcomes)
    what = f"Kendall τ ({objective} vs. verified test accuracy)"
    if k < 2:
        out.print(f"{what} needs at least 2 picks; verify more with --top")
        return
    tau = tau_with_accuracy(
        [o.score for o in outcomes], [o.test_acc for o in outcomes], settings.higher_is_better
    )
    value = "undefined (all tied)" if math.isnan(tau) else f"{tau:+.2f}"
    out.print(
        f"{what} over these {k} picks: {value}. "
        f"k is small: one swapped pair moves τ by {4 / (k * (k - 1)):.2f}; read it as a hint."
    )


class PickBars:
    """What the training of the picks shows on ``bar``: a bar per pick, added when its first stage
    begins, and a line of its own for each stage between minibatches (building the network,
    testing it) while it runs; a warning when a pick is not learning."""

    def __init__(self, bar: LoggedProgress, recipe: Recipe, splits) -> None:
        from ntknas.run import verify

        self.bar, self.recipe, self.classes = bar, recipe, len(splits.classes)
        self.total = recipe.epochs * verify.steps_per_epoch(recipe, splits)
        self.tasks: dict[int, TaskID] = {}
        self.warned: set[int] = set()

    def task(self, trial: int) -> TaskID:
        """The training bar of ``trial``."""
        if trial not in self.tasks:
            self.tasks[trial] = self.bar.add_task(f"trial {trial}", total=self.total, note="")
        return self.tasks[trial]

    @contextmanager
    def stage(self, trial: int, what: str) -> Iterator[None]:
        """Show that ``trial`` is doing ``what`` while the block runs."""
        self.task(trial)
        line = self.bar.add_task(f"trial {trial} · {what}", total=None, note="")
        try:
            yield
        finally:
            self.bar.remove_task(line)

    def report(self, trial: int, step) -> None:
        """Move ``trial``'s bar to ``step`` (a :class:`ntknas.verify.Step`)."""
        from ntknas.run import verify

        why = verify.not_learning(step.loss, step.accuracy, self.classes)
        if step.step == step.steps and why is not None and trial not in self.warned:
            self.warned.add(trial)
            warn(f"trial {trial} is not learning after epoch {step.epoch}: {why}; {lower_lr(self.recipe)}")
        done = (step.epoch - 1) * step.steps + step.step
        note = f"epoch {step.epoch}/{step.epochs} · loss {step.loss:.3f} · acc {step.accuracy:.1f}%"
        self.bar.update(self.task(trial), completed=done, note=note)


def lower_lr(recipe: Recipe) -> str:
    """The advice for a network that does not learn: a lower learning rate than ``recipe``'s."""
    return f"try a lower --lr (this run: {recipe.lr:g}; e.g. --lr {recipe.lr / 10:g})"
