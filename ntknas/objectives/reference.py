"""Each search space's reference sample: where ``ntk_score``'s terms lie across its architectures.

``ntk_score`` places each of its terms in the term's distribution over a seeded random sample of
the space's own architectures, measured without accuracies: its centre (mean) and spread
(standard deviation). The protocol is fixed, so a space's reference does not depend on the study:
``size`` distinct architectures (all of them in a smaller space) drawn by Optuna's random sampler
with seed ``SEED``, each initialised as a search would with that seed, scored on as many
class-balanced images of the bundled CIFAR-10 sample, drawn with that seed, as the study's batch
(resized to the study's image size) with BatchNorm on batch statistics, for the study's number of
classes. Terms such as NASWOT's log-determinant grow with the batch, so each batch size has its own
reference.

The built-in spaces ship their references for batches of 64 32-pixel images and 10 classes
(``references/``), measured on ``SHIPPED_SIZE`` architectures; any other (space, image size,
classes, batch) is measured once, on ``SIZE`` architectures, which takes ``SIZE`` scorings (half
of a 50-trial search; on the dev files, τ with the accuracy moves by 0.008 on NB201 and 0.003 on
NAS-Bench-Macro on average from the reference of all scored rows, against 0.005 and 0.002 with 64:
``benchmarks/reference_size.py``), and cached under ``$XDG_CACHE_HOME/ntknas/references``
(``~/.cache`` without it): a folder private to the user (0700), or no cache at all when there is
no home or the folder is not the user's own. Cached files are read and written as regular files
only (a link is never followed, and is replaced, not its target), and a cached reference is used
only when it is one of this space, image size, number of classes, batch size and version, with
finite centres and positive spreads; else it is measured again, with a one-line warning.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import search_spaces
from ntknas.core.errors import InputWarning, UserError, memory_problem
from ntknas.core.files import make_folders, write_atomically
from ntknas.inputs import data
from ntknas.inputs.sources import BUNDLED
from ntknas.objectives.candidates import seeded_model
from ntknas.scoring import metrics
from search_spaces import PluginError, SearchSpace
from search_spaces.guard import first_line

# What measuring a reference reports: (architectures measured, of how many).
Progress = Callable[[int, int], None]
# A context that a measurement runs in, given what is measured; it yields the progress to report.
Measuring = Callable[[str], AbstractContextManager[Progress | None]]

SIZE = 24  # architectures a reference is measured on, the first time a user needs it
SHIPPED_SIZE = 64  # the shipped references': measured once, for every user
SEED = 0
BATCH = 64
BN = "batch"
VERSION = 2  # of the protocol and the file format: a cached reference of another is measured again
MAX_BYTES = 1 << 16  # a cached reference is a few hundred bytes; a larger file is none


@dataclass(frozen=True)
class Reference:
    """Where ``ntk_score``'s terms lie in one space, for one image size, number of classes and
    batch size: ``terms`` maps each term to its (centre, spread) over ``measured`` architectures
    with a non-singular kernel, of ``sampled`` drawn."""

    space: str
    image_size: int
    classes: int
    batch: int
    sampled: int
    measured: int
    terms: dict[str, tuple[float, float]]

    def to_json(self) -> str:
        fields = {**self.__dict__, "terms": {n: list(v) for n, v in self.terms.items()}}
        return json.dumps({"version": VERSION, **fields}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Reference:
        """The reference a :meth:`to_json` text holds; ValueError when it is not one of this version."""
        raw = json.loads(text)
        if raw.pop("version", None) != VERSION:
            raise ValueError("a reference of another version")
        raw["terms"] = {n: (float(c), float(s)) for n, (c, s) in raw["terms"].items()}
        return cls(**raw)

    def check(self, space: str, image_size: int, classes: int, batch: int) -> None:
        """ValueError saying why, unless this is a reference of ``space`` for batches of ``batch``
        images of ``image_size`` pixels and ``classes`` classes, of every weighted term, with
        finite centres and finite, positive spreads."""
        if (self.space, self.image_size, self.classes, self.batch) != (space, image_size, classes, batch):
            raise ValueError(
                f"it is the reference of space {self.space!r} for {self.image_size!r} px, "
                f"{self.classes!r} classes and batches of {self.batch!r}"
            )
        checked_terms(self.terms)


def checked_terms(raw: object) -> dict[str, tuple[float, float]]:
    """The (centre, spread) of every weighted term of ``ntk_score`` in ``raw`` (a mapping from term
    to a pair, as a cache file or a study attribute holds it), as floats; ValueError saying why
    unless each is there, with a finite centre and a finite, positive spread."""
    try:
        terms = {name: (float(raw[name][0]), float(raw[name][1])) for name in metrics.WEIGHTS}  # type: ignore[index]
    except (TypeError, KeyError, IndexError, ValueError) as e:
        raise ValueError(f"it does not hold a (centre, spread) for each of {sorted(metrics.WEIGHTS)}") from e
    for name, (centre, spread) in terms.items():
        if not (math.isfinite(centre) and math.isfinite(spread) and spread > 0):
            raise ValueError(f"term {name} has centre {centre} and spread {spread}")
    return terms


def lookup(space: SearchSpace, image_size: int, classes: int, batch: int = BATCH) -> Reference | None:
    """The shipped or cached reference of ``space`` for batches of ``batch`` images of
    ``image_size`` pixels and ``classes`` outputs; None when it has not been measured."""
    shipped = _shipped(space, image_size, classes, batch)
    if shipped is not None:
        return shipped
    path = cache_path(space, image_size, classes, batch)
    if path is None:
        return None
    try:
        found = Reference.from_json(_read_regular(path))
        found.check(space.name, image_size, classes, batch)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        why = f"cached reference {path} is not usable ({_why(e)}); measuring it again"
        warnings.warn(why, InputWarning, stacklevel=2)
        return None
    return found


class Unplaceable(UserError):
    """No reference can be measured in space ``space``, for the reason ``why``: ntk_score cannot
    be placed there."""

    def __init__(self, space: str, why: str) -> None:
        super().__init__(f"cannot place ntk_score in space {space}: {why}; rank with another --objective")
        self.why = why


def for_space(
    space: SearchSpace,
    image_size: int,
    classes: int,
    measuring: Measuring | None = None,
    batch: int = BATCH,
) -> Reference:
    """The reference of ``space`` for batches of ``batch`` images of ``image_size`` pixels and
    ``classes`` outputs: shipped, cached, or measured now and cached. A measurement runs inside
    ``measuring(what)`` (``what``: e.g. "32px, 10 classes, 64 images"), which yields the
    ``progress(done, total)`` to call after each architecture, or None: how a caller shows it."""
    found = lookup(space, image_size, classes, batch)
    if found is not None:
        return found
    with (measuring or _unseen)(f"{image_size}px, {classes} classes, {batch} images") as progress:
        return measure_and_cache(space, image_size, classes, progress, batch)


def _unseen(what: str) -> AbstractContextManager[None]:
    return nullcontext()


def measure_and_cache(
    space: SearchSpace,
    image_size: int,
    classes: int,
    progress: Progress | None = None,
    batch: int = BATCH,
) -> Reference:
    """:func:`measure` the reference, and cache it where :func:`lookup` finds it."""
    reference = measure(space, image_size, classes, progress=progress, batch=batch)
    path = cache_path(space, image_size, classes, batch)
    if path is not None:
        try:
            write_atomically(path, reference.to_json(), "reference cache", follow=False)
        except UserError:
            pass  # an unwritable cache costs a new measurement next time, nothing else
    return reference


def measure(
    space: SearchSpace,
    image_size: int,
    classes: int,
    size: int = SIZE,
    progress: Progress | None = None,
    batch: int = BATCH,
) -> Reference:
    """Measure the reference of ``space`` on ``min(size, space.size)`` architectures."""
    configs = sample(space, min(size, space.size))
    x, y = data.minibatch(data.load(BUNDLED), batch, SEED, image_size)
    rows: list[dict[str, float]] = []
    left_out: str | None = None  # why the first architecture left out is
    for done, config in enumerate(configs, 1):
        model = seeded_model(space, config, classes, SEED, tuple(x.shape[1:]))
        errors: dict[str, Exception] = {}
        values = metrics.compute(model, x, y, metrics.NTK_INPUTS, bn=BN, errors=errors)
        broken = [e for e in errors.values() if isinstance(e, PluginError)]
        if broken:  # the plugin's network failed: say so, not that the space cannot be placed
            raise broken[0]
        short = next(filter(None, map(memory_problem, errors.values())), None)
        if short is not None:  # the batch or image size is too large for this machine: no others
            raise UserError(short)
        terms = metrics.ntk_terms(values)  # a failed metric is NaN: no terms, or a NaN term
        if terms is not None and all(math.isfinite(v) for v in terms.values()):
            rows.append(terms)
        elif left_out is None:
            left_out = _why_left_out(errors, values, terms)
        if progress is not None:
            progress(done, len(configs))
    if len(rows) < 2:
        raise Unplaceable(
            space.name,
            f"only {len(rows)} of {len(configs)} sampled architectures give every term of ntk_score "
            f"(the first left out: {left_out})",
        )
    terms = {}
    for name in metrics.WEIGHTS:
        v = [r[name] for r in rows]
        centre = sum(v) / len(v)
        spread = math.sqrt(sum((a - centre) ** 2 for a in v) / len(v))
        terms[name] = (centre, spread if spread > 0 else 1.0)
    return Reference(space.name, image_size, classes, batch, len(configs), len(rows), terms)


def _why_left_out(
    errors: dict[str, Exception], values: dict[str, float], terms: dict[str, float] | None
) -> str:
    """Why an architecture gives no reference row: the first metric that failed on it, a singular
    pNTK, no parameters, or the first term that is not finite."""
    if errors:
        name, error = next(iter(errors.items()))
        return f"{name} failed: {type(error).__name__}: {first_line(error)}"
    if terms is None:
        if not values["params"] > 0:
            return "it has no trainable parameters"
        return f"its pNTK is singular (condition number {values['condition_number']:g})"
    name, value = next((n, v) for n, v in terms.items() if not math.isfinite(v))
    return f"its {name} term is {value}"


def sample(space: SearchSpace, count: int) -> list:
    """``count`` distinct configurations of ``space`` drawn by Optuna's random sampler, seeded
    (fewer when 100 draws per configuration asked do not find them)."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in memory"
    try:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED))
    finally:
        optuna.logging.set_verbosity(verbosity)
    found: dict[str, object] = {}
    for _ in range(100 * count):
        if len(found) == count:
            break
        config = space.sample(study.ask())
        found.setdefault(space.describe(config), config)
    return list(found.values())


def cache_path(space: SearchSpace, image_size: int, classes: int, batch: int = BATCH) -> Path | None:
    """Where the measured reference of a space is cached (None: nowhere, see :func:`cache_folder`);
    the name holds a digest of what the reference depends on (:func:`_identity`), so that a
    changed plugin space is measured again."""
    root = cache_folder()
    if root is None:
        return None
    digest = hashlib.sha256(_identity(space, image_size, classes).encode()).hexdigest()[:12]
    return root / f"{_name(space.name, image_size, classes, batch)}-{digest}.json"


def _identity(space: SearchSpace, image_size: int, classes: int) -> str:
    """The space's class, size and module source, and the first network of its reference sample
    (its modules and initial weights), with this protocol's version: a change to a space's code
    that keeps its class name and size (a wider layer, another activation) changes it."""
    import sys

    from ntknas.scoring.measure import weights_fingerprint

    module = sys.modules.get(space.source_module)
    try:
        source = hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest() if module else ""
    except (OSError, TypeError, AttributeError):  # no file (built in a notebook, frozen)
        source = ""
    model = seeded_model(space, sample(space, 1)[0], classes, SEED, (3, image_size, image_size))
    return f"{space.origin}:{space.size}:v{VERSION}:{source}:{model!r}:{weights_fingerprint(model)!r}"


def cache_folder() -> Path | None:
    """The user's folder of measured references, ``ntknas/references`` in :func:`_cache_root`,
    made when missing and kept private (0700); None when there is no cache root, or the folder
    or its parent is a link, not a folder, or not the user's own."""
    root = _cache_root()
    if root is None:
        return None
    folder = root / "ntknas" / "references"
    try:
        make_folders(folder, 0o700)
        for part in (folder.parent, folder):
            info = os.lstat(part)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                return None
            if stat.S_IMODE(info.st_mode) != 0o700:
                os.chmod(part, 0o700)
    except OSError:
        return None
    return folder


def _cache_root() -> Path | None:
    """``$XDG_CACHE_HOME`` (when an absolute path), else ``~/.cache``; None without a home."""
    given = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(given):
        return Path(given)
    try:
        return Path.home() / ".cache"
    except RuntimeError:
        return None


def _read_regular(path: Path) -> str:
    """The text of ``path`` when it is a regular file (not a link, a FIFO or a device) of at most
    ``MAX_BYTES``; OSError or ValueError otherwise."""
    handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(handle, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            raise ValueError(f"not a regular file of at most {MAX_BYTES} bytes")
        return f.read().decode()


def _why(error: BaseException) -> str:
    """A short reason: an OSError's ``strerror``, else the message."""
    return (error.strerror if isinstance(error, OSError) else None) or str(error) or type(error).__name__


def _shipped(space: SearchSpace, image_size: int, classes: int, batch: int) -> Reference | None:
    if not search_spaces.builtin(space.name):
        return None
    name = _name(space.name, image_size, classes, batch) + ".json"
    item = resources.files("ntknas.references").joinpath(name)
    return Reference.from_json(item.read_text()) if item.is_file() else None


def _name(space: str, image_size: int, classes: int, batch: int) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in space)
    return f"{safe}-{image_size}px-{classes}classes-{batch}images"
