"""What a study remembers of the search that made it, in one type that saves to and loads from
the study's user attributes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import optuna

from ntknas.core.errors import UserError
from ntknas.inputs.image_size import DEFAULT as DEFAULT_IMAGE_SIZE
from ntknas.objectives.budget import Budget
from ntknas.scoring.metric_catalog import METRICS, VERSIONS, optuna_direction

# Settings a study made by an older ntknas may lack, and the value they had then.
_OPTIONAL = {"cost": None, "max_params": None, "max_flops": None, "image_size": DEFAULT_IMAGE_SIZE}
VERSION_ATTR = "objective_version"  # the version of the objective's definition (VERSIONS)


@dataclass(frozen=True)
class Settings:
    """A search's settings; resuming a study with other values is refused.

    ``cost`` is the second objective of a multi-objective (NSGA-II) search, else None;
    ``max_params`` and ``max_flops`` bound a candidate's size (None: unbounded); ``image_size``
    is the side of the square images its networks are built for, scored and trained at.
    """

    space: str
    data: str
    batch_size: int
    bn: str
    seed: int
    objective: str
    cost: str | None = None
    max_params: int | None = None
    max_flops: int | None = None
    image_size: int = DEFAULT_IMAGE_SIZE

    @property
    def higher_is_better(self) -> bool:
        """Which way the objective is better."""
        return METRICS[self.objective].higher_is_better

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
        study.set_user_attr(VERSION_ATTR, VERSIONS.get(self.objective))
        for key, value in asdict(self).items():
            study.set_user_attr(key, value)

    @classmethod
    def load(cls, study: optuna.Study) -> Settings:
        """The settings ``study`` remembers; UserError when it was not made by ``ntknas search``."""
        return cls.from_attrs(study.study_name, study.user_attrs)

    @classmethod
    def from_attrs(cls, name: str, stored: dict) -> Settings:
        """The settings among study ``name``'s user attributes ``stored``."""
        missing = [f.name for f in fields(cls) if f.name not in stored and f.name not in _OPTIONAL]
        if missing:
            raise UserError(
                f"study '{name}' does not record its search setting(s) {', '.join(missing)}: it was "
                "not made by `ntknas search`; give the name of a study that was (see `ntknas studies`)"
            )
        return cls(**{f.name: stored.get(f.name, _OPTIONAL.get(f.name)) for f in fields(cls)})

    def check_against(self, name: str, stored: dict) -> None:
        """Raise UserError if these settings differ from what study ``name`` remembers."""
        version = VERSIONS.get(self.objective)
        stored_version = stored.get(VERSION_ATTR, 1 if version is not None else None)
        if stored.get("objective") == self.objective and stored_version != version:
            raise UserError(
                f"study '{name}' holds {self.objective} version {stored_version}, of an earlier ntknas; "
                f"today's {self.objective} (version {version}) is another score: pass --study NEW_NAME "
                "to start a study with it (the old study stays readable)"
            )
        wanted = asdict(self)
        differ = [k for k in wanted if stored.get(k, _OPTIONAL.get(k)) != wanted[k]]
        if differ:
            was = ", ".join(f"{k}={stored.get(k, _OPTIONAL.get(k))}" for k in differ)
            now = ", ".join(f"{k}={wanted[k]}" for k in differ)
            raise UserError(
                f"study '{name}' was created with {was}, not {now}: resume it with its own settings, "
                "or pass --study NEW_NAME to start another study"
            )

    @classmethod
    def all_stored(cls, stored: dict) -> bool:
        """Whether ``stored`` holds every setting: a study another worker is creating may not yet."""
        return all(f.name in stored for f in fields(cls))
