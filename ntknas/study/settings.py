"""What a study remembers of the search that made it, in one type that saves to and loads from
the study's user attributes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import optuna

from ntknas.core.checks import SEED_LIMIT
from ntknas.core.errors import UserError
from ntknas.inputs.image_size import DEFAULT as DEFAULT_IMAGE_SIZE
from ntknas.inputs.image_size import LARGEST
from ntknas.inputs.sources import canonical
from ntknas.objectives.budget import Budget
from ntknas.scoring.registry import METRICS, Direction, optuna_direction
from scores.modes import BN_MODES, BnMode
from search_spaces.base import clipped

# Settings a study made by an older ntknas may lack, and the value they had then.
_OPTIONAL = {
    "cost": None,
    "max_params": None,
    "max_flops": None,
    "image_size": DEFAULT_IMAGE_SIZE,
    "direction": None,
    "batch_digest": None,
}
VERSION_ATTR = "objective_version"  # the version of the objective's definition (Metric.version)


@dataclass(frozen=True)
class Settings:
    """A search's settings; resuming a study with other values is refused.

    ``cost`` is the second objective of a multi-objective (NSGA-II) search, else None;
    ``max_params`` and ``max_flops`` bound a candidate's size (None: unbounded); ``image_size``
    is the side of the square images its networks are built for, scored and trained at;
    ``direction`` overrides the objective's own (its registry entry's) when not None;
    ``batch_digest`` fingerprints the minibatch its candidates were scored on
    (``ntknas.inputs.data.digest``; None: not recorded, as by an older ntknas).
    """

    space: str
    data: str
    batch_size: int
    bn: BnMode
    seed: int
    objective: str
    cost: str | None = None
    max_params: int | None = None
    max_flops: int | None = None
    image_size: int = DEFAULT_IMAGE_SIZE
    direction: Direction | None = None
    batch_digest: str | None = None

    def __post_init__(self) -> None:
        wrong = _first_wrong(asdict(self))
        if wrong is not None:
            key, value, rule, other_kind = wrong
            raise (TypeError if other_kind else ValueError)(
                f"Settings.{key} must be {rule.what}; got {clipped(repr(value), 60)}"
            )
        if self.cost is not None and self.cost == self.objective:
            raise ValueError(
                f"Settings.cost {self.cost!r} is the objective itself; give another cost, or None"
            )
        # The objective's own direction is stored as None, so that saying it changes nothing.
        if self.direction == optuna_direction(METRICS[self.objective].higher_is_better):
            object.__setattr__(self, "direction", None)

    @property
    def higher_is_better(self) -> bool:
        """Which way the objective is better in this study: its own way unless ``direction`` says."""
        if self.direction is not None:
            return self.direction == "maximize"
        return METRICS[self.objective].higher_is_better

    def directions_by_column(self) -> dict[str, bool]:
        """Whether higher is better for the study's objective and cost columns (a cost: never)."""
        return {self.objective: self.higher_is_better, **({self.cost: False} if self.cost else {})}

    @property
    def budget(self) -> Budget:
        """The bounds on a candidate's size."""
        return Budget(self.max_params, self.max_flops)

    def directions(self) -> list[str]:
        """Optuna's directions: the objective's, then ``minimize`` for the cost, if any."""
        return [optuna_direction(self.higher_is_better)] + (["minimize"] if self.cost else [])

    def save(self, study: optuna.Study) -> None:
        """Store every setting as a user attribute of ``study``, after the objective's version
        (so a study holding every setting holds it too)."""
        study.set_user_attr(VERSION_ATTR, METRICS[self.objective].version)
        for key, value in asdict(self).items():
            study.set_user_attr(key, value)

    @classmethod
    def load(cls, study: optuna.Study) -> Settings:
        """The settings ``study`` remembers; UserError when it was not made by ``ntknas search``,
        or when its Optuna directions are not the settings' (:meth:`check_directions`)."""
        settings = cls.from_attrs(study.study_name, study.user_attrs)
        settings.check_directions(study)
        return settings

    def check_directions(self, study: optuna.Study) -> None:
        """UserError unless ``study``'s Optuna directions, which its sampler optimises, are these
        settings' (:meth:`directions`), by which ntknas ranks and picks: they differ only when
        changed outside ntknas."""
        stored = [d.name.lower() for d in study.directions]
        if stored != self.directions():
            raise UserError(
                f"study '{study.study_name}' stores the Optuna direction(s) {', '.join(stored)}, and its "
                f"settings rank by {', '.join(self.directions())}: its settings were changed outside "
                "ntknas; set them back, or start another study with --study NEW_NAME"
            )

    @classmethod
    def from_attrs(cls, name: str, stored: dict) -> Settings:
        """The settings among study ``name``'s user attributes ``stored``; UserError, naming it, for a
        setting that is missing or not of its kind (``_RULES``)."""
        missing = [f.name for f in fields(cls) if f.name not in stored and f.name not in _OPTIONAL]
        if missing:
            raise UserError(
                f"study '{name}' does not record its search setting(s) {', '.join(missing)}: it was "
                "not made by `ntknas search`; give the name of a study that was (see `ntknas studies`)"
            )
        values = {f.name: stored.get(f.name, _OPTIONAL.get(f.name)) for f in fields(cls)}
        wrong = _first_wrong(values)
        if wrong is not None:
            key, value, rule, _ = wrong
            raise UserError(
                f"study '{name}' stores {key}={clipped(repr(value), 60)}, which is not {rule.what}: "
                "its settings were changed outside ntknas; set it back, or start another study with "
                "--study NEW_NAME"
            )
        return cls(**values)

    def check_against(self, name: str, stored: dict) -> None:
        """Raise UserError if these settings differ from what study ``name`` remembers."""
        version = METRICS[self.objective].version
        stored_version = stored.get(VERSION_ATTR, 1 if version is not None else None)
        if stored.get("objective") == self.objective and stored_version != version:
            raise UserError(
                f"study '{name}' holds {self.objective} version {stored_version}, of an earlier ntknas; "
                f"today's {self.objective} (version {version}) is another score: pass --study NEW_NAME "
                "to start a study with it (the old study stays readable)"
            )
        wanted = asdict(self)
        if not any(k in stored for k in wanted):
            raise UserError(
                f"study '{name}' records no search settings: it was not made by `ntknas search`; pass "
                "--study NEW_NAME to search in a study of its own"
            )
        recorded = {k: stored.get(k, _OPTIONAL.get(k, _UNRECORDED)) for k in wanted}
        if isinstance(recorded["data"], str) and canonical(recorded["data"]) == wanted["data"]:
            recorded["data"] = wanted["data"]  # a path an older ntknas stored as given, relative
        digests = recorded.pop("batch_digest"), wanted.pop("batch_digest")
        if None not in digests and digests[0] != digests[1] and recorded == wanted:
            raise UserError(
                f"study '{name}' was scored on another minibatch than --data {_shown(self.data)} gives "
                "now (its images or classes changed since): restore them, or pass --study NEW_NAME to "
                "start another study"
            )
        differ = [k for k in wanted if recorded[k] != wanted[k]]
        if differ:
            was = ", ".join(f"{k}={_shown(recorded[k], k, recorded)}" for k in differ)
            now = ", ".join(f"{k}={_shown(wanted[k], k, wanted)}" for k in differ)
            raise UserError(
                f"study '{name}' was created with {was}, not {now}: resume it with its own settings, "
                "or pass --study NEW_NAME to start another study"
            )

    @classmethod
    def all_stored(cls, stored: dict) -> bool:
        """Whether ``stored`` holds every setting: a study another worker is creating may not yet."""
        return all(f.name in stored for f in fields(cls))


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object) -> bool:
    return isinstance(value, str)


def _whole_or_none(value: object) -> bool:
    return value is None or _whole(value)


def _text_or_none(value: object) -> bool:
    return value is None or _text(value)


@dataclass(frozen=True)
class _Rule:
    """What a setting must be: of its ``kind`` (else a TypeError in Python), then ``holds``."""

    kind: Callable[[object], bool]
    holds: Callable[[Any], bool]
    what: str


# What each setting must be, and its description: the one check of every study loaded from
# storage (a study edited by hand, or by another program, is one line, not a traceback) and of
# every Settings built in Python.
_RULES: dict[str, _Rule] = {
    "space": _Rule(_text, lambda v: bool(v.strip()), "a space's name"),
    "data": _Rule(_text, lambda v: bool(v.strip()), "a data source"),
    "batch_size": _Rule(_whole, lambda v: v >= 2, "a whole number of at least 2"),
    "bn": _Rule(_text, lambda v: v in BN_MODES, f"a BatchNorm mode ({', '.join(BN_MODES)})"),
    "seed": _Rule(_whole, lambda v: 0 <= v < SEED_LIMIT, f"a seed from 0 to {SEED_LIMIT - 1}"),
    "objective": _Rule(_text, lambda v: v in METRICS, "a metric of this ntknas"),
    "cost": _Rule(_text_or_none, lambda v: v is None or v in METRICS, "a metric of this ntknas"),
    "max_params": _Rule(_whole_or_none, lambda v: v is None or v >= 1, "a whole number of at least 1"),
    "max_flops": _Rule(_whole_or_none, lambda v: v is None or v >= 1, "a whole number of at least 1"),
    "image_size": _Rule(_whole, lambda v: 1 <= v <= LARGEST, f"a side from 1 to {LARGEST} pixels"),
    "direction": _Rule(_text_or_none, lambda v: v in (None, "maximize", "minimize"), "maximize or minimize"),
    "batch_digest": _Rule(_text_or_none, lambda v: True, "a minibatch's fingerprint"),
}


def _first_wrong(values: dict) -> tuple[str, object, _Rule, bool] | None:
    """The first setting of ``values`` that breaks its rule (``_RULES``): (name, value, rule,
    whether the value is of another kind); None when every one is right."""
    for key, value in values.items():
        rule = _RULES[key]
        if not rule.kind(value):
            return key, value, rule, True
        if not rule.holds(value):
            return key, value, rule, False
    return None


_UNRECORDED = object()  # a setting the study does not record (a study ntknas did not create)


def _shown(value: object, key: str = "", settings: dict | None = None) -> str:
    """A setting's value as a resume refusal shows it: ``none`` for an unset option; an unset
    direction as the objective's own, an unset cost as one objective."""
    if value is _UNRECORDED:
        return "(not recorded)"
    objective = (settings or {}).get("objective")
    if value is None and key == "direction" and objective in METRICS:
        return f"{optuna_direction(METRICS[objective].higher_is_better)} (the objective's own)"
    if value is None and key == "cost":
        return "none (one objective)"
    return "none" if value is None else str(value)
