"""The NumPy reference kernels (`banditkit.python.montecarlo`): closed forms, blocking, and
agreement with the Rust kernels of the same names."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bandit_state import five_se, prob_best_beta_quad, prob_best_normal
from banditkit.python import montecarlo as mc

DRAW = 100_000


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_counts_are_integers_summing_to_draws_across_blocks():
    draws = 2 * mc.BLOCK_DRAWS + 17
    for counts in (
        mc.win_counts_gaussian([0.0, 0.1, 0.05], [1.0, 1.0, 1.0], draws, rng(1)),
        mc.win_counts_beta([2.0, 3.0], [5.0, 4.0], draws, rng(1)),
        mc.win_counts_mvn([0.0, 0.1], np.eye(2), draws, rng(1)),
    ):
        assert counts.dtype.kind == "i"
        assert counts.sum() == draws


def test_same_generator_state_same_counts():
    a = mc.win_counts_gaussian([0.0, 0.1], [1.0, 2.0], 70_000, rng(9))
    b = mc.win_counts_gaussian([0.0, 0.1], [1.0, 2.0], 70_000, rng(9))
    assert a.tolist() == b.tolist()


def test_gaussian_two_arms_closed_form():
    counts = mc.win_counts_gaussian([0.0, 0.25], [1.0, 0.5], DRAW, rng(2))
    p1 = stats.norm.cdf(0.25 / math.sqrt(1.25))
    assert abs(counts[1] / DRAW - p1) < five_se(p1, DRAW)


def test_gaussian_k_arms_integration():
    mu, sigma = [0.0, 0.2, 0.35, 0.1, -0.1], [0.5, 0.4, 0.6, 0.3, 0.9]
    exact = prob_best_normal(mu, sigma)
    got = mc.win_counts_gaussian(mu, sigma, DRAW, rng(3)) / DRAW
    assert np.all(np.abs(got - exact) < five_se(exact, DRAW))


def test_mvn_correlated_pair_closed_form():
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    mean = [0.3, 0.0]
    counts = mc.win_counts_mvn(mean, np.linalg.cholesky(cov), DRAW, rng(4))
    p1 = stats.norm.cdf(-0.3 / math.sqrt(1.0 + 2.0 - 1.2))  # P(x1 - x0 > 0)
    assert abs(counts[1] / DRAW - p1) < five_se(p1, DRAW)


def test_mvn_zero_row_is_fixed_at_mean():
    chol = np.array([[0.7, 0.0], [0.0, 0.0]])  # arm 1 is a reference fixed at 0.2
    counts = mc.win_counts_mvn([0.0, 0.2], chol, DRAW, rng(5))
    p0 = stats.norm.sf(0.2 / 0.7)
    assert abs(counts[0] / DRAW - p0) < five_se(p0, DRAW)


def test_beta_arms_integration():
    alpha, beta = [3.0, 5.0, 0.6], [7.0, 9.0, 0.8]
    exact = prob_best_beta_quad(alpha, beta)
    got = mc.win_counts_beta(alpha, beta, DRAW, rng(6)) / DRAW
    assert np.all(np.abs(got - exact) < five_se(exact, DRAW))


def test_ties_go_to_first_arm():
    assert mc.win_counts_gaussian([1e20, 1e20], [1e-10, 1e-10], 1000, rng(7)).tolist() == [1000, 0]
    assert mc.win_counts_mvn([1.0, 1.0], np.zeros((2, 2)), 1000, rng(7)).tolist() == [1000, 0]


def test_apply_aggressive():
    counts = np.array([10, 30, 60, 0])
    assert mc.apply_aggressive(counts, 1.0).tolist() == [0.1, 0.3, 0.6, 0.0]
    expected = counts**2.0 / np.sum(counts**2.0)
    assert mc.apply_aggressive(counts, 2.0) == pytest.approx(expected, rel=1e-12)
    assert mc.apply_aggressive(counts / 100, 0.5) == pytest.approx(
        np.sqrt(counts) / np.sqrt(counts).sum(), rel=1e-12
    )
    assert mc.apply_aggressive(counts, 1e9).tolist() == [0.0, 0.0, 1.0, 0.0]


def test_kernels_agree_with_rust(rs_bk):
    """Independent estimates of the same probabilities: difference within sqrt(2) * 5 SE."""
    mu, sigma = np.array([0.0, 0.2, 0.35]), np.array([0.5, 0.4, 0.6])
    alpha, beta = np.array([3.0, 5.0, 0.6]), np.array([7.0, 9.0, 0.8])
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.8]])
    chol = np.linalg.cholesky(cov)
    pairs = [
        (
            mc.win_counts_gaussian(mu, sigma, DRAW, rng(8)),
            rs_bk.win_counts_gaussian(mu, sigma, DRAW, seed=8),
        ),
        (
            mc.win_counts_beta(alpha, beta, DRAW, rng(8)),
            rs_bk.win_counts_beta(alpha, beta, DRAW, seed=8),
        ),
        (
            mc.win_counts_mvn(mu, chol, DRAW, rng(8)),
            rs_bk.win_counts_mvn(mu, chol, DRAW, seed=8),
        ),
    ]
    for py_counts, rs_counts in pairs:
        rs_counts = np.asarray(rs_counts)
        assert rs_counts.sum() == DRAW
        p_py, p_rs = py_counts / DRAW, rs_counts / DRAW
        assert np.all(np.abs(p_py - p_rs) < math.sqrt(2) * five_se(p_py, DRAW))
