"""One candidate of a search: its network, seeded by the configuration, sized, and measured."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch

from ntknas.core.errors import CandidateFailed, UserError, first_line, memory_problem
from ntknas.core.seeds import derive_seed
from ntknas.objectives.budget import Budget
from ntknas.scoring import metrics
from ntknas.scoring.measure import count_flops, count_params, weights_fingerprint
from ntknas.scoring.registry import SPECTRUM
from search_spaces import PluginError, SearchSpace

WEIGHTS = "weights_fingerprint"  # the trial attribute of the scored network's weights_fingerprint


class OverBudget(Exception):
    """A candidate over the search's budget; ``size`` holds its parameters and FLOPs."""

    def __init__(self, reason: str, size: dict[str, int]) -> None:
        super().__init__(reason)
        self.size = size


def seeded_model(
    space: SearchSpace, config, num_classes: int, seed: int, image: tuple[int, int, int] = (3, 32, 32)
):
    """The network of ``config`` for images of shape ``image`` (C, H, W), initialised from a seed
    derived from ``seed`` and the configuration's description, without touching the global
    random state."""
    channels, height, _ = image
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, space.describe(config)))
        return space.build(config, num_classes=num_classes, channels=channels, image_size=height)


def check_reachable(space: SearchSpace, budget: Budget, num_classes: int, image: torch.Tensor) -> None:
    """UserError naming the smallest size found and the fix when no network of ``space`` (for
    ``num_classes`` outputs and images like ``image``, 1 × C × H × W) meets a bound of
    ``budget``: when the smallest configurations the space names (``space.smallest()``) all
    exceed it. They are built, and run once only to count FLOPs, never scored: a second or
    less. Nothing is checked for a space that names none."""
    configs = space.smallest() if budget else []
    if not configs:
        return
    models = [seeded_model(space, config, num_classes, 0, tuple(image.shape[1:])) for config in configs]
    sizes = {"params": count_params, "flops": lambda model: count_flops(model, image)}
    least = {name: min(map(sizes[name], models)) for name in budget.limits()}
    over = [name for name, limit in budget.limits().items() if least[name] > limit]
    if over:
        fewest = " and ".join(f"{least[name]:,} {name}" for name in over)
        raise UserError(
            f"no network of space {space.name} is within the budget: the fewest are {fewest}; raise "
            + " and ".join(f"--max-{name} to at least {least[name]:,}" for name in over)
        )


def evaluate(
    space: SearchSpace,
    config,
    batch: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    *,
    objective: str,
    bn: str,
    seed: int,
    device: str,
    budget: Budget | None = None,
    reference: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, object]:
    """Build one candidate (seeded by ``seed`` and its configuration) and measure it.

    ``batch`` is the minibatch ``(x, labels)``. Returns the trial attributes: ``config`` (the
    space's one-line description), the objective, every spectrum score, ``params``, ``flops``
    (per image), ``seconds``, ``bn`` and ``weights_fingerprint`` (its initial weights). Raises
    :class:`OverBudget` before any scoring when the network is larger than ``budget``, and
    :class:`CandidateFailed` with the reason when it cannot be built or scored (e.g. non-finite
    outputs). ``reference`` places ``ntk_score``'s terms in
    the space (:mod:`ntknas.objectives.reference`); only that objective needs it.
    """
    text = space.describe(config)
    x, y = batch
    x = x.clone()  # the caller's minibatch stays as it is, whatever the network does to its input
    try:
        model = seeded_model(space, config, num_classes, seed, tuple(x.shape[1:]))
        size = {"params": count_params(model), "flops": count_flops(model, x[:1])}
    except FAILURES as e:  # any failure of one candidate is recorded, and the search goes on
        raise CandidateFailed(_reason(space, e)) from e
    reason = budget.overrun(size) if budget else None
    if reason is not None:
        raise OverBudget(reason, size)
    try:
        values = metrics.compute(
            model, x, y, [objective, *SPECTRUM], bn=bn, device=device, eigenvalues=True, reference=reference
        )
    except FAILURES as e:  # any failure of one candidate is recorded, and the search goes on
        raise CandidateFailed(_reason(space, e)) from e
    return {"config": text, **values, **size, "bn": bn, WEIGHTS: weights_fingerprint(model)}


# What a candidate may raise: any error, and the exits that a network's own code can raise where
# no guard stands (an autograd Function's backward, a hook); KeyboardInterrupt stops the command.
FAILURES = (Exception, SystemExit, GeneratorExit)


@contextmanager
def plugin_network(space: SearchSpace, doing: str) -> Iterator[None]:
    """While ``doing`` something with a network of ``space`` (e.g. "training"): when it is a plugin
    space's, what the network's own code raises outside the guard (a backward pass, a hook; an
    exit included) becomes a PluginError naming the space; else errors pass unchanged."""
    label = getattr(space, "label", None)  # a plugin space's (search_spaces.guard.Guarded)
    try:
        yield
    except (PluginError, UserError, KeyboardInterrupt):
        raise
    except FAILURES as e:
        if label is None:
            raise
        raise PluginError(_network_failed(label, doing, e)) from None


def _reason(space: SearchSpace, error: BaseException) -> str:
    """A failed candidate's stored reason: a plugin's message as it is (it names the space and
    the method), any other error's type and first line, after the plugin space's label when the
    network is a plugin's (what its code runs outside the guard: a backward pass, a hook)."""
    if isinstance(error, PluginError):
        return str(error)
    if (short := memory_problem(error)) is not None:  # the same for every network: no label
        return short
    label = getattr(space, "label", None)  # a plugin space's (search_spaces.guard.Guarded)
    return _network_failed(label, "", error) if label else f"{type(error).__name__}: {first_line(error)}"


def _network_failed(label: str, doing: str, error: BaseException) -> str:
    """``{label}: its network failed[ doing]: {type}: {first line}``."""
    when = f" {doing}" if doing else ""
    return f"{label}: its network failed{when}: {type(error).__name__}: {first_line(error)}"
