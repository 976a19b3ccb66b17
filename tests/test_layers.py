"""The arrows run one way: each subpackage of ntknas imports only the ones before it in the data's
flow (docs/architecture.md), at module level and inside functions alike; `scores` and
`search_spaces` import nothing of ntknas."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("core", "inputs", "scoring", "objectives", "study", "run", "api", "outputs", "cli")


def layer(module: str) -> int | None:
    """Where module ``ntknas.X...`` sits in ORDER; None for the package itself and its entry points."""
    parts = module.split(".")
    if parts[0] != "ntknas" or len(parts) < 2 or parts[1] not in ORDER:
        return None
    return ORDER.index(parts[1])


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_each_subpackage_imports_only_the_ones_before_it():
    wrong = []
    for path in sorted((ROOT / "ntknas").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        own = layer(module)
        if own is None:
            continue
        for target in imported(path):
            theirs = layer(target)
            if theirs is not None and theirs > own:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_scorer_and_the_spaces_know_nothing_of_ntknas():
    for package in ("scores", "search_spaces"):
        for path in (ROOT / package).rglob("*.py"):
            assert not {m for m in imported(path) if m.split(".")[0] == "ntknas"}, path
