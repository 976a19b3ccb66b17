"""Regenerate docs/theory.md and its figures: every theory experiment, in the order of the doc.

Usage: ``python benchmarks/theory/run_all.py [--quick] [--out DIR]``; ``--quick`` runs tiny sizes.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from _report import SECTIONS, arguments


def main(argv: Sequence[str] | None = None) -> dict[str, dict]:
    """Run each experiment's ``main`` with the same ``--quick`` and ``--out``; return results by name."""
    args = arguments(__doc__, argv)
    forwarded = [*(["--quick"] if args.quick else []), "--out", str(args.out)]
    return {name: importlib.import_module(name).main(forwarded) for name in SECTIONS}


if __name__ == "__main__":
    main()
