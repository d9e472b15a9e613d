"""Bad input: a ValueError with the contract's message, and the object left exactly unchanged
(state and random generator), on both backends."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from bandit_state import assert_unchanged

NAN, INF = math.nan, math.inf


def make_linear(bk) -> Any:
    b = bk.LinearBandit(mu={"p": 0.2}, default_sigma=1.5, obs_noise=0.5, seed=17)
    b.update({"a": [1.0, 2.0], "b": [0.5]})
    return b


def make_tspar(bk) -> Any:
    b = bk.TSPar(seed=17)
    b.update({"a": [10, 3], "b": [12, 7]})
    return b


def check_rejected(
    bk, make: Callable, call: Callable[[Any], object], pattern: str, error: type = ValueError
) -> None:
    bandit, twin = make(bk), make(bk)
    with pytest.raises(error, match=pattern):
        call(bandit)
    assert_unchanged(bandit, twin)


# ---- LinearBandit constructor ----

LINEAR_CONSTRUCTOR = [
    ({"default_sigma": 0.0}, "^default_sigma must be positive, got"),
    ({"default_sigma": -1.0}, "^default_sigma must be positive, got"),
    ({"default_sigma": NAN}, "^default_sigma must be positive, got"),
    ({"default_sigma": INF}, "^default_sigma must be positive, got"),
    ({"obs_noise": 0}, "^obs_noise must be positive, got"),
    ({"obs_noise": -0.5}, "^obs_noise must be positive, got"),
    ({"obs_noise": NAN}, "^obs_noise must be positive, got"),
    ({"obs_noise": INF}, "^obs_noise must be positive, got"),
    ({"mu": {"a": NAN}}, "^prior mean must be finite, got .* for action 'a'"),
    ({"mu": {"a": 0.0, "b": -INF}}, "^prior mean must be finite, got .* for action 'b'"),
    ({"sigma": {"a": 0.0}}, "^prior sigma must be positive and finite, got .* for action 'a'"),
    ({"sigma": {"a": -2.0}}, "^prior sigma must be positive and finite, got .* for action 'a'"),
    ({"sigma": {"a": NAN}}, "^prior sigma must be positive and finite, got .* for action 'a'"),
    ({"mu": {"a": 1.0}, "sigma": {"a": INF}}, "^prior sigma must be positive and finite"),
    ({"seed": -1}, "^seed must be a non-negative integer"),
    ({"seed": 2**64}, "^seed must be a non-negative integer"),
    ({"seed": 1.5}, "^seed must be a non-negative integer"),
]


@pytest.mark.parametrize(("kwargs", "pattern"), LINEAR_CONSTRUCTOR)
def test_linear_constructor_rejects(bk, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        bk.LinearBandit(**kwargs)


def test_tspar_constructor_rejects_bad_seed(bk):
    for seed in (-3, 2**64, 0.5):
        with pytest.raises(ValueError, match="^seed must be a non-negative integer"):
            bk.TSPar(seed=seed)


def test_seed_bounds_accepted(bk):
    bk.LinearBandit(seed=0)
    bk.TSPar(seed=2**64 - 1)


# ---- LinearBandit.update ----

BAD_REWARDS = [
    ({}, "^obs dictionary cannot be empty"),
    ({"a": "abc"}, r"^Rewards must be a number, list, tuple, or array, got str for action 'a'"),
    ({"a": None}, r"^Rewards must be a number, list, tuple, or array, got NoneType for action 'a'"),
    ({"a": {"x": 1.0}}, r"^Rewards must be a number, list, tuple, or array, got dict"),
    ({"a": NAN}, "^Rewards must be finite, got .* for action 'a'"),
    ({"a": [1.0, INF]}, "^Rewards must be finite, got .* for action 'a'"),
    ({"a": np.array([0.5, np.nan])}, "^Rewards must be finite, got .* for action 'a'"),
    ({"a": (-INF,)}, "^Rewards must be finite"),
    ({"a": np.ones((2, 2))}, "^Rewards must be"),
    ({"a": [[1.0, 2.0], [3.0, 4.0]]}, "^Rewards must be"),
    ({"a": [1.0, "2"]}, "^Rewards must be"),
    # A good entry first, a bad one later: nothing at all may change, no arm may appear.
    ({"a": [1.0], "new": [2.0], "b": [NAN]}, "^Rewards must be finite, got .* for action 'b'"),
    ({"new": [1.0], "b": "x"}, "^Rewards must be a number, list, tuple, or array"),
    # Each reward is finite but their sum is not.
    ({"a": [1e308, 1e308]}, "^Rewards are too large: their sum overflows for action 'a'"),
    ({"a": np.full(16, 1.7e308)}, "^Rewards are too large: their sum overflows"),
]


@pytest.mark.parametrize(("obs", "pattern"), BAD_REWARDS)
def test_linear_update_rejects(bk, obs, pattern):
    check_rejected(bk, make_linear, lambda b: b.update(obs), pattern)


@pytest.mark.parametrize("decay", [-0.1, 1.5, NAN, INF])
def test_linear_update_rejects_decay(bk, decay):
    pattern = r"^decay must be between 0\.0 and 1\.0, got"
    check_rejected(
        bk, make_linear, lambda b: b.update({"a": [1.0], "n": [2.0]}, decay=decay), pattern
    )


def test_linear_update_rejects_non_dict(bk):
    check_rejected(bk, make_linear, lambda b: b.update([("a", 1.0)]), "^obs must be a dict")


# ---- win_prop arguments (both classes) ----

BAD_DRAW = [
    (0, r"^draw must be positive, got 0"),
    (-5, r"^draw must be positive, got -5"),
    (np.int64(0), r"^draw must be positive, got 0"),
    (2.5, r"^draw must be an integer, got 2\.5"),
    (1000.0, r"^draw must be an integer"),
    (True, r"^draw must be an integer, got True"),
    ("100", r"^draw must be an integer"),
]
BAD_SEED = [-1, 2**64, 1.5, "7", True]


@pytest.mark.parametrize("make", [make_linear, make_tspar])
@pytest.mark.parametrize(("draw", "pattern"), BAD_DRAW)
def test_win_prop_rejects_draw(bk, make, draw, pattern):
    check_rejected(bk, make, lambda b: b.win_prop(draw=draw), pattern)


@pytest.mark.parametrize("make", [make_linear, make_tspar])
@pytest.mark.parametrize("seed", BAD_SEED)
def test_win_prop_and_select_reject_seed(bk, make, seed):
    pattern = "^seed must be a non-negative integer"
    check_rejected(bk, make, lambda b: b.win_prop(draw=100, seed=seed), pattern)
    check_rejected(bk, make, lambda b: b.select(seed=seed), pattern)


@pytest.mark.parametrize("make", [make_linear, make_tspar])
def test_win_prop_rejects_method(bk, make):
    pattern = r"^method must be 'mc' or 'exact', got 'magic'"
    check_rejected(bk, make, lambda b: b.win_prop(draw=100, method="magic"), pattern)


def test_empty_models_still_validate(bk):
    """Arguments are checked even when there is nothing to sample."""
    with pytest.raises(ValueError, match="^draw must be positive"):
        bk.TSPar().win_prop(draw=0)
    with pytest.raises(ValueError, match="^draw must be positive"):
        bk.LinearBandit().win_prop(draw=0)
    with pytest.raises(ValueError, match="^aggressive must be positive"):
        bk.LinearBandit().win_prop(action_list=["x"], aggressive=-1.0)


@pytest.mark.parametrize("aggressive", [0.0, -1.0, NAN, INF, -INF])
def test_linear_win_prop_rejects_aggressive(bk, aggressive):
    pattern = "^aggressive must be positive, got"
    check_rejected(bk, make_linear, lambda b: b.win_prop(draw=100, aggressive=aggressive), pattern)


def test_linear_win_prop_rejects_string_action_list(bk):
    """A lone string would otherwise be read as a list of one-character names."""
    check_rejected(bk, make_linear, lambda b: b.win_prop(action_list="ab"), "^action_list must be")


# ---- TSPar.update ----

BAD_COUNTS = [
    ({}, "^obs dictionary cannot be empty"),
    (
        {"a": [1]},
        r"^Each observation must be \[total_count, success_count\], got .* for action 'a'",
    ),
    ({"a": [3, 1, 0]}, r"^Each observation must be \[total_count, success_count\]"),
    ({"a": 5}, r"^Each observation must be \[total_count, success_count\], got 5 for action 'a'"),
    ({"a": "ab"}, r"^Each observation must be \[total_count, success_count\]"),
    ({"a": np.ones((2, 2))}, r"^Each observation must be \[total_count, success_count\]"),
    ({"a": [-1, 0]}, r"^Total count must be non-negative, got -1 for action 'a'"),
    ({"a": [5, -1]}, r"^Success count must be non-negative, got -1 for action 'a'"),
    ({"a": [3, 5]}, r"^Success count \(5\) cannot exceed total count \(3\) for action 'a'"),
    ({"a": [NAN, 1]}, r"^Total count must be a finite whole number, got nan for action 'a'"),
    ({"a": [INF, 1]}, r"^Total count must be a finite whole number, got inf for action 'a'"),
    ({"a": [10, NAN]}, r"^Success count must be a finite whole number, got nan for action 'a'"),
    ({"a": [10, INF]}, r"^Success count must be a finite whole number"),
    ({"a": [2.5, 1]}, r"^Total count must be a finite whole number, got 2\.5 for action 'a'"),
    ({"a": [3, 1.5]}, r"^Success count must be a finite whole number, got 1\.5 for action 'a'"),
    ({"a": [10, 3], "new": [4, 2], "b": [2, 3]}, r"^Success count \(3\) cannot exceed total"),
    ({"new": [4, 2], "b": [-4, 0]}, r"^Total count must be non-negative"),
]


@pytest.mark.parametrize(("obs", "pattern"), BAD_COUNTS)
def test_tspar_update_rejects(bk, obs, pattern):
    check_rejected(bk, make_tspar, lambda b: b.update(obs), pattern)


def test_tspar_update_rejects_non_dict(bk):
    check_rejected(bk, make_tspar, lambda b: b.update([("a", [1, 0])]), "^obs must be a dict")


# ---- select ----


@pytest.mark.parametrize("make", [make_linear, make_tspar])
@pytest.mark.parametrize("n", [0, -1, 99])
def test_select_rejects_n(bk, make, n):
    check_rejected(bk, make, lambda b: b.select(n=n), "^n must be")


@pytest.mark.parametrize("make", [make_linear, make_tspar])
@pytest.mark.parametrize("n", [1.0, True, "1"])
def test_select_rejects_n_of_wrong_type(bk, make, n):
    """`n` is a setting: a wrong type is a TypeError (docs/validation.md)."""
    check_rejected(bk, make, lambda b: b.select(n=n), "^n must be an integer", TypeError)
