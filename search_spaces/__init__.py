"""Search spaces by name, in the manner of a model registry: ``get("nb201")``, ``names()``.

Three ways in: the built-in spaces registered below; a third-party package's space registered
under the ``ntknas.search_spaces`` entry-point group (``name = "package.module:ClassName"``); or
``get("package.module:ClassName")`` for a space class nobody registered. A space knows nothing of
scoring.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from search_spaces.base import Config, ConfigError, SearchSpace
from search_spaces.nb201 import NB201
from search_spaces.resnet import ResNetSpace

ENTRY_POINT_GROUP = "ntknas.search_spaces"

_REGISTRY: dict[str, SearchSpace] = {}


class UnknownSpace(ValueError):
    """A space name that is not registered, or a ``module:Class`` that cannot be loaded."""


def register(space: SearchSpace) -> SearchSpace:
    """Make ``space`` available under ``space.name``."""
    _REGISTRY[space.name] = space
    return space


def get(name: str) -> SearchSpace:
    """The space called ``name``: registered, from an installed plugin, or ``module:Class``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    plugin = _plugins().get(name)
    if plugin is not None:
        return _instantiate(plugin, f"plugin space '{name}'")
    if ":" in name:
        return _instantiate(name, f"--space {name}")
    raise UnknownSpace(
        f"unknown search space {name!r}; known spaces: {', '.join(names())}, or package.module:Class"
    )


def names() -> list[str]:
    """Names of the built-in and installed plugin spaces, sorted."""
    return sorted({*_REGISTRY, *_plugins()})


def _plugins() -> dict[str, str]:
    """Installed plugin spaces: entry-point name → ``module:Class``."""
    return {e.name: e.value for e in entry_points(group=ENTRY_POINT_GROUP)}


def _instantiate(target: str, what: str) -> SearchSpace:
    """An instance of the SearchSpace subclass at ``module:Class``."""
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as e:
        raise UnknownSpace(
            f"{what}: cannot import {module_name!r} ({e}); is the package installed?"
        ) from None
    except AttributeError:
        raise UnknownSpace(f"{what}: module {module_name!r} has no {class_name!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, SearchSpace)):
        raise UnknownSpace(f"{what}: {target} is not a search_spaces.SearchSpace subclass")
    try:
        space = cls()
    except Exception as e:  # a plugin's constructor can fail in any way; say which and how
        raise UnknownSpace(f"{what}: {target}() failed: {type(e).__name__}: {e}") from None
    for attribute in ("name", "summary", "size"):
        if not hasattr(space, attribute):
            raise UnknownSpace(f"{what}: {target} lacks the class attribute {attribute!r}")
    return space


register(ResNetSpace())
register(NB201())

__all__ = ["Config", "ConfigError", "SearchSpace", "UnknownSpace", "get", "names", "register"]
