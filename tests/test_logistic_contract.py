"""LogisticBandit's contract (spec/thompson.md), on both backends: state, update, re-expression,
win probabilities, select, robustness, validation, pickling. Golden data: test_logistic_golden.py.
"""

from __future__ import annotations

import copy
import math
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats

from bandit_state import assert_logistic_sane, logistic_state

OBS3 = {"a": [1000, 100], "b": [4000, 800], "c": [2000, 300]}


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def fitted(bk, seed: int = 1):
    bandit = bk.LogisticBandit(seed=seed)
    bandit.update(OBS3)
    return bandit


# ----------------------------------------------------------------------------- state


def test_empty_defaults(bk):
    bandit = bk.LogisticBandit()
    assert np.asarray(bandit.mu).shape == (0,)
    assert np.asarray(bandit.sigma_inv).shape == (0, 0)
    assert bandit.action_list == [] and bandit.get_models() == []
    assert bandit.get_par() == (None, None) and bandit.get_par([]) == (None, None)
    assert bandit.win_prop() == {}
    assert repr(bandit) == "LogisticBandit(arms=0, reference=None)"


def test_constructor_copies_its_inputs(bk):
    mu, sigma, names = np.array([0.5, -1.0]), np.array([[2.0, 1.0], [1.0, 3.0]]), ["x", "y"]
    bandit = bk.LogisticBandit(mu, sigma, names)
    mu[0], sigma[0, 0] = 9.0, 9.0
    names.append("z")
    assert logistic_state(bandit) == (["x", "y"], [0.5, -1.0], [[2.0, 1.0], [1.0, 3.0]])
    assert repr(bandit) == "LogisticBandit(arms=2, reference='y')"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.0], [[1.0]], ["a", "b"]), "mu must have shape"),
        (([0.0, 0.0], [[1.0]], ["a", "b"]), "sigma_inv must have shape"),
        (([0.0, float("nan")], np.eye(2), ["a", "b"]), "must be finite"),
        (([0.0, 0.0], [[1.0, float("inf")], [0.0, 1.0]], ["a", "b"]), "must be finite"),
        (([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], ["a", "b"]), "sigma_inv must be symmetric"),
        (([0.0, 0.0], np.eye(2), ["a", "a"]), "duplicate"),
        (([0.0, 0.0, 0.0], np.eye(3), "abc"), "action_list must be a list of"),
    ],
)
def test_constructor_rejects_inconsistent_state(bk, args, message):
    with pytest.raises(ValueError, match=message):
        bk.LogisticBandit(*args)


# ----------------------------------------------------------------------------- update


def test_first_update_is_the_mle_with_its_fisher_information(bk):
    bandit = fitted(bk)
    assert bandit.action_list == ["a", "b", "c"]  # all new, in obs order; "c" is the reference
    ref = logit(0.15)
    np.testing.assert_allclose(bandit.mu, [logit(0.1) - ref, logit(0.2) - ref, ref], atol=1e-12)
    v = [1000 * 0.1 * 0.9, 4000 * 0.2 * 0.8, 2000 * 0.15 * 0.85]
    expect = np.array([[v[0], 0, v[0]], [0, v[1], v[1]], [v[0], v[1], sum(v)]])
    np.testing.assert_allclose(bandit.sigma_inv, expect, rtol=1e-12)


def test_arrangement_is_new_then_unobserved_then_observed(bk):
    bandit = fitted(bk)
    bandit.update({"b": [500, 90], "d": [300, 30], "z": [0, 0]})
    # new [d] + known not observed [a, c] + observed known [b]; "z" (total 0) is ignored.
    assert bandit.action_list == ["d", "a", "c", "b"]
    assert_logistic_sane(bandit)


def test_all_zero_totals_change_nothing(bk):
    bandit = fitted(bk)
    before = logistic_state(bandit)
    bandit.update({"a": [0, 0], "new": [0, 0]})
    assert logistic_state(bandit) == before


def test_orts_prior_carries_odds_ratios_but_not_the_level(bk):
    bandit = fitted(bk)
    prior_ratio = bandit.get_par(["a", "b"])[0][0]  # a against b
    bandit.update({"b": [1000, 500]})  # only b: its level jumps to 50%
    assert bandit.action_list == ["a", "c", "b"]
    # The level is this batch's alone; the unobserved odds ratio keeps its prior mean.
    assert bandit.mu[-1] == pytest.approx(0.0, abs=1e-10)
    assert bandit.mu[0] == pytest.approx(prior_ratio, abs=1e-10)
    # The level's precision is the batch's Fisher information only.
    assert bandit.sigma_inv[-1, -1] == pytest.approx(1000 * 0.25, rel=1e-10)


def test_full_ts_and_orts_differ_under_drift(bk):
    """Both arms at 10%, then a drift of the base rate to 30% seen only on arm A. ORTS keeps
    the odds ratio (a coin flip); Full-TS pins the old level and credits the rise to A."""
    results = {}
    for orts in (True, False):
        bandit = bk.LogisticBandit(seed=3)
        bandit.update({"A": [10000, 1000], "B": [10000, 1000]}, odds_ratios_only=orts)
        bandit.update({"A": [10000, 3000]}, odds_ratios_only=orts)
        results[orts] = bandit.win_prop(draw=20000)["A"]
    assert results[True] == pytest.approx(0.5, abs=5 * math.sqrt(0.25 / 20000))
    assert results[False] > 0.999


def test_remove_not_observed_drops_other_arms(bk):
    kept = fitted(bk)
    kept.update({"b": [500, 90], "d": [300, 30]})
    dropped = fitted(bk)
    dropped.update({"b": [500, 90], "d": [300, 30]}, remove_not_observed=True)
    assert dropped.action_list == ["d", "b"]
    assert kept.action_list == ["d", "a", "c", "b"]
    assert_logistic_sane(dropped)


def test_full_decay_forgets_the_prior(bk):
    obs = {"a": [300, 30], "b": [700, 140], "c": [500, 75]}
    fresh = bk.LogisticBandit()
    fresh.update(obs)
    for orts in (True, False):
        decayed = fitted(bk)
        decayed.update(obs, odds_ratios_only=orts, decay=1.0)
        assert decayed.action_list == fresh.action_list
        np.testing.assert_allclose(decayed.mu, fresh.mu, atol=1e-10)
        np.testing.assert_allclose(decayed.sigma_inv, fresh.sigma_inv, rtol=1e-10)


def test_decay_scales_the_prior_precision(bk):
    half, none = fitted(bk), fitted(bk)
    half.update({"a": [100, 10]}, odds_ratios_only=False, decay=0.5)
    none.update({"a": [100, 10]}, odds_ratios_only=False, decay=0.0)
    # Arm b is not observed: its precision is the (decayed) prior's alone.
    i = half.action_list.index("b")
    assert half.sigma_inv[i, i] == pytest.approx(0.5 * none.sigma_inv[i, i], rel=1e-12)


@pytest.mark.parametrize(
    "sequence",
    [
        [{"a": [100000, 0], "b": [10, 10], "c": [1000, 3]}, {"a": [50, 0], "d": [100000, 99999]}],
        [{"a": [10, 0]}, {"b": [10, 10]}, {"a": [1, 1], "b": [1, 0]}],
        [{"a": [1000, 0], "b": [1000, 0]}, {"c": [1000, 1000]}, {"a": [5, 5]}],
    ],
)
@pytest.mark.parametrize("orts", [True, False])
def test_extreme_rates_never_raise(bk, sequence, orts):
    bandit = bk.LogisticBandit(seed=0)
    for obs in sequence:
        bandit.update(obs, odds_ratios_only=orts)
        assert_logistic_sane(bandit)
        shares = bandit.win_prop(draw=2000)
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)


def test_zero_prior_precision_does_not_raise(bk):
    """Upstream's inv(inv(P0)) raised LinAlgError on a singular prior precision."""
    sigma = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 2.0]])
    for orts in (True, False):
        bandit = bk.LogisticBandit([0.1, 0.2, -1.0], sigma, ["a", "b", "c"], seed=0)
        bandit.update({"a": [500, 50], "c": [500, 60]}, odds_ratios_only=orts)
        assert_logistic_sane(bandit)
        assert sum(bandit.win_prop(draw=1000).values()) == pytest.approx(1.0, abs=1e-12)


def bad_update_cases():
    return [
        ({}, {}, "obs dictionary cannot be empty"),
        (OBS3, {"decay": 1.5}, r"decay must be between 0.0 and 1.0, got 1.5"),
        (OBS3, {"decay": float("nan")}, "decay must be between 0.0 and 1.0"),
        ({"a": [10]}, {}, r"Each observation must be \[total_count, success_count\], got .* 'a'"),
        (
            {"a": [10, 1], "b": [-1, 0]},
            {},
            r"Total count must be non-negative, got -1 for action 'b'",
        ),
        ({"a": [10, -2]}, {}, r"Success count must be non-negative, got -2 for action 'a'"),
        ({"a": [10, 1], "b": [5, 6]}, {}, r"Success count \(6\) cannot exceed total count \(5\)"),
        ({"a": [float("nan"), 1]}, {}, "Total count must be"),
        ({"a": [10, float("inf")]}, {}, "Success count must be"),
    ]


@pytest.mark.parametrize(("obs", "kwargs", "message"), bad_update_cases())
def test_bad_update_raises_and_leaves_the_object_unchanged(bk, obs, kwargs, message):
    bandit, twin = fitted(bk, seed=5), fitted(bk, seed=5)
    with pytest.raises(ValueError, match=message):
        bandit.update(obs, **kwargs)
    assert logistic_state(bandit) == logistic_state(twin)
    assert bandit.win_prop(draw=1000) == twin.win_prop(draw=1000)


# ----------------------------------------------------------------------------- re-expression


def test_get_par_reference_change_round_trips(bk):
    bandit = fitted(bk)
    before = logistic_state(bandit)
    mu, sigma = bandit.get_par(["c", "b", "a"])
    eta = [bandit.mu[0] + bandit.mu[2], bandit.mu[1] + bandit.mu[2], bandit.mu[2]]
    np.testing.assert_allclose(mu, [eta[2] - eta[0], eta[1] - eta[0], eta[0]], atol=1e-14)
    assert logistic_state(bandit) == before  # get_par does not change the state
    bandit.transform(["c", "b", "a"])
    assert bandit.action_list == ["c", "b", "a"]
    np.testing.assert_array_equal(bandit.sigma_inv, sigma)
    bandit.transform(["a", "b", "c"])
    assert bandit.action_list == before[0]
    np.testing.assert_allclose(bandit.mu, before[1], atol=1e-14)
    np.testing.assert_allclose(bandit.sigma_inv, before[2], rtol=1e-14, atol=1e-10)


def test_get_par_subset_uses_the_rounded_pseudo_inverse(bk):
    bandit = fitted(bk)
    mu, sigma = bandit.get_par(["b", "a"])
    t = np.array([[-1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # [b - a, a's log-odds] from (w_a, w_b, w_c)
    r = np.rint(np.linalg.pinv(t))
    np.testing.assert_allclose(mu, t @ bandit.mu, atol=1e-14)
    np.testing.assert_allclose(sigma, r.T @ bandit.sigma_inv @ r, rtol=1e-14)
    # One non-reference arm alone: pinv entries are exactly 1/2, rounded half to even (to 0).
    assert bandit.get_par(["a"])[1].tolist() == [[0.0]]


def test_get_par_and_transform_reject_unknown_arms(bk):
    bandit = fitted(bk)
    before = logistic_state(bandit)
    with pytest.raises(ValueError, match="unknown arm 'zz'"):
        bandit.get_par(["a", "zz"])
    with pytest.raises(ValueError, match="unknown arm 'zz'"):
        bandit.transform(["zz", "a"])
    with pytest.raises(ValueError, match="duplicate"):
        bandit.transform(["a", "a"])
    assert logistic_state(bandit) == before


def test_delete(bk):
    bandit = fitted(bk)
    expect = bandit.get_par(["a", "c"])
    bandit.delete("b")
    assert bandit.action_list == ["a", "c"]
    np.testing.assert_allclose(bandit.mu, expect[0], atol=1e-14)
    bandit.delete("c")  # the reference: the last remaining arm takes over
    assert bandit.action_list == ["a"]
    with pytest.raises(ValueError, match="unknown arm 'c'"):
        bandit.delete("c")
    bandit.delete("a")
    assert bandit.action_list == [] and np.asarray(bandit.sigma_inv).shape == (0, 0)


# ----------------------------------------------------------------------------- win_prop


def test_win_prop_small_cases(bk):
    bandit = fitted(bk)
    assert bandit.win_prop([]) == {}
    assert bandit.win_prop(["b"]) == {"b": 1.0}
    assert bandit.win_prop(["x", "y"]) == {"x": 0.5, "y": 0.5}
    assert bandit.win_prop(["x", "a", "y"]) == pytest.approx({"x": 1 / 3, "a": 1 / 3, "y": 1 / 3})
    shares = bandit.win_prop(["a", "b", "new"], draw=5000, seed=1)
    assert shares["new"] == pytest.approx(1 / 3)
    assert shares["a"] + shares["b"] == pytest.approx(2 / 3)


def test_two_arm_win_prop_is_the_normal_tail(bk):
    bandit = bk.LogisticBandit(seed=2)
    bandit.update({"a": [400, 44], "b": [400, 40]})
    mu, sigma = bandit.get_par(["a", "b"])
    p_a = stats.norm.cdf(mu[0] / math.sqrt(np.linalg.pinv(sigma)[0, 0]))
    draw = 200_000
    shares = bandit.win_prop(draw=draw)
    assert shares["a"] == pytest.approx(p_a, abs=5 * math.sqrt(p_a * (1 - p_a) / draw))
    assert sum(shares.values()) == pytest.approx(1.0)


def test_backends_agree_on_win_prop(py_bk, rs_bk):
    draw = 200_000
    obs = {f"arm{i}": [5000, 500 + 15 * i] for i in range(5)}
    py_b, rs_b = py_bk.LogisticBandit(seed=7), rs_bk.LogisticBandit(seed=7)
    for b in (py_b, rs_b):
        b.update(obs)
        b.update({"arm1": [3000, 330], "arm4": [2000, 230]}, odds_ratios_only=False)
    p, r = py_b.win_prop(draw=draw), rs_b.win_prop(draw=draw)
    assert list(p) == list(r)
    for name in p:
        se = math.sqrt(2 * max(p[name] * (1 - p[name]), 1 / draw) / draw)
        assert r[name] == pytest.approx(p[name], abs=5 * se)


def test_aggressive_sharpens_the_counts(bk):
    bandit = fitted(bk)
    plain = bandit.win_prop(draw=20000, seed=4)
    sharp = bandit.win_prop(draw=20000, seed=4, aggressive=2.0)
    weights = {k: v**2 for k, v in plain.items()}
    total = sum(weights.values())
    assert sharp == pytest.approx({k: v / total for k, v in weights.items()}, rel=1e-9)


def test_seeds(bk):
    a, b = bk.LogisticBandit(seed=11), bk.LogisticBandit(seed=11)
    for bandit in (a, b):
        bandit.update({"a": [300, 30], "b": [300, 33], "c": [300, 31]})
    first = a.win_prop(draw=3000)
    assert first == b.win_prop(draw=3000)
    assert a.win_prop(draw=3000, seed=5) == b.win_prop(draw=3000, seed=5)
    assert a.win_prop(draw=3000) == b.win_prop(draw=3000)  # a per-call seed leaves the stream
    assert a.win_prop(draw=3000) != first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"draw": 0}, "draw must be positive, got 0"),
        ({"draw": 1.5}, "draw must be"),
        ({"draw": True}, "draw must be"),
        ({"aggressive": 0.0}, "aggressive must be positive"),
        ({"aggressive": float("nan")}, "aggressive must be"),
        ({"method": "bogus"}, "method must be"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_win_prop_arguments(bk, kwargs, message):
    bandit, twin = fitted(bk, seed=9), fitted(bk, seed=9)
    with pytest.raises(ValueError, match=message):
        bandit.win_prop(**kwargs)
    assert bandit.win_prop(draw=1000) == twin.win_prop(draw=1000)


def test_non_psd_precision_is_rejected_at_construction(bk):
    """A precision must be PSD up to rounding (docs/validation.md: saved state is data)."""
    for sigma_inv in (np.diag([1.0, -200.0, 1.0]), -np.eye(3)):
        with pytest.raises(ValueError, match="sigma_inv must be positive semidefinite"):
            bk.LogisticBandit([0.0, 0.0, 0.0], sigma_inv, ["a", "b", "c"])


def non_psd_bandit(py_bk, diagonal: list[float], seed: int | None = None):
    """A reference-backend bandit whose state was set past the constructor's checks, to reach
    the contract's covariance repair (a valid state only needs it for rounding)."""
    bandit = py_bk.LogisticBandit([0.0, 0.0, 0.0], np.eye(3), ["a", "b", "c"], seed=seed)
    bandit.sigma_inv = np.diag(diagonal)
    return bandit


def test_non_psd_covariance_is_repaired_with_a_warning(py_bk):
    bandit = non_psd_bandit(py_bk, [1.0, -200.0, 1.0], seed=0)
    with pytest.warns(RuntimeWarning, match="added 0.001 to its diagonal 5 time"):
        shares = bandit.win_prop(draw=1000)
    assert sum(shares.values()) == pytest.approx(1.0)
    hopeless = non_psd_bandit(py_bk, [1.0, -1.0, 1.0])
    with pytest.raises(
        ValueError,
        match="Failed to make covariance matrix positive semidefinite after 100 iterations",
    ):
        hopeless.win_prop(draw=1000)


# ----------------------------------------------------------------------------- select


def test_select(bk):
    bandit = fitted(bk, seed=12)
    assert bandit.select() in {"a", "b", "c"}
    ranking = bandit.select(n=3, seed=1)
    assert sorted(ranking) == ["a", "b", "c"]
    assert ranking[0] == bandit.select(seed=1)
    with pytest.raises(ValueError, match="n must be"):
        bandit.select(n=4)
    with pytest.raises(ValueError, match="no arms to select from"):
        bk.LogisticBandit().select()
    single = bk.LogisticBandit([0.3], [[2.0]], ["only"])
    assert single.select() == "only"


def test_select_frequencies_follow_win_prop(bk):
    bandit = bk.LogisticBandit(seed=13)
    bandit.update({"a": [300, 30], "b": [300, 36], "c": [300, 33]})
    n = 3000
    picks = [bandit.select() for _ in range(n)]
    expect = bandit.win_prop(draw=200_000, seed=1)
    for name, p in expect.items():
        assert picks.count(name) / n == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / n))


# ----------------------------------------------------------------------------- copies


@pytest.mark.parametrize(
    "duplicate", [lambda b: pickle.loads(pickle.dumps(b)), copy.deepcopy, copy.copy]
)
def test_copies_continue_identically(bk, duplicate):
    bandit = fitted(bk, seed=21)
    bandit.win_prop(draw=100)
    twin = duplicate(bandit)
    assert logistic_state(twin) == logistic_state(bandit) and repr(twin) == repr(bandit)
    assert twin.win_prop(draw=2000) == bandit.win_prop(draw=2000)
    twin.update({"a": [10, 1]})
    assert logistic_state(twin) != logistic_state(bandit)


def test_attributes_are_copies_in_rust(rs_bk):
    bandit = fitted(rs_bk)
    bandit.mu[0] = 99.0
    bandit.action_list.append("zz")
    assert bandit.mu[0] != 99.0 and bandit.action_list == ["a", "b", "c"]


def test_no_print_only_warnings(py_bk, capsys):
    bandit = non_psd_bandit(py_bk, [1.0, -200.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bandit.win_prop(draw=500)
        bandit.select()
    assert capsys.readouterr() == ("", "")


def test_rust_results_do_not_depend_on_the_thread_count():
    code = (
        "import banditkit_rs as R\n"
        "b = R.LogisticBandit(seed=3)\n"
        "b.update({f'arm{i}': [5000, 500 + 10 * i] for i in range(6)})\n"
        "print(b.win_prop(draw=100000), b.win_prop(draw=100000, seed=9), b.select(n=6))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "RAYON_NUM_THREADS": str(threads)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for threads in (1, 2)
    }
    assert len(outputs) == 1
