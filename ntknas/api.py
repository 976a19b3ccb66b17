"""ntknas as a library: the search and the verification that the command line runs, without the
terminal. The command line parses options into a :class:`~ntknas.run.request.SearchRequest` and
renders what these return; everything in between happens here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ntknas.core.errors import UserError
from ntknas.objectives.objective import Objective, objective
from ntknas.run.request import SearchRequest
from ntknas.scoring.registry import DEFAULT

if TYPE_CHECKING:
    import optuna

    from ntknas.objectives.reference import Measuring
    from ntknas.run.verify import Outcome
    from ntknas.study.study_view import SearchStatus


def objective_for(request: SearchRequest, reference_measuring: Measuring | None = None) -> Objective:
    """The objective that ``request``'s settings name, on its minibatch (loaded now); its reference,
    when measured, is measured inside ``reference_measuring`` (see
    :func:`ntknas.objectives.reference.for_space`)."""
    s = request.settings
    return objective(
        s.space,
        s.data,
        s.objective,
        budget=s.budget,
        batch_size=s.batch_size,
        image_size=s.image_size,
        bn=s.bn,
        seed=s.seed,
        device=request.device,
        data_root=request.data_root,
        direction="maximize" if s.higher_is_better else "minimize",
        reference_measuring=reference_measuring,
    )


def open_search(request: SearchRequest) -> optuna.Study:
    """``request``'s study: created with its settings, or resumed when it has the same (UserError
    naming the difference when it does not)."""
    from ntknas.study.studies import open_study

    return open_study(request.study, request.storage, request.settings, request.sampler, request.heartbeat)


def pin_reference(study: optuna.Study, score: Objective) -> None:
    """Give ``score`` the reference that ``study``'s first run placed its candidates in (stored
    on the study, so that a resumed study or a worker elsewhere scores exactly as it did); a study
    without one gets the objective's own (shipped, cached or measured: :meth:`Objective.reference`),
    stored. Nothing for an objective other than ``ntk_score``."""
    from ntknas.objectives.reference import checked_terms
    from ntknas.study import records

    if score.metric != DEFAULT:
        return
    try:
        terms = checked_terms(study.user_attrs.get(records.REFERENCE))
    except ValueError:  # a study of an earlier ntknas, or a damaged attribute: placed as a new one
        terms = dict(score.reference())
        study.set_user_attr(records.REFERENCE, {n: list(v) for n, v in terms.items()})
    score.reference_terms = terms


def run_search(
    request: SearchRequest,
    study: optuna.Study,
    score: Objective,
    report: Callable[[SearchStatus], None] | None = None,
    stop: Callable[[], bool] | None = None,
    poll: Callable[[], None] | None = None,
) -> list[str]:
    """Add trials to ``study`` until it holds ``request.trials`` distinct scored configurations:
    in this process, or in ``request.workers`` processes (``poll`` is called about every second
    while they run). Returns lines to warn about workers that ended badly though the study is
    complete. ``report`` and ``stop``: see :func:`ntknas.run.search.search`."""
    from ntknas.run import search as loop
    from ntknas.run import workers
    from ntknas.study.storage import file_watch

    moved = file_watch(request.storage) if isinstance(request.storage, str | None) else _nothing

    def stopping() -> bool:  # asked before each candidate: a storage file moved away ends the search
        moved()
        return stop is not None and stop()

    if request.workers == 1:
        loop.search(study, score, request.settings, request.trials, report, stopping)
        moved()
        return []
    if not isinstance(request.storage, str | None):
        raise UserError("workers share a study through a storage URL; give --storage as a URL, not an object")
    ended = workers.run(
        request, score, request.workers, request.threads or 1, stop or _never, poll or _nothing
    )
    moved()
    if stop is not None and stop():
        raise KeyboardInterrupt
    from ntknas.study.study_view import StudyView

    view = StudyView(study, request.settings.higher_is_better)
    view.refresh()
    return workers.check(ended, view.scored(), loop.target_of(request.trials, score.space))


def search(
    request: SearchRequest,
    report: Callable[[SearchStatus], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> optuna.Study:
    """What ``ntknas search`` does, as a library call: load the minibatch, open (or resume) the
    study, prepare the objective's reference (shipped, cached, or measured once), then search until
    the study holds ``request.trials`` distinct scored configurations. Returns the study.

    Examples:
        >>> import ntknas
        >>> settings = ntknas.Settings("nb201", "cifar10-sample", 64, "batch", 0, "ntk_score")
        >>> study = ntknas.search(ntknas.SearchRequest("mine", settings, trials=5))  # doctest: +SKIP
    """
    from ntknas.objectives.candidates import check_reachable

    score = objective_for(request)
    check_reachable(score.space, score.budget, score.num_classes, score.batch[0][:1])  # before the study
    study = open_search(request)
    pin_reference(study, score)
    run_search(request, study, score, report, stop)
    return study


def verify(
    study: optuna.Study,
    top: int = 5,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    data: str | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    storage: str | None = None,
) -> list[Outcome]:
    """What ``ntknas verify`` does: train the ``top`` picks of ``study`` from scratch on the train
    split of ``data`` (default: the study's), evaluate them on its test split, and store the
    results on the study (``storage``: its URL, for the checkpoints' resumption). Unset training
    options take verify's recipe defaults (:class:`~ntknas.run.recipe.Recipe`)."""
    from ntknas.run import verify as training
    from ntknas.run.recipe import Recipe
    from ntknas.study.settings import Settings

    settings = Settings.load(study)
    given = {"epochs": epochs, "batch_size": batch_size, "lr": lr}
    recipe = Recipe(**{k: v for k, v in given.items() if v is not None})
    picks = training.top_picks(study, top)
    splits = training.load_splits(data or settings.data, data_root, settings.image_size)
    training.check_recipe(recipe, splits)
    return training.verify(study, storage, picks, splits, recipe, device=device)


def _never() -> bool:
    return False


def _nothing() -> None:
    return None
