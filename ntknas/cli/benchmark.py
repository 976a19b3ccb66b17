"""``ntknas benchmark``: how well each score ranks architectures of known accuracy."""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Annotated

import typer

from ntknas.cli.common import (
    SIGTERMS,
    BatchOpt,
    BnOpt,
    DataOpt,
    DeviceOpt,
    ImageSizeOpt,
    SeedOpt,
    ThreadsOpt,
    check_choice,
    check_space_at,
    err,
    out,
    resolve_device,
    space_reference,
    use_threads,
    user_errors,
    warn,
    write_out,
)
from ntknas.cli.progress import progress_bar
from ntknas.core import jsonout
from ntknas.core.checks import check_positive_int, check_seed, parse_budget
from ntknas.core.errors import UserError
from ntknas.inputs.image_size import DEFAULT as DEFAULT_IMAGE_SIZE
from ntknas.inputs.sources import BUNDLED
from ntknas.objectives.budget import Budget
from ntknas.outputs import tables
from ntknas.scoring.registry import DEFAULT, METRICS
from scores.modes import BN_MODES

if TYPE_CHECKING:
    import numpy as np

    from ntknas.run.benchmark import GroundTruth
    from search_spaces import SearchSpace


def command(
    ground_truth: Annotated[str, typer.Option(help="CSV with columns index,arch and the --target accuracy.")],
    target: Annotated[
        str, typer.Option(help="The CSV's accuracy column to rank against, e.g. cifar100_test_acc.")
    ] = "cifar10_test_acc",
    space: Annotated[str, typer.Option(help="Space the arch strings belong to.")] = "nb201",
    sample: Annotated[
        int | None,
        typer.Option(help="Score this many rows, drawn with --seed \\[default: all].", show_default=False),
    ] = None,
    seed: SeedOpt = 0,
    score_names: Annotated[
        str, typer.Option("--scores", help="Comma-separated metrics, 'default', or 'all'.")
    ] = "all",
    repeats: Annotated[int, typer.Option(help="Minibatches/initialisations averaged per architecture.")] = 1,
    batch_size: BatchOpt = 64,
    bn: BnOpt = "batch",
    data_source: DataOpt = BUNDLED,
    image_size: ImageSizeOpt = DEFAULT_IMAGE_SIZE,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    search_k: Annotated[
        int | None,
        typer.Option("--search", help="Simulate searches: draw K scored architectures, pick the best."),
    ] = None,
    runs: Annotated[int, typer.Option(help="Number of simulated searches.")] = 10,
    max_params: Annotated[
        str | None,
        typer.Option(help="With --search: draw only architectures with at most this many parameters (500k)."),
    ] = None,
    max_flops: Annotated[
        str | None, typer.Option(help="With --search: draw only architectures with at most this many FLOPs.")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    save: Annotated[
        str | None, typer.Option(help="Also write every architecture's scores to this CSV.")
    ] = None,
    scored: Annotated[
        str | None,
        typer.Option(
            help="Rank the scores a --save CSV holds instead of scoring again (another --target, "
            "--search, a budget)."
        ),
    ] = None,
) -> None:
    """Measure how well each score ranks architectures of known accuracy.

    Prints Kendall τ and Spearman ρ of every score with the true accuracy, oriented so that
    positive means "higher score → better architecture" (lower-is-better scores enter negated).
    """

    import search_spaces
    from ntknas.run import benchmark

    with user_errors():
        check_choice("--format", output, ("table", "json"))
        check_choice("--bn", bn, BN_MODES)
        check_positive_int("--repeats", repeats)
        check_seed("--seed", seed)
        dev = resolve_device(device)
        use_threads(threads)
        chosen = search_spaces.get(space)
        names = metric_names(score_names)
        budget = Budget(
            None if max_params is None else parse_budget("--max-params", max_params),
            None if max_flops is None else parse_budget("--max-flops", max_flops),
        )
        if budget and search_k is None:
            raise UserError("--max-params and --max-flops bound the simulated searches: give --search K too")
        names += [n for n in budget.bounded() if n not in names]
        truth = benchmark.sample(benchmark.load_ground_truth(ground_truth, target), sample, seed)
        benchmark.parse_all(truth, chosen)  # a malformed arch string fails before any scoring
        if save is not None:
            benchmark.check_save(save, ground_truth)
        if search_k is not None:
            benchmark.check_search(search_k, runs, len(truth.acc))
        if scored is not None:
            if save is not None:
                raise UserError("--scored reads saved scores and --save writes new ones: give one of them")
            values = benchmark.read_scores(
                scored, truth, None if score_names == "all" else names, chosen.name
            )
            lacking = [n for n in budget.bounded() if n not in values]
            if lacking:
                raise UserError(f"--scored file {scored} lacks {lacking[0]}, which the budget needs")
            per_arch = math.nan
            warn_unscored(values, truth, {}, "its cell is empty or NaN in the --scored file")
            given = {"batch_size": batch_size, "bn": bn, "data_source": data_source, "image_size": image_size}
            _warn_unused(given | {"repeats": repeats, "device": device})
        else:
            check_space_at(chosen, image_size)
            scoring = {
                "data_source": data_source,
                "image_size": image_size,
                "batch_size": batch_size,
                "bn": bn,
                "repeats": repeats,
                "seed": seed,
            }
            values, per_arch = score_now(truth, chosen, names, output, save, device=dev, **scoring)
            if save is not None:
                benchmark.write_scores(save, truth, values, _scored_with(chosen, scoring))
        found = None
        if search_k is not None:
            default = DEFAULT if DEFAULT in values else next(iter(values))
            within = benchmark.within_budget(values, budget) if budget else None
            found = benchmark.search_experiment(
                values[default], METRICS[default].higher_is_better, truth.acc, search_k, runs, seed, within
            )
            found["score"] = default
            if budget:
                found["budget"] = budget.describe()
    report = benchmark.report(
        values,
        truth,
        seconds_per_architecture=per_arch,
        batch_size=batch_size,
        bn=bn,
        repeats=repeats,
        image_size=image_size,
        search=found,
        scored=scored,
    )
    if output == "json":
        write_out(jsonout.dumps(report) + "\n")
        return
    out.print(tables.benchmark_table(report))
    if found is not None:
        out.print(tables.search_line(report))


def metric_names(spec: str) -> list[str]:
    """The metrics ``--scores`` names: ``all``, ``default`` or a comma-separated list."""
    if spec == "all":
        return list(METRICS)
    if spec == "default":
        return [DEFAULT]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UserError(
            f"--scores {spec!r} names no metric; give 'all', 'default' or names such as {DEFAULT}"
        )
    for n in names:
        check_choice("--scores entry", n, tuple(METRICS))
    return names


def score_now(
    truth: GroundTruth, space: SearchSpace, names: list[str], output: str, save: str | None, **settings
) -> tuple[dict[str, np.ndarray], float]:
    """Score every architecture of ``truth`` with a progress bar, each row appended to ``save`` as
    it is scored (resuming the rows an interrupted run left there); the values and the mean
    seconds per architecture. ``settings``: ``ntknas.run.benchmark.score_all``'s keyword arguments."""
    from ntknas.run import benchmark

    reasons: dict[str, tuple[int, str]] = {}
    failed = lambda row, name, reason: reasons.setdefault(name, (row, reason))  # noqa: E731
    if save is None:
        scored = _scored(truth, space, names, output, failed=failed, **settings)
    else:
        with benchmark.SaveFile(save, truth, names, _scored_with(space, settings)) as saving:
            if saving.kept:
                err.print(
                    f"resuming --save {save}: kept the {len(saving.kept)} of {len(truth.acc)} "
                    "architectures an earlier run scored there"
                )
            try:
                scored = _scored(
                    truth,
                    space,
                    names,
                    output,
                    failed=failed,
                    kept=saving.kept,
                    scored=saving.append,
                    **settings,
                )
            except KeyboardInterrupt:
                done, ended = len(saving.kept) + saving.appended, "terminated" if SIGTERMS else "interrupted"
                err.print(
                    f"{ended}: {done} of {len(truth.acc)} architectures are saved in {save}; run the same "
                    "command to resume"
                )
                raise
    if "model" in reasons:
        for name in names:
            reasons.setdefault(name, reasons["model"])
    warn_unscored(scored[0], truth, reasons, "it was scored by an earlier run whose --save kept no value")
    return scored


def warn_unscored(
    values: dict[str, np.ndarray], truth: GroundTruth, reasons: dict[str, tuple[int, str]], otherwise: str
) -> None:
    """One warning line per metric without a value for some architectures (they rank last; with
    none at all its τ and ρ are n/a), naming the first such architecture and why: ``reasons``
    (metric → (row, reason)), else ``otherwise``."""
    import numpy as np

    for name, v in values.items():
        missing = np.flatnonzero(np.isnan(v))
        if not len(missing):
            continue
        row, why = reasons.get(name, (int(missing[0]), otherwise))
        first = f"first at {truth.where(row)}: {why}"
        every = len(missing) == len(v)
        count = "any of the" if every else f"{len(missing)} of"
        outcome = "its τ and ρ are n/a" if every else "they rank last"
        warn(f"{name} has no value for {count} {len(v)} architectures ({first}); {outcome}")


def _warn_unused(scoring: dict[str, object]) -> None:
    """One warning naming the scoring options given other values than their defaults, which
    ``--scored`` does not use: its scores were measured with the settings its rows record."""
    defaults = inspect.signature(command).parameters
    options = {name: "--data" if name == "data_source" else f"--{name.replace('_', '-')}" for name in scoring}
    changed = [options[name] for name, value in scoring.items() if value != defaults[name].default]
    if changed:
        verb = "has" if len(changed) == 1 else "have"
        warn(
            f"{', '.join(changed)} {verb} no effect with --scored: its scores were measured with the "
            "settings its scored_with column records"
        )


def _scored_with(space: SearchSpace, settings: dict) -> str:
    """What the rows of a --save file record of how they were scored."""
    from ntknas.run import benchmark

    keys = ("data_source", "batch_size", "bn", "seed", "repeats", "image_size")
    return benchmark.scored_with(space.name, *(settings[k] for k in keys))


def _scored(
    truth: GroundTruth, space: SearchSpace, names: list[str], output: str, **settings
) -> tuple[dict[str, np.ndarray], float]:
    """:func:`score_now` without a file to save to."""
    from ntknas.inputs import data
    from ntknas.run import benchmark

    reference = None
    if DEFAULT in names:
        images = data.load(settings["data_source"], "train")
        reference = space_reference(
            space, settings["image_size"], len(images.classes), settings["batch_size"]
        )
    with progress_bar(err, transient=output == "json") as bar:
        task = bar.add_task(f"scoring {len(truth.acc)} architectures", total=len(truth.acc), note="")
        progress = lambda done: bar.update(task, completed=done)  # noqa: E731
        return benchmark.score_all(truth, space, names, progress=progress, reference=reference, **settings)
