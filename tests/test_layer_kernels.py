"""scores.layer_kernels: the pNTK split over groups of layers sums to the pNTK, each part is the
kernel of its group's parameters alone, and every implementation agrees."""

import copy

import pytest
import torch
from zoo import make

import scores

SPLIT_MODELS = ("conv_bn", "conv_geometry", "tokens", "shared_conv", "frozen", "conv1d")


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def only(model: torch.nn.Module, group: str, names: dict[str, str]) -> torch.nn.Module:
    """A copy of ``model`` in which only the parameters of modules in ``group`` are trainable."""
    m = copy.deepcopy(model)
    for name, module in m.named_modules():
        for p in module.parameters(recurse=False):
            p.requires_grad_(p.requires_grad and names.get(name) == group)
    return m


@pytest.mark.parametrize("bn", scores.BN_MODES)
@pytest.mark.parametrize("name", SPLIT_MODELS)
def test_parts_sum_to_pntk_and_are_their_groups_kernels(name, bn):
    model, x = make(name)
    parts = scores.layer_kernels(model, x, bn=bn, implementation="hooks")
    whole = scores.pntk(model, x, bn=bn, implementation="hooks")
    assert len(parts) >= 2
    assert rel(sum(parts.values()), whole) < 1e-13
    names = {n: n.split(".")[0] for n, _ in model.named_modules()}
    for group, k in parts.items():
        assert k.dtype == torch.float64 and k.shape == whole.shape
        # Each part is the pNTK of its group's parameters alone (the others frozen).
        assert rel(k, scores.pntk(only(model, group, names), x, bn=bn)) < 1e-12


@pytest.mark.parametrize("bn", scores.BN_MODES)
@pytest.mark.parametrize("impl", ["func", "loop"])
def test_implementations_agree_part_by_part(impl, bn):
    for name in ("conv_bn", "tokens", "shared_conv"):
        model, x = make(name)
        fast = scores.layer_kernels(model, x, bn=bn, implementation="hooks")
        other = scores.layer_kernels(model, x, bn=bn, implementation=impl)
        assert list(other) == list(fast)
        for group in fast:
            assert rel(other[group], fast[group]) < 1e-9


def test_default_groups_are_top_level_children_in_order():
    model, x = make("conv_bn")  # Sequential: conv 0, bn 1, conv 3, bn 4, linear 8
    assert list(scores.layer_kernels(model, x)) == ["0", "1", "3", "4", "8"]
    frozen, x = make("frozen")  # weight of 0 and bias of 1 frozen: both keep one trainable tensor
    assert list(scores.layer_kernels(frozen, x)) == ["0", "1", "3"]


def test_callable_and_prefix_groups():
    model, x = make("conv_bn")
    by_kind = scores.layer_kernels(model, x, groups=lambda n: type(model.get_submodule(n)).__name__)
    assert list(by_kind) == ["Conv2d", "BatchNorm2d", "Linear"]
    whole = scores.pntk(model, x)
    assert rel(sum(by_kind.values()), whole) < 1e-13
    # The longest matching prefix wins; the empty prefix catches everything else.
    prefix = scores.layer_kernels(model, x, groups={"": "rest", "0": "first", "8": "head"})
    assert list(prefix) == ["first", "rest", "head"]
    single = scores.layer_kernels(model, x, groups={"": "all"})
    assert list(single) == ["all"] and rel(single["all"], whole) < 1e-13
    tokens, t = make("tokens")  # nested names: emb, norm, proj, head
    nested = scores.layer_kernels(tokens, t, groups={"emb": "in", "norm": "in", "proj": "out", "head": "out"})
    assert list(nested) == ["in", "out"]
    assert (
        rel(nested["in"], scores.layer_kernels(tokens, t)["emb"] + scores.layer_kernels(tokens, t)["norm"])
        < 1e-13
    )


def test_unmatched_module_is_an_error():
    model, x = make("conv_bn")
    with pytest.raises(ValueError, match="module '8' matches no prefix"):
        scores.layer_kernels(model, x, groups={"0": "a", "1": "a", "3": "b", "4": "b"})
