"""The ``ntknas`` command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

import scores
from ntknas import data, torchvision_models
from ntknas.errors import UserError

app = typer.Typer(
    help="Training-free neural architecture search with the pseudo neural tangent kernel (pNTK).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

FORMATS = ("table", "json")


@app.callback()
def _commands() -> None:
    """Training-free neural architecture search with the pseudo neural tangent kernel (pNTK)."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn bad input into one red line on stderr and exit code 2."""
    try:
        yield
    except (UserError, ValueError, TypeError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def resolve_device(device: str) -> str:
    """``auto`` → cuda when present, else cpu; ``cpu``/``cuda`` as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"unknown device {device!r}; use auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available; use --device cpu")
    return device


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown {option} {value!r}; choose one of: {', '.join(choices)}")


@app.command()
def score(
    model: Annotated[str, typer.Option(help="torchvision classification model, e.g. resnet18")] = "resnet18",
    batch_size: Annotated[int, typer.Option(help="Minibatch size N (the kernel is N×N).")] = 64,
    data_source: Annotated[
        str,
        typer.Option("--data", help="cifar10-sample (bundled), cifar10, synthetic, or an ImageFolder path."),
    ] = data.BUNDLED,
    data_root: Annotated[str | None, typer.Option(help="Folder holding CIFAR-10 for --data cifar10.")] = None,
    bn: Annotated[str, typer.Option(help="BatchNorm mode: batch, eval or train.")] = "batch",
    seed: Annotated[int, typer.Option(help="Seed of the initialisation and the minibatch.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Score one freshly initialised network: the spectrum of its pNTK on one minibatch."""
    with user_errors():
        check_choice("--format", output, FORMATS)
        check_choice("--bn", bn, scores.BN_MODES)
        dev = resolve_device(device)
        images = data.load(data_source, "train", data_root)
        x, _ = data.minibatch(images, batch_size, seed)
        torch.manual_seed(seed)
        net = torchvision_models.build(model, num_classes=len(images.classes))
        result = scores.score(net, x, bn=bn, device=dev)
    if output == "json":
        print(json.dumps({"model": model, "batch_size": batch_size, "bn": bn, **result}))
        return
    table = Table(title=f"pNTK of {model} on {batch_size} images ({data_source}, bn={bn})")
    table.add_column("score")
    table.add_column("value", justify="right")
    for name, value in result.items():
        table.add_row(name, f"{value:.6g}")
    out.print(table)


def main() -> None:
    """Entry point of the ``ntknas`` console script."""
    app()
