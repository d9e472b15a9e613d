"""Exact win probabilities (`prob_best_gaussian`, `prob_best_beta`, `prob_best_mvn`).

Independent cases are checked against adaptive high-precision integration (SciPy `quad_vec`
with every arm's mean and +-k sd as breakpoints), the correlated case against 4,000,000-draw
Monte Carlo, and the two backends against each other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats

import banditkit_rs
from banditkit.python import exact as py_exact

_STEPS = np.array([-12, -8, -5, -3, -2, -1, 0, 1, 2, 3, 5, 8, 12], dtype=float)


def _integrate_all(f, lo: float, hi: float, points: np.ndarray) -> np.ndarray:
    """Adaptive Gauss-Kronrod of the vector integrand f over [lo, hi], split at `points`."""
    pts = np.unique(np.clip(points, lo, hi))
    total = 0.0
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        total = total + integrate.quad_vec(f, a, b, epsabs=1e-15, epsrel=1e-13, limit=500)[0]
    return np.asarray(total)


def _others(log_cdf: np.ndarray) -> np.ndarray:
    """sum_{j != i} log_cdf[j] for every i (no subtraction: entries may be -inf)."""
    prefix = np.concatenate([[0.0], np.cumsum(log_cdf)[:-1]])
    suffix = np.concatenate([np.cumsum(log_cdf[::-1])[::-1][1:], [0.0]])
    return prefix + suffix


def reference_gaussian(mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    def f(x: float) -> np.ndarray:
        z = (x - mu) / sd
        return np.exp(stats.norm.logpdf(z) - np.log(sd) + _others(special.log_ndtr(z)))

    lo, hi = np.max(mu - 12 * sd), np.max(mu + 12 * sd)
    return _integrate_all(f, lo, hi, (mu[:, None] + sd[:, None] * _STEPS).ravel())


def reference_beta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Over t = logit(x), each Beta evaluated on its accurate side (x or 1 - x)."""

    def f(t: float) -> np.ndarray:
        x, y = special.expit(t), special.expit(-t)
        if t < 0:
            pdf, cdf = stats.beta.pdf(x, a, b), special.betainc(a, b, x)
        else:
            pdf, cdf = stats.beta.pdf(y, b, a), special.betaincc(b, a, y)
        with np.errstate(divide="ignore"):
            return np.exp(np.log(pdf * x * y) + _others(np.log(cdf)))

    mode, width = np.log(a / b), np.sqrt(1 / a + 1 / b)
    # Exponential tails e^{a t}, e^{-b t}: 60/a and 60/b reach below e^-60.
    lo = np.max(mode - np.maximum(12 * width, 60 / a))
    hi = np.max(mode + np.maximum(12 * width, 60 / b))
    points = np.concatenate([(mode[:, None] + width[:, None] * _STEPS).ravel(), [lo, hi]])
    return _integrate_all(f, lo, hi, points)


def gaussian_cases(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """2-12 arms, standard deviations spanning 100x, means from overlapping to separated."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        k = int(rng.integers(2, 13))
        sd = np.exp(rng.uniform(np.log(0.01), np.log(1.0), k))
        sd[:2] = [0.01, 1.0]
        mu = rng.normal(0.0, 1.0, k) * rng.choice([0.01, 0.1, 1.0])
        cases.append((mu, rng.permutation(sd)))
    return cases


def beta_cases(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """2-12 arms, parameters from 1 to 1e6; some close competitions at large counts."""
    rng = np.random.default_rng(seed)
    cases = []
    for c in range(n):
        k = int(rng.integers(2, 13))
        a = np.exp(rng.uniform(0, np.log(1e6), k))
        if c % 2:
            a = a[0] * np.exp(rng.normal(0, 0.002, k))
            b = a * np.exp(rng.normal(0, 0.002, k))
        else:
            b = np.exp(rng.uniform(0, np.log(1e6), k))
        a[0], b[-1] = 1.0, 1e6
        cases.append((a, b))
    return cases


GAUSSIAN = gaussian_cases(8, seed=2024)
BETA = beta_cases(6, seed=7)


@pytest.mark.parametrize("case", range(len(GAUSSIAN)))
def test_gaussian_matches_adaptive_integration(bk, case):
    mu, sd = GAUSSIAN[case]
    got = bk.prob_best_gaussian(mu, sd)
    want = reference_gaussian(mu, sd)
    assert got.dtype == np.float64 and got.shape == mu.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert abs(got.sum() - 1.0) < 1e-12


@pytest.mark.parametrize("case", range(len(BETA)))
def test_beta_matches_adaptive_integration(bk, case):
    a, b = BETA[case]
    got = bk.prob_best_beta(a, b)
    want = reference_beta(a, b)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert abs(got.sum() - 1.0) < 1e-12


def test_beta_with_unit_beta_is_closed_form(bk):
    """Beta(a, 1) has CDF x^a, so P_i = a_i / sum_j a_j for any a > 0 (tiny ones included)."""
    a = np.array([0.01, 0.5, 3.0, 2e3, 1e6])
    np.testing.assert_allclose(bk.prob_best_beta(a, np.ones(5)), a / a.sum(), atol=1e-10, rtol=0)
    # Tiny parameters (mass piled at 0 and 1): limit P = 1/3 + 1/9 + 1/6 = 11/18 (see below).
    # Beta(a, b) -> Bernoulli(a / (a + b)) with -log x ~ Exp(a) near 0, -log(1-x) ~ Exp(b) near 1.
    p = bk.prob_best_beta([1e-6, 1e-6], [1e-6, 2e-6])
    np.testing.assert_allclose(p[0], 11 / 18, atol=1e-4)


def test_backends_agree_on_independent_cases(py_bk, rs_bk):
    extra = [(np.array([0.0, 1e-4, 3.0]), np.array([1e-3, 10.0, 5.0]))]
    for mu, sd in gaussian_cases(12, seed=11) + extra:
        np.testing.assert_allclose(
            rs_bk.prob_best_gaussian(mu, sd), py_bk.prob_best_gaussian(mu, sd), atol=1e-10, rtol=0
        )
    for a, b in beta_cases(4, seed=12):
        np.testing.assert_allclose(
            rs_bk.prob_best_beta(a, b), py_bk.prob_best_beta(a, b), atol=1e-10, rtol=0
        )


def test_bench_scenarios_match_reference(bk):
    """The benchmark's 10-arm posteriors: many arms far behind, a close race at the top."""
    n, i = 100_000, np.arange(10)
    succ = (n * (0.01 + 0.001 * i)).astype(int)
    a, b = 1.0 + succ, 1.0 + n - succ
    np.testing.assert_allclose(bk.prob_best_beta(a, b), reference_beta(a, b), atol=1e-9, rtol=0)
    mu, sd = 1.0 + 0.1 * i + 0.003 * np.sin(i), np.full(10, 0.01)
    np.testing.assert_allclose(
        bk.prob_best_gaussian(mu, sd), reference_gaussian(mu, sd), atol=1e-9, rtol=0
    )


def test_exact_agrees_with_monte_carlo_kernels(bk):
    """Against banditkit_rs's Monte Carlo win counts: within 5 standard errors."""
    draws = 400_000
    mu, sd = np.array([0.0, 0.1, 0.3, -0.2]), np.array([0.3, 0.1, 0.5, 1.0])
    a, b = np.array([30.0, 12.0, 50.0]), np.array([70.0, 30.0, 110.0])
    for exact, counts in (
        (bk.prob_best_gaussian(mu, sd), banditkit_rs.win_counts_gaussian(mu, sd, draws, seed=5)),
        (bk.prob_best_beta(a, b), banditkit_rs.win_counts_beta(a, b, draws, seed=6)),
    ):
        shares = counts / draws
        se = np.sqrt(exact * (1 - exact) / draws)
        assert np.all(np.abs(shares - exact) <= 5 * se + 1e-12), (shares, exact)


# --- degenerate inputs ----------------------------------------------------------------------


def test_trivial_sizes(bk):
    for f in (bk.prob_best_gaussian, bk.prob_best_beta):
        assert f([], []).shape == (0,)
        np.testing.assert_array_equal(f([0.5], [2.0]), [1.0])
    np.testing.assert_array_equal(bk.prob_best_mvn([0.3], [[2.0]], seed=1), [1.0])
    assert bk.prob_best_mvn(np.zeros(0), np.zeros((0, 0)), seed=1).shape == (0,)


def test_identical_arms_share_equally(bk):
    np.testing.assert_allclose(bk.prob_best_gaussian([0.2] * 5, [0.7] * 5), 0.2, atol=1e-14)
    np.testing.assert_allclose(bk.prob_best_beta([3.0] * 4, [9.0] * 4), 0.25, atol=1e-14)
    p = bk.prob_best_gaussian([0.0, 0.0, -50.0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(p, [0.5, 0.5, 0.0], atol=1e-14)


def test_tiny_spread_around_a_large_mean(bk):
    low, high = 1e8, 1e8 + 1e-8
    p = bk.prob_best_gaussian([low, high], [1e-8, 1e-8])
    np.testing.assert_allclose(p[1], stats.norm.cdf((high - low) / np.sqrt(2e-16)), atol=1e-12)


def test_point_masses(bk):
    # Only point masses: argmax, first on ties.
    np.testing.assert_array_equal(bk.prob_best_gaussian([1.0, 3.0, 3.0], [0, 0, 0]), [0, 1, 0])
    # A point mass against a continuous arm: P(mass wins) = Phi((m - mu) / sd).
    p = bk.prob_best_gaussian([0.5, 0.0], [0.0, 2.0])
    np.testing.assert_allclose(p, [stats.norm.cdf(0.25), stats.norm.sf(0.25)], atol=1e-12)
    # Two masses: the lower one never wins; the top one competes with the continuous arms.
    p = bk.prob_best_gaussian([0.0, 0.4, 0.2, 0.4], [1.0, 0.0, 0.0, 0.5])
    mass = stats.norm.cdf(0.4) * stats.norm.cdf(0.0)
    assert p[2] == 0.0
    np.testing.assert_allclose(p[1], mass, atol=1e-12)
    np.testing.assert_allclose(p.sum(), 1.0, atol=1e-12)
    # P(N(0,1) beats N(0.4, 0.5) and 0.4) against the reference integral above 0.4.
    z = lambda x: (x - 0.4) / 0.5  # noqa: E731
    p0 = integrate.quad(lambda x: stats.norm.pdf(x) * stats.norm.cdf(z(x)), 0.4, 12)[0]
    np.testing.assert_allclose(p[0], p0, atol=1e-10)
    # A point mass far above everything wins outright.
    np.testing.assert_allclose(bk.prob_best_gaussian([0.0, 100.0], [1.0, 0.0]), [0, 1], atol=0)


def test_accepts_lists_and_float32(bk):
    want = bk.prob_best_gaussian(np.array([0.0, 0.5]), np.array([1.0, 0.25]))
    got = bk.prob_best_gaussian(np.array([0, 0.5], np.float32), [1, 0.25])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, atol=1e-15)


# --- invalid inputs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.0, np.nan], [1.0, 1.0]), "mu must be finite"),
        (([0.0, np.inf], [1.0, 1.0]), "mu must be finite"),
        (([0.0, 1.0], [1.0, -1.0]), "sigma must be finite and non-negative"),
        (([0.0, 1.0], [1.0, np.inf]), "sigma must be finite and non-negative"),
        (([0.0, 1.0], [1.0]), "mu and sigma must have the same length, got 2 and 1"),
        (([[0.0, 1.0]], [1.0, 1.0]), "mu must be 1-D"),
        (([0.0, 1.0], 1.0), "sigma must be 1-D"),
    ],
)
def test_gaussian_rejects(bk, args, message):
    with pytest.raises(ValueError, match=message):
        bk.prob_best_gaussian(*args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1.0, 0.0], [1.0, 1.0]), "alpha must be finite and positive"),
        (([1.0, np.nan], [1.0, 1.0]), "alpha must be finite and positive"),
        (([1.0, 2.0], [1.0, -3.0]), "beta must be finite and positive"),
        (([1.0, 2.0], [1.0, np.inf]), "beta must be finite and positive"),
        (([1.0, 2.0, 3.0], [1.0, 1.0]), "alpha and beta must have the same length, got 3 and 2"),
    ],
)
def test_beta_rejects(bk, args, message):
    with pytest.raises(ValueError, match=message):
        bk.prob_best_beta(*args)


@pytest.mark.parametrize(
    ("mean", "cov", "message"),
    [
        ([0.0, 1.0], [[1.0, 0.0, 0.0]], "cov must be 2 x 2 to match mean"),
        ([0.0, 1.0], [1.0, 1.0], "cov must be 2 x 2 to match mean"),
        ([0.0, np.nan], np.eye(2), "mean and cov must be finite"),
        ([0.0, 1.0], [[1.0, np.inf], [np.inf, 1.0]], "mean and cov must be finite"),
        ([0.0, 1.0], [[1.0, 0.5], [0.4, 1.0]], "cov must be symmetric"),
        ([0.0, 1.0], [[1.0, 2.0], [2.0, 1.0]], "cov must be positive semidefinite"),
        ([0.0, 1.0], [[-1.0, 0.0], [0.0, 1.0]], "cov must be positive semidefinite"),
        ([[0.0, 1.0]], np.eye(2), "mean must be 1-D"),
    ],
)
def test_mvn_rejects(bk, mean, cov, message):
    with pytest.raises(ValueError, match=message):
        bk.prob_best_mvn(mean, cov, seed=1)


def test_mvn_rejects_bad_tolerance_and_seed(bk):
    for tol in (0.0, -1e-3, np.nan):
        with pytest.raises(ValueError, match="tolerance must be positive"):
            bk.prob_best_mvn([0.0, 1.0, 2.0], np.eye(3), seed=1, tolerance=tol)
    with pytest.raises(ValueError):
        bk.prob_best_mvn([0.0, 1.0, 2.0], np.eye(3), seed=-1)


# --- correlated normal ----------------------------------------------------------------------


def logistic_like_posterior(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Odds ratios N(m, C) for k-1 arms, the reference fixed at 0 (a zero row and column)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k - 1, k - 1))
    cov = np.zeros((k, k))
    cov[:-1, :-1] = a @ a.T * 0.02 / k + np.diag(rng.uniform(0.005, 0.03, k - 1))
    mean = np.r_[rng.normal(0.0, 0.1, k - 1), 0.0]
    return mean, cov


@pytest.mark.parametrize("k", [3, 6, 10])
def test_mvn_within_sampling_error_of_4m_draws(bk, k):
    mean, cov = logistic_like_posterior(k, seed=k)
    low = np.zeros((k, k))
    low[:-1, :-1] = np.linalg.cholesky(cov[:-1, :-1])
    draws = 4_000_000
    shares = banditkit_rs.win_counts_mvn(mean, low, draws, seed=99) / draws
    tol = 2e-4
    got = bk.prob_best_mvn(mean, cov, seed=3, tolerance=tol)
    assert abs(got.sum() - 1.0) < 1e-12
    # 5 standard errors of the Monte Carlo, plus the method's own bound (3.5 of its SEs).
    se = np.sqrt(shares * (1 - shares) / draws + (tol / 3.5) ** 2)
    assert np.all(np.abs(got - shares) <= 5 * se), (got, shares)


def test_mvn_default_tolerance_holds(bk):
    mean, cov = logistic_like_posterior(6, seed=1)
    precise = bk.prob_best_mvn(mean, cov, seed=4, tolerance=2e-5)
    coarse = bk.prob_best_mvn(mean, cov, seed=5)
    assert banditkit_rs.MVN_TOLERANCE == py_exact.MVN_TOLERANCE
    assert np.all(np.abs(coarse - precise) <= py_exact.MVN_TOLERANCE * 5 / 3.5)


def test_mvn_independent_case_matches_quadrature(bk):
    mu, sd = np.array([0.1, 0.0, -0.2, 0.3]), np.array([1.0, 0.5, 2.0, 0.8])
    got = bk.prob_best_mvn(mu, np.diag(sd**2), seed=2, tolerance=1e-5)
    np.testing.assert_allclose(got, bk.prob_best_gaussian(mu, sd), atol=2e-5, rtol=0)


def test_mvn_exact_cases(bk):
    # Two arms: closed form; the second arm fixed at its mean by a zero row.
    p = bk.prob_best_mvn([0.5, 0.0], [[4.0, 0.0], [0.0, 0.0]], seed=1)
    np.testing.assert_allclose(p, [stats.norm.cdf(0.25), stats.norm.sf(0.25)], atol=1e-14)
    # Perfectly correlated twins: the tie goes to the first (as argmax).
    cov = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(
        bk.prob_best_mvn(np.zeros(3), cov, seed=1), [0.5, 0, 0.5], atol=1e-12
    )


def test_mvn_same_seed_same_answer(bk):
    mean, cov = logistic_like_posterior(5, seed=8)
    np.testing.assert_array_equal(
        bk.prob_best_mvn(mean, cov, seed=17), bk.prob_best_mvn(mean, cov, seed=17)
    )


def test_mvn_backends_agree(py_bk, rs_bk):
    mean, cov = logistic_like_posterior(5, seed=21)
    tol = 1e-4
    diff = rs_bk.prob_best_mvn(mean, cov, seed=1, tolerance=tol) - py_bk.prob_best_mvn(
        mean, cov, seed=1, tolerance=tol
    )
    # Each is within its bound of the truth with high probability; allow both bounds.
    assert np.all(np.abs(diff) <= 2 * tol * 5 / 3.5)


def test_mvn_same_answer_for_any_thread_count():
    """The Rust kernel splits work by arm with per-arm streams: RAYON_NUM_THREADS is irrelevant."""
    mean, cov = logistic_like_posterior(8, seed=4)
    code = (
        "import banditkit_rs as rs\n"
        f"p = rs.prob_best_mvn({mean.tolist()!r}, {cov.tolist()!r}, seed=12, tolerance=1e-4)\n"
        "print(repr(p.tolist()))\n"
    )
    root = Path(__file__).resolve().parent.parent
    outs = {
        threads: subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "RAYON_NUM_THREADS": threads},
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for threads in ("1", "2", "3")
    }
    assert outs["1"] == outs["2"] == outs["3"] != ""


# --- many arms: bounded memory, same answer --------------------------------------------------


def many_arm_posteriors(
    k: int,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """k overlapping arms: Gaussian (mu, sd) and Beta (alpha, beta), many with a real chance."""
    rng = np.random.default_rng(1000)
    mu, sd = rng.normal(0.0, 0.05, k), rng.uniform(0.02, 0.1, k)
    a = 1.0 + rng.integers(50, 150, k).astype(float)
    b = 1.0 + rng.integers(800, 1000, k).astype(float)
    return (mu, sd), (a, b)


def test_a_thousand_arms(py_bk, rs_bk):
    """1,000 arms (the reference kernels once needed O(arms^2) memory: 24 GB here): each result
    sums to 1, the backends agree, and both are within 5 standard errors of seeded Monte Carlo."""
    draws = 100_000
    (mu, sd), (a, b) = many_arm_posteriors(1000)
    for name, args, counts in (
        ("prob_best_gaussian", (mu, sd), banditkit_rs.win_counts_gaussian(mu, sd, draws, seed=1)),
        ("prob_best_beta", (a, b), banditkit_rs.win_counts_beta(a, b, draws, seed=2)),
    ):
        py, rs = getattr(py_bk, name)(*args), getattr(rs_bk, name)(*args)
        assert abs(py.sum() - 1.0) < 1e-12 and abs(rs.sum() - 1.0) < 1e-12
        np.testing.assert_allclose(py, rs, atol=1e-10, rtol=0)
        assert (py > 1e-3).sum() >= 20  # a real race, not one runaway winner
        shares = counts / draws
        # Hundreds of arms expect far below one win; a count of 1 there is Poisson, not normal
        # (6 sigma for p = 1e-7): their standard error is floored at that of one expected win.
        se = np.sqrt(np.maximum(py, 1.0 / draws) * (1 - py) / draws)
        assert np.all(np.abs(shares - py) <= 5 * se), name
