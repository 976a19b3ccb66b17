"""``ntknas search``: score candidates at initialisation and store them in a study."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ntknas.cli.common import (
    THREADS_DEFAULT,
    WIDE,
    BatchOpt,
    BnOpt,
    DataOpt,
    DataRootOpt,
    DeviceOpt,
    ImageSizeOpt,
    SeedOpt,
    StorageOpt,
    check_choice,
    check_space_at,
    err,
    measuring_reference,
    out,
    resolve_device,
    stop_requests,
    storage_label,
    use_threads,
    user_errors,
    warn,
)
from ntknas.cli.progress import progress_bar
from ntknas.cli.verify import DEFAULTS as VERIFY
from ntknas.core.checks import check_positive_int, check_range, check_seed, check_study_name, parse_budget
from ntknas.core.defaults import HEARTBEAT_SECONDS
from ntknas.core.errors import UserError
from ntknas.core.files import folder_name
from ntknas.inputs.image_size import DEFAULT as DEFAULT_IMAGE_SIZE
from ntknas.inputs.sources import BUNDLED, canonical
from ntknas.outputs import tables
from ntknas.scoring.registry import COSTS, DEFAULT, METRICS, direction_words
from ntknas.study import records
from scores.modes import BN_MODES

if TYPE_CHECKING:
    from ntknas.run.request import SearchRequest

DIRECTIONS = ("maximize", "minimize")
MAX_HEARTBEAT_SECONDS = 86_400  # a day: a worker silent for five is presumed dead
DEFAULT_COST = "params"  # the second objective of an nsga2 search unless --cost says otherwise


def command(
    space: Annotated[
        str, typer.Option(help="Search space: see `ntknas spaces`, or package.module:Class.")
    ] = "resnet",
    trials: Annotated[
        int, typer.Option(help="Distinct configurations to score (reused ones do not count).")
    ] = 50,
    sampler: Annotated[str, typer.Option(help="tpe, random, or nsga2 (score vs. --cost).")] = "tpe",
    objective: Annotated[
        str,
        typer.Option(help="Metric to optimise (see `ntknas benchmark`); the default ranks best on NB201."),
    ] = DEFAULT,
    direction: Annotated[
        str | None,
        typer.Option(
            help="maximize or minimize the objective \\[default: its own way, as `ntknas benchmark` "
            "orients it: e.g. params are maximised, condition_number minimised].",
            show_default=False,
        ),
    ] = None,
    cost: Annotated[
        str | None,
        typer.Option(
            help=f"Second objective of --sampler nsga2: params or flops \\[default: {DEFAULT_COST}].",
            show_default=False,
        ),
    ] = None,
    max_params: Annotated[
        str | None,
        typer.Option(
            help="Budget: score only candidates with at most this many parameters (1.5M, 300k, 250000)."
        ),
    ] = None,
    max_flops: Annotated[
        str | None, typer.Option(help="Budget: at most this many FLOPs per image (e.g. 200M).")
    ] = None,
    batch_size: BatchOpt = 64,
    data_source: DataOpt = BUNDLED,
    data_root: DataRootOpt = None,
    image_size: ImageSizeOpt = DEFAULT_IMAGE_SIZE,
    bn: BnOpt = "batch",
    study: Annotated[
        str | None, typer.Option(help="Study name \\[default: the space's name].", show_default=False)
    ] = None,
    storage: StorageOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    worker_count: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Local worker processes sharing the study and the CPU (or the GPUs); more on other "
            "machines: run the same command there with a shared --storage.",
        ),
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            help=f"Torch threads of each worker \\[default: {THREADS_DEFAULT}, shared among the workers].",
            show_default=False,
        ),
    ] = None,
    heartbeat: Annotated[
        int,
        typer.Option(
            help="Seconds between a running trial's heartbeats: a worker silent for 5 is presumed dead, "
            "and its trial retried."
        ),
    ] = HEARTBEAT_SECONDS,
    top: Annotated[int, typer.Option(help="Candidates shown at the end.")] = 10,
    verify_top: Annotated[
        int | None, typer.Option(help="Then train this many top picks from scratch (see `ntknas verify`).")
    ] = None,
    verify_epochs: Annotated[
        int | None,
        typer.Option(
            help=f"Training epochs of each --verify-top pick \\[default: {VERIFY.epochs}].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Search a space: score candidates at initialisation and store them in a study.

    Re-running the same command resumes the study until it holds --trials distinct scored
    configurations.
    """
    from ntknas.inputs.data import check_batch_size
    from ntknas.run.request import SearchRequest
    from ntknas.study.samplers import SAMPLERS
    from ntknas.study.settings import Settings

    name = space if study is None else study
    with user_errors(storage):
        check_study_name(name)
        check_positive_int("--trials", trials)
        check_positive_int("--top", top)
        check_positive_int("--workers", worker_count)
        check_positive_int("--heartbeat", heartbeat)
        check_range("--heartbeat", heartbeat, 1, MAX_HEARTBEAT_SECONDS)
        check_seed("--seed", seed)
        check_choice("--sampler", sampler, tuple(SAMPLERS))
        check_choice("--objective", objective, tuple(METRICS))
        if direction is not None:
            check_choice("--direction", direction, DIRECTIONS)
        check_choice("--bn", bn, BN_MODES)
        if cost is not None:
            check_choice("--cost", cost, COSTS)
            if sampler != "nsga2":
                raise UserError(
                    f"--cost is the second objective of --sampler nsga2, not of {sampler}; drop it"
                )
        if sampler == "nsga2" and (cost or DEFAULT_COST) == objective:
            given = "" if cost else f" (it is {DEFAULT_COST} unless given)"
            raise UserError(
                f"--objective {objective} and --cost {cost or DEFAULT_COST} are one metric: nsga2 would "
                f"weigh it against itself; choose another --cost{given}"
            )
        if verify_top is not None:
            check_positive_int("--verify-top", verify_top)
            if verify_top > trials:
                raise UserError(f"--verify-top {verify_top} is more than --trials {trials}; lower it")
        if verify_epochs is not None:
            check_positive_int("--verify-epochs", verify_epochs)
            if verify_top is None:
                raise UserError(
                    "--verify-epochs trains the --verify-top picks; add --verify-top K or drop it"
                )
        settings = Settings(
            space,
            data_source,
            check_batch_size(batch_size),
            bn,
            seed,
            objective,
            (cost or DEFAULT_COST) if sampler == "nsga2" else None,
            None if max_params is None else parse_budget("--max-params", max_params),
            None if max_flops is None else parse_budget("--max-flops", max_flops),
            image_size,
            direction,
        )
    request = SearchRequest(
        name, settings, trials, sampler, storage, device, worker_count, threads, heartbeat, data_root
    )
    run(request, top, verify_top, verify_epochs or VERIFY.epochs)


def run(request: SearchRequest, top: int, verify_top: int | None, verify_epochs: int) -> None:
    """The search, once the options are checked: load the data, open the study, prepare the
    objective's reference, search, summarise, and verify the top picks when asked."""
    from dataclasses import replace

    import search_spaces
    from ntknas import api
    from ntknas.inputs.data import digest
    from ntknas.objectives.candidates import check_reachable
    from ntknas.run import verify, workers
    from ntknas.run.recipe import Recipe
    from ntknas.run.search import SearchExhausted, target_of
    from ntknas.study.study_view import StudyView

    name, settings, storage = request.study, request.settings, request.storage
    with user_errors(storage):
        threads = use_threads(request.threads, request.workers)
        request = replace(request, device=resolve_device(request.device), threads=threads)
        space = search_spaces.get(settings.space)
        check_space_at(space, settings.image_size)
        splits = None
        if verify_top is not None:
            splits = verify.load_splits(settings.data, request.data_root, settings.image_size)
            verify.check_recipe(Recipe(verify_epochs), splits)
        score = api.objective_for(request, measuring_reference(space.name))  # the data read, as given
        # the study records a data folder by its absolute path (resumed from another directory,
        # the same words may name another folder) and the minibatch's fingerprint (its images or
        # classes may change between runs)
        settings = replace(
            settings, data=canonical(settings.data), batch_digest=digest(*score.batch, score.num_classes)
        )
        request = replace(request, settings=settings)
        if request.workers > 1:
            workers.check_memory(request.workers)
        check_reachable(
            score.space, settings.budget, score.num_classes, score.batch[0][:1]
        )  # before the study is locked to it
        opened = api.open_search(request)  # refuses other settings
        api.pin_reference(opened, score)  # the reference: measured when missing, after the refusal
        target = target_of(request.trials, score.space)
        exhausted = None
        with stop_requests("candidate") as stopping:
            try:
                with progress_bar(out) as bar:
                    task = bar.add_task(f"{settings.space} · {settings.objective}", total=target, note="")

                    def report(status) -> None:
                        note = ""
                        if status.best_value is not None:
                            note = f"best {status.best_value:.4g} (trial {status.best_trial})"
                        bar.update(task, completed=min(status.scored, target), note=note)

                    supervisor_view = StudyView(opened, settings.higher_is_better)

                    def poll() -> None:
                        supervisor_view.refresh()
                        report(supervisor_view.status(target))

                    try:
                        for line in api.run_search(request, opened, score, report, stopping.requested, poll):
                            warn(line)
                    except SearchExhausted as e:
                        exhausted = e
            except KeyboardInterrupt:
                view = StudyView(opened, settings.higher_is_better)
                view.refresh()
                err.print(
                    f"{'terminated' if stopping.terminated else 'interrupted'}: {view.scored()} of {target} "
                    f"configurations are scored in study '{name}' ({storage_label(storage)}); "
                    "run the same command to resume"
                )
                raise typer.Exit(stopping.exit_code()) from None
        rows = records.rows(opened)
        if exhausted is not None:
            if not rows:
                raise exhausted
            warn(str(exhausted))
    summarise(name, storage, settings, rows, records.reused_count(opened), top)
    if splits is not None:
        from ntknas.cli.verify import verify_picks

        with user_errors(storage):
            picks = verify.top_picks(opened, verify_top)
        verify_picks(opened, storage, picks, splits, Recipe(verify_epochs), request.device)


def summarise(
    name: str, storage: str | None, settings, rows: list[dict], reused: int, top: int, console: Console = out
) -> None:
    """The end of a search: the top candidates, then :func:`guidance`."""
    objective = settings.objective
    shown = records.ranked(rows, settings)[:top]
    columns = tables.columns_for(objective, compact=console.width < WIDE)
    console.print(tables.render(shown, columns, f"Top {len(shown)} of study '{name}' by {objective}"))
    for line in guidance(name, storage, settings, rows, reused):
        console.print(line, highlight=False, soft_wrap=True)


def guidance(name: str, storage: str | None, settings, rows: list[dict], reused: int) -> list[str]:
    """A few lines on a finished search: where the study is stored (password masked), how many
    distinct configurations it holds, the best one with its score and direction, and the commands
    to run next, each a line to copy (a storage URL with a secret shows as ``URL``)."""
    if not rows:
        return []
    objective = settings.objective
    best = records.ranked(rows, settings)[0]
    label = storage_label(storage)
    budget = f", within the budget {settings.budget.describe()}" if settings.budget else ""
    more = f"; {tables.counted(reused, 'more proposal')} reused stored values" if reused else ""
    scored = tables.counted(len(rows), "distinct configuration")
    where = "" if storage is None else f" --storage {'URL' if label != storage else shlex.quote(storage)}"
    study = shlex.quote(name)
    commands = (
        (f"ntknas results {study}{where}", "every candidate, as a table, CSV or JSON"),
        (f"ntknas verify {study} --top {min(5, len(rows))}{where}", "train the best from scratch"),
        (f"ntknas plot {study}{where}", "score vs. size, search history, eigenspectra"),
        (f"ntknas dashboard {study}{where}", "the study in a web browser"),
        (
            f"ntknas export {study} --out {shlex.quote(folder_name(name) + '-pick')}{where}",
            "the best pick, to train or deploy",
        ),
    )
    width = max(len(command) for command, _ in commands)
    return [
        f"Study '{name}' in {label}: {scored} scored{budget}{more}.",
        f"Best: trial {best['trial']}, {objective} {tables.cell(objective, best.get(objective))} "
        f"({direction_words(settings.higher_is_better)}): {best['config']}",
        "Next:",
        *(f"  {command:<{width}}  # {what}" for command, what in commands),
    ]
