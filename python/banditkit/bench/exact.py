"""Exact win probabilities vs Monte Carlo, on the 10-arm posteriors of docs/benchmarks.md.

Groups `exact.linear`, `exact.tspar`, `exact.logistic` (case "10 arms"): the kernels
`prob_best_*` for each backend ("rust-exact", "python-exact") against the Rust Monte Carlo
win counts with 100,000 draws ("rust-mc-100k"), on the posterior the benchmark's observations give.
"""

from __future__ import annotations

import numpy as np

from banditkit.bench.thompson import count_obs, linear_obs
from banditkit.bench.timing import Row, row

ARMS = 10
DRAWS = 100_000


def linear_posterior() -> tuple[np.ndarray, np.ndarray]:
    """LinearBandit after 10,000 rewards per arm: (mu, sigma)."""
    from banditkit.python import LinearBandit

    bandit = LinearBandit()
    bandit.update(linear_obs(ARMS, 10_000))
    return np.array(list(bandit.mu.values())), np.array(list(bandit.sigma.values()))


def tspar_posterior() -> tuple[np.ndarray, np.ndarray]:
    """TSPar after 100,000 trials per arm: (alpha, beta)."""
    from banditkit.python import TSPar

    bandit = TSPar()
    bandit.update(count_obs(ARMS, 100_000))
    return np.asarray(bandit.alpha, float), np.asarray(bandit.beta, float)


def logistic_posterior() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LogisticBandit after 100,000 trials per arm: the odds ratios' (mean, cov) with the
    reference fixed at 0 (zero last row and column), and the lower Cholesky factor for MC."""
    from banditkit.python import LogisticBandit

    bandit = LogisticBandit()
    bandit.update(count_obs(ARMS, 100_000))
    m, precision = bandit.get_par(bandit.get_models())
    c = np.linalg.pinv(precision)[:-1, :-1]
    c = 0.5 * (c + c.T)
    cov = np.zeros((ARMS, ARMS))
    cov[:-1, :-1] = c
    low = np.zeros((ARMS, ARMS))
    low[:-1, :-1] = np.linalg.cholesky(c)
    return np.r_[m[:-1], 0.0], cov, low


def run(quick: bool) -> list[Row]:
    import banditkit.python as py_backend

    try:
        import banditkit_rs
    except ImportError:
        banditkit_rs = None
    rows: list[Row] = []
    case = f"{ARMS} arms"
    mu, sigma = linear_posterior()
    alpha, beta = tspar_posterior()
    mean, cov, low = logistic_posterior()
    for impl, mod in (("python-exact", py_backend), ("rust-exact", banditkit_rs)):
        if mod is None:
            continue
        rows.append(
            row(
                "exact.linear",
                case,
                impl,
                lambda m=mod: m.prob_best_gaussian(mu, sigma),
                quick=quick,
            )
        )
        rows.append(
            row("exact.tspar", case, impl, lambda m=mod: m.prob_best_beta(alpha, beta), quick=quick)
        )
        rows.append(
            row(
                "exact.logistic",
                case,
                impl,
                lambda m=mod: m.prob_best_mvn(mean, cov, seed=1),
                quick=quick,
                note="error estimate <= MVN_TOLERANCE (3.5 standard errors)",
            )
        )
    if banditkit_rs is not None:
        rs = banditkit_rs
        rows.append(
            row(
                "exact.linear",
                case,
                "rust-mc-100k",
                lambda: rs.win_counts_gaussian(mu, sigma, DRAWS, seed=1),
                quick=quick,
            )
        )
        rows.append(
            row(
                "exact.tspar",
                case,
                "rust-mc-100k",
                lambda: rs.win_counts_beta(alpha, beta, DRAWS, seed=1),
                quick=quick,
            )
        )
        rows.append(
            row(
                "exact.logistic",
                case,
                "rust-mc-100k",
                lambda: rs.win_counts_mvn(mean, low, DRAWS, seed=1),
                quick=quick,
            )
        )
    return rows
