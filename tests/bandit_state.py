"""Helpers for the Thompson contract tests: a bandit's full observable state, and a check that
a rejected call left an object exactly as it was (its random generator included)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import integrate, stats


def linear_state(bandit: Any) -> tuple:
    return (
        bandit.get_models(),
        dict(bandit.mu),
        dict(bandit.sigma),
        dict(bandit.counts),
        dict(bandit.sum_rewards),
        bandit.default_sigma,
        bandit.obs_noise,
    )


def tspar_state(bandit: Any) -> tuple:
    return (
        list(bandit.action_list),
        np.asarray(bandit.alpha).tolist(),
        np.asarray(bandit.beta).tolist(),
    )


def state_of(bandit: Any) -> tuple:
    return tspar_state(bandit) if hasattr(bandit, "alpha") else linear_state(bandit)


def assert_unchanged(bandit: Any, twin: Any) -> None:
    """`bandit` (which saw a rejected call) equals `twin` (built the same way, same seed, which
    did not): same state, and the generator was not advanced (same next Monte Carlo answer)."""
    assert state_of(bandit) == state_of(twin)
    assert bandit.win_prop(draw=1000) == twin.win_prop(draw=1000)


def logistic_state(bandit: Any) -> tuple:
    """A LogisticBandit's state as plain lists: equal tuples mean exactly equal states."""
    return (
        list(bandit.action_list),
        np.asarray(bandit.mu).tolist(),
        np.asarray(bandit.sigma_inv).tolist(),
    )


def assert_logistic_sane(bandit: Any, where: str = "") -> None:
    """Finite, of matching shapes, `sigma_inv` exactly symmetric and PSD to rounding."""
    mu, sigma = np.asarray(bandit.mu), np.asarray(bandit.sigma_inv)
    assert mu.shape == (len(bandit.action_list),) and np.all(np.isfinite(mu)), where
    # The clip bounds log-odds to [-9, 9] and the starts to +-14: a MAP far beyond is a
    # solver that ran along a direction nothing identifies (it once reached 2e16).
    assert np.abs(mu).max(initial=0.0) < 1e3, where
    assert np.all(np.isfinite(sigma)) and np.array_equal(sigma, sigma.T), where
    if sigma.size:
        ev = np.linalg.eigvalsh(sigma)
        assert ev[0] >= -1e-9 * max(1.0, ev[-1]), where


def five_se(p: np.ndarray, draw: int) -> np.ndarray:
    """Five standard errors of a Monte Carlo proportion estimated from `draw` samples."""
    p = np.asarray(p, dtype=float)
    return 5.0 * np.sqrt(p * (1.0 - p) / draw)


def prob_best_normal(mu: list[float], sigma: list[float]) -> np.ndarray:
    """P(arm i has the largest draw) for independent normals: integral of phi_i prod_j Phi_j."""
    out = []
    for i in range(len(mu)):

        def density(x: float, i: int = i) -> float:
            value = stats.norm.pdf(x, mu[i], sigma[i])
            for j in range(len(mu)):
                if j != i:
                    value *= stats.norm.cdf(x, mu[j], sigma[j])
            return value

        lo, hi = mu[i] - 12 * sigma[i], mu[i] + 12 * sigma[i]
        out.append(integrate.quad(density, lo, hi, epsabs=1e-13, limit=200)[0])
    return np.array(out)


def prob_best_beta_quad(alpha: list[float], beta: list[float]) -> np.ndarray:
    """P(arm i has the largest draw) for independent Beta arms, by numerical integration."""
    out = []
    for i in range(len(alpha)):

        def density(x: float, i: int = i) -> float:
            value = stats.beta.pdf(x, alpha[i], beta[i])
            for j in range(len(alpha)):
                if j != i:
                    value *= stats.beta.cdf(x, alpha[j], beta[j])
            return value

        out.append(integrate.quad(density, 0.0, 1.0, epsabs=1e-13, limit=200)[0])
    return np.array(out)
