"""Image folders (one folder per class) read safely: a scan that follows links only where they
lead somewhere real, and a reader that turns any image file into the RGB picture it shows.

The scan lists what torchvision's ``ImageFolder`` lists, in the same order, for any folder that
``ImageFolder`` can walk; it never opens a file. Entries that cannot be images (special files such
as FIFOs, sockets and devices named like images, dangling links, links that loop back to a folder
above them) are skipped with one :class:`~ntknas.core.errors.InputWarning`. Files that should be images
but cannot be read (no permission, not an image, truncated, too large to decode safely, pixel
values outside their mode's range) are refused with a UserError naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ntknas.core.errors import InputWarning, UserError, first_line

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# The decoders those extensions call for; any other content (even named .png) is refused.
FORMATS = ("BMP", "JPEG", "PNG", "PPM", "TIFF", "WEBP")
FORMAT_NAMES = "BMP, JPEG, PNG, PPM, TIFF or WebP"
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
# Beyond this aspect ratio, the central square is cut out before resizing, so that a thin strip
# of an image does not become a huge temporary.
MAX_ASPECT = 8
SHOWN = 3  # skipped entries named in the warning
# Folders a scan walks at most (through links too): more means --data is not an image folder (/,
# /proc/self, a home folder), and the walk would take hours.
MAX_FOLDERS = 100_000


@dataclass(frozen=True)
class Listing:
    """The image files of a folder, their class indices, and the class names (sorted)."""

    files: tuple[str, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]


def scan(root: Path) -> Listing:
    """The image files under each class folder of ``root``, as ``ImageFolder`` orders them.

    Raises UserError when ``root`` has no class folder, a class folder has no image, or a folder or
    image file cannot be read; warns (InputWarning, one line) about skipped entries.
    """
    skipped: list[str] = []
    top = {_identity(root)}
    classes = _folders(root, skipped)
    if not classes:
        raise UserError(f"no images found in {root}: Couldn't find any class folder in {root}.")
    files: list[str] = []
    labels: list[int] = []
    empty = []
    walked = [0]  # folders walked so far, over every class
    for index, name in enumerate(classes):
        found = _walk(os.path.join(str(root), name), top, skipped, walked, root)
        if not found:
            empty.append(name)
        files += found
        labels += [index] * len(found)
    if empty:
        raise UserError(
            f"no images found in {root}: Found no valid file for the classes {', '.join(empty)}. "
            f"Supported extensions are: {', '.join(EXTENSIONS)}"
        )
    if skipped:
        more = f" and {len(skipped) - SHOWN} more" if len(skipped) > SHOWN else ""
        warnings.warn(
            f"skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} of {root} that cannot be "
            f"images: {'; '.join(skipped[:SHOWN])}{more}",
            InputWarning,
            stacklevel=2,
        )
    return Listing(tuple(files), tuple(labels), tuple(classes))


def read(path: str, size: int) -> torch.Tensor:
    """The image file ``path`` as uint8 RGB (3, size, size): the picture it shows (16-bit and float
    pixels scaled by their mode's range, transparency over black, EXIF orientation applied),
    resized so that its shorter side is ``size`` and cropped to the central square. UserError
    naming the file when it cannot be read as an image."""
    from PIL import Image, ImageOps

    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO put there since the scan: no hang
    except OSError as e:
        raise UserError(f"{path} cannot be read ({e.strerror}); make it readable or remove it") from None
    with os.fdopen(handle, "rb") as f:
        status = os.fstat(f.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise UserError(f"{path} is not a regular file; remove it")
        if status.st_size == 0:
            raise UserError(f"{path} is not a readable image (it is empty: 0 bytes); remove it or replace it")
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f, formats=FORMATS) as image:
                    picture = _rgb(path, ImageOps.exif_transpose(image))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UserError(
                f"{path} is too large to decode safely (more than {Image.MAX_IMAGE_PIXELS:,} pixels); "
                "shrink it or remove it"
            ) from None
        except UserError:
            raise
        except Exception as e:  # decoders raise many kinds (OSError, ValueError, SyntaxError, ...)
            raise UserError(f"{path} is not a readable image ({_why(e)}); remove it or replace it") from None
    for said in dict.fromkeys(first_line(w.message) for w in seen):  # a decoder's (bad EXIF data, ...)
        warnings.warn(f"{path}: {said}; read as it is", InputWarning, stacklevel=2)
    return _fit(Image.fromarray(picture), size)


def _rgb(path: str, image) -> np.ndarray:
    """uint8 (H, W, 3): the picture ``image`` shows, whatever its mode."""
    if 0 in image.size:
        raise UserError(f"{path} is not a readable image (it has no pixels); remove it or replace it")
    mode = image.mode
    if mode in SIXTEEN_BIT or mode == "I":  # Pillow holds 16-bit grey as I;16, or as I
        grey = np.asarray(image).astype(np.float64)
        if grey.min() < 0 or grey.max() > 65535:
            raise UserError(
                f"{path} has 32-bit integer pixels outside 0..65535; save it with 8 or 16 bits per channel"
            )
        return _grey(grey / 65535)
    if mode == "F":
        grey = np.asarray(image).astype(np.float64)
        if not (np.isfinite(grey).all() and grey.min() >= 0 and grey.max() <= 1):
            raise UserError(
                f"{path} has floating-point pixels outside 0..1 (or NaN); save it with 0..1 floats or "
                "8 or 16 bits per channel"
            )
        return _grey(grey)
    if mode in ALPHA or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA")).astype(np.float64)
        return np.rint(rgba[..., :3] * rgba[..., 3:] / 255).astype(np.uint8)
    return np.asarray(image.convert("RGB"))


def _grey(values: np.ndarray) -> np.ndarray:
    """Grey values in [0, 1] (H, W) as uint8 RGB (H, W, 3)."""
    return np.repeat(np.rint(values * 255).astype(np.uint8)[..., None], 3, axis=2)


def _fit(image, size: int) -> torch.Tensor:
    """Resize (shorter side ``size``) and crop the central square: uint8 (3, size, size)."""
    import torchvision

    width, height = image.size
    if max(width, height) > MAX_ASPECT * min(width, height):
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    resize = torchvision.transforms.Compose(
        [torchvision.transforms.Resize(size), torchvision.transforms.CenterCrop(size)]
    )
    return torch.from_numpy(np.asarray(resize(image)).copy()).permute(2, 0, 1)


def _why(error: Exception) -> str:
    """A short reason a decoder gave up."""
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return f"not a {FORMAT_NAMES} file"
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return "it is truncated" if "truncated" in text.lower() else text


def class_folders(root: Path) -> list[str]:
    """The names of the folders in ``root`` (links followed), sorted: the classes a scan reads."""
    return _folders(root, [])


def _folders(root: Path, skipped: list[str]) -> list[str]:
    """The folders in ``root`` by name (links followed), hidden ones left out (``.git``,
    ``.ipynb_checkpoints``: never a class); ``skipped`` gets the links that lead nowhere or back
    to ``root``."""
    top = {_identity(root)}
    folders = []
    for entry in _entries(str(root)):
        if entry.name.startswith("."):
            continue
        status = _follow(entry.path)
        if isinstance(status, os.stat_result) and stat.S_ISDIR(status.st_mode):
            if _identity_of(status) in top:
                skipped.append(f"{entry.path} (a link back to a folder that contains it)")
            else:
                folders.append(entry.name)
        elif isinstance(status, str) and entry.is_symlink():
            skipped.append(f"{entry.path} ({status})")
    return folders


def _entries(folder: str) -> list[os.DirEntry]:
    """The entries of ``folder`` by name; UserError when it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError as e:
        raise UserError(f"cannot list the folder {folder} ({e.strerror}); make it readable") from None


def _follow(path: str) -> os.stat_result | str:
    """``os.stat`` of ``path`` through any links, or why it cannot be followed."""
    try:
        return os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a link that loops"
        if e.errno == errno.ENAMETOOLONG:
            return "its path is longer than the system allows"
        return "a dangling link" if os.path.islink(path) else (e.strerror or type(e).__name__).lower()


def _identity(path: Path) -> tuple[int, int]:
    return _identity_of(os.stat(path))


def _identity_of(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


def _walk(
    folder: str, above: set[tuple[int, int]], skipped: list[str], walked: list[int], root: Path
) -> list[str]:
    """The image files under ``folder`` (links followed), ordered as ``sorted(os.walk(...))``
    orders them: folders by path, files by name. ``above`` holds the folders that contain it. A
    folder that links make reachable twice is walked once (links that fork and join again would
    make the walk exponential); ``walked[0]`` counts the folders walked, up to ``MAX_FOLDERS``
    (UserError beyond: ``root`` is no image folder)."""
    found: dict[str, list[str]] = {}
    seen = {_identity(Path(folder))}
    pending = [(folder, above | seen)]
    while pending:
        current, ancestors = pending.pop()
        walked[0] += 1
        if walked[0] > MAX_FOLDERS:
            raise UserError(
                f"{root} holds more than {MAX_FOLDERS:,} folders (links followed): it is not an image "
                "folder; give --data a folder with one folder of images per class"
            )
        files = found.setdefault(current, [])
        for entry in _entries(current):
            status = _follow(entry.path)
            imagelike = entry.name.lower().endswith(EXTENSIONS)
            if isinstance(status, str):  # whatever it is, it is named, never dropped unsaid
                skipped.append(f"{entry.path} ({status})")
            elif stat.S_ISDIR(status.st_mode):
                if _identity_of(status) in ancestors:
                    skipped.append(f"{entry.path} (a link back to a folder that contains it)")
                elif _identity_of(status) in seen:
                    skipped.append(f"{entry.path} (a link to a folder listed already)")
                else:
                    seen.add(_identity_of(status))
                    pending.append((entry.path, ancestors | {_identity_of(status)}))
            elif imagelike and not stat.S_ISREG(status.st_mode):
                skipped.append(f"{entry.path} ({_kind(status.st_mode)}, not a regular file)")
            elif imagelike:
                if not os.access(entry.path, os.R_OK):
                    raise UserError(
                        f"{entry.path} cannot be read (permission denied); make it readable or remove it"
                    )
                files.append(entry.path)
    return [file for path in sorted(found) for file in found[path]]


KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    """What a file that is not regular is, in words."""
    return next((name for test, name in KINDS if test(mode)), "a special file")
