"""``ntknas score``: the pNTK spectrum of one freshly initialised network."""

from __future__ import annotations

import math
from typing import Annotated

import typer

from ntknas.cli.common import (
    BatchOpt,
    BnOpt,
    DataOpt,
    DataRootOpt,
    DeviceOpt,
    ImageSizeOpt,
    SeedOpt,
    ThreadsOpt,
    check_choice,
    check_space_at,
    out,
    resolve_device,
    space_reference,
    use_threads,
    user_errors,
    warn,
    write_out,
)
from ntknas.core import jsonout
from ntknas.core.checks import check_seed
from ntknas.core.errors import UserError, first_line, memory_problem
from ntknas.inputs.image_size import DEFAULT as DEFAULT_IMAGE_SIZE
from ntknas.inputs.sources import BUNDLED
from ntknas.outputs import tables
from ntknas.scoring.registry import DEFAULT, RECORDED, SPECTRUM
from scores.modes import BN_MODES


def command(
    space: Annotated[
        str | None, typer.Option(help="Score a configuration of this space (see `ntknas spaces`).")
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help="The configuration, as the space describes it (nb201: an arch string "
            "|op~0|+|op~0|op~1|+...; resnet: block=basic blocks=2-2-2-2 width=64 growth=2 stem=cifar)."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Or score a torchvision classification model, e.g. resnet18.")
    ] = None,
    batch_size: BatchOpt = 64,
    data_source: DataOpt = BUNDLED,
    data_root: DataRootOpt = None,
    bn: BnOpt = "batch",
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    image_size: ImageSizeOpt = DEFAULT_IMAGE_SIZE,
    threads: ThreadsOpt = None,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Score one freshly initialised network: its pNTK spectrum on one minibatch.

    With --space and --arch the network is seeded exactly as `ntknas search` seeds it, so the
    scores equal the ones a study stored for the same settings. A --model belongs to no space: its
    ntk_score is placed in the resnet space's reference (32 px, 10 classes, the batch's size).
    """
    import torch

    import search_spaces
    from ntknas.inputs import data
    from ntknas.objectives import torchvision_models
    from ntknas.objectives.candidates import evaluate
    from ntknas.objectives.reference import Unplaceable
    from ntknas.scoring import metrics

    with user_errors():
        check_choice("--format", output, ("table", "json"))
        check_choice("--bn", bn, BN_MODES)
        if (space is None) == (model is None) or (space is not None and arch is None):
            raise UserError("give either --space with --arch, or --model")
        check_seed("--seed", seed)
        dev = resolve_device(device)
        use_threads(threads)
        chosen = None if space is None else search_spaces.get(space)
        if chosen is not None:  # the configuration first: a typo costs no data and no reference
            config = chosen.parse(arch)
            check_space_at(chosen, image_size)
        batch, classes = data.load_minibatch(data_source, data_root, batch_size, seed, image_size)
        if chosen is None:
            torch.manual_seed(seed)
            net = torchvision_models.build(model, classes, image_size=image_size)
            names = [DEFAULT, *RECORDED]
            placed = space_reference(search_spaces.get("resnet"), 32, 10, int(batch[0].shape[0]))
            errors: dict[str, Exception] = {}
            measured = metrics.compute(net, *batch, names, bn=bn, device=dev, reference=placed, errors=errors)
            _show_unmeasured(errors)
            result = {"model": model, **measured}
        else:
            objective, reference = DEFAULT, None
            try:
                reference = space_reference(chosen, image_size, classes, int(batch[0].shape[0]))
            except Unplaceable as e:  # the other scores stand without it
                warn(f"ntk_score is n/a: in space {chosen.name}, {e.why}")
                objective = "condition_number"
            result = evaluate(
                chosen,
                config,
                batch,
                classes,
                objective=objective,
                bn=bn,
                seed=seed,
                device=dev,
                reference=reference,
            )
            result = (
                {"config": result["config"], DEFAULT: math.nan, **result} if objective != DEFAULT else result
            )
    result = {
        key: tables.typed(key, value) for key, value in {**result, "batch_size": batch_size, "bn": bn}.items()
    }
    if output == "json":
        write_out(jsonout.dumps(result) + "\n")
        return
    out.print(tables.key_values(f"pNTK on {batch_size} images ({data_source}, bn={bn})", result))


def _show_unmeasured(errors: dict[str, Exception]) -> None:
    """One warning per reason some metrics could not be measured on the model (they show as n/a,
    the others stand); the first error again when the pNTK itself failed or memory ran out."""
    fatal = [e for name, e in errors.items() if name in SPECTRUM or memory_problem(e) is not None]
    if fatal:
        raise fatal[0]
    by_reason: dict[str, list[str]] = {}
    for name, error in errors.items():
        by_reason.setdefault(first_line(error), []).append(name)
    for reason, failed in by_reason.items():
        warn(f"{', '.join(failed)} {'is' if len(failed) == 1 else 'are'} n/a for this model: {reason}")
