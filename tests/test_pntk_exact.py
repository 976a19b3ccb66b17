"""The pNTK against an independent per-sample autograd loop, in float64, for every covered layer
kind, every BatchNorm mode and every implementation."""

import warnings

import pytest
import torch
from zoo import NEEDS_FALLBACK, ZOO, make, reference_pntk

import scores

TOL = 1e-9  # relative Frobenius error; float64 lands near 1e-15


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("bn", scores.BN_MODES)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_fast_path_matches_reference(name, bn):
    model, x = make(name)
    ref = reference_pntk(model, x, bn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fast path covers these: no fallback warning
        k = scores.pntk(model, x, bn=bn, implementation="hooks")
    assert k.dtype == torch.float64 and k.shape == (x.shape[0],) * 2
    assert rel(k, ref) < TOL


@pytest.mark.parametrize("impl", ["func", "loop"])
@pytest.mark.parametrize("bn", scores.BN_MODES)
def test_other_implementations_match_reference(impl, bn):
    for name in ("conv_bn", "tokens", "shared_conv"):
        model, x = make(name)
        assert rel(scores.pntk(model, x, bn=bn, implementation=impl), reference_pntk(model, x, bn)) < TOL


@pytest.mark.parametrize("name", sorted(NEEDS_FALLBACK))
def test_uncovered_models_fall_back_with_one_warning(name):
    model, x = make(name)
    with pytest.warns(UserWarning, match="using the slower torch.func path"):
        k = scores.pntk(model, x, bn="batch")
    assert rel(k, reference_pntk(model, x, "batch")) < TOL
    with pytest.raises(ValueError, match="implementation='hooks' cannot score this model"):
        scores.pntk(model, x, implementation="hooks")


def test_modes_differ_where_they_should():
    model, x = make("conv_bn")
    eval_k, batch_k, train_k = (scores.pntk(model, x, bn=bn) for bn in scores.BN_MODES)
    assert rel(eval_k, batch_k) > 1e-3 and rel(batch_k, train_k) > 1e-3


def test_positive_semidefinite():
    model, x = make("conv_geometry", n=10)
    for bn in scores.BN_MODES:
        k = scores.pntk(model, x, bn=bn)
        ev = torch.linalg.eigvalsh(k)
        assert ev[0] > -1e-12 * ev[-1]


def test_float32_model_close_to_float64():
    model, x = make("conv_bn", n=8, dtype=torch.float32)
    ref = reference_pntk(model.double(), x.double(), "batch")
    k = scores.pntk(model.float(), x.float(), bn="batch")
    assert rel(k, ref) < 1e-5


def test_chunk_size_changes_nothing():
    for name in ("conv_geometry", "small_wide_conv", "tokens", "shared_conv"):
        model, x = make(name, n=7)
        for bn in ("batch", "train"):
            whole = scores.pntk(model, x, bn=bn)
            for chunk in (1, 3):
                assert rel(scores.pntk(model, x, bn=bn, chunk_size=chunk), whole) < 1e-12


def test_pntk_is_entk_traced_over_outputs():
    for name in ("mlp", "conv_bn", "tokens"):
        model, x = make(name, n=5)
        for bn in scores.BN_MODES:
            e = scores.entk(model, x, bn=bn)
            n = x.shape[0]
            o = e.shape[0] // n
            folded = e.view(n, o, n, o).sum((1, 3)) / o
            assert rel(folded, scores.pntk(model, x, bn=bn)) < TOL


def test_entk_matches_reference():
    from zoo import reference_entk

    model, x = make("conv_bn", n=4)
    e = scores.entk(model, x, bn="eval")
    assert e.shape == (4 * 5, 4 * 5)
    assert rel(e, reference_entk(model, x)) < TOL
