"""LinUCB / LinTS numerics: inverse accuracy, sliding window, forgetting, regret."""

from __future__ import annotations

import numpy as np
import pytest

ARMS = [0, 1, 2]


def ridge(X: np.ndarray, r: np.ndarray, w: np.ndarray, ridge_term: float):
    """(A, b) of a weighted ridge fit from scratch."""
    A = ridge_term * np.eye(X.shape[1]) + (X * w[:, None]).T @ X
    return A, X.T @ (w * r)


def identity_error(A: np.ndarray, A_inv: np.ndarray) -> float:
    return float(np.abs(A @ A_inv - np.eye(A.shape[0])).max())


@pytest.mark.parametrize(("d", "n"), [(67, 20_000), (387, 5_000)])
@pytest.mark.parametrize("ill", [False, True], ids=["unit-scale", "scales-1e-2..1e2"])
def test_inverse_stays_accurate_over_many_updates(bk, d, n, ill):
    """max |A A^-1 - I| <= 1e-8 after n Sherman-Morrison updates; A is exact; theta = A^-1 b."""
    rng = np.random.default_rng(d + ill)
    X = rng.standard_normal((n, d))
    if ill:  # features spanning 4 orders of magnitude: cond(A) about 4e7
        X *= 10.0 ** rng.uniform(-2, 2, d)
    r = X @ rng.standard_normal(d) + rng.standard_normal(n)
    arms = rng.integers(0, 3, n)
    b = bk.LinUCB(ARMS, d)
    b.partial_fit(X, arms.tolist(), r)
    for k in ARMS:
        mine = arms == k
        A, rhs = ridge(X[mine], r[mine], np.ones(mine.sum()), 1.0)
        np.testing.assert_allclose(b.gram(k), A, rtol=1e-12, atol=1e-9 * np.abs(A).max())
        np.testing.assert_allclose(b.b(k), rhs, rtol=1e-12, atol=1e-12 * np.abs(rhs).max())
        assert identity_error(A, b.a_inv(k)) <= 1e-8
        exact = np.linalg.solve(A, rhs)
        # relative to theta's scale, loosened by cond(A) * eps for the ill-conditioned runs
        tol = 1e-9 if not ill else 1e-9 * np.linalg.cond(A) * 1e-7
        assert np.abs(b.theta(k) - exact).max() <= tol * np.abs(exact).max()


@pytest.mark.parametrize(
    ("d", "window", "scale_span", "scale"),
    [(8, 40, 0.0, 1.0), (10, 6, 0.0, 1.0), (6, 25, 2.0, 1.0), (6, 4, 1.0, 300.0)],
)
def test_window_equals_fresh_fit_on_last_w(bk, d, window, scale_span, scale):
    """After every chunk of updates, each arm equals a ridge fit on its last `window` rows.
    The last case (window < d, large features) drives leverages near 1, where the guarded
    downdate must rebuild from A instead."""
    rng = np.random.default_rng(window)
    n = 3600  # about 1200 per arm: over 1000 slides each
    X = rng.standard_normal((n, d)) * scale * 10.0 ** rng.uniform(-scale_span, scale_span, d)
    r = rng.standard_normal(n)
    arms = rng.integers(0, 3, n)
    b = bk.LinUCB(ARMS, d, window_size=window, l2_lambda=0.5)
    for stop in range(600, n + 1, 600):
        b.partial_fit(X[stop - 600 : stop], arms[stop - 600 : stop].tolist(), r[stop - 600 : stop])
        for k in ARMS:
            rows = np.flatnonzero(arms[:stop] == k)[-window:]
            A, rhs = ridge(X[rows], r[rows], np.ones(len(rows)), 0.5)
            np.testing.assert_allclose(b.gram(k), A, rtol=0, atol=1e-9 * np.abs(A).max())
            assert identity_error(A, b.a_inv(k)) <= 1e-8
            exact = np.linalg.solve(A, rhs)
            assert np.abs(b.theta(k) - exact).max() <= 1e-8 * max(1.0, np.abs(exact).max())
            assert b.get_stats()["arms"][k]["window_len"] == window
    if scale > 1:
        assert min(s["refactors"] for s in b.get_stats()["arms"].values()) > 100


@pytest.mark.parametrize(("gamma", "window"), [(0.97, 0), (0.995, 0), (0.98, 30)])
def test_forgetting_equals_closed_form(bk, gamma, window):
    """A = gamma^n l2 I + sum_i gamma^(n-i) x_i x_i^T over each arm's own observations
    (the last `window` of them if windowed), b likewise, theta = A^-1 b."""
    d, n = 7, 1500
    rng = np.random.default_rng(int(gamma * 1000))
    X = rng.standard_normal((n, d))
    r = rng.standard_normal(n)
    arms = rng.integers(0, 3, n)
    b = bk.LinTS(ARMS, d, gamma=gamma, window_size=window, l2_lambda=2.0, seed=0)
    b.partial_fit(X, arms.tolist(), r)
    for k in ARMS:
        rows = np.flatnonzero(arms == k)
        age = np.arange(len(rows))[::-1]  # 0 for the newest
        if window:
            rows, age = rows[-window:], age[-window:]
        A, rhs = ridge(X[rows], r[rows], gamma**age, 2.0 * gamma ** (arms == k).sum())
        np.testing.assert_allclose(b.gram(k), A, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.b(k), rhs, rtol=1e-9, atol=1e-12)
        assert identity_error(A, b.a_inv(k)) <= 1e-8
        exact = np.linalg.solve(A, rhs)
        assert np.abs(b.theta(k) - exact).max() <= 1e-9 * max(1.0, np.abs(exact).max())


@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_regret_beats_uniform_choice(bk, cls):
    """Simulated linear environment, fixed seed: cumulative regret after 5,000 rounds is below
    a third of uniform random choice's (whose regret is computed on the same contexts)."""
    d, n, n_arms = 10, 5000, 4
    rng = np.random.default_rng(2024)
    true_theta = rng.standard_normal((n_arms, d)) / np.sqrt(d)
    X = rng.standard_normal((n, d))
    noise = 0.3 * rng.standard_normal(n)
    means = X @ true_theta.T  # (n, n_arms)
    best = means.max(axis=1)
    uniform_regret = float((best - means.mean(axis=1)).sum())
    b = getattr(bk, cls)(list(range(n_arms)), d, seed=7)
    regret = 0.0
    for t in range(n):
        k = b.select(X[t])
        b.update(k, X[t], means[t, k] + noise[t])
        regret += best[t] - means[t, k]
    assert regret < uniform_regret / 3, (regret, uniform_regret)
