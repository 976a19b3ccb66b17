"""A study's pick as files to train or deploy it without ntknas.

One folder: ``config.json`` (the configuration, the study's settings, the trial's scores and
size, verified results), ``weights.pt`` (a plain ``state_dict``: the weights the search
initialised the network with, or the trained ones when ``ntknas verify`` trained it and its
checkpoint is at hand), ``model.pt2`` (a ``torch.export`` program of the network in eval mode)
and ``README.md`` (how to load each). Everything runs on the CPU.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
import torch
from torch import nn

from ntknas.core import files, jsonout
from ntknas.core.errors import UserError, first_line
from ntknas.core.staging import check_new_folder, staged
from ntknas.inputs import data
from ntknas.objectives.candidates import plugin_network, seeded_model
from ntknas.outputs.export_docs import CONFIG, PROGRAM, README, WEIGHTS, readme
from ntknas.run import verify
from ntknas.scoring import spectra
from ntknas.scoring.registry import METRICS
from ntknas.study import rebuild, records
from ntknas.study.settings import Settings
from ntknas.study.verified import stored_results

INITIAL, TRAINED = "initial", "trained"
FORMAT = "ntknas-export/1"
EXAMPLE_BATCH = 2  # a batch of 1 would let torch.export specialise the batch dimension to 1


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote: the ``record`` (config.json's content) in ``folder``, and how the
    weights and the program came out."""

    folder: Path
    record: dict

    @property
    def weights(self) -> str:
        """:data:`INITIAL` or :data:`TRAINED`."""
        return str(self.record["weights"]["kind"])

    @property
    def program_error(self) -> str | None:
        """Why no ``model.pt2`` was written, or None when it was."""
        return self.record["program"].get("error")


def export(
    study: optuna.Study,
    number: int | None,
    out: Path,
    *,
    data_root: str | None = None,
    checkpoints: Path = verify.CHECKPOINTS,
) -> Exported:
    """Write trial ``number`` of ``study`` (default: the best by the study's objective) into the
    new folder ``out``, atomically.

    UserError, before anything is written, when ``out`` is not a new (or empty) folder in a
    writable place, or the trial is unknown or not complete. ``data_root`` locates CIFAR-10 for
    a study of ``--data cifar10``; ``checkpoints`` is where ``ntknas verify`` left its checkpoints.
    When the network cannot be exported as a program, the other files are still written and the
    record's ``program.error`` says why.
    """
    check_new_folder(out)
    settings = Settings.load(study)
    trial = pick(study, number, settings)
    space = rebuild.stored_space(settings, study.study_name)
    text, config = rebuild.stored_config(space, study.study_name, trial)
    (x, _), classes = rebuild.stored_minibatch(settings, study.study_name, data_root)
    image = tuple(x.shape[1:])
    model = seeded_model(space, config, classes, settings.seed, image)
    rebuild.check_rebuilt(space, model, trial, text)
    scorer = records.scorer_of(study, text)
    checked = stored_results(study).get(scorer.number, {})
    weights = _load_weights(model, study.study_name, scorer, checked, settings.seed, checkpoints)
    model.eval()
    program, program_record = _program(model, x[:EXAMPLE_BATCH])
    record = _record(study.study_name, trial, scorer, checked, settings, classes, image)
    record |= {"weights": weights, "program": program_record}
    with plugin_network(space, "saving its weights"):
        weights_file = _saved(torch.save, model.state_dict())
    contents = {
        WEIGHTS: weights_file,
        PROGRAM: None if program is None else _saved(torch.export.save, program),
        CONFIG: (jsonout.dumps(record, indent=2) + "\n").encode(),
        README: readme(jsonout.clean(record)).encode(),
    }
    with staged(out) as folder:
        for name, content in contents.items():
            if content is not None:
                files.write_new(folder / name, content)
    return Exported(out, record)


def _saved(save: Callable[[object, io.BytesIO], None], thing: object) -> bytes:
    """The bytes that ``save`` (torch.save, torch.export.save) writes for ``thing``: made in
    memory, so that every file of the folder is written by :func:`ntknas.core.files.write_new`."""
    buffer = io.BytesIO()
    save(thing, buffer)
    return buffer.getvalue()


def pick(study: optuna.Study, number: int | None, settings: Settings) -> optuna.trial.FrozenTrial:
    """Completed trial ``number`` of ``study``, or (None) the best by the study's objective."""
    name = study.study_name
    if number is None:
        number = records.picks(study, settings)[0].number
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        numbered = f"its trials are 0 to {max(trials)}" if trials else "it has no trials"
        raise UserError(
            f"study '{name}' has no trial {number} ({numbered}); pick one from: ntknas results {name}"
        )
    trial = trials[number]
    if trial.state != optuna.trial.TrialState.COMPLETE:
        raise UserError(
            f"trial {number} of study '{name}' is {trial.state.name.lower()}, not complete; "
            f"pick a completed one from: ntknas results {name}"
        )
    return trial


def _record(
    study_name: str,
    trial: optuna.trial.FrozenTrial,
    scorer: optuna.trial.FrozenTrial,
    checked: dict,
    settings: Settings,
    classes: int,
    image: tuple[int, ...],
) -> dict:
    """config.json's content but for ``weights`` and ``program``: what the network is, its input
    (``image``: C, H, W) and output, how the study found it and what it scored."""
    return {
        "format": FORMAT,
        "study": study_name,
        "trial": trial.number,
        "scored_by_trial": scorer.number,
        "space": settings.space,
        "config": str(trial.user_attrs["config"]),
        "num_classes": classes,
        "input_shape": list(image),
        "normalisation": {
            "mean": list(data.CIFAR_MEAN),
            "std": list(data.CIFAR_STD),
            "formula": "(pixels / 255 - mean) / std, per RGB channel, pixels in 0..255",
        },
        "settings": asdict(settings),
        "scores": _scores(trial.user_attrs),
        "params": trial.user_attrs.get("params"),
        "flops": trial.user_attrs.get("flops"),
        "verified": checked or None,
        "torch_version": torch.__version__,
    }


def _scores(attrs: dict) -> dict[str, object]:
    """The trial's stored scores: every metric but the size, the seconds, the pNTK eigenvalues."""
    keys = [k for k in METRICS if k not in ("params", "flops")] + ["seconds", spectra.ATTR]
    return {k: attrs[k] for k in keys if k in attrs}


def _load_weights(
    model: nn.Module,
    study_name: str,
    scorer: optuna.trial.FrozenTrial,
    attrs: dict,
    seed: int,
    checkpoints: Path,
) -> dict:
    """Load into the freshly seeded ``model`` the weights its verification (``attrs``, the
    scoring trial's ``verified_*`` results) trained, when its checkpoint is at hand and fits;
    return config.json's ``weights``: which ones ``model`` holds, and why."""
    initial = "as the search initialised them"
    if "verified_status" not in attrs:
        return {"file": WEIGHTS, "kind": INITIAL, "note": f"{initial}; the trial was not verified"}
    if attrs["verified_status"] != verify.TRAINED:
        return {
            "file": WEIGHTS,
            "kind": INITIAL,
            "note": f"{initial}; its verification {attrs['verified_status']}",
        }
    data = attrs.get("verified_data")
    if not isinstance(data, str):  # a record edited by hand or damaged: its checkpoint cannot be matched
        return {"file": WEIGHTS, "kind": INITIAL, "note": f"{initial}; its stored verification is damaged"}
    trained = verify.trained_weights(
        study_name, scorer.number, str(scorer.user_attrs["config"]), attrs, seed, checkpoints
    )
    if trained is None:
        path = verify.checkpoint_path(study_name, scorer.number, checkpoints)
        note = f"{initial}; the trial was verified, but its checkpoint {path} is missing or from another run"
        return {"file": WEIGHTS, "kind": INITIAL, "note": note}
    if not _fits(model, trained):
        note = f"{initial}; the network trained on {data} has other shapes (another number of classes?)"
        return {"file": WEIGHTS, "kind": INITIAL, "note": note}
    model.load_state_dict(trained)
    note = f"trained by `ntknas verify`: {attrs['verified_epochs']} epoch(s) on {data}, from its checkpoint"
    return {"file": WEIGHTS, "kind": TRAINED, "note": note}


def _fits(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` has exactly ``model``'s entries, each of the same shape."""
    own = model.state_dict()
    return own.keys() == state.keys() and all(own[k].shape == state[k].shape for k in own)


def _program(model: nn.Module, example: torch.Tensor) -> tuple[torch.export.ExportedProgram | None, dict]:
    """``model`` (in eval mode) exported on ``example`` (B, C, H, W), with a dynamic batch
    dimension when torch.export allows it, else for single images; and config.json's
    ``program``, which says how (or why not)."""
    batch = torch.export.Dim("batch")
    try:
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        return program, {"file": PROGRAM, "input_shape": [None, *example.shape[1:]], "dynamic_batch": True}
    except Exception:  # any failure to trace a dynamic batch: try a fixed one
        pass
    try:
        program = torch.export.export(model, (example[:1],))
        return program, {"file": PROGRAM, "input_shape": [1, *example.shape[1:]], "dynamic_batch": False}
    except Exception as e:  # a network torch.export cannot trace: the weights still go out
        return None, {"file": None, "error": f"{type(e).__name__}: {first_line(e)}"}
