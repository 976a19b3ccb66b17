"""Strict JSON for every ``--format json``: NaN and infinities become null, numpy scalars and arrays
plain numbers and lists, so any JSON parser reads the output."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping


def clean(value: object) -> object:
    """``value`` with every non-finite float (at any depth) replaced by None, numpy numbers and
    arrays made plain Python, tuples made lists, and mapping keys made strings."""
    np = sys.modules.get("numpy")  # not imported: then no value can be a numpy one
    if np is not None and isinstance(value, np.ndarray):
        value = value.tolist()
    elif np is not None and isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def dumps(value: object, **kwargs) -> str:
    """``json.dumps`` of :func:`clean` ``(value)``, refusing anything strict JSON cannot hold."""
    return json.dumps(clean(value), allow_nan=False, **kwargs)
