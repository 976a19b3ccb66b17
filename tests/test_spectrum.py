"""Spectrum scores on matrices with known eigenvalues."""

import math

import pytest
import torch

import scores


def with_eigenvalues(values, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ q.T


def test_known_spectrum():
    s = scores.spectrum(with_eigenvalues([4.0, 1.0, 2.0, 0.5]))
    assert torch.allclose(s.eigenvalues, torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64), atol=1e-12)
    assert s.lambda_max == pytest.approx(4.0, rel=1e-12)
    assert s.lambda_min == pytest.approx(0.5, rel=1e-12)
    assert s.condition_number == pytest.approx(8.0, rel=1e-12)
    assert s.trace == pytest.approx(7.5, rel=1e-12)
    p = torch.tensor([0.5, 1.0, 2.0, 4.0]) / 7.5
    assert s.effective_rank == pytest.approx(math.exp(-(p * p.log()).sum().item()), rel=1e-6)
    # log of geometric over arithmetic mean: (log 0.5 + log 1 + log 2 + log 4) / 4 − log(7.5 / 4)
    assert s.flatness == pytest.approx(math.log(2.0) / 2 - math.log(1.875), rel=1e-12)


def test_flatness_is_scale_free_zero_when_flat_and_minus_infinity_when_singular():
    k = with_eigenvalues([4.0, 1.0, 2.0, 0.5])
    assert scores.spectrum(1e6 * k).flatness == pytest.approx(scores.spectrum(k).flatness, rel=1e-9)
    assert scores.spectrum(torch.eye(4, dtype=torch.float64) * 7).flatness == 0.0
    assert scores.spectrum(with_eigenvalues([3.0, 1.0, 0.0])).flatness == -math.inf


def test_effective_rank_extremes():
    assert scores.spectrum(torch.eye(5, dtype=torch.float64) * 3).effective_rank == pytest.approx(
        5.0, rel=1e-12
    )
    rank_one = scores.spectrum(with_eigenvalues([2.0, 0.0, 0.0]))
    assert rank_one.effective_rank == pytest.approx(1.0, abs=1e-6)


def test_singular_kernel_has_infinite_condition_number():
    for values in ([3.0, 1.0, 0.0], [3.0, 1.0, -1e-17], [0.0, 0.0]):
        s = scores.spectrum(with_eigenvalues(values))
        assert s.condition_number == math.inf
    zero = scores.spectrum(torch.zeros(3, 3))
    assert zero.condition_number == math.inf and zero.effective_rank == 0.0 and zero.trace == 0.0
    assert zero.flatness == -math.inf


def test_rank_deficient_model_kernel_is_singular():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)  # 3 parameters, so rank(K) ≤ 3 < N
    s = scores.spectrum(scores.pntk(model, torch.randn(8, 2, dtype=torch.float32)))
    assert s.condition_number == math.inf


def test_spectrum_rejects_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        scores.spectrum(torch.ones(2, 3))
    with pytest.raises(ValueError, match="non-finite"):
        scores.spectrum(torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]))


def test_score_returns_every_spectrum_score_and_seconds():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x = torch.randn(6, 4)
    result = scores.score(model, x)
    assert set(result) == {*scores.SPECTRUM_SCORES, "seconds"}
    s = scores.spectrum(scores.pntk(model, x))
    for name in scores.SPECTRUM_SCORES:
        assert result[name] == pytest.approx(getattr(s, name), rel=1e-12)
    assert result["seconds"] > 0
