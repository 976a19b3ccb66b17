"""The names of the scorer's modes, importable without torch: BatchNorm modes and kernel
implementations (what each means: :mod:`scores.bn`, :func:`scores.pntk`)."""

from __future__ import annotations

from typing import Literal, get_args

BnMode = Literal["eval", "batch", "train"]
Implementation = Literal["auto", "hooks", "func", "loop"]
BN_MODES: tuple[str, ...] = get_args(BnMode)
IMPLEMENTATIONS: tuple[str, ...] = get_args(Implementation)
