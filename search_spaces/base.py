"""What every search space provides.

A space is cheap to import: it describes, samples and parses configurations without torch, and
imports its networks' module only in :meth:`SearchSpace.build`. So listing spaces, parsing
configurations and reading studies never pay for importing torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from torch import nn

Config = Any  # each space's own immutable, hashable configuration type


class ConfigError(ValueError):
    """A configuration string that does not describe a point of the space; the message says why."""


MESSAGE_LIMIT = 300  # characters of an error's first line that a message quotes


def clipped(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text``, cut to ``limit`` characters and an ellipsis when longer, for a message to quote."""
    return text if len(text) <= limit else f"{text[:limit]}…"


def not_a_config(space: str, expected: str, config: object) -> TypeError:
    """The error for ``config`` handed to a space's ``describe()``/``build()`` where a configuration
    (``expected``) belongs: text to be read with ``parse()`` first, or something else."""
    hint = " (read an arch string with space.parse(text) first)" if isinstance(config, str) else ""
    shown = clipped(repr(config), 80)
    return TypeError(f"{space} configuration must be {expected}; got {type(config).__name__} {shown}{hint}")


class SearchSpace(ABC):
    """A family of architectures: sample with Optuna, build, and describe/parse as one line."""

    name: str
    summary: str
    size: int  # number of distinct configurations
    # The image sides its networks run on: at least min_image_size, a multiple of
    # image_size_multiple (ntknas refuses other --image-size values before building anything).
    min_image_size: int = 1
    image_size_multiple: int = 1

    @property
    def origin(self) -> str:
        """Where the space's code lives, as ``module.Class``."""
        return f"{self.source_module}.{type(self).__qualname__}"

    @property
    def source_module(self) -> str:
        """The name of the module that holds the space's class."""
        return type(self).__module__

    @abstractmethod
    def sample(self, trial: optuna.Trial) -> Config:
        """A configuration chosen with the trial's ``suggest_*`` calls."""

    @abstractmethod
    def build(
        self, config: Config, num_classes: int = 10, channels: int = 3, image_size: int = 32
    ) -> nn.Module:
        """A freshly initialised network (uses the global torch RNG) for inputs of ``channels`` ×
        ``image_size`` × ``image_size`` pixels, with ``num_classes`` outputs."""

    @abstractmethod
    def describe(self, config: Config) -> str:
        """One human-readable line; :meth:`parse` inverts it."""

    @abstractmethod
    def parse(self, text: str) -> Config:
        """The configuration a :meth:`describe` line stands for; ConfigError when malformed."""

    def smallest(self) -> list[Config]:
        """Configurations among which are the space's fewest parameters and its fewest FLOPs, for
        any classes and image size: a search refuses a budget that none of them meets before it
        creates its study. Empty (the default) when the space cannot tell; then such a search
        stops once its proposals keep being over the budget."""
        return []
