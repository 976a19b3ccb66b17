"""A package's public names imported on first use (PEP 562), so that importing the package stays
light: ``scores`` and ``ntknas`` load no torch until one of their names is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def exports(
    package: dict[str, object], homes: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose globals are ``package``: each name of
    ``homes`` (name → the module that defines it) imported when first asked for, then kept."""

    def getattr_(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        package[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*package, *homes})

    return getattr_, dir_
