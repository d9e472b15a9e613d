"""The estimators on synthetic logs with a known true value (fixed seeds, 5-standard-error
tolerances): unbiased where theory says so, DR better than IPS with a good reward model, and
still unbiased with a wrong one when the propensities are right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from banditkit.ope import (
    DM,
    DR,
    IPS,
    SNDR,
    SNIPS,
    RewardModel,
    SyntheticBandit,
    simulate,
    true_value,
)

REPEATS = 200
N = 500


@pytest.fixture(scope="module")
def world():
    # Reward noise small beside the spread of q, as when the context explains the reward.
    return SyntheticBandit(n_actions=5, n_features=3, noise=0.3, seed=7)


@pytest.fixture(scope="module")
def table(world):
    rows = simulate(world, N, REPEATS, ["IPS", "SNIPS", "DM", "DR", "SNDR"], seed=1)
    return {r["estimator"]: r for r in rows}


@pytest.mark.parametrize("name", ["IPS", "SNIPS", "DR", "SNDR"])
def test_unbiased_within_five_standard_errors(table, name):
    row = table[name]
    assert abs(row["bias"]) < 5 * row["bias_se"], row


def test_dr_beats_ips_with_a_good_reward_model(table):
    # Rewards are linear in the context, so the cross-fitted per-arm ridge is well specified.
    assert table["DR"]["rmse"] < 0.8 * table["IPS"]["rmse"], (table["DR"], table["IPS"])


def test_normal_intervals_cover_about_as_often_as_they_say(table):
    # 95% intervals over 200 logs: the coverage count is Binomial(200, 0.95), sd 3.1 events.
    for name in ("IPS", "DR"):
        assert abs(table[name]["coverage"] - 0.95) < 5 * math.sqrt(0.95 * 0.05 / REPEATS)


def test_dr_is_unbiased_with_a_wrong_reward_model_and_right_propensities(world):
    dr, dm = np.empty(REPEATS), np.empty(REPEATS)
    for rep in range(REPEATS):
        log = world.sample(N, np.random.default_rng([99, rep]))
        pi = world.target(log["expected_reward"])
        truth = true_value(pi, log["expected_reward"])
        # Off by a shift and a slope: DM is biased, the DR correction repairs it.
        wrong = 0.5 * log["expected_reward"] + 1.0
        args = (log["reward"], log["action"], log["pscore"], pi, wrong)
        dr[rep] = DR().estimate_policy_value(*args) - truth
        dm[rep] = DM().estimate_policy_value(*args) - truth
    assert abs(dr.mean()) < 5 * dr.std(ddof=1) / math.sqrt(REPEATS)
    assert abs(dm.mean()) > 5 * dm.std(ddof=1) / math.sqrt(REPEATS)  # the test has power


def test_clipping_trades_bias_for_variance(world):
    est, clipped = np.empty(REPEATS), np.empty(REPEATS)
    for rep in range(REPEATS):
        log = world.sample(N, np.random.default_rng([5, rep]))
        pi = world.target(log["expected_reward"])
        truth = true_value(pi, log["expected_reward"])
        args = (log["reward"], log["action"], log["pscore"], pi)
        est[rep] = IPS().estimate_policy_value(*args) - truth
        clipped[rep] = IPS(lambda_=2.0).estimate_policy_value(*args) - truth
    assert clipped.std() < est.std()
    assert abs(clipped.mean()) > 5 * clipped.std(ddof=1) / math.sqrt(REPEATS)


def test_bootstrap_interval_brackets_the_estimate(world):
    log = world.sample(2000, 3)
    pi = world.target(log["expected_reward"])
    q = RewardModel(5).fit_predict(log["context"], log["action"], log["reward"])
    for est in (IPS(), SNIPS(), DR(), SNDR()):
        result = est.estimate(log["reward"], log["action"], log["pscore"], pi, q, seed=0)
        assert result.boot_lower < result.value < result.boot_upper
        # Percentile and normal intervals agree to within a fifth of their width at n = 2000.
        width = result.upper - result.lower
        assert abs(result.boot_lower - result.lower) < 0.2 * width
        assert abs(result.boot_upper - result.upper) < 0.2 * width
