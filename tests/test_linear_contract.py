"""LinearBandit: every rule of spec/thompson.md, on both backends (the `bk` fixture)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bandit_state import five_se, linear_state, prob_best_normal
from conftest import backend_module

# Four arms with overlapping posteriors (every win probability well inside (0, 1)).
MU = {"a": 0.0, "b": 0.2, "c": 0.35, "d": 0.1}
SIGMA = {"a": 0.5, "b": 0.4, "c": 0.6, "d": 0.3}


def posterior(mu: float, sd: float, rewards: list[float], noise: float) -> tuple[float, float]:
    """Closed-form normal-normal update, written out independently of the implementation."""
    prec = 1 / sd**2 + len(rewards) / noise**2
    return (mu / sd**2 + sum(rewards) / noise**2) / prec, prec**-0.5


# ---- construction and update ----


def test_new_bandit_is_empty(bk):
    b = bk.LinearBandit()
    assert b.get_models() == []
    assert (b.mu, b.sigma, b.counts, b.sum_rewards) == ({}, {}, {}, {})
    assert (b.default_sigma, b.obs_noise) == (1.0, 1.0)
    assert b.win_prop() == {}
    assert b.get_statistics() == {}


def test_new_arm_starts_at_zero_mean_default_sigma(bk):
    b = bk.LinearBandit(default_sigma=2.0, obs_noise=0.5)
    b.update({"a": [1.0, 3.0]})
    mu, sd = posterior(0.0, 2.0, [1.0, 3.0], 0.5)
    assert b.mu["a"] == pytest.approx(mu, rel=1e-12)
    assert b.sigma["a"] == pytest.approx(sd, rel=1e-12)
    assert b.counts == {"a": 2}
    assert b.sum_rewards == {"a": 4.0}


def test_reward_forms_are_equivalent(bk):
    forms = [2.5, [2.5], (2.5,), np.array([2.5]), np.float64(2.5), np.int64(2)]
    expected = posterior(0.0, 1.0, [2.5], 1.0)
    for form in forms[:-1]:
        b = bk.LinearBandit()
        b.update({"a": form})
        assert (b.mu["a"], b.sigma["a"]) == pytest.approx(expected, rel=1e-12)
        assert b.counts["a"] == 1
    b = bk.LinearBandit()
    b.update({"a": np.array([1, 2, 3], dtype=np.int32)})
    assert b.mu["a"] == pytest.approx(posterior(0.0, 1.0, [1, 2, 3], 1.0)[0], rel=1e-12)


def test_empty_reward_lists_are_skipped(bk):
    b = bk.LinearBandit()
    b.update({"a": [], "b": [1.0], "c": np.array([])})
    assert b.get_models() == ["b"]
    b.update({"b": ()})
    assert b.counts == {"b": 1}


def test_update_is_sequentially_consistent(bk):
    """Conjugacy: two updates equal one update with all the rewards."""
    one, two = bk.LinearBandit(obs_noise=0.7), bk.LinearBandit(obs_noise=0.7)
    one.update({"a": [0.3, 1.2, -0.4, 2.0]})
    two.update({"a": [0.3, 1.2]})
    two.update({"a": [-0.4, 2.0]})
    assert two.mu["a"] == pytest.approx(one.mu["a"], rel=1e-12)
    assert two.sigma["a"] == pytest.approx(one.sigma["a"], rel=1e-12)
    assert two.counts == one.counts == {"a": 4}
    assert two.sum_rewards["a"] == pytest.approx(3.1, rel=1e-12)


def test_decay_pulls_observed_arm_towards_default_prior(bk):
    b = bk.LinearBandit(mu={"a": 4.0, "b": 1.0}, sigma={"a": 0.5, "b": 0.2}, default_sigma=2.0)
    b.update({"a": [3.0, 5.0]}, decay=0.25)
    var = 0.75 * 0.5**2 + 0.25 * 2.0**2
    mu, sd = posterior(0.75 * 4.0, math.sqrt(var), [3.0, 5.0], 1.0)
    assert b.mu["a"] == pytest.approx(mu, rel=1e-12)
    assert b.sigma["a"] == pytest.approx(sd, rel=1e-12)
    # Decay acts on the arms this update observes; the others keep their posterior.
    assert (b.mu["b"], b.sigma["b"]) == (1.0, 0.2)


def test_full_decay_restarts_from_default_prior(bk):
    b = bk.LinearBandit(default_sigma=3.0)
    b.update({"a": [10.0] * 50})
    b.update({"a": [1.0]}, decay=1.0)
    mu, sd = posterior(0.0, 3.0, [1.0], 1.0)
    assert (b.mu["a"], b.sigma["a"]) == pytest.approx((mu, sd), rel=1e-12)
    assert b.counts["a"] == 51


def test_prior_mean_without_sigma_gets_default_sigma(bk):
    """Upstream bug: mu={...} without sigma crashed on the first update."""
    b = bk.LinearBandit(mu={"a": 1.0, "b": -1.0}, sigma={"b": 0.5}, default_sigma=2.0)
    assert b.sigma == {"a": 2.0, "b": 0.5}
    b.update({"a": [1.5], "b": [0.0]})
    assert b.mu["a"] == pytest.approx(posterior(1.0, 2.0, [1.5], 1.0)[0], rel=1e-12)
    assert b.mu["b"] == pytest.approx(posterior(-1.0, 0.5, [0.0], 1.0)[0], rel=1e-12)


def test_prior_sigma_without_mean_starts_at_zero(bk):
    b = bk.LinearBandit(sigma={"s": 0.1})
    assert (b.get_models(), b.mu, b.sigma, b.counts, b.sum_rewards) == (
        ["s"],
        {"s": 0.0},
        {"s": 0.1},
        {"s": 0},
        {"s": 0.0},
    )


def test_constructor_copies_prior_dicts(bk):
    mu, sigma = {"a": 1.0}, {"a": 2.0}
    b = bk.LinearBandit(mu=mu, sigma=sigma)
    b.update({"a": [0.0], "z": [1.0]})
    assert mu == {"a": 1.0} and sigma == {"a": 2.0}


def test_models_in_first_seen_order_and_any_hashable_name(bk):
    b = bk.LinearBandit(mu={"p": 0.0})
    b.update({7: [1.0], ("x", 1): [2.0], "p": [0.5]})
    b.update({"q": 1.0, 7: 0.0})
    assert b.get_models() == ["p", 7, ("x", 1), "q"]
    assert list(b.mu) == list(b.sigma) == list(b.counts) == list(b.sum_rewards) == b.get_models()


def test_get_statistics(bk):
    b = bk.LinearBandit(mu={"idle": 0.5})
    b.update({"a": [1.0, 2.0, 4.5]})
    stats_ = b.get_statistics()
    assert stats_["idle"] == {"mu": 0.5, "sigma": 1.0, "count": 0, "mean_reward": 0.0}
    assert stats_["a"]["count"] == 3
    assert stats_["a"]["mean_reward"] == pytest.approx(2.5, rel=1e-12)
    assert (stats_["a"]["mu"], stats_["a"]["sigma"]) == (b.mu["a"], b.sigma["a"])
    assert set(stats_["a"]) == {"mu", "sigma", "count", "mean_reward"}


def test_attribute_types(bk):
    b = bk.LinearBandit()
    b.update({"a": [1, 2]})
    assert all(type(x) is dict for x in (b.mu, b.sigma, b.counts, b.sum_rewards))
    assert type(b.counts["a"]) is int and type(b.mu["a"]) is float
    assert type(b.default_sigma) is float and type(b.obs_noise) is float


# ---- win_prop rules ----


def test_win_prop_empty_list_and_single_name(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA)
    assert b.win_prop(action_list=[]) == {}
    assert b.win_prop(action_list=["c"]) == {"c": 1.0}
    assert b.win_prop(action_list=["never_seen"]) == {"never_seen": 1.0}


def test_win_prop_all_unobserved_is_uniform(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA)
    assert b.win_prop(action_list=["x", "y", "z"]) == {n: 1 / 3 for n in "xyz"}


def test_win_prop_one_observed_shares_equally(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA)
    assert b.win_prop(action_list=["x", "a", "y", "z"]) == {n: 0.25 for n in "xayz"}


def test_win_prop_single_arm_model(bk):
    b = bk.LinearBandit()
    b.update({"only": [1.0]})
    assert b.win_prop() == {"only": 1.0}


def test_win_prop_values_are_counts_over_draw(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=3)
    p = b.win_prop(draw=4321)
    assert list(p) == list(MU)
    counts = np.array(list(p.values())) * 4321
    assert np.allclose(counts, np.rint(counts), atol=1e-6)
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-12)


def test_win_prop_ties_go_to_first_arm(bk):
    """Means so large that the sd vanishes in rounding: every draw ties, np.argmax picks arm 0."""
    b = bk.LinearBandit(mu={"a": 1e20, "b": 1e20}, sigma={"a": 1e-10, "b": 1e-10}, seed=1)
    assert b.win_prop(draw=1000) == {"a": 1.0, "b": 0.0}


def test_win_prop_two_arms_matches_normal_cdf(bk):
    b = bk.LinearBandit(mu={"a": 0.0, "b": 0.3}, sigma={"a": 1.0, "b": 0.8}, seed=11)
    draw = 200_000
    p_b = stats.norm.cdf(0.3 / math.sqrt(1.0 + 0.64))
    p = b.win_prop(draw=draw)
    assert abs(p["b"] - p_b) < five_se(p_b, draw)
    assert p["a"] + p["b"] == pytest.approx(1.0, abs=1e-12)


def test_win_prop_k_arms_matches_integration(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=12)
    draw = 100_000
    exact = prob_best_normal(list(MU.values()), list(SIGMA.values()))
    assert exact.sum() == pytest.approx(1.0, abs=1e-9)
    got = np.array(list(b.win_prop(draw=draw).values()))
    assert np.all(np.abs(got - exact) < five_se(exact, draw))


def test_win_prop_subset_with_unobserved_is_scaled(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=13)
    draw = 100_000
    p = b.win_prop(action_list=["new1", "c", "a", "new2"], draw=draw)
    assert list(p) == ["new1", "c", "a", "new2"]
    assert p["new1"] == p["new2"] == 0.25
    exact = prob_best_normal([MU["c"], MU["a"]], [SIGMA["c"], SIGMA["a"]])
    got = np.array([p["c"], p["a"]]) / 0.5
    assert got.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.abs(got - exact) < five_se(exact, draw))


def test_win_prop_repeated_name_counts_once(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=5)
    p = b.win_prop(action_list=["a", "b", "a"], draw=1000, seed=9)
    assert p == b.win_prop(action_list=["a", "b"], draw=1000, seed=9)


@pytest.mark.parametrize("g", [0.5, 2.0, 7.0])
def test_aggressive_is_power_of_counts(bk, g):
    """Same seed, same counts: aggressive must be exactly c_i**g / sum_j c_j**g."""
    b = bk.LinearBandit(mu=MU, sigma=SIGMA)
    draw = 5000
    plain = b.win_prop(draw=draw, seed=21)
    sharp = b.win_prop(draw=draw, aggressive=g, seed=21)
    counts = np.rint(np.array(list(plain.values())) * draw)
    expected = counts**g / np.sum(counts**g)
    assert np.allclose(list(sharp.values()), expected, rtol=1e-9, atol=1e-15)


def test_aggressive_with_unobserved_keeps_their_share(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA)
    plain = b.win_prop(action_list=["a", "b", "zz"], draw=3000, seed=4)
    sharp = b.win_prop(action_list=["a", "b", "zz"], draw=3000, aggressive=3.0, seed=4)
    assert sharp["zz"] == plain["zz"] == pytest.approx(1 / 3)
    c = np.rint(np.array([plain["a"], plain["b"]]) * 1.5 * 3000)
    assert [sharp["a"], sharp["b"]] == pytest.approx(list(c**3 / np.sum(c**3) * 2 / 3), rel=1e-9)


def test_huge_aggressive_does_not_overflow(bk):
    b = bk.LinearBandit(mu={"a": 0.0, "b": 0.1}, sigma={"a": 1.0, "b": 1.0})
    p = b.win_prop(draw=10_000, aggressive=1e6, seed=2)
    assert all(math.isfinite(v) for v in p.values())
    assert sorted(p.values()) == [0.0, 1.0]


# ---- seeds ----


def test_same_constructor_seed_same_sequence(bk):
    runs = []
    for _ in range(2):
        b = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=2024)
        runs.append([b.win_prop(draw=2000), b.select(), b.win_prop(draw=2000), b.select(n=4)])
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][2]  # the object's generator moves on between calls


def test_different_seeds_differ(bk):
    p1 = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=1).win_prop(draw=20_000)
    p2 = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=2).win_prop(draw=20_000)
    assert p1 != p2


def test_unseeded_objects_differ(bk):
    p1 = bk.LinearBandit(mu=MU, sigma=SIGMA).win_prop(draw=20_000)
    p2 = bk.LinearBandit(mu=MU, sigma=SIGMA).win_prop(draw=20_000)
    assert p1 != p2


def test_per_call_seed_is_reproducible_and_leaves_object_generator(bk):
    b, twin = (
        bk.LinearBandit(mu=MU, sigma=SIGMA, seed=8),
        bk.LinearBandit(mu=MU, sigma=SIGMA, seed=8),
    )
    assert b.win_prop(draw=3000, seed=77) == b.win_prop(draw=3000, seed=77)
    assert b.select(n=4, seed=77) == b.select(n=4, seed=77)
    # The seeded calls above did not advance b's own generator.
    assert b.win_prop(draw=3000) == twin.win_prop(draw=3000)
    assert b.select(n=4) == twin.select(n=4)


def test_numpy_integer_seed_and_draw(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=np.uint64(5))
    assert b.win_prop(draw=np.int64(2000), seed=np.int32(3)) == b.win_prop(draw=2000, seed=3)


# ---- select ----


def test_select_one_is_a_name_many_is_a_ranking(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=31)
    assert b.select() in MU
    ranking = b.select(n=4)
    assert sorted(ranking) == sorted(MU)
    two = b.select(n=2)
    assert isinstance(two, list) and len(set(two)) == 2


def test_select_ranks_one_joint_draw(bk):
    b = bk.LinearBandit(mu=MU, sigma=SIGMA)
    for seed in range(20):
        assert b.select(seed=seed) == b.select(n=4, seed=seed)[0]
        assert b.select(n=2, seed=seed) == b.select(n=4, seed=seed)[:2]


def test_select_separated_arms_in_order_of_mean(bk):
    b = bk.LinearBandit(
        mu={"a": 0.0, "b": 100.0, "c": 50.0}, sigma={"a": 1e-3, "b": 1e-3, "c": 1e-3}
    )
    assert b.select(n=3) == ["b", "c", "a"]
    assert b.select() == "b"


def test_select_frequency_matches_win_probability(bk):
    b = bk.LinearBandit(mu={"a": 0.0, "b": 0.3}, sigma={"a": 1.0, "b": 0.8}, seed=41)
    calls = 4000
    freq_b = sum(b.select() == "b" for _ in range(calls)) / calls
    p_b = stats.norm.cdf(0.3 / math.sqrt(1.64))
    assert abs(freq_b - p_b) < five_se(p_b, calls)


def test_select_errors(bk):
    with pytest.raises(ValueError, match="^no arms to select from"):
        bk.LinearBandit().select()
    b = bk.LinearBandit(mu=MU, sigma=SIGMA, seed=1)
    before = linear_state(b)
    for bad in (0, -1, 5):
        with pytest.raises(ValueError, match="^n must be"):
            b.select(n=bad)
    for bad in (1.5, True, "2"):  # a setting of the wrong type (docs/validation.md)
        with pytest.raises(TypeError, match="^n must be an integer"):
            b.select(n=bad)
    assert linear_state(b) == before


# ---- the two backends agree ----


def test_update_parity_between_backends(py_bk, rs_bk):
    rng = np.random.default_rng(42)
    bandits = [
        m.LinearBandit(mu={"a": 0.3}, default_sigma=1.5, obs_noise=0.5) for m in (py_bk, rs_bk)
    ]
    for step in range(5):
        obs = {f"arm{i}": rng.normal(1.0 + 0.1 * i, 0.5, size=20 + i) for i in range(step + 2)}
        obs["a"] = float(rng.normal())
        for b in bandits:
            b.update(obs, decay=0.1 * (step % 2))
    py_b, rs_b = bandits
    assert py_b.get_models() == rs_b.get_models()
    for attr in ("mu", "sigma", "sum_rewards"):
        got, want = getattr(rs_b, attr), getattr(py_b, attr)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-14)
    assert rs_b.counts == py_b.counts
    rs_stats, py_stats = rs_b.get_statistics(), py_b.get_statistics()
    assert list(rs_stats) == list(py_stats)
    for name, row in py_stats.items():
        assert rs_stats[name] == pytest.approx(row, rel=1e-12, abs=1e-14)


REWARD_BATCHES = st.lists(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.floats(-1e3, 1e3), max_size=4) | st.floats(-1e3, 1e3),
        min_size=1,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40, deadline=None)
@given(batches=REWARD_BATCHES, decay=st.sampled_from([0.0, 0.3, 1.0]))
def test_update_parity_property(batches, decay):
    bandits = [backend_module(name).LinearBandit(obs_noise=0.8) for name in ("python", "rust")]
    for obs in batches:
        for b in bandits:
            b.update(obs, decay=decay)
    py_b, rs_b = bandits
    assert rs_b.get_models() == py_b.get_models()
    assert rs_b.counts == py_b.counts
    for attr in ("mu", "sigma", "sum_rewards"):
        assert getattr(rs_b, attr) == pytest.approx(getattr(py_b, attr), rel=1e-9, abs=1e-9)


def test_win_prop_parity_between_backends(py_bk, rs_bk):
    """Two independent Monte Carlo estimates: their difference has sd sqrt(2 p (1-p) / draw)."""
    draw = 100_000
    probs = [m.LinearBandit(mu=MU, sigma=SIGMA, seed=6).win_prop(draw=draw) for m in (py_bk, rs_bk)]
    p_py, p_rs = (np.array(list(p.values())) for p in probs)
    assert list(probs[0]) == list(probs[1])
    assert np.all(np.abs(p_py - p_rs) < np.sqrt(2) * five_se(p_py, draw))


# ---- drop-in: a script written against orts' LinearBandit API ----


def orts_user_script(LinearBandit) -> tuple:
    """How an orts user drives LinearBandit: positional arguments included."""
    bandit = LinearBandit(None, None, 1.0, 0.5)
    bandit.update({"ad_a": [1.0, 0.5, 0.8], "ad_b": [0.2, 0.1]})
    bandit.update({"ad_a": 0.9, "ad_c": np.array([0.4, 0.6])}, decay=0.1)
    everything = bandit.win_prop()
    some = bandit.win_prop(["ad_a", "ad_b", "fresh_ad"], 5000, 2.0)
    stats_ = bandit.get_statistics()
    models = bandit.get_models()
    return everything, some, stats_, models, dict(bandit.mu), dict(bandit.sigma)


def test_drop_in_script(bk, py_bk):
    everything, some, stats_, models, mu, sigma = orts_user_script(bk.LinearBandit)
    assert models == ["ad_a", "ad_b", "ad_c"]
    assert list(everything) == models and sum(everything.values()) == pytest.approx(1.0)
    exact = prob_best_normal([mu[m] for m in models], [sigma[m] for m in models])
    assert np.all(np.abs(np.array(list(everything.values())) - exact) < five_se(exact, 100_000))
    assert some["fresh_ad"] == pytest.approx(1 / 3)
    assert set(stats_) == set(models) and stats_["ad_a"]["count"] == 4
    reference = orts_user_script(py_bk.LinearBandit)
    assert mu == pytest.approx(reference[4], rel=1e-12)
    assert sigma == pytest.approx(reference[5], rel=1e-12)
