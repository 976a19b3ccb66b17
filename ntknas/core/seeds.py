"""Stable seeds derived from printable parts: the same parts give the same seed on any machine."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A stable 32-bit seed from any printable parts."""
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)
