"""The ``ntknas`` command line."""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import optuna
import torch
import typer
from rich.console import Console
from rich.markup import escape
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
from ntknas import data, metrics, plots, rebuild, tables, torchvision_models, verify, workers
from ntknas.errors import UserError
from ntknas.search import (
    COSTS,
    HEARTBEAT_SECONDS,
    OBJECTIVES,
    RECORDED,
    SAMPLERS,
    CandidateFailed,
    Settings,
    completed_trials,
    evaluate,
    open_study,
    progress,
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
StudyArg = Annotated[str | None, typer.Argument(help="Study name; optional when the storage holds one.")]
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
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True, markup=True)
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


@app.command("search")
def search_command(
    space: Annotated[
        str, typer.Option(help="Search space: resnet or nb201 (see `ntknas spaces`).")
    ] = "resnet",
    trials: Annotated[int, typer.Option(help="Completed trials the study should hold when done.")] = 50,
    sampler: Annotated[str, typer.Option(help="tpe, random, or nsga2 (score vs. --cost).")] = "tpe",
    objective: Annotated[
        str,
        typer.Option(help="Metric to optimise (see `ntknas benchmark`); the default ranks best on NB201."),
    ] = metrics.DEFAULT,
    cost: Annotated[str, typer.Option(help="Second objective of nsga2: params or flops.")] = "params",
    batch_size: BatchOpt = 64,
    data_source: DataOpt = data.BUNDLED,
    data_root: DataRootOpt = None,
    bn: BnOpt = "batch",
    study: Annotated[str | None, typer.Option(help="Study name [default: the space's name].")] = None,
    storage: StorageOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    worker_count: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Local worker processes sharing the study and the CPU; more on other machines: "
            "run the same command there with a shared --storage.",
        ),
    ] = 1,
    heartbeat: Annotated[
        int,
        typer.Option(
            help="Seconds between a running trial's heartbeats: a worker silent for 5 is "
            "presumed dead, and its trial retried."
        ),
    ] = HEARTBEAT_SECONDS,
    top: Annotated[int, typer.Option(help="Candidates shown at the end.")] = 10,
    verify_top: Annotated[
        int | None, typer.Option(help="Then train this many top picks from scratch (see `ntknas verify`).")
    ] = None,
    verify_epochs: Annotated[int, typer.Option(help="Training epochs of each --verify-top pick.")] = 10,
) -> None:
    """Search a space: score candidates at initialisation and store them in a study.

    Re-running the same command resumes the study until it holds --trials completed trials.
    """
    name = study or space
    with user_errors():
        check_positive("--trials", trials)
        check_positive("--top", top)
        check_positive("--workers", worker_count)
        check_positive("--heartbeat", heartbeat)
        splits = None
        if verify_top is not None:
            check_positive("--verify-top", verify_top)
            check_positive("--verify-epochs", verify_epochs)
            if verify_top > trials:
                raise UserError(f"--verify-top {verify_top} is more than --trials {trials}; lower it")
            splits = verify.load_splits(data_source, data_root)  # a missing test split fails now
        check_choice("--sampler", sampler, SAMPLERS)
        check_choice("--objective", objective, OBJECTIVES)
        check_choice("--cost", cost, COSTS)
        check_choice("--bn", bn, scores.BN_MODES)
        dev = resolve_device(device)
        chosen = search_spaces.get(space)
        batch, classes = data.load_minibatch(data_source, data_root, batch_size, seed)
        settings = Settings(
            space, data_source, batch_size, bn, seed, objective, cost if sampler == "nsga2" else None
        )
        opened = open_study(name, storage, settings, sampler, heartbeat)
        stopping = _graceful_interrupt()
        try:
            with _progress_bar() as bar:
                task = bar.add_task(f"{space} · {objective}", total=trials, best="")

                def report(p) -> None:
                    best = "" if p.best_value is None else f"best {p.best_value:.4g} (trial {p.best_trial})"
                    bar.update(task, completed=p.completed, best=best)

                bar.update(task, completed=len(completed_trials(opened)))
                if worker_count == 1:
                    search(opened, chosen, batch, classes, settings, trials, dev, report, stopping.is_set)
                else:
                    job = workers.Job(
                        name, storage, settings, sampler, trials, dev, heartbeat, batch, classes
                    )
                    ended = workers.run(
                        job, worker_count, stopping.is_set, lambda: report(progress(opened, trials, settings))
                    )
                    if stopping.is_set():
                        raise KeyboardInterrupt
                    for line in workers.check(ended, len(completed_trials(opened)), trials):
                        err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)
        except KeyboardInterrupt:
            done = len(completed_trials(opened))
            err.print(
                f"interrupted: {done} of {trials} trials are complete in study '{name}' "
                f"({mask(storage or default_url())}); run the same command to resume",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(130) from None
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        rows = tables.sort_rows(tables.trial_rows(opened), objective)[:top]
    columns = tables.columns_for(objective, compact=out.width < WIDE)
    out.print(tables.render(rows, columns, f"Top {len(rows)} of study '{name}' by {objective}"))
    if splits is not None:
        with user_errors():
            picks = verify.top_picks(opened, verify_top)
            _verify(opened, storage, picks, splits, verify.Recipe(verify_epochs), dev)


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


def _progress_columns() -> tuple:
    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[best]}"),
    )


def _progress_bar() -> Progress:
    return Progress(*_progress_columns(), console=out)


@app.command("results")
def results_command(
    study: StudyArg = None,
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
        every = tables.trial_rows(loaded)
        rows = tables.sort_rows(every, sort or objective)[:top]
    compact = output == "table" and out.width < WIDE
    columns = tables.columns_for(objective, compact, verified=tables.has_verified(every))
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


@app.command("verify")
def verify_command(
    study: StudyArg = None,
    top_k: Annotated[
        int, typer.Option("--top-k", help="Best configurations to train, by the study's objective.")
    ] = 5,
    epochs: Annotated[int, typer.Option(help="Training epochs of each network.")] = 10,
    data_source: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="cifar10-sample, cifar10, or an ImageFolder with train/ and test/ [default: the study's].",
        ),
    ] = None,
    data_root: DataRootOpt = None,
    batch_size: Annotated[int, typer.Option(help="Training minibatch size.")] = 128,
    lr: Annotated[float, typer.Option(help="Initial learning rate, decayed to zero on a cosine.")] = 0.1,
    device: DeviceOpt = "auto",
    storage: StorageOpt = None,
) -> None:
    """Train a study's top picks from scratch and store the accuracy each reaches on its trial.

    SGD (Nesterov momentum 0.9, weight decay 5e-4), cosine learning rate, random crop and flip:
    the NAS-Bench-201 recipe. Re-running the same command skips verified picks and resumes an
    interrupted one from its last epoch.
    """
    with user_errors():
        check_positive("--top-k", top_k)
        check_positive("--epochs", epochs)
        check_positive("--batch-size", batch_size)
        if not lr > 0:
            raise UserError(f"--lr must be positive; got {lr}")
        dev = resolve_device(device)
        loaded = _load_study(study, storage)
        picks = verify.top_picks(loaded, top_k)
        splits = verify.load_splits(data_source or rebuild.study_settings(loaded).data, data_root)
        _verify(loaded, storage, picks, splits, verify.Recipe(epochs, batch_size, lr), dev)


def _verify(
    study: optuna.Study,
    storage: str | None,
    picks: list[optuna.trial.FrozenTrial],
    splits: verify.Splits,
    recipe: verify.Recipe,
    device: str,
) -> None:
    """Train ``picks`` with one progress bar each, then show what they reached and Kendall τ."""
    objective = rebuild.study_settings(study).objective
    folder = verify.checkpoint_folder(study.study_name)
    try:
        with _progress_bar() as bar:
            tasks: dict[int, int] = {}

            def report(trial: int, step: verify.Step) -> None:
                if trial not in tasks:
                    total = step.epochs * step.steps
                    tasks[trial] = bar.add_task(f"trial {trial}", total=total, best="")
                done = (step.epoch - 1) * step.steps + step.step
                status = f"epoch {step.epoch}/{step.epochs} · loss {step.loss:.3f} · acc {step.accuracy:.1f}%"
                bar.update(tasks[trial], completed=done, best=status)

            outcomes = verify.verify(study, storage, picks, splits, recipe, device=device, report=report)
    except KeyboardInterrupt:
        err.print(
            f"interrupted: finished picks are stored in study '{study.study_name}', the others resume "
            f"from their last epoch (checkpoints in {folder}); run the same command to resume",
            highlight=False,
        )
        raise typer.Exit(130) from None
    for o in outcomes:
        if o.status == verify.SKIPPED:
            out.print(f"trial {o.trial}: already verified with these settings, skipped", highlight=False)
        elif o.status != verify.TRAINED:
            out.print(f"trial {o.trial}: {o.status}; stored with NaN accuracy", highlight=False)
    rows = [{"trial": o.trial, "config": o.config, objective: o.score, **o.attrs} for o in outcomes]
    columns = ["trial", "config", objective, *tables.VERIFIED]
    title = f"Verified: {recipe.epochs} epoch(s) on {splits.name}, study '{study.study_name}'"
    out.print(tables.render(tables.sort_rows(rows, "verified_test_acc"), columns, title))
    _print_tau(outcomes, objective)


def _print_tau(outcomes: list[verify.Outcome], objective: str) -> None:
    k = len(outcomes)
    what = f"Kendall τ ({objective} vs. verified test accuracy)"
    if k < 2:
        out.print(f"{what} needs at least 2 picks; verify more with --top-k")
        return
    tau = verify.tau([o.score for o in outcomes], [o.test_acc for o in outcomes], objective)
    value = "undefined (all tied)" if math.isnan(tau) else f"{tau:+.2f}"
    out.print(
        f"{what} over these {k} picks: {value}. "
        f"k is small: one swapped pair moves τ by {4 / (k * (k - 1)):.2f}; read it as a hint."
    )


@app.command("plot")
def plot_command(
    study: StudyArg = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder the PNG files go to.")] = plots.FOLDER,
    top: Annotated[int, typer.Option(help="Top picks whose pNTK eigenspectrum is drawn.")] = 5,
    data_root: DataRootOpt = None,
    device: DeviceOpt = "auto",
    storage: StorageOpt = None,
) -> None:
    """Draw a study as PNG files: score vs. parameters (Pareto front marked), the search history,
    the eigenspectra of the top picks and, once verified, score vs. verified accuracy.

    The eigenspectra are recomputed from the study's settings (its data, batch size, BatchNorm
    mode and seed); --data-root is needed when the study searched --data cifar10.
    """
    with user_errors():
        check_positive("--top", top)
        plots.require_matplotlib()
        dev = resolve_device(device)
        loaded = _load_study(study, storage)
        picks = verify.ranked_picks(loaded)[:top]
        with err.status(f"recomputing the pNTK of the top {len(picks)} picks"):
            values = rebuild.eigenvalues(
                loaded, [str(t.user_attrs["config"]) for t in picks], data_root=data_root, device=dev
            )
        paths = plots.write_all(loaded, out_dir, {t.number: v for t, v in zip(picks, values, strict=True)})
    for path in paths:
        out.print(f"wrote {path}", highlight=False)


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
        batch, classes = data.load_minibatch(data_source, data_root, batch_size, seed)
        if model is not None:
            torch.manual_seed(seed)
            net = torchvision_models.build(model, classes)
            names = [metrics.DEFAULT, *RECORDED]
            result = {"model": model, **metrics.compute(net, *batch, names, bn=bn, device=dev)}
        else:
            chosen = search_spaces.get(space)
            result = evaluate(
                chosen,
                chosen.parse(text),
                batch,
                classes,
                objective=metrics.DEFAULT,
                bn=bn,
                seed=seed,
                device=dev,
            )
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


@app.command("benchmark")
def benchmark_command(
    ground_truth: Annotated[str, typer.Option(help="CSV with columns index,arch,cifar10_test_acc.")],
    space: Annotated[str, typer.Option(help="Space the arch strings belong to.")] = "nb201",
    sample: Annotated[
        int | None, typer.Option(help="Score this many rows, drawn with --seed [default: all].")
    ] = None,
    seed: SeedOpt = 0,
    score_names: Annotated[
        str, typer.Option("--scores", help="Comma-separated metrics, 'default', or 'all'.")
    ] = "all",
    repeats: Annotated[int, typer.Option(help="Minibatches/initialisations averaged per architecture.")] = 1,
    batch_size: BatchOpt = 64,
    bn: BnOpt = "batch",
    data_source: DataOpt = data.BUNDLED,
    device: DeviceOpt = "auto",
    search_k: Annotated[
        int | None,
        typer.Option("--search", help="Simulate searches: draw K scored architectures, pick the best."),
    ] = None,
    runs: Annotated[int, typer.Option(help="Number of simulated searches.")] = 10,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    save: Annotated[
        str | None, typer.Option(help="Also write every architecture's scores to this CSV.")
    ] = None,
) -> None:
    """Measure how well each score ranks architectures with known accuracies.

    Prints Kendall τ and Spearman ρ of every score with the true accuracy, oriented so that
    positive means "higher score → better architecture" (lower-is-better scores enter negated).
    """
    from ntknas import benchmark

    with user_errors():
        check_choice("--format", output, ("table", "json"))
        check_choice("--bn", bn, scores.BN_MODES)
        check_positive("--repeats", repeats)
        dev = resolve_device(device)
        chosen = search_spaces.get(space)
        names = _metric_names(score_names)
        truth = benchmark.sample(benchmark.load_ground_truth(ground_truth), sample, seed)
        if save is not None:
            benchmark.check_save(save)
        if search_k is not None:
            benchmark.check_search(search_k, runs, len(truth.acc))
        with Progress(*_progress_columns(), console=err, transient=output == "json") as bar:
            task = bar.add_task(f"scoring {len(truth.acc)} architectures", total=len(truth.acc), best="")
            values, per_arch = benchmark.score_all(
                truth,
                chosen,
                names,
                data_source=data_source,
                batch_size=batch_size,
                bn=bn,
                repeats=repeats,
                seed=seed,
                device=dev,
                progress=lambda done: bar.update(task, completed=done),
            )
        if save is not None:
            benchmark.write_scores(save, truth, values)
        table = benchmark.correlations(values, truth.acc)
        found = None
        if search_k is not None:
            default = metrics.DEFAULT if metrics.DEFAULT in values else names[0]
            found = benchmark.search_experiment(
                values[default], metrics.METRICS[default].higher_is_better, truth.acc, search_k, runs, seed
            )
    report = {
        "n": len(truth.acc),
        "default_score": metrics.DEFAULT,
        "scores": {n: {k: benchmark.finite_or_none(v) for k, v in row.items()} for n, row in table.items()},
        "seconds_per_architecture": per_arch,
        "batch_size": batch_size,
        "bn": bn,
        "repeats": repeats,
    }
    if found is not None:
        report["search"] = found
    if output == "json":
        print(json.dumps(report))
        return
    _print_benchmark(report)


def _metric_names(spec: str) -> list[str]:
    if spec == "all":
        return list(metrics.METRICS)
    if spec == "default":
        return [metrics.DEFAULT]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for n in names:
        check_choice("--scores entry", n, tuple(metrics.METRICS))
    return names


def _print_benchmark(report: dict) -> None:
    table = Table(
        title=f"Ranking quality on {report['n']} architectures (N={report['batch_size']}, bn={report['bn']}, "
        f"{report['repeats']} repeat(s), {report['seconds_per_architecture']:.2f} s per architecture)",
        title_justify="left",
    )
    for column in ("score", "orientation", "Kendall τ", "Spearman ρ"):
        table.add_column(column, justify="left" if column in ("score", "orientation") else "right")
    rows = sorted(report["scores"].items(), key=lambda kv: -(kv[1]["kendall_tau"] or -2))
    for name, row in rows:
        marker = " (default)" if name == report["default_score"] else ""
        orientation = (
            "higher is better" if metrics.METRICS[name].higher_is_better else "negated: lower is better"
        )
        cells = [f"{row[k]:+.3f}" if row[k] is not None else "n/a" for k in ("kendall_tau", "spearman_rho")]
        table.add_row(name + marker, orientation, *cells)
    out.print(table)
    if "search" in report:
        s = report["search"]
        out.print(
            f"Search: best of {s['k']} random architectures by {report['default_score']}, {s['runs']} runs: "
            f"{s['mean_acc']:.2f} ± {s['std_acc']:.2f} % (random pick {s['random_mean_acc']:.2f} %, "
            f"best of the draw {s['optimum_mean_acc']:.2f} %)"
        )


def main() -> None:
    """Entry point of the ``ntknas`` console script."""
    app()
