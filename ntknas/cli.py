"""The ``ntknas`` command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import optuna
import torch
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

import scores
import search_spaces
from ntknas import data, tables, torchvision_models
from ntknas.errors import UserError
from ntknas.search import (
    COSTS,
    OBJECTIVES,
    SAMPLERS,
    CandidateFailed,
    Settings,
    completed_trials,
    evaluate,
    open_study,
    search,
)
from ntknas.storage import default_url, mask, open_storage

app = typer.Typer(
    help="Training-free neural architecture search with the pseudo neural tangent kernel (pNTK).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
# Output that is not a terminal (a log, a pipe) gets wide tables instead of rich's 80 columns.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)
WIDE = 150  # console columns from which tables show every score

FORMATS = ("table", "csv", "json")

# Options shared by several commands.
DataOpt = Annotated[
    str,
    typer.Option(
        "--data", help="cifar10-sample (bundled real images), cifar10, synthetic, or an ImageFolder path."
    ),
]
DataRootOpt = Annotated[
    str | None, typer.Option(help="Folder holding torchvision's CIFAR-10, for --data cifar10.")
]
BatchOpt = Annotated[int, typer.Option(help="Minibatch size N: the kernel is N×N.")]
BnOpt = Annotated[str, typer.Option(help="BatchNorm statistics: batch, eval or train.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the minibatch and of every initialisation.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")]
StorageOpt = Annotated[
    str | None, typer.Option(help="Optuna storage URL [default: sqlite:///results/ntknas.db].")
]


@app.callback()
def _commands() -> None:
    """Training-free neural architecture search with the pseudo neural tangent kernel (pNTK)."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn bad input into one red line on stderr and exit code 2."""
    try:
        yield
    except (UserError, CandidateFailed, ValueError, TypeError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True, markup=True)
        raise typer.Exit(2) from None


def check_choice(option: str, value: str | None, choices) -> None:
    if value not in choices:
        raise UserError(f"unknown {option} {value!r}; choose one of: {', '.join(choices)}")


def check_positive(option: str, value: int) -> None:
    if value < 1:
        raise UserError(f"{option} must be at least 1; got {value}")


def resolve_device(device: str) -> str:
    """``auto`` → cuda when present, else cpu; ``cpu``/``cuda`` as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"unknown --device {device!r}; use auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available; use --device cpu")
    return device


def load_minibatch(source: str, root: str | None, batch_size: int, seed: int) -> tuple[torch.Tensor, int]:
    """The seeded, class-balanced minibatch of a search or score, and the number of classes."""
    images = data.load(source, "train", root)
    x, _ = data.minibatch(images, batch_size, seed)
    return x, len(images.classes)


@app.command("search")
def search_command(
    space: Annotated[
        str, typer.Option(help="Search space: resnet or nb201 (see `ntknas spaces`).")
    ] = "resnet",
    trials: Annotated[int, typer.Option(help="Completed trials the study should hold when done.")] = 50,
    sampler: Annotated[str, typer.Option(help="tpe, random, or nsga2 (score vs. --cost).")] = "tpe",
    objective: Annotated[str, typer.Option(help="Spectrum score to optimise.")] = "condition_number",
    cost: Annotated[str, typer.Option(help="Second objective of nsga2: params or flops.")] = "params",
    batch_size: BatchOpt = 64,
    data_source: DataOpt = data.BUNDLED,
    data_root: DataRootOpt = None,
    bn: BnOpt = "batch",
    study: Annotated[str | None, typer.Option(help="Study name [default: the space's name].")] = None,
    storage: StorageOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    top: Annotated[int, typer.Option(help="Candidates shown at the end.")] = 10,
) -> None:
    """Search a space: score candidates at initialisation and store them in a study.

    Re-running the same command resumes the study until it holds --trials completed trials.
    """
    name = study or space
    with user_errors():
        check_positive("--trials", trials)
        check_positive("--top", top)
        check_choice("--sampler", sampler, SAMPLERS)
        check_choice("--objective", objective, OBJECTIVES)
        check_choice("--cost", cost, COSTS)
        check_choice("--bn", bn, scores.BN_MODES)
        dev = resolve_device(device)
        chosen = search_spaces.get(space)
        x, classes = load_minibatch(data_source, data_root, batch_size, seed)
        settings = Settings(
            space, data_source, batch_size, bn, seed, objective, cost if sampler == "nsga2" else None
        )
        opened = open_study(name, storage, settings, sampler)
        stopping = _graceful_interrupt()
        try:
            with _progress_bar() as bar:
                task = bar.add_task(f"{space} · {objective}", total=trials, best="")

                def report(p) -> None:
                    best = "" if p.best_value is None else f"best {p.best_value:.4g} (trial {p.best_trial})"
                    bar.update(task, completed=p.completed, best=best)

                bar.update(task, completed=len(completed_trials(opened)))
                search(opened, chosen, x, classes, settings, trials, dev, report, stopping.is_set)
        except KeyboardInterrupt:
            done = len(completed_trials(opened))
            err.print(
                f"interrupted: {done} of {trials} trials are complete in study '{name}' "
                f"({mask(storage or default_url())}); run the same command to resume",
                highlight=False,
            )
            raise typer.Exit(130) from None
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        rows = tables.sort_rows(tables.trial_rows(opened), objective)[:top]
    columns = tables.columns_for(objective, compact=out.width < WIDE)
    out.print(tables.render(rows, columns, f"Top {len(rows)} of study '{name}' by {objective}"))


def _graceful_interrupt() -> threading.Event:
    """Make the first Ctrl-C finish the current candidate and then stop; a second stops at once.

    (A KeyboardInterrupt raised at an arbitrary point can land in a garbage-collection callback,
    where Python swallows it; a flag checked between candidates cannot be lost.)
    """
    requested = threading.Event()

    def on_sigint(signum, frame) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        err.print("stopping after the current candidate (Ctrl-C again to stop now)", highlight=False)

    signal.signal(signal.SIGINT, on_sigint)
    return requested


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[best]}"),
        console=out,
    )


@app.command("results")
def results_command(
    study: Annotated[
        str | None, typer.Argument(help="Study name; optional when the storage holds one.")
    ] = None,
    top: Annotated[int, typer.Option(help="Rows shown.")] = 10,
    sort: Annotated[
        str | None, typer.Option(help="Column to sort by [default: the study's objective].")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    storage: StorageOpt = None,
) -> None:
    """Show a study's best candidates as a table, CSV or JSON."""
    with user_errors():
        check_choice("--format", output, FORMATS)
        check_positive("--top", top)
        loaded = _load_study(study, storage)
        objective = loaded.user_attrs.get("objective", "condition_number")
        rows = tables.sort_rows(tables.trial_rows(loaded), sort or objective)[:top]
    columns = tables.columns_for(objective, compact=output == "table" and out.width < WIDE)
    if output == "csv":
        print(tables.to_csv(rows, columns), end="")
    elif output == "json":
        print(tables.to_json(rows, columns))
    else:
        out.print(
            tables.render(
                rows, columns, f"Top {len(rows)} of study '{loaded.study_name}' by {sort or objective}"
            )
        )


def _load_study(name: str | None, storage: str | None) -> optuna.Study:
    backend = open_storage(storage)
    names = optuna.get_all_study_names(backend)
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            raise UserError(f"name a study: this storage holds {len(names)} ({listed})")
        name = names[0]
    if name not in names:
        raise UserError(
            f"no study named '{name}' in {mask(storage or default_url())}; "
            f"studies: {', '.join(names) or 'none'}"
        )
    return optuna.load_study(study_name=name, storage=backend)


@app.command("studies")
def studies_command(storage: StorageOpt = None) -> None:
    """List the studies in a storage."""
    with user_errors():
        summaries = optuna.get_all_study_summaries(open_storage(storage), include_best_trial=False)
    table = Table(title=f"Studies in {mask(storage or default_url())}", title_justify="left")
    for column in ("study", "space", "objective", "bn", "data", "batch", "trials", "started"):
        table.add_column(column)
    for s in summaries:
        a = s.user_attrs
        started = s.datetime_start.strftime("%Y-%m-%d %H:%M") if s.datetime_start else ""
        table.add_row(
            s.study_name,
            a.get("space", ""),
            a.get("objective", ""),
            a.get("bn", ""),
            a.get("data", ""),
            str(a.get("batch_size", "")),
            str(s.n_trials),
            started,
        )
    out.print(table)


@app.command("spaces")
def spaces_command() -> None:
    """List the search spaces."""
    table = Table(title="Search spaces", title_justify="left")
    for column in ("space", "configurations", "what"):
        table.add_column(column)
    for name in search_spaces.names():
        space = search_spaces.get(name)
        table.add_row(name, f"{space.size:,}", space.summary)
    out.print(table)


@app.command("score")
def score_command(
    space: Annotated[
        str | None, typer.Option(help="Score a configuration of this space (resnet, nb201).")
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help="The configuration, as the space describes it "
            "(for nb201 an arch string |op~0|+|op~0|op~1|+...)."
        ),
    ] = None,
    config: Annotated[str | None, typer.Option(help="Alias of --arch.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Or score a torchvision classification model, e.g. resnet18.")
    ] = None,
    batch_size: BatchOpt = 64,
    data_source: DataOpt = data.BUNDLED,
    data_root: DataRootOpt = None,
    bn: BnOpt = "batch",
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Score one freshly initialised network: the spectrum of its pNTK on one minibatch.

    With --space and --arch the network is seeded exactly as `ntknas search` seeds it, so the
    scores equal the ones a study stored for the same settings.
    """
    with user_errors():
        check_choice("--format", output, ("table", "json"))
        check_choice("--bn", bn, scores.BN_MODES)
        dev = resolve_device(device)
        text = arch or config
        if (space is None) == (model is None) or (space is not None and text is None):
            raise UserError("give either --space with --arch (or --config), or --model")
        x, classes = load_minibatch(data_source, data_root, batch_size, seed)
        if model is not None:
            torch.manual_seed(seed)
            result = {
                "model": model,
                **scores.score(torchvision_models.build(model, classes), x, bn=bn, device=dev),
            }
        else:
            chosen = search_spaces.get(space)
            result = evaluate(chosen, chosen.parse(text), x, classes, bn=bn, seed=seed, device=dev)
    result = {**result, "batch_size": batch_size, "bn": bn}
    if output == "json":
        print(json.dumps(result))
        return
    table = Table(title=f"pNTK on {batch_size} images ({data_source}, bn={bn})", title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in result.items():
        table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    out.print(table)


def main() -> None:
    """Entry point of the ``ntknas`` console script."""
    app()
