"""Search spaces by name, in the manner of a model registry: ``get("nb201")``, ``names()``.

Three ways in: the built-in spaces registered below; a third-party package's space registered
under the ``ntknas.search_spaces`` entry-point group (``name = "package.module:ClassName"``); or
``get("package.module:ClassName")`` for a space class nobody registered (importable from
``sys.path`` or, failing that, the working directory). A built-in name wins over a plugin's; a
name that two packages register is refused, naming both. A plugin space is checked when loaded
(its size, and that its methods accept the calls the commands make) and reached only through
the guard (:mod:`search_spaces.guard`). A space knows nothing of scoring.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
from importlib.metadata import entry_points

from search_spaces.base import Config, ConfigError, SearchSpace
from search_spaces.guard import Guarded, PluginError, calling, first_line
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
    """The space called ``name``: registered, from an installed plugin, or ``module:Class``; a
    plugin or ``module:Class`` space comes behind the guard (:class:`~search_spaces.guard.Guarded`)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name not in _LOADED:
        registered = _entry_points().get(name)
        if registered is not None:
            if len(registered) > 1:
                both = " and ".join(registered)
                raise UnknownSpace(
                    f"plugin space {name!r} is registered by more than one package: {both}; "
                    "uninstall all but one"
                )
            _LOADED[name] = _instantiate(name, registered[0], f"plugin space {name!r} ({registered[0]})")
        elif ":" in name:
            _LOADED[name] = _instantiate(name, name, f"search space {name!r}", search_cwd=True)
        else:
            raise UnknownSpace(
                f"unknown search space {name!r}; known spaces: {', '.join(names())}, or package.module:Class"
            )
    return _LOADED[name]


def names() -> list[str]:
    """Names of the built-in and installed plugin spaces, sorted."""
    return sorted({*_REGISTRY, *_entry_points()})


def builtin(name: str) -> bool:
    """Whether ``name`` is a built-in (registered) space."""
    return name in _REGISTRY


def plugins() -> dict[str, str]:
    """Installed plugin spaces: entry-point name → ``module:Class`` (those of a name that several
    packages register joined by `` and ``)."""
    return {name: " and ".join(targets) for name, targets in _entry_points().items()}


def _entry_points() -> dict[str, list[str]]:
    """Entry-point name → the distinct ``module:Class`` targets registered under it, sorted."""
    found: dict[str, set[str]] = {}
    for e in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(e.name, set()).add(e.value)
    return {name: sorted(targets) for name, targets in found.items()}


# What a space must accept: each method called as the commands call it.
CALLS = {
    "sample": ((None,), {}),
    "build": ((None,), {"num_classes": 10, "channels": 3, "image_size": 32}),
    "describe": ((None,), {}),
    "parse": (("",), {}),
}


LARGEST_COUNT = 10**100  # the largest size or image side a plugin space may declare


def _instantiate(name: str, target: str, what: str, search_cwd: bool = False) -> SearchSpace:
    """The SearchSpace subclass at ``target``, ``module:Class`` (``Class`` may be dotted),
    instantiated and checked, behind the guard as plugin space ``name``; ``what`` names it in the
    messages of a failure to load. With ``search_cwd``, a module found nowhere on ``sys.path`` is
    looked for in the working directory (appended to ``sys.path``, so it never shadows an
    installed module)."""
    module_name, _, class_name = target.partition(":")
    module = _import(module_name, what, search_cwd)
    try:
        cls = functools.reduce(getattr, class_name.split("."), module)
    except AttributeError:
        raise UnknownSpace(f"{what}: module {module_name!r} has no {class_name!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, SearchSpace)):
        raise UnknownSpace(f"{what}: {target} is not a search_spaces.SearchSpace subclass")
    with calling(what, f"{target}()", UnknownSpace):
        space = cls()
    for attribute in ("name", "summary", "size"):
        with calling(what, f"reading {target}.{attribute}", UnknownSpace):  # a property may raise
            present = hasattr(space, attribute)
        if not present:
            raise UnknownSpace(f"{what}: {target} lacks the class attribute {attribute!r}")
    if not isinstance(space.name, str) or not space.name:
        raise UnknownSpace(f"{what}: {target}.name must be a non-empty str; got {space.name!r}")
    for attribute in ("size", "min_image_size", "image_size_multiple"):
        with calling(what, f"reading {target}.{attribute}", UnknownSpace):
            value = getattr(space, attribute)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UnknownSpace(
                f"{what}: {target}.{attribute} must be a whole number of at least 1; got {value!r}"
            )
        if value > LARGEST_COUNT:  # beyond it, the count cannot even be printed
            digits = len(str(value)) if value.bit_length() < 10_000 else "thousands of"
            raise UnknownSpace(
                f"{what}: {target}.{attribute} must be at most 10**100; got a number of {digits} digits"
            )
    for method, (args, keywords) in CALLS.items():
        try:
            inspect.signature(getattr(space, method)).bind(*args, **keywords)
        except (TypeError, ValueError):
            accepted = ", ".join(["config" if method != "parse" else "text", *(f"{k}=" for k in keywords)])
            raise UnknownSpace(f"{what}: {target}.{method} must accept ({accepted})") from None
    with calling(what, f"reading {target}'s name and summary", UnknownSpace):
        return Guarded(space, f"plugin space {name!r}")


def _import(module_name: str, what: str, search_cwd: bool):
    """The module ``module_name``; UnknownSpace saying why when importing it fails."""
    try:
        with calling(what, f"importing {module_name!r}", UnknownSpace, passing=(ModuleNotFoundError,)):
            return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        cwd = os.getcwd()
        missing_itself = e.name is not None and f"{module_name}.".startswith(f"{e.name}.")
        if search_cwd and missing_itself and cwd not in sys.path:
            sys.path.append(cwd)  # spawned worker processes inherit sys.path
            return _import(module_name, what, search_cwd=False)
        raise UnknownSpace(
            f"{what}: cannot import {module_name!r} ({first_line(e)}); is its package installed, "
            "or its folder on PYTHONPATH?"
        ) from None


register(ResNetSpace())
register(NB201())
register(NBMacro())

__all__ = [
    "Config",
    "ConfigError",
    "PluginError",
    "SearchSpace",
    "UnknownSpace",
    "builtin",
    "get",
    "names",
    "plugins",
    "register",
]
