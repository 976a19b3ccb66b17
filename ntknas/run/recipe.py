"""How `ntknas verify` trains a pick: importable without torch, for the command line's defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """How picks are trained; a pick verified or checkpointed with another recipe is retrained."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
