"""How to install an optional extra, worded for how ntknas itself was installed."""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]  # the repository, when running from one


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install -e ".[extra]"`` when ntknas runs from a
    source checkout (an editable install, or none: its package folder sits beside
    ``pyproject.toml``), else ``pip install 'ntknas[extra]'`` (a wheel, in site-packages)."""
    if (CHECKOUT / "pyproject.toml").is_file():
        return f'pip install -e ".[{extra}]" (in {CHECKOUT})'
    return f"pip install 'ntknas[{extra}]'"
