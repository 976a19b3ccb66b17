"""Rank correlations against small hand-computed cases, ties included."""

import math

import numpy as np
import pytest

from ntknas.scoring.ranking import average_ranks, kendall_tau, oriented, spearman_rho


def test_average_ranks_share_ties():
    assert average_ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert average_ranks([-math.inf, 1, -math.inf]).tolist() == [1.5, 3.0, 1.5]


def test_perfect_and_reversed():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert spearman_rho([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)


def test_hand_computed_without_ties():
    # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant → τ = 4/6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # ρ = 1 − 6 Σd² / (n(n²−1)) = 1 − 6·2/60 = 0.8
    assert spearman_rho([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_hand_computed_with_ties():
    a, b = [1, 2, 2, 3], [1, 2, 3, 3]
    # pairs: (0,1)+ (0,2)+ (0,3)+ (1,2)tie-a (1,3)+ (2,3)tie-b: C−D = 4; n0=6, n1=1, n2=1 → 4/5
    assert kendall_tau(a, b) == pytest.approx(4 / 5)
    ra, rb = np.array([1, 2.5, 2.5, 4]), np.array([1, 2, 3.5, 3.5])
    expected = np.corrcoef(ra, rb)[0, 1]
    assert spearman_rho(a, b) == pytest.approx(expected)


def test_non_finite_scores_rank_last_as_ties():
    scores = oriented([3.0, math.nan, 1.0, math.inf, 2.0], higher_is_better=True)
    assert scores.tolist()[1] == -math.inf and scores.tolist()[3] == -math.inf
    acc = [90, 10, 70, 20, 80]  # the two broken architectures are also the two worst
    assert kendall_tau(scores, acc) == pytest.approx(9 / math.sqrt(10 * 9))
    cond = oriented([5.0, math.inf, 50.0], higher_is_better=False)  # condition numbers, lower better
    assert cond.tolist() == [-5.0, -math.inf, -50.0]


def test_constant_side_is_nan():
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman_rho([1, 2, 3], [5, 5, 5]))
