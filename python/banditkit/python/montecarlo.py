"""Monte Carlo win counts: the NumPy reference for the Rust kernels of the same names.

Each kernel draws `draws` joint posterior samples, finds the winner of each (the first maximum,
as `numpy.argmax`) and returns the integer win count of every arm. Draws are processed in
blocks of `BLOCK_DRAWS` so memory stays bounded (10^7 draws x 10 arms would be 800 MB at once).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BLOCK_DRAWS = 65_536


def _count_winners(
    sample_block: Callable[[int], np.ndarray], n_arms: int, draws: int
) -> np.ndarray:
    """Sum the winners of `sample_block(size) -> (size, n_arms)` over `draws` rows."""
    counts = np.zeros(n_arms, dtype=np.int64)
    remaining = draws
    while remaining > 0:
        size = min(remaining, BLOCK_DRAWS)
        winners = np.argmax(sample_block(size), axis=1)
        counts += np.bincount(winners, minlength=n_arms)
        remaining -= size
    return counts


def win_counts_gaussian(
    mu: np.ndarray, sigma: np.ndarray, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Win counts of independent arms x_i ~ N(mu_i, sigma_i)."""
    mu = np.asarray(mu, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    return _count_winners(
        lambda size: mu + sigma * rng.standard_normal((size, mu.size)), mu.size, draws
    )


def win_counts_beta(
    alpha: np.ndarray, beta: np.ndarray, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Win counts of independent arms x_i ~ Beta(alpha_i, beta_i)."""
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    return _count_winners(
        lambda size: rng.beta(alpha, beta, size=(size, alpha.size)), alpha.size, draws
    )


def win_counts_mvn(
    mean: np.ndarray, chol_lower: np.ndarray, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Win counts of x = mean + L z, z ~ N(0, I): L is the lower Cholesky factor of the
    covariance. A zero row of L fixes that coordinate at its mean (e.g. a reference arm)."""
    mean = np.asarray(mean, dtype=float)
    chol_lower = np.asarray(chol_lower, dtype=float)
    return _count_winners(
        lambda size: mean + rng.standard_normal((size, mean.size)) @ chol_lower.T,
        mean.size,
        draws,
    )


def apply_aggressive(counts: np.ndarray, g: float) -> np.ndarray:
    """Win shares sharpened by the exponent g: c_i**g / sum_j c_j**g.

    Scaling by the largest count first keeps every power <= 1, so a large g cannot overflow
    (it tends to all weight on the leader instead). Works on probabilities as well as counts.
    """
    weights = np.asarray(counts, dtype=float)
    if g == 1.0:  # the plain shares, exactly c_i / sum_j c_j
        return weights / weights.sum()
    weights = (weights / weights.max()) ** g
    return weights / weights.sum()
