"""Labelled images for scoring and training: the bundled CIFAR-10 sample, CIFAR-10 on disk, an
ImageFolder, or seeded noise. Nothing is ever downloaded."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ntknas.core.errors import InputWarning, UserError
from ntknas.core.files import missing
from ntknas.inputs import image_folder, image_size
from ntknas.inputs.sources import BUNDLED, CIFAR10, SOURCES, SYNTHETIC

__all__ = ["BUNDLED", "CIFAR10", "SOURCES", "SYNTHETIC", "Images", "load", "load_minibatch", "minibatch"]

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
SPLITS = ("train", "test")
STORED_SIZE = 32  # the side of the bundled sample's, CIFAR-10's and the synthetic images
RESIZE_CHUNK = 256  # images resized at once: bounds the float copy of a large set


@dataclass(frozen=True)
class Images:
    """A labelled image set: ``labels`` int64 (M,), class names, and a reader of uint8 pixels."""

    labels: torch.Tensor
    classes: tuple[str, ...]
    read: Callable[[torch.Tensor], torch.Tensor]

    def __len__(self) -> int:
        return len(self.labels)

    def pixels(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 images (k, 3, H, W) at indices ``idx`` (all when None)."""
        return self.read(torch.arange(len(self)) if idx is None else idx)

    @classmethod
    def in_memory(cls, pixels: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...]) -> Images:
        """Images held as one uint8 tensor (M, 3, H, W)."""
        return cls(labels, classes, lambda idx: pixels[idx])

    def at_size(self, size: int) -> Images:
        """These square images read at ``size`` × ``size`` (see :func:`resize_pixels`)."""
        return replace(self, read=lambda idx: resize_pixels(self.read(idx), size))


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 images (M, 3, H, W) → float32 with CIFAR mean and standard deviation removed."""
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (pixels.float() / 255 - mean) / std


def load(
    source: str, split: str = "train", root: str | Path | None = None, size: int = image_size.DEFAULT
) -> Images:
    """The ``split`` of ``source`` at ``size`` × ``size`` pixels: ``cifar10-sample`` (bundled,
    1,000 train / 300 test images), ``cifar10`` (torchvision's layout under ``root``), ``synthetic``
    (noise), or an ImageFolder path (with ``train/`` and ``test/`` subfolders, or classes directly
    for ``train``). The first three hold 32-pixel images, resized for another ``size``
    (:func:`resize_pixels`); an ImageFolder's files are read at ``size`` (:func:`image_folder.read`:
    shorter side resized to it, central square cropped)."""
    image_size.check(size)
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if root is not None and source != CIFAR10:
        raise UserError(f"--data-root is read for --data {CIFAR10} only, not --data {source}; drop it")
    if source in (BUNDLED, SYNTHETIC, CIFAR10) and Path(source).is_dir():
        _shadowed(source, os.getcwd())
    if source == BUNDLED:
        return _bundled(split).at_size(size)
    if source == SYNTHETIC:
        return _synthetic(split).at_size(size)
    if source == CIFAR10:
        return _cifar10(split, root).at_size(size)
    return _image_folder(Path(source).expanduser(), split, size)


@functools.cache
def _shadowed(source: str, cwd: str) -> None:
    """Warn, once per working directory, that ``source`` names a source of its own, not the folder
    of that name in ``cwd``."""
    warnings.warn(
        f"--data {source} names the {source} source, not the folder {source}/ here; to read that folder, "
        f"pass --data ./{source}",
        InputWarning,
        stacklevel=3,
    )


def check_batch_size(batch_size: int) -> int:
    """``batch_size`` when a kernel can be formed of that many images (2 at least)."""
    if batch_size < 2:
        raise UserError(f"--batch-size must be at least 2 to form a kernel; got {batch_size}")
    return batch_size


def minibatch(
    images: Images, batch_size: int, seed: int, image_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A class-balanced, seeded minibatch: normalised float32 (B, 3, H, W) and labels (B,), resized
    to ``image_size`` × ``image_size`` when given (see :func:`resize`).

    Classes take turns (in a seeded order) until ``batch_size`` images are drawn, so class
    counts differ by at most one while every class has images left.
    """
    check_batch_size(batch_size)
    if batch_size > len(images):
        raise UserError(
            f"--batch-size {batch_size} is larger than the data ({len(images)} images); "
            f"use --batch-size {len(images)} or less"
        )
    rng = np.random.default_rng(seed)
    labels = images.labels.numpy()
    queues = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    order = rng.permutation(len(queues))
    chosen: list[int] = []
    while len(chosen) < batch_size:
        for c in order:
            if queues[c] and len(chosen) < batch_size:
                chosen.append(int(queues[c].pop()))
    idx = torch.tensor(sorted(chosen))
    x = normalise(images.pixels(idx))
    return (x if image_size is None else resize(x, image_size)), images.labels[idx]


def digest(x: torch.Tensor, y: torch.Tensor, classes: int) -> str:
    """A fingerprint (16 hex digits) of a minibatch, its labels and the class count: scores are
    comparable only between networks scored on the same one."""
    import hashlib

    found = hashlib.sha256(f"{tuple(x.shape)}:{classes}:".encode())
    found.update(x.detach().cpu().contiguous().numpy().tobytes())
    found.update(y.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    return found.hexdigest()[:16]


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images (B, C, H, W) resized to (B, C, size, size): bilinear, antialiased when shrinking;
    unchanged when already that size. For models that need larger (or smaller) inputs than the
    data's, e.g. 224 × 224 for a vision transformer."""
    image_size.check(size)
    if x.shape[-2:] == (size, size):
        return x
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)


def resize_pixels(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (M, C, H, W) resized as :func:`resize` does, rounded back to uint8, a chunk
    of images at a time; unchanged when already that size."""
    if pixels.shape[-2:] == (size, size):
        return pixels
    chunks = [resize(c.float(), size).round_().clamp_(0, 255) for c in pixels.split(RESIZE_CHUNK)]
    return torch.cat(chunks).to(torch.uint8)


def load_minibatch(
    source: str, root: str | Path | None, batch_size: int, seed: int, size: int = image_size.DEFAULT
) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
    """The seeded, class-balanced minibatch (images, labels) that a search scores on, from the
    train split of ``source`` at ``size`` × ``size`` pixels (see :func:`load`), and the number of
    classes."""
    images = load(source, "train", root, size)
    return minibatch(images, batch_size, seed), len(images.classes)


def _bundled(split: str) -> Images:
    with resources.files("ntknas.bundled").joinpath("cifar10_sample.npz").open("rb") as f:
        d = np.load(f)
        return Images.in_memory(
            torch.from_numpy(d[f"{split}_x"]), torch.from_numpy(d[f"{split}_y"]), tuple(d["classes"].tolist())
        )


def _synthetic(split: str, count: int = 1000, classes: int = 10) -> Images:
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    noise = torch.randn(count, 3, STORED_SIZE, STORED_SIZE, generator=g)
    pixels = (noise * 64 + 128).clamp(0, 255).to(torch.uint8)
    labels = torch.arange(count) % classes
    return Images.in_memory(pixels, labels, tuple(f"class{c}" for c in range(classes)))


def _cifar10(split: str, root: str | Path | None) -> Images:
    import torchvision

    if root is None:
        raise UserError("--data cifar10 needs --data-root DIR (the folder holding cifar-10-batches-py)")
    try:
        ds = torchvision.datasets.CIFAR10(str(root), train=split == "train", download=False)
    except RuntimeError:  # torchvision's "Dataset not found or corrupted"
        folder = Path(root) / "cifar-10-batches-py"
        if folder.is_dir():
            raise UserError(
                f"CIFAR-10 under {root} is incomplete or damaged (a file of {folder} is missing or "
                "differs from the published one); fetch it again, or use --data cifar10-sample"
            ) from None
        raise UserError(
            f"CIFAR-10 not found under {root} (expected {folder}); "
            "ntknas never downloads: fetch it yourself or use --data cifar10-sample"
        ) from None
    pixels = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return Images.in_memory(pixels, torch.tensor(ds.targets), tuple(ds.classes))


def _split_folder(path: Path, split: str) -> Path:
    """The folder holding ``split``'s class folders: ``path/split`` when ``path`` is split into
    train/ and test/ folders, else ``path`` itself for the train split. A train/ or test/ folder
    beside other folders (a class named so, or classes left out of the split) is refused: which of
    them are the classes cannot be told."""
    folders = image_folder.class_folders(path)
    splits = [f for f in folders if f in SPLITS]
    others = [f for f in folders if f not in SPLITS]
    if splits and others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise UserError(
            f"{path} has {' and '.join(f'{s}/' for s in splits)} beside other folders ({shown}): are "
            f"they splits or classes? Put each split's class folders in {path}/train/ and {path}/test/, "
            "or rename a class folder called so"
        )
    if splits and split not in splits:
        raise UserError(f"{path} has no {split}/ folder beside {splits[0]}/; give it {path}/{split}/<class>/")
    if not splits and split == "test":
        raise UserError(f"{path} has no test/ folder; a test split needs {path}/test/<class>/*.png")
    return path / split if splits else path


def _image_folder(path: Path, split: str, size: int) -> Images:
    if (problem := missing(path)) is not None:
        raise UserError(
            f"data path {path} {problem}; give an ImageFolder directory or one of: "
            f"{BUNDLED}, {CIFAR10}, {SYNTHETIC}"
        )
    if not path.is_dir():
        raise UserError(f"data path {path} is not a directory; give an ImageFolder (one folder per class)")
    folder = _split_folder(path, split)
    listing = image_folder.scan(folder)
    if len(listing.classes) < 2:
        raise UserError(
            f"{folder} has {len(listing.classes)} class folder ({listing.classes[0]}); a classifier "
            "needs at least 2: give each class a folder of its images"
        )

    def read(idx: torch.Tensor) -> torch.Tensor:
        return torch.stack([image_folder.read(listing.files[i], size) for i in idx.tolist()])

    return Images(torch.tensor(listing.labels), listing.classes, read)
