"""Search spaces by name, in the manner of a model registry: ``get("nb201")``, ``names()``.

Adding a space is one module defining a :class:`SearchSpace` and one registration line below.
A space knows nothing of scoring.
"""

from __future__ import annotations

from search_spaces.base import Config, ConfigError, SearchSpace
from search_spaces.nb201 import NB201
from search_spaces.resnet import ResNetSpace

_REGISTRY: dict[str, SearchSpace] = {}


class UnknownSpace(ValueError):
    """A space name that is not registered."""


def register(space: SearchSpace) -> SearchSpace:
    """Make ``space`` available under ``space.name``."""
    _REGISTRY[space.name] = space
    return space


def get(name: str) -> SearchSpace:
    """The registered space called ``name``."""
    if name not in _REGISTRY:
        raise UnknownSpace(f"unknown search space {name!r}; known spaces: {', '.join(names())}")
    return _REGISTRY[name]


def names() -> list[str]:
    """Registered space names, sorted."""
    return sorted(_REGISTRY)


register(ResNetSpace())
register(NB201())

__all__ = ["Config", "ConfigError", "SearchSpace", "UnknownSpace", "get", "names", "register"]
