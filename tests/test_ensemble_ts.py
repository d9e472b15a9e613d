"""BootstrapTS: learning on a linear environment, vote-share propensities, validation."""

from __future__ import annotations

import numpy as np
import pytest

from banditkit.ensemble import BootstrapTS


def _play(policy, rounds, seed):
    """Cumulative regret on y = w_arm . x + N(0, 0.5^2), 3 arms, 4 features."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(3, 4))
    regret = 0.0
    for _ in range(rounds):
        x = rng.normal(size=4)
        mu = w @ x
        arm = policy(x) if callable(policy) else policy.select(x)
        if not callable(policy):
            policy.update(arm, x, mu[arm] + 0.5 * rng.normal())
        regret += mu.max() - mu[arm]
    return regret


def test_regret_is_far_below_random():
    ts = BootstrapTS([0, 1, 2], 4, n_estimators=20, seed=3)
    rand = np.random.default_rng(4)
    ours = _play(ts, 1500, seed=11)
    random = _play(lambda x: int(rand.integers(3)), 1500, seed=11)
    assert ours < random / 10, (ours, random)


def test_explores_arms_it_has_not_played_yet():
    # Bernoulli arms with a constant context: without a random prior per member, the first arm
    # that pays once outscores every unplayed arm (all members at 0) in every member, forever.
    means = np.array([0.04, 0.08, 0.12, 0.16, 0.2])
    ts = BootstrapTS(range(5), 1, n_estimators=30, seed=5)
    rng = np.random.default_rng(6)
    x = np.ones(1)
    plays = np.zeros(5, dtype=int)
    for _ in range(3000):
        k = ts.select(x)
        plays[k] += 1
        ts.update(k, x, float(rng.random() < means[k]))
    regret = float(plays @ (means.max() - means))
    # Uniform play would cost 3000 * 0.08 = 240 in expectation; the stuck policy cost 480.
    assert plays.min() > 0 and regret < 240 / 3, (plays, regret)


def test_propensities_are_vote_shares_and_sum_to_one():
    rng = np.random.default_rng(0)
    ts = BootstrapTS(["a", "b", "c"], 2, n_estimators=40, seed=1)
    X = rng.normal(size=(60, 2))
    ts.partial_fit(X, list(rng.choice(["a", "b", "c"], size=60)), rng.normal(size=60))
    x = np.array([0.3, -1.2])
    p = ts.propensities(x)
    assert p.shape == (3,) and np.all(p >= 0) and p.sum() == pytest.approx(1.0)
    # select plays each arm at its propensity: 4,000 decisions within 5 standard errors
    picks = np.array([ts.arms.index(ts.select(x)) for _ in range(4000)])
    freq = np.bincount(picks, minlength=3)
    sd = np.sqrt(4000 * p * (1 - p)) + 1e-9
    assert np.all(np.abs(freq - 4000 * p) <= 5 * sd), (freq, p)
    only = ts.propensities(x, available_arms=["b", "c"])
    assert only[0] == 0 and only.sum() == pytest.approx(1.0)


def test_same_seed_same_decisions():
    X = np.random.default_rng(1).normal(size=(30, 3))
    a, b = (BootstrapTS([0, 1], 3, n_estimators=5, seed=9) for _ in range(2))
    for ts in (a, b):
        ts.partial_fit(X, [i % 2 for i in range(30)], X[:, 0])
    assert a.predict(X) == b.predict(X)


def _state(ts):
    return (ts._a_inv.copy(), ts._b.copy(), ts._theta.copy(), ts._rng.bit_generator.state)


def _same(s, t):
    return all(np.array_equal(a, b) for a, b in zip(s[:3], t[:3], strict=True)) and s[3] == t[3]


@pytest.mark.parametrize("call", [
    lambda ts: ts.update(0, [1.0, 2.0], 1.0),  # wrong context length
    lambda ts: ts.update(5, [1.0, 2.0, 3.0], 1.0),  # unknown arm
    lambda ts: ts.update(0, [1.0, np.nan, 3.0], 1.0),
    lambda ts: ts.update(0, [1.0, 2.0, 3.0], np.inf),
    lambda ts: ts.partial_fit(np.ones((2, 3)), [0, 1], [1.0]),  # lengths differ
    lambda ts: ts.partial_fit(np.ones((2, 3)), [0, 7], [1.0, 2.0]),
    lambda ts: ts.update(0, [1e200, 1e200, 1e200], 1e300),  # overflows the state
    lambda ts: ts.fit(np.ones((2, 3)), [0, 1], [1.0, np.nan]),
    lambda ts: ts.select([1.0, 2.0]),
    lambda ts: ts.propensities([1.0, 2.0, 3.0], available_arms=[]),
])  # fmt: skip
def test_bad_input_raises_value_error_and_changes_nothing(call):
    ts = BootstrapTS([0, 1], 3, n_estimators=4, seed=2)
    ts.partial_fit(np.eye(3), [0, 1, 0], [1.0, 0.0, 2.0])
    before = _state(ts)
    with pytest.raises(ValueError):
        call(ts)
    assert _same(before, _state(ts))


@pytest.mark.parametrize("kwargs", [
    {"n_estimators": 0}, {"alpha": 0.0}, {"alpha": -1.0}, {"n_features": 0}, {"arms": []},
    {"arms": [1, 1]}, {"prior_scale": -1.0}, {"prior_scale": float("nan")},
    {"prior_scale": True},
])  # fmt: skip
def test_bad_settings_are_refused(kwargs):
    args = {"arms": [0, 1], "n_features": 2, **kwargs}
    with pytest.raises(ValueError):
        BootstrapTS(**args)
