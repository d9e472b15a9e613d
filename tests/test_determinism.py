"""Same seed, same answer, whatever the number of threads (Rust backend), and Monte Carlo
kernel accuracy against closed forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy.stats import norm

import banditkit_rs

SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import banditkit_rs as rs
    mu = np.array([0.0, 0.1, 0.05, 0.12, -0.2])
    sd = np.array([0.1, 0.2, 0.05, 0.3, 1.0])
    chol = np.linalg.cholesky(np.array([[1.0, 0.5, 0.2], [0.5, 2.0, 0.3], [0.2, 0.3, 1.5]]))
    out = {
        "gaussian": rs.win_counts_gaussian(mu, sd, 1_000_003, seed=7).tolist(),
        "beta": rs.win_counts_beta(np.array([3.0, 5, 40]), np.array([20.0, 30, 200]), 200_001,
                                   seed=8).tolist(),
        "mvn": rs.win_counts_mvn(np.array([0.0, 0.1, 0.2]), chol, 300_007, seed=9).tolist(),
    }
    b = rs.LinearBandit(seed=3)
    b.update({"a": [1.0, 1.2], "b": [0.9, 1.4, 1.1], "c": 1.05})
    out["linear"] = [b.win_prop(draw=100_000), b.win_prop(draw=50_000), b.select(n=3)]
    t = rs.TSPar(seed=4)
    t.update({"a": [100, 10], "b": [100, 12], "c": [90, 11]})
    out["tspar"] = [t.win_prop(draw=100_000), t.select()]
    print(json.dumps(out, sort_keys=True))
    """
)


def run_with_threads(threads: int) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_bit_identical_for_one_and_two_threads():
    one, two = run_with_threads(1), run_with_threads(2)
    assert one == two
    assert sum(one["gaussian"]) == 1_000_003
    assert sum(one["beta"]) == 200_001
    assert sum(one["mvn"]) == 300_007


def test_same_seed_same_counts_in_process():
    mu, sd = np.array([0.0, 0.1, 0.2]), np.array([1.0, 1.0, 1.0])
    a = banditkit_rs.win_counts_gaussian(mu, sd, 100_000, seed=11)
    b = banditkit_rs.win_counts_gaussian(mu, sd, 100_000, seed=11)
    c = banditkit_rs.win_counts_gaussian(mu, sd, 100_000, seed=12)
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def five_se(p: float, n: int) -> float:
    return 5 * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("seed", [1, 2])
def test_gaussian_kernel_two_arms_closed_form(seed):
    n = 400_000
    mu, sd = np.array([0.3, 0.5]), np.array([0.4, 0.7])
    p1 = norm.cdf((mu[1] - mu[0]) / np.hypot(sd[0], sd[1]))
    counts = banditkit_rs.win_counts_gaussian(mu, sd, n, seed=seed)
    assert abs(counts[1] / n - p1) < five_se(p1, n)


def test_mvn_kernel_correlated_pair_closed_form():
    # x0 - x1 ~ N(m0 - m1, c00 + c11 - 2 c01): correlation changes the answer a lot.
    n = 400_000
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    mean = np.array([0.1, 0.0])
    p0 = norm.cdf(0.1 / np.sqrt(2 - 2 * 0.9))
    counts = banditkit_rs.win_counts_mvn(mean, np.linalg.cholesky(cov), n, seed=5)
    assert abs(counts[0] / n - p0) < five_se(p0, n)


def test_mvn_kernel_zero_row_is_fixed_at_mean():
    # A zero row in L pins that coordinate at its mean (the LogisticBandit reference arm).
    n = 200_000
    chol = np.array([[1.0, 0.0], [0.0, 0.0]])
    counts = banditkit_rs.win_counts_mvn(np.array([0.0, 0.5]), chol, n, seed=6)
    p0 = norm.sf(0.5)
    assert abs(counts[0] / n - p0) < five_se(p0, n)


def test_beta_kernel_two_arms_closed_form():
    # P(X > Y) for X ~ Beta(2, 1), Y ~ Beta(1, 1) is E[X] ... = integral 2x * x dx = 2/3.
    n = 300_000
    counts = banditkit_rs.win_counts_beta(np.array([2.0, 1.0]), np.array([1.0, 1.0]), n, seed=3)
    assert abs(counts[0] / n - 2 / 3) < five_se(2 / 3, n)


def test_ties_go_to_first_arm():
    counts = banditkit_rs.win_counts_gaussian(np.ones(4), np.zeros(4), 10_000, seed=1)
    assert counts.tolist() == [10_000, 0, 0, 0]


@pytest.mark.parametrize(
    "call",
    [
        lambda: banditkit_rs.win_counts_gaussian(np.zeros(2), np.ones(3), 10, seed=1),
        lambda: banditkit_rs.win_counts_gaussian(np.zeros(2), -np.ones(2), 10, seed=1),
        lambda: banditkit_rs.win_counts_gaussian(np.array([0.0, np.nan]), np.ones(2), 10),
        lambda: banditkit_rs.win_counts_gaussian(np.zeros(2), np.ones(2), 0),
        lambda: banditkit_rs.win_counts_gaussian(np.zeros(2), np.ones(2), 10, seed=-1),
        lambda: banditkit_rs.win_counts_beta(np.ones(2), np.array([1.0, 0.0]), 10),
        lambda: banditkit_rs.win_counts_mvn(np.zeros(2), np.ones((2, 2)), 10),
        lambda: banditkit_rs.win_counts_mvn(np.zeros(2), np.eye(3), 10),
    ],
)
def test_kernel_bad_input(call):
    with pytest.raises(ValueError):
        call()
