"""The serve policies' propensities are exact: they equal the empirical frequencies of the
draw, and of each class's own `select` (within 5 standard errors), on both backends."""

from __future__ import annotations

import numpy as np
import pytest
from serve_fixtures import serve_bk  # noqa: F401

from banditkit.serve.errors import InvalidInput
from banditkit.serve.policies import POLICIES

N = 20_000


def assert_frequencies(chosen: np.ndarray, probs: np.ndarray, n_arms: int) -> None:
    """Every arm's frequency within 5 standard errors of its probability."""
    freq = np.bincount(chosen, minlength=n_arms) / len(chosen)
    se = np.sqrt(np.maximum(probs * (1 - probs), 1e-12) / len(chosen))
    assert np.all(np.abs(freq - probs) <= 5 * se + 1e-12), (freq, probs)


def _thompson_state(name: str, arms: list[str]):
    policy = POLICIES[name]
    model = policy.create(arms, policy.parse_params({}))
    rng = np.random.default_rng(3)
    for _ in range(4):  # a few groups of rewards: a posterior with distinct arms
        picked = [arms[i] for i in rng.integers(0, len(arms), 12)]
        rewards = (rng.random(12) < np.linspace(0.2, 0.7, 12)).astype(float)
        policy.apply(model, picked, None, rewards, [None] * 12)
    return policy, model


@pytest.mark.usefixtures("serve_bk")
@pytest.mark.parametrize("name", ["tspar", "linear", "logistic"])
def test_thompson_draw_matches_its_propensities(name: str) -> None:
    arms = ["a", "b", "c", "d"]
    policy, model = _thompson_state(name, arms)
    rng = np.random.default_rng(11)
    for cand in (None, (1, 3), (0, 2, 3)):
        chosen, props = policy.decide(model, arms, None, [cand] * N, rng, {})
        idx = np.arange(len(arms)) if cand is None else np.array(cand)
        probs = np.zeros(len(arms))
        for k, p in zip(chosen, props, strict=True):
            probs[k] = p
        assert set(chosen.tolist()) <= set(idx.tolist())
        assert probs[idx].sum() == pytest.approx(1.0, abs=1e-9) or len(set(chosen)) < len(idx)
        assert_frequencies(chosen, probs, len(arms))


@pytest.mark.usefixtures("serve_bk")
@pytest.mark.parametrize("name", ["tspar", "linear"])
def test_thompson_propensities_match_select(name: str) -> None:
    """The exact win probabilities are what the class's own Thompson `select` does."""
    arms = ["a", "b", "c", "d"]
    policy, model = _thompson_state(name, arms)
    _, props = policy.decide(model, arms, None, [None] * len(arms), np.random.default_rng(0), {})
    cache: dict = {}
    win = np.array(policy.win_probabilities(model, arms, cache))
    picks = [model.select(seed=s) for s in range(N)]
    chosen = np.array([arms.index(p) for p in picks])
    assert_frequencies(chosen, win, len(arms))


@pytest.mark.usefixtures("serve_bk")
def test_lints_propensities_match_draw_and_select() -> None:
    arms = ["a", "b", "c"]
    policy = POLICIES["lints"]
    params = policy.parse_params({"n_features": 3, "v": 0.8})
    model = policy.create(arms, params)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3))
    picked = [arms[i] for i in rng.integers(0, 3, 60)]
    rewards = X @ np.array([0.3, -0.2, 0.1]) + rng.normal(0, 0.5, 60)
    policy.apply(model, picked, X, rewards, [None] * 60)
    x = np.array([0.4, 0.1, -0.3])
    for cand in (None, (0, 2)):
        chosen, props = policy.decide(model, arms, np.tile(x, (N, 1)), [cand] * N, rng, {})
        probs = np.zeros(3)
        probs[chosen] = props
        assert_frequencies(chosen, probs, 3)
        names = None if cand is None else [arms[i] for i in cand]
        picks = [model.select(x, available_arms=names) for _ in range(N // 4)]
        assert_frequencies(np.array([arms.index(p) for p in picks]), probs, 3)


@pytest.mark.usefixtures("serve_bk")
def test_linucb_ties_are_uniform_with_propensity_one_over_ties() -> None:
    arms = ["a", "b", "c", "d"]
    policy = POLICIES["linucb"]
    model = policy.create(arms, policy.parse_params({"n_features": 2}))
    rng = np.random.default_rng(1)
    X = np.tile([1.0, 0.5], (N, 1))  # a fresh model: every arm scores the same
    chosen, props = policy.decide(model, arms, X, [None] * N, rng, {})
    assert np.all(props == 0.25)
    assert_frequencies(chosen, np.full(4, 0.25), 4)
    chosen, props = policy.decide(model, arms, X, [(1, 3)] * N, rng, {})
    assert np.all(props == 0.5) and set(chosen.tolist()) == {1, 3}
    assert_frequencies(chosen, np.array([0, 0.5, 0, 0.5]), 4)
    # A clear winner: propensity 1, and it is the arm `select` picks.
    policy.apply(model, ["c"] * 5, np.tile([1.0, 0.5], (5, 1)), np.full(5, 3.0), [None] * 5)
    chosen, props = policy.decide(model, arms, X[:10], [None] * 10, rng, {})
    assert set(chosen.tolist()) == {2} and np.all(props == 1.0)
    assert model.select([1.0, 0.5]) == "c"


@pytest.mark.parametrize(
    "policy, params, field",
    [
        ("linucb", {"n_features": 3, "alpha": -1}, "params.alpha"),
        ("linucb", {}, "params.n_features"),
        ("lints", {"n_features": 3, "v": 0}, "params.v"),
        ("lints", {"n_features": 3, "gamma": 2}, "params.gamma"),
        ("linear", {"obs_noise": float("nan")}, "params.obs_noise"),
        ("linear", {"bogus": 1}, "params.bogus"),
        ("tspar", {"alpha": 1}, "params.alpha"),
    ],
)
def test_bad_params_name_the_field(policy: str, params: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        POLICIES[policy].parse_params(params)
    assert err.value.field == field and err.value.status == 422


def test_bernoulli_policies_refuse_other_rewards() -> None:
    assert POLICIES["tspar"].check_reward(0.5) is not None
    assert POLICIES["logistic"].check_reward(2.0) is not None
    assert POLICIES["tspar"].check_reward(1.0) is None
    assert POLICIES["linear"].check_reward(-3.5) is None
