"""Search spaces by name, in the manner of a model registry: ``get("nb201")``, ``names()``.

Three ways in: the built-in spaces registered below; a third-party package's space registered
under the ``ntknas.search_spaces`` entry-point group (``name = "package.module:ClassName"``); or
``get("package.module:ClassName")`` for a space class nobody registered (importable from
``sys.path`` or, failing that, the working directory). A built-in name wins over a plugin's. A
space knows nothing of scoring.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
from importlib.metadata import entry_points

from search_spaces.base import Config, ConfigError, SearchSpace
from search_spaces.nb201 import NB201
from search_spaces.nbmacro import NBMacro
from search_spaces.resnet import ResNetSpace

ENTRY_POINT_GROUP = "ntknas.search_spaces"

_REGISTRY: dict[str, SearchSpace] = {}
_LOADED: dict[str, SearchSpace] = {}  # plugin and module:Class spaces, instantiated once


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
    if name not in _LOADED:
        plugin = plugins().get(name)
        if plugin is not None:
            _LOADED[name] = _instantiate(plugin, f"plugin space {name!r} ({plugin})")
        elif ":" in name:
            _LOADED[name] = _instantiate(name, f"search space {name!r}", search_cwd=True)
        else:
            raise UnknownSpace(
                f"unknown search space {name!r}; known spaces: {', '.join(names())}, or package.module:Class"
            )
    return _LOADED[name]


def names() -> list[str]:
    """Names of the built-in and installed plugin spaces, sorted."""
    return sorted({*_REGISTRY, *plugins()})


def builtin(name: str) -> bool:
    """Whether ``name`` is a built-in (registered) space."""
    return name in _REGISTRY


def plugins() -> dict[str, str]:
    """Installed plugin spaces: entry-point name → ``module:Class``."""
    return {e.name: e.value for e in entry_points(group=ENTRY_POINT_GROUP)}


def _instantiate(target: str, what: str, search_cwd: bool = False) -> SearchSpace:
    """An instance of the SearchSpace subclass at ``module:Class`` (``Class`` may be dotted);
    with ``search_cwd``, a module found nowhere on ``sys.path`` is looked for in the working
    directory (appended to ``sys.path``, so it never shadows an installed module)."""
    module_name, _, class_name = target.partition(":")
    module = _import(module_name, what, search_cwd)
    try:
        cls = functools.reduce(getattr, class_name.split("."), module)
    except AttributeError:
        raise UnknownSpace(f"{what}: module {module_name!r} has no {class_name!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, SearchSpace)):
        raise UnknownSpace(f"{what}: {target} is not a search_spaces.SearchSpace subclass")
    try:
        space = cls()
    except Exception as e:  # a plugin's constructor can fail in any way; say which and how
        raise UnknownSpace(f"{what}: {target}() failed: {type(e).__name__}: {_first_line(e)}") from None
    for attribute in ("name", "summary", "size"):
        if not hasattr(space, attribute):
            raise UnknownSpace(f"{what}: {target} lacks the class attribute {attribute!r}")
    try:
        inspect.signature(space.build).bind(None, 10, 3, 32)
    except TypeError:
        raise UnknownSpace(
            f"{what}: {target}.build must take (config, num_classes, channels, image_size)"
        ) from None
    return space


def _import(module_name: str, what: str, search_cwd: bool):
    """The module ``module_name``; UnknownSpace saying why when importing it fails."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        cwd = os.getcwd()
        missing_itself = e.name is not None and f"{module_name}.".startswith(f"{e.name}.")
        if search_cwd and missing_itself and cwd not in sys.path:
            sys.path.append(cwd)  # spawned worker processes inherit sys.path
            return _import(module_name, what, search_cwd=False)
        raise UnknownSpace(
            f"{what}: cannot import {module_name!r} ({_first_line(e)}); is its package installed, "
            "or its folder on PYTHONPATH?"
        ) from None
    except Exception as e:  # importing a plugin runs its code, which can fail in any way
        raise UnknownSpace(
            f"{what}: importing {module_name!r} failed: {type(e).__name__}: {_first_line(e)}"
        ) from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]


register(ResNetSpace())
register(NB201())
register(NBMacro())

__all__ = [
    "Config",
    "ConfigError",
    "SearchSpace",
    "UnknownSpace",
    "builtin",
    "get",
    "names",
    "plugins",
    "register",
]
