"""What an exported pick's folder holds (see :mod:`ntknas.outputs.export`): its files, one line on each,
and its README.md, which says how to load each with and without ntknas. The README's Python
blocks run as written, in order, in the folder."""

from __future__ import annotations

import json

import search_spaces
from ntknas.core.terminal import visible
from ntknas.outputs import tables
from ntknas.run.recipe import Recipe
from ntknas.run.verify import MOMENTUM, PADDING, WEIGHT_DECAY

CONFIG, WEIGHTS, PROGRAM, README = "config.json", "weights.pt", "model.pt2", "README.md"
DEFAULTS = Recipe(epochs=1)  # the learning rate and batch size `ntknas verify` trains with by default


def contents(record: dict) -> list[tuple[str, str]]:
    """(file, what it holds) for each file of the export that config.json's ``record`` describes."""
    weights, program = record["weights"], record["program"]
    verified = ", its verified results" if record["verified"] else ""
    files = [
        (CONFIG, f"the configuration, the study's search settings, the trial's scores and size{verified}"),
        (WEIGHTS, f"the {weights['kind']} weights ({weights['note']}): a plain state_dict"),
    ]
    if program["file"]:
        batch = "any batch size" if program["dynamic_batch"] else "one image at a time"
        files.append((PROGRAM, f"the network in eval mode as a torch.export program ({batch})"))
    return [*files, (README, "how to load each")]


def readme(record: dict) -> str:
    """The README of the export that config.json's ``record`` describes (non-finite values None)."""
    objective = record["settings"]["objective"]
    program = record["program"]
    table = ["| file | what |", "|---|---|", *(f"| `{f}` | {what} |" for f, what in contents(record))]
    missing = (
        [] if program["file"] else [f"No `{PROGRAM}`: torch.export could not trace it ({program['error']})."]
    )
    parts = [
        f"# {record['space']} `{record['config']}`",
        f"Trial {record['trial']} of the ntknas study '{visible(record['study'])}' ({objective} = "
        f"{tables.cell(objective, record['scores'].get(objective))}, "
        f"{tables.cell('params', record['params'])} parameters), exported by `ntknas export`.",
        "\n".join(table),
        *missing,
        *_inputs(record),
        *(_program(record) if program["file"] else []),
        *_rebuild(record),
    ]
    return "\n\n".join(parts) + "\n"


def _inputs(record: dict) -> list[str]:
    channels, height, width = record["input_shape"]
    norm = record["normalisation"]
    return [
        "## Inputs",
        f"Float32 images (B, {channels}, {height}, {width}): RGB pixels scaled to [0, 1], then normalised "
        "per channel with the CIFAR-10 mean and standard deviation, as ntknas scored and trained them. "
        f"The outputs are {record['num_classes']} logits per image.",
        _python(
            "import torch\n\n"
            f"pixels = torch.randint(0, 256, (4, {channels}, {height}, {width}), dtype=torch.uint8)"
            "  # your images\n"
            f"mean = torch.tensor({norm['mean']}).view(1, -1, 1, 1)\n"
            f"std = torch.tensor({norm['std']}).view(1, -1, 1, 1)\n"
            "x = (pixels.float() / 255 - mean) / std"
        ),
    ]


def _program(record: dict) -> list[str]:
    if record["program"]["dynamic_batch"]:
        call = f"logits = program(x)  # (4, {record['num_classes']})"
    else:  # traced for one image at a time
        call = "logits = torch.cat([program(image[None]) for image in x])"
    return [
        "## Run it without ntknas: the program",
        f"Needs torch alone ({record['torch_version']} wrote it). BatchNorm uses its running "
        "statistics: the program is for inference.",
        _python(f'program = torch.export.load("{PROGRAM}").module()\n{call}'),
    ]


def _rebuild(record: dict) -> list[str]:
    channels, height, _ = record["input_shape"]
    space = record["space"]
    plugin = "" if search_spaces.builtin(space) else f" The space `{space}` is a plugin: install its package."
    return [
        "## Rebuild it with ntknas: to train or fine-tune",
        f"Build the network from its configuration, then load the weights.{plugin}",
        _python(
            "import search_spaces\n\n"
            f"space = search_spaces.get({json.dumps(space)})\n"
            f"config = space.parse({json.dumps(record['config'])})\n"
            f"model = space.build(config, {record['num_classes']}, {channels}, {height})\n"
            f'model.load_state_dict(torch.load("{WEIGHTS}", weights_only=True))\n'
            "model.eval()  # model.train() to train it"
        ),
        f"`ntknas verify` trains with SGD (Nesterov momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}), "
        f"learning rate {DEFAULTS.lr} decayed to zero on a cosine, batches of {DEFAULTS.batch_size}, "
        f"random crops of the image padded by {PADDING} pixels and horizontal flips.",
    ]


def _python(code: str) -> str:
    return f"```python\n{code}\n```"
