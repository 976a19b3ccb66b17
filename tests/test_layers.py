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


def test_a_registered_rule_that_does_not_fit_its_layer_is_named_not_silently_wrong():
    """A rule borrowed from a class the layer is not like, or a handler of one's own, is checked
    where its terms are taken: one term per trainable parameter, each a Term; else one error that
    names the layer class (a handler that left a parameter out gave a kernel without it)."""
    import pytest
    import torch
    from torch import nn

    import scores
    from scores.terms import Direct

    class Borrowed(nn.Linear):
        pass

    scores.register_layer(Borrowed, nn.Conv2d)
    handlers = {
        "a tensor": lambda m, x, g, bn: {"weight": torch.ones(2, 2), "bias": torch.ones(2)},
        "none": lambda m, x, g, bn: None,
        "too few": lambda m, x, g, bn: {"weight": Direct(torch.randn(5, 12))},
        "another name": lambda m, x, g, bn: {
            "w": Direct(torch.randn(5, 12)),
            "bias": Direct(torch.randn(5, 3)),
        },
        "empty": lambda m, x, g, bn: {},
    }
    layers = {"borrowed": Borrowed}
    for label, handler in handlers.items():
        layers[label] = type(label.replace(" ", "_"), (nn.Linear,), {})
        scores.register_layer(layers[label], handler)
    x = torch.randn(5, 4)
    for cls in layers.values():
        with pytest.raises((ValueError, TypeError), match=rf"^the pNTK rule for {cls.__name__} "):
            scores.pntk(nn.Sequential(cls(4, 3)), x, implementation="hooks")
    frozen = layers["too few"](4, 3)
    frozen.bias.requires_grad_(False)  # then the weight alone is what it must give
    assert scores.pntk(nn.Sequential(frozen), x, implementation="hooks").shape == (5, 5)
