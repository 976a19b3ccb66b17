"""Verification: train a study's top picks from scratch and store what they really reach.

The NAS-Bench-201 recipe with the epochs the user asks for: SGD with Nesterov momentum 0.9 and
weight decay 5e-4, a cosine learning rate (stepped per minibatch, down to zero), random crops
with 4-pixel zero padding and horizontal flips, CIFAR normalisation. Each pick is checkpointed
after every epoch; a re-run skips verified picks and continues the others where they stopped.

Results are stored through Optuna's public API, as study user attributes keyed by trial number
(``verified:<number>``; a finished trial's own attributes are read-only), and read back with
:func:`stored_results`.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import optuna
import torch
import torch.nn.functional as F
from torch import nn

from ntknas.core import checks, defaults, files
from ntknas.core.errors import UserError
from ntknas.core.seeds import derive_seed
from ntknas.inputs import data
from ntknas.inputs.image_size import DEFAULT as DEFAULT_IMAGE_SIZE
from ntknas.objectives.candidates import plugin_network, seeded_model
from ntknas.run.recipe import Recipe
from ntknas.study import rebuild, records
from ntknas.study.settings import Settings
from ntknas.study.storage import open_storage
from ntknas.study.verified import store_result, stored_results

CHECKPOINTS = defaults.CHECKPOINTS
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
PADDING = 4
EVAL_BATCH = 256
TRAINED, DIVERGED, SKIPPED, KEPT = "trained", "diverged", "skipped", "kept"
# After an epoch, a loss above this many times ln(classes) (what guessing uniformly scores), or a
# training accuracy within this factor of chance, says that training is not learning.
LOSS_OVER_GUESSING = 1.5
CHANCE_MARGIN = 1.05
# What a pick does between minibatches, long on a large network: ``stage(what)`` wraps it (e.g. to
# show it) and :func:`quiet` shows nothing.
Stage = Callable[[str], AbstractContextManager[object]]


def quiet(what: str) -> AbstractContextManager[object]:
    """A :data:`Stage` that shows nothing."""
    return nullcontext()


@dataclass(frozen=True)
class Splits:
    """Training and test images in memory: uint8 pixels (M, 3, H, W), int64 labels (M,)."""

    name: str
    train_pixels: torch.Tensor
    train_labels: torch.Tensor
    test_pixels: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    """Where training of one network stands, reported after every minibatch.

    ``loss`` and ``accuracy`` (%) are running means over the current epoch; ``start_epoch`` is
    the number of epochs a checkpoint already held when this run began.
    """

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    accuracy: float
    start_epoch: int


@dataclass(frozen=True)
class Outcome:
    """One verified pick: its search ``score``, ``status`` (trained, diverged, skipped when an
    earlier run had verified it already with these settings, or kept when the result stored for
    it is better founded than this run's: see :func:`better_founded`) and its ``verified_*``
    attributes as stored."""

    trial: int
    config: str
    score: float
    status: str
    attrs: dict[str, object]

    @property
    def test_acc(self) -> float:
        return float(self.attrs["verified_test_acc"])


def load_splits(source: str, root: str | None, size: int = DEFAULT_IMAGE_SIZE) -> Splits:
    """The train and test splits of a data source at ``size`` × ``size`` pixels (the study's image
    size: see :func:`data.load`), read into memory once."""
    train = data.load(source, "train", root, size)
    test = data.load(source, "test", root, size)
    if train.classes != test.classes:
        only = {
            split: [c for c in mine if c not in theirs]
            for split, mine, theirs in (
                ("train", train.classes, test.classes),
                ("test", test.classes, train.classes),
            )
        }
        differ = "; ".join(
            f"only in {split}: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"
            for split, names in only.items()
            if names
        )
        raise UserError(
            f"the train and test splits of {source} have different classes ({differ}); give both splits "
            "the same class folders"
        )
    if len(train) < 2:
        raise UserError(f"the train split of {source} has {len(train)} image(s); training needs at least 2")
    return Splits(source, train.pixels(), train.labels, test.pixels(), test.labels, train.classes)


def steps_per_epoch(recipe: Recipe, splits: Splits) -> int:
    """Minibatches of one training epoch (the last, partial one is dropped)."""
    return len(splits.train_labels) // recipe.batch_size


def check_recipe(recipe: Recipe, splits: Splits) -> None:
    """UserError unless ``recipe`` can train on ``splits``: whole epochs and batch size of at least
    1, a batch no larger than the training data, and a positive, finite learning rate. Checked
    before any training, so a recipe that cannot train never replaces a stored result."""
    checks.check_positive_int("--epochs", recipe.epochs)
    checks.check_positive_int("--batch-size", recipe.batch_size)
    checks.check_positive_finite("--lr", recipe.lr)
    largest = torch.finfo(torch.float32).max  # the weights are float32: SGD cannot step by more
    if recipe.lr > largest:
        raise UserError(f"--lr must be at most {largest:.3g}, the largest float32; got {recipe.lr:g}")
    available = len(splits.train_labels)
    if recipe.batch_size > available:
        raise UserError(
            f"--batch-size {recipe.batch_size} is larger than the training data ({available} images of "
            f"{splits.name}); use --batch-size {available} or less"
        )


def top_picks(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    """The ``k`` best picks of :func:`ntknas.study.records.picks`; UserError when the study has fewer."""
    picks = records.picks(study, Settings.load(study))
    if k > len(picks):
        raise UserError(
            f"cannot verify the top {k}: study '{study.study_name}' holds {len(picks)} distinct "
            f"completed trials; ask for {len(picks)} or fewer"
        )
    return picks[:k]


def data_order_seed(seed: int, config: str) -> int:
    """The seed of the data order and augmentation of configuration ``config``'s training."""
    return derive_seed(seed, config, "data")


def trained_weights(
    study_name: str, number: int, config: str, attrs: dict, seed: int, root: Path = CHECKPOINTS
) -> dict[str, torch.Tensor] | None:
    """The weights (a CPU ``state_dict``) that the verification of trial ``number`` (of
    configuration ``config``; ``attrs``: its stored ``verified_*`` results) ended with, from its
    checkpoint; None when the trial was not verified, diverged, or its checkpoint is missing or
    holds another run (another recipe, data or seed, or an unfinished one)."""
    path = checkpoint_path(study_name, number, root)
    if attrs.get("verified_status") != TRAINED or not path.exists():
        return None
    saved = _read_checkpoint(path, "cpu")
    stamp = saved.get("stamp", {})
    run = {
        "epochs": attrs.get("verified_epochs"),
        "batch_size": attrs.get("verified_batch_size"),
        "lr": attrs.get("verified_lr"),
        "data": attrs.get("verified_data"),
        "data_seed": data_order_seed(seed, config),
    }
    finished = all(stamp.get(k) == v for k, v in run.items()) and saved.get("epoch") == run["epochs"]
    return saved["model"] if finished else None


def checkpoint_folder(study_name: str, root: Path = CHECKPOINTS) -> Path:
    """``root/<study>``, the study name made one safe folder name (:func:`files.folder_name`): no
    study name leads outside ``root``, and two never share a folder."""
    return root / files.folder_name(study_name)


def checkpoint_path(study_name: str, trial: int, root: Path = CHECKPOINTS) -> Path:
    """``root/<study>/<trial number>.pt``."""
    return checkpoint_folder(study_name, root) / f"{trial}.pt"


def verify(
    study: optuna.Study,
    storage_url: str | None,
    picks: list[optuna.trial.FrozenTrial],
    splits: Splits,
    recipe: Recipe,
    *,
    device: str,
    checkpoints: Path = CHECKPOINTS,
    report: Callable[[int, Step], None] | None = None,
    stage: Callable[[int, str], AbstractContextManager[object]] | None = None,
) -> list[Outcome]:
    """Train each pick from scratch (or from its checkpoint) and store its ``verified_*``
    attributes for its trial (see :func:`stored_results`) as soon as it is done; picks already
    verified with this recipe and data are skipped. Each network is initialised as the search
    initialised it, for the study's image size, which ``splits`` must hold (:func:`load_splits`).
    ``report(trial number, step)`` follows every minibatch; ``stage(trial number, what)`` wraps
    each stage of a pick between minibatches (building its network, testing it).

    Before any training, the recipe is checked against the data, and the storage (opened from
    ``storage_url`` for writing) and the checkpoint folder are checked to be writable.
    """
    check_recipe(recipe, splits)
    settings = Settings.load(study)
    image = tuple(splits.train_pixels.shape[1:])
    if image[1:] != (settings.image_size, settings.image_size):
        raise UserError(
            f"study '{study.study_name}' was searched on {settings.image_size}-pixel images, and "
            f"{splits.name} holds {image[1]}×{image[2]}; load it at the study's size"
        )
    space = rebuild.stored_space(settings, study.study_name)
    writable = optuna.load_study(study_name=study.study_name, storage=open_storage(storage_url))
    folder = checkpoint_folder(study.study_name, checkpoints)
    files.refuse_link(folder, "checkpoint folder")
    files.check_writable_folder(folder, "checkpoint folder")
    with _alone(folder, study.study_name):
        _claim(folder, study.study_name, storage_url)
        stored = stored_results(writable)
        outcomes = []
        for trial in picks:
            text, config = rebuild.stored_config(space, study.study_name, trial)
            score = float(trial.user_attrs[settings.objective])
            earlier = stored.get(trial.number, {})
            if _verified_with(earlier, recipe, splits.name):
                outcomes.append(Outcome(trial.number, text, score, SKIPPED, earlier))
                continue
            if better_founded(earlier, {"verified_epochs": recipe.epochs, "verified_data": splits.name}):
                outcomes.append(Outcome(trial.number, text, score, KEPT, earlier))
                continue
            staged = partial(stage, trial.number) if stage is not None else quiet
            with staged("building the network"):
                model = seeded_model(space, config, len(splits.classes), settings.seed, image)
                if splits.name == settings.data:  # the network the search scored (other data: another head)
                    rebuild.check_rebuilt(space, model, trial, text)
            with plugin_network(space, "in training"):
                attrs = train(
                    model,
                    splits,
                    recipe,
                    data_seed=data_order_seed(settings.seed, text),
                    checkpoint=checkpoint_path(study.study_name, trial.number, checkpoints),
                    device=device,
                    report=None if report is None else partial(report, trial.number),
                    stage=staged,
                )
            earlier = stored_results(writable).get(trial.number, {})  # another machine's verify, meanwhile
            if better_founded(earlier, attrs):  # this run diverged, or ran less; the stored one stays
                outcomes.append(Outcome(trial.number, text, score, KEPT, earlier))
                continue
            store_result(writable, trial.number, attrs)
            outcomes.append(Outcome(trial.number, text, score, str(attrs["verified_status"]), attrs))
        return outcomes


OWNER = ".owner"  # in a checkpoint folder: the storage and study whose picks it holds


def _claim(folder: Path, study_name: str, storage_url: str | None) -> None:
    """Mark ``folder`` as the checkpoints of study ``study_name`` in ``storage_url``; UserError
    when it holds another storage's study of the same name (or a copy of the database): its
    trained weights would be overwritten by other networks'. A folder without a mark (an older
    ntknas's) is taken as it is."""
    from ntknas.study.storage import default_url, mask, sqlite_file

    url = storage_url or default_url()
    path = sqlite_file(url)
    owner = f"{path.resolve() if path is not None else mask(url)}\n{study_name}\n"
    mark = folder / OWNER
    held = mark.read_text(errors="replace") if mark.is_file() and not mark.is_symlink() else None
    if held is not None and held != owner:
        raise UserError(
            f"checkpoint folder {folder} holds the trained picks of study '{study_name}' of another "
            f"storage ({held.splitlines()[0] if held.strip() else 'unknown'}), which this verify would "
            "overwrite: move that folder away first (export that study's picks before, if wanted)"
        )
    if held is None:
        files.write_atomically(mark, owner, "checkpoint folder", follow=False)


@contextmanager
def _alone(folder: Path, study_name: str) -> Iterator[None]:
    """Within the block, this process is the only ``ntknas verify`` of the study on this machine:
    two would train the same picks into the same checkpoints, and the one to end last would store
    its result over the other's. UserError when another holds the study's lock file (where
    ``fcntl`` exists; on other systems, no lock)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    files.make_folders(folder)
    lock = folder / ".verify.lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another `ntknas verify` of study '{study_name}' is running on this machine (it holds "
                f"{lock}): let it finish, then run this one"
            ) from None
        yield
    finally:
        os.close(fd)


def not_learning(loss: float, accuracy: float, classes: int) -> str | None:
    """Why an epoch's running ``loss`` (cross-entropy, nats) and training ``accuracy`` (%) over
    ``classes`` classes say that training diverged or learns nothing, or None when they do not."""
    guessing = math.log(classes)
    if not math.isfinite(loss):
        return f"loss is {loss}"
    if loss > LOSS_OVER_GUESSING * guessing:
        bound = LOSS_OVER_GUESSING * guessing
        return f"loss {loss:.3g} is above {LOSS_OVER_GUESSING:g}·ln({classes}) = {bound:.3g}"
    if accuracy <= CHANCE_MARGIN * 100 / classes:
        return f"accuracy {accuracy:.1f}% is at chance ({100 / classes:.1f}%)"
    return None


def better_founded(stored: dict, new: dict) -> bool:
    """Whether the ``stored`` result of a pick (its ``verified_*`` attributes) is better founded
    than ``new`` (a result, or the epochs and data of a run to come), so that ``new`` must not
    replace it: ``stored`` trained to the end, and ``new`` diverged, or ran fewer epochs on the
    same data. (A run on other data measures something else, and replaces it.)"""
    if stored.get("verified_status") != TRAINED:
        return False
    if str(new.get("verified_status", TRAINED)).startswith(DIVERGED):
        return True
    same_data = stored.get("verified_data") == new.get("verified_data")
    return same_data and int(stored.get("verified_epochs") or 0) > int(new["verified_epochs"])


def train(
    model: nn.Module,
    splits: Splits,
    recipe: Recipe,
    *,
    data_seed: int,
    checkpoint: Path,
    device: str,
    report: Callable[[Step], None] | None = None,
    stage: Stage = quiet,
) -> dict[str, object]:
    """Train ``model`` with ``recipe`` on the train split, checkpointing after every epoch and
    resuming from ``checkpoint`` when it holds a run of the same recipe; test on the test split.

    Returns the ``verified_*`` attributes. ``verified_train_acc`` is the accuracy on the
    (augmented) training images during the last epoch. A non-finite loss stops training: the
    accuracies are then NaN and ``verified_status`` says in which epoch it diverged.
    ``report`` gets a :class:`Step` after every minibatch, and ``stage`` wraps the test. UserError,
    before any training, for a recipe that cannot train on ``splits`` (:func:`check_recipe`).
    """
    check_recipe(recipe, splits)
    model.to(device)
    steps = steps_per_epoch(recipe, splits)  # at least 1: check_recipe
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs * steps)
    stamp = {**asdict(recipe), "data": splits.name, "steps": steps, "data_seed": data_seed}
    saved = _load_checkpoint(checkpoint, stamp, device)
    start, seconds, train_acc = 0, 0.0, math.nan
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        start, seconds, train_acc = saved["epoch"], saved["seconds"], saved["train_acc"]
    status = TRAINED
    for epoch in range(start + 1, recipe.epochs + 1):
        began = time.perf_counter()
        generator = torch.Generator().manual_seed(derive_seed(data_seed, epoch))

        def step_report(step: int, loss: float, accuracy: float, epoch: int = epoch) -> None:
            if report is not None:
                report(Step(epoch, recipe.epochs, step, steps, loss, accuracy, start))

        train_acc = _train_epoch(
            model, optimizer, schedule, splits, recipe, steps, generator, device, step_report
        )
        seconds += time.perf_counter() - began
        if math.isnan(train_acc):
            status = f"{DIVERGED} in epoch {epoch} (non-finite loss)"
            break
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        state |= {"schedule": schedule.state_dict(), "stamp": stamp, "epoch": epoch}
        _save_atomically({**state, "seconds": seconds, "train_acc": train_acc}, checkpoint)
    diverged = status != TRAINED
    began = time.perf_counter()
    test_acc = math.nan
    if not diverged:
        with stage(f"testing on {len(splits.test_labels):,} images"):
            test_acc = accuracy(model, splits.test_pixels, splits.test_labels, device)
    return {
        "verified_test_acc": test_acc,
        "verified_train_acc": math.nan if diverged else train_acc,
        "verified_epochs": recipe.epochs,
        "verified_data": splits.name,
        "verified_seconds": seconds + time.perf_counter() - began,
        "verified_batch_size": recipe.batch_size,
        "verified_lr": recipe.lr,
        "verified_status": status,
    }


def augment(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard CIFAR augmentation of uint8 images (B, 3, H, W): a random crop of the image
    zero-padded by 4 pixels on each side, then a horizontal flip with probability 1/2."""
    b, c, h, w = pixels.shape
    padded = F.pad(pixels, (PADDING,) * 4)
    dy = torch.randint(0, 2 * PADDING + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * PADDING + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = dy[:, None] + torch.arange(h)
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    return padded[
        torch.arange(b)[:, None, None, None],
        torch.arange(c)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


@torch.no_grad()
def accuracy(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, device: str) -> float:
    """Top-1 accuracy (%) of ``model`` in eval mode on uint8 images and their labels."""
    model.eval()
    correct = 0
    for idx in torch.arange(len(labels)).split(EVAL_BATCH):
        logits = model(data.normalise(pixels[idx]).to(device))
        correct += int((logits.argmax(1).cpu() == labels[idx]).sum())
    return 100 * correct / len(labels)


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    splits: Splits,
    recipe: Recipe,
    steps: int,
    generator: torch.Generator,
    device: str,
    report: Callable[[int, float, float], None],
) -> float:
    """One epoch of seeded, augmented minibatches (the last, partial one dropped). Returns the
    training accuracy (%), NaN as soon as the loss is not finite."""
    model.train()
    order = torch.randperm(len(splits.train_labels), generator=generator)
    total_loss, correct, seen = 0.0, 0, 0
    for step in range(1, steps + 1):
        idx = order[(step - 1) * recipe.batch_size : step * recipe.batch_size]
        x = data.normalise(augment(splits.train_pixels[idx], generator)).to(device)
        y = splits.train_labels[idx].to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if not torch.isfinite(loss):
            return math.nan
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        total_loss += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(idx)
        report(step, total_loss / seen, 100 * correct / seen)
    return 100 * correct / seen


def _verified_with(attrs: dict, recipe: Recipe, data_name: str) -> bool:
    return (
        attrs.get("verified_epochs") == recipe.epochs
        and attrs.get("verified_batch_size") == recipe.batch_size
        and attrs.get("verified_lr") == recipe.lr
        and attrs.get("verified_data") == data_name
    )


def _load_checkpoint(path: Path, stamp: dict, device: str) -> dict | None:
    """The checkpoint at ``path`` if it was saved with ``stamp`` (the same recipe and data)."""
    files.refuse_link(path, "checkpoint")
    if not path.exists():
        return None
    saved = _read_checkpoint(path, device)
    return saved if saved.get("stamp") == stamp else None


def _read_checkpoint(path: Path, device: str) -> dict:
    """The checkpoint at ``path``, read without running code; UserError when unreadable or a link."""
    files.refuse_link(path, "checkpoint")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a torn or foreign file: say which, keep it for the user to judge
        raise UserError(
            f"checkpoint {path} is unreadable ({type(e).__name__}); "
            "delete it to train that pick again from scratch"
        ) from None


def _save_atomically(state: dict, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    files.write_atomically(path, buffer.getvalue(), "checkpoint", follow=False)
