"""docs/validation.md, one table: every input of issue 11 (item 6, and the overflows of item 4)
through both backends, with the same exception type and message, the object left exactly as
it was (state and random stream); and the array-likes both backends must accept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bandit_state import linear_state, logistic_state, tspar_state

D = 3
X1 = np.array([1.0, 0.5, -0.25])
OVERFLOW = r"^update would make the state of arm .*'?{arm}'? non-finite \(overflow\)"


def overflow(arm: str) -> str:
    return OVERFLOW.format(arm=arm)


# ----------------------------------------------------------------------------- objects


def linear(bk) -> Any:
    b = bk.LinearBandit(seed=3)
    b.update({"a": [1e308], "b": [1.0, 2.0]})  # "a" is one more 1e308 away from overflowing
    return b


def tspar(bk) -> Any:
    b = bk.TSPar(seed=3)
    b.update({"a": [1e308, 1e308], "b": [10, 4]})
    return b


def logistic(bk) -> Any:
    b = bk.LogisticBandit(seed=3)
    b.update({"a": [100, 30], "b": [120, 41], "c": [90, 20]})
    return b


def contextual(cls: str) -> Callable[[Any], Any]:
    def make(bk) -> Any:
        b = getattr(bk, cls)(["a", "b"], D, seed=3)
        b.update("a", X1, 1e308)  # one more reward of 1e308 overflows b
        b.update("b", -X1, 0.5)
        return b

    make.__name__ = cls
    return make


def construct(cls: str, kwargs: dict[str, Any]) -> Callable[[Any, Any], Any]:
    """A table call that builds `cls(["a"], **kwargs)`."""
    return lambda bk, _: getattr(bk, cls)(["a"], **kwargs)


def state(bandit: Any) -> tuple:
    """Everything observable, the random stream included (the last draw advances it: the
    bandit and its twin see the same calls, so equal snapshots mean equal streams)."""
    if hasattr(bandit, "sigma_inv"):
        return (logistic_state(bandit), bandit.win_prop(draw=500))
    if hasattr(bandit, "alpha") and hasattr(bandit, "action_list"):
        return (tspar_state(bandit), bandit.win_prop(draw=500))
    if hasattr(bandit, "mu"):
        return (linear_state(bandit), bandit.win_prop(draw=500))
    arms = bandit.arms
    matrices = [
        [np.asarray(getattr(bandit, f)(arm)).tolist() for f in ("theta", "a_inv", "gram", "b")]
        for arm in arms
    ]
    draws = np.asarray(bandit.decision_function(np.eye(D))).tolist()  # LinTS draws normals
    return (arms, matrices, bandit.get_stats()["total_pulls"], draws)


# ----------------------------------------------------------------------------- the table

# (id, make (None: a constructor call), call(bk, bandit), exception, message pattern)
CASES: list[tuple[str, Callable | None, Callable, type, str]] = [
    # --- settings of the wrong type: TypeError
    ("linear default_sigma str", None, lambda bk, _: bk.LinearBandit(default_sigma="1"),
     TypeError, "^default_sigma must be a number"),
    ("linear obs_noise bool", None, lambda bk, _: bk.LinearBandit(obs_noise=True),
     TypeError, "^obs_noise must be a number"),
    ("linear decay str", linear, lambda bk, b: b.update({"b": [1.0]}, decay="0.5"),
     TypeError, "^decay must be a number"),
    ("linear aggressive str", linear, lambda bk, b: b.win_prop(aggressive="2"),
     TypeError, "^aggressive must be a number"),
    ("linear method int", linear, lambda bk, b: b.win_prop(method=1),
     TypeError, "^method must be 'mc' or 'exact'"),
    ("linear select n float", linear, lambda bk, b: b.select(n=1.0),
     TypeError, "^n must be an integer"),
    ("linear select n bool", linear, lambda bk, b: b.select(n=True),
     TypeError, "^n must be an integer"),
    ("tspar alpha_0 str", tspar, lambda bk, b: b.update({"b": [3, 1]}, alpha_0="x"),
     TypeError, "^alpha_0 must be a number"),
    ("tspar max_iter float", tspar, lambda bk, b: b.update({"b": [3, 1]}, max_iter=1.5),
     TypeError, "^max_iter must be an integer"),
    ("logistic odds_ratios_only str", logistic,
     lambda bk, b: b.update({"a": [10, 3]}, odds_ratios_only="no"),
     TypeError, "^odds_ratios_only must be True or False"),
    ("logistic odds_ratios_only int", logistic,
     lambda bk, b: b.update({"a": [10, 3]}, odds_ratios_only=1),
     TypeError, "^odds_ratios_only must be True or False"),
    ("logistic remove_not_observed str", logistic,
     lambda bk, b: b.update({"a": [10, 3]}, remove_not_observed="yes"),
     TypeError, "^remove_not_observed must be True or False"),
    ("logistic decay str", logistic, lambda bk, b: b.update({"a": [10, 3]}, decay="0"),
     TypeError, "^decay must be a number"),
    *[
        (f"{cls} {name}", None, construct(cls, kw), TypeError, f"^{pattern}")
        for cls in ("LinUCB", "LinTS")
        for name, kw, pattern in [
            ("n_features bool", {"n_features": True}, "n_features must be an integer"),
            ("n_features float", {"n_features": 1.5}, "n_features must be an integer"),
            ("n_features whole float", {"n_features": 2.0}, "n_features must be an integer"),
            ("window_size float", {"n_features": D, "window_size": 2.5},
             "window_size must be an integer"),
            ("gamma str", {"n_features": D, "gamma": "x"}, "gamma must be a number"),
            ("l2_lambda str", {"n_features": D, "l2_lambda": "1"}, "l2_lambda must be a number"),
            ("refactor_every float", {"n_features": D, "refactor_every": 10.0},
             "refactor_every must be an integer"),
        ]
    ],
    ("LinUCB alpha str", None, lambda bk, _: bk.LinUCB(["a"], D, alpha="1"),
     TypeError, "^alpha must be a number"),
    ("LinTS v bool", None, lambda bk, _: bk.LinTS(["a"], D, v=True),
     TypeError, "^v must be a number"),
    # --- settings of a wrong value: ValueError
    ("linear default_sigma 0", None, lambda bk, _: bk.LinearBandit(default_sigma=0),
     ValueError, "^default_sigma must be positive"),
    ("linear method str", linear, lambda bk, b: b.win_prop(method="magic"),
     ValueError, "^method must be 'mc' or 'exact'"),
    ("linear decay nan", linear, lambda bk, b: b.update({"b": [1.0]}, decay=float("nan")),
     ValueError, "^decay must be between"),
    ("LinUCB n_features 0", None, lambda bk, _: bk.LinUCB(["a"], 0),
     ValueError, "^n_features must be positive"),
    ("LinUCB gamma 1.5", None, lambda bk, _: bk.LinUCB(["a"], D, gamma=1.5),
     ValueError, r"^gamma must be in \(0, 1\]"),
    ("LinTS window_size -1", None, lambda bk, _: bk.LinTS(["a"], D, window_size=-1),
     ValueError, "^window_size must be non-negative"),
    # --- draw and seed keep ValueError (the drop-in contract)
    ("linear draw float", linear, lambda bk, b: b.win_prop(draw=1.5),
     ValueError, "^draw must be an integer"),
    ("tspar seed str", tspar, lambda bk, b: b.select(seed="7"),
     ValueError, "^seed must be a non-negative integer"),
    # --- numbers in data are real numbers, never bools or strings: ValueError
    ("linear rewards bool array", linear,
     lambda bk, b: b.update({"b": np.array([True, False])}), ValueError, "^Rewards must be"),
    ("linear rewards str array", linear,
     lambda bk, b: b.update({"b": np.array(["1.5"])}), ValueError, "^Rewards must be"),
    ("linear reward bool", linear, lambda bk, b: b.update({"b": True}),
     ValueError, "^Rewards must be"),
    ("linear reward str", linear, lambda bk, b: b.update({"b": "1.0"}),
     ValueError, "^Rewards must be"),
    ("linear reward None", linear, lambda bk, b: b.update({"b": None}),
     ValueError, "^Rewards must be"),
    ("tspar counts str", tspar, lambda bk, b: b.update({"b": "ab"}),
     ValueError, r"^Each observation must be \[total_count, success_count\]"),
    ("tspar counts bool", tspar, lambda bk, b: b.update({"b": [True, 1]}),
     ValueError, "^Total count must be"),
    ("tspar counts bool array", tspar, lambda bk, b: b.update({"b": np.array([True, True])}),
     ValueError, "^Total count must be"),
    ("logistic counts str", logistic, lambda bk, b: b.update({"a": ["10", "3"]}),
     ValueError, "^Total count must be"),
    *[
        (f"{cls} {name}", contextual(cls), call, ValueError, pattern)
        for cls in ("LinUCB", "LinTS")
        for name, call, pattern in [
            ("reward str", lambda bk, b: b.update("b", X1, "1.0"), "^reward must be a number"),
            ("reward bool", lambda bk, b: b.update("b", X1, True), "^reward must be a number"),
            ("reward None", lambda bk, b: b.update("b", X1, None), "^reward must be a number"),
            ("reward nan", lambda bk, b: b.update("b", X1, float("nan")), "^reward must be"),
            ("context str", lambda bk, b: b.update("b", ["1", "0", "0"], 1.0),
             "^context must be"),
            ("context bool", lambda bk, b: b.update("b", np.array([True, False, True]), 1.0),
             "^context must be"),
            ("select context str", lambda bk, b: b.select(["1", "0", "0"]), "^context must be"),
            ("X str", lambda bk, b: b.partial_fit([["1", "0", "0"]], ["b"], [1.0]),
             "^X must be"),
            ("rewards str", lambda bk, b: b.partial_fit([X1], ["b"], ["1.0"]),
             "^rewards must be"),
            ("rewards bool", lambda bk, b: b.partial_fit([X1], ["b"], np.array([True])),
             "^rewards must be"),
        ]
    ],
    # --- a string is never a list of arms: ValueError
    ("linear win_prop action_list str", linear, lambda bk, b: b.win_prop(action_list="ab"),
     ValueError, "^action_list must be a list of"),
    ("logistic get_par str", logistic, lambda bk, b: b.get_par("ab"),
     ValueError, "^action_list must be a list of"),
    ("logistic transform str", logistic, lambda bk, b: b.transform("ab"),
     ValueError, "^action_list must be a list of"),
    ("logistic constructor action_list str", None,
     lambda bk, _: bk.LogisticBandit([0.0, 0.0], np.eye(2), "ab"),
     ValueError, "^action_list must be a list of"),
    ("LinUCB arms str", None, lambda bk, _: bk.LinUCB("abc", D),
     ValueError, "^arms must be a list of"),
    ("LinTS arms str", None, lambda bk, _: bk.LinTS("abc", D),
     ValueError, "^arms must be a list of"),
    ("LinUCB available_arms str", contextual("LinUCB"),
     lambda bk, b: b.select(X1, available_arms="ab"),
     ValueError, "^available_arms must be a list of"),
    ("LinTS predict available_arms str", contextual("LinTS"),
     lambda bk, b: b.predict([X1], available_arms="ab"),
     ValueError, "^available_arms must be a list of"),
    ("LinUCB partial_fit arms str", contextual("LinUCB"),
     lambda bk, b: b.partial_fit([X1, X1], "ab", [1.0, 0.0]),
     ValueError, "^arms must be a list of"),
    # --- saved state / LogisticBandit's state is data: checked at construction
    ("logistic sigma_inv negative definite", None,
     lambda bk, _: bk.LogisticBandit([0.0, 0.0], -np.eye(2), ["a", "b"]),
     ValueError, "^sigma_inv must be positive semidefinite"),
    ("logistic sigma_inv indefinite", None,
     lambda bk, _: bk.LogisticBandit([0.0, 0.0], [[1.0, 3.0], [3.0, 1.0]], ["a", "b"]),
     ValueError, "^sigma_inv must be positive semidefinite"),
    ("logistic sigma_inv nan", None,
     lambda bk, _: bk.LogisticBandit([0.0, 0.0], [[1.0, np.nan], [np.nan, 1.0]], ["a", "b"]),
     ValueError, "must be finite"),
    # --- finite input whose result would not be finite: ValueError naming the arm
    ("linear overflow", linear, lambda bk, b: b.update({"b": [1.0], "a": [1e308]}),
     ValueError, overflow("a")),
    ("tspar overflow", tspar, lambda bk, b: b.update({"b": [1, 1], "a": [1e308, 1e308]}),
     ValueError, overflow("a")),
    ("logistic overflow", logistic,
     lambda bk, b: b.update({f"n{i}": [1e308, 5e307] for i in range(8)}, odds_ratios_only=False),
     ValueError, overflow("n[0-7]")),
    *[
        (f"{cls} {name}", contextual(cls), call, ValueError, pattern)
        for cls in ("LinUCB", "LinTS")
        for name, call, pattern in [
            ("context 1e200", lambda bk, b: b.update("b", np.full(D, 1e200), 1.0), overflow("b")),
            ("reward 1e308 twice", lambda bk, b: b.update("a", X1, 1e308), overflow("a")),
            ("partial_fit all or nothing",
             lambda bk, b: b.partial_fit([X1, np.full(D, 1e200)], ["a", "b"], [1.0, 1.0]),
             overflow("b")),
            ("fit all or nothing",
             lambda bk, b: b.fit([X1, np.full(D, 1e200)], ["a", "b"], [1.0, 1.0]),
             overflow("b")),
        ]
    ],
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "call", "error", "pattern"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rejected_the_same_way_and_nothing_changes(bk, make, call, error, pattern):
    bandit, twin = (make(bk), make(bk)) if make else (None, None)
    with pytest.raises(error, match=pattern):
        call(bk, bandit)
    if bandit is not None:
        assert state(bandit) == state(twin)


# ----------------------------------------------------------------------------- accepted


def series(values: list) -> pd.Series:
    return pd.Series(values, index=[f"i{j}" for j in range(len(values))])


# (id, make, call with array-likes, the same call with plain lists)
ACCEPTED: list[tuple[str, Callable, Callable, Callable]] = [
    ("linear rewards Series", linear,
     lambda b: b.update({"b": series([1.0, 2.5]), "c": np.float32(0.5)}),
     lambda b: b.update({"b": [1.0, 2.5], "c": 0.5})),
    ("linear 0-d array and float32", linear,
     lambda b: b.update({"b": np.array(2.0), "c": np.array([0.5, 1.5], np.float32)}),
     lambda b: b.update({"b": 2.0, "c": [0.5, 1.5]})),
    ("tspar counts Series", tspar,
     lambda b: b.update({"b": series([10, 3]), "c": np.array([4.0, 4.0])}),
     lambda b: b.update({"b": [10, 3], "c": [4, 4]})),
    ("tspar numpy settings", tspar,
     lambda b: b.update({"b": (10, 3)}, alpha_0=np.float64(0.1), max_iter=np.int64(5)),
     lambda b: b.update({"b": [10, 3]})),
    ("logistic counts Series, np.bool_ flag", logistic,
     lambda b: b.update({"a": series([10, 3]), "d": np.array([5, 1])},
                        odds_ratios_only=np.bool_(False)),
     lambda b: b.update({"a": [10, 3], "d": [5, 1]}, odds_ratios_only=False)),
    *[
        (f"{cls} {name}", contextual(cls), fast, plain)
        for cls in ("LinUCB", "LinTS")
        for name, fast, plain in [
            ("Series context, numpy reward",
             lambda b: b.update("b", series([1.0, 0.5, -0.25]), np.float64(2.0)),
             lambda b: b.update("b", [1.0, 0.5, -0.25], 2.0)),
            ("int context, 0-d reward",
             lambda b: b.update("b", np.array([1, 0, 2]), np.array(3)),
             lambda b: b.update("b", [1.0, 0.0, 2.0], 3.0)),
            ("DataFrame and Series batch",
             lambda b: b.partial_fit(pd.DataFrame([X1, -X1]), series(["a", "b"]),
                                     series([1.0, 0.0])),
             lambda b: b.partial_fit([list(X1), list(-X1)], ["a", "b"], [1.0, 0.0])),
        ]
    ],
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "fast", "plain"), [case[1:] for case in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_array_likes_are_accepted_as_lists(bk, make, fast, plain):
    bandit, twin = make(bk), make(bk)
    fast(bandit)
    plain(twin)
    assert state(bandit) == state(twin)


def test_numpy_settings_are_accepted(bk):
    for cls in (bk.LinUCB, bk.LinTS):
        b = cls(np.array(["a", "b"]), np.int64(D), l2_lambda=np.float32(0.5), gamma=np.float64(1))
        assert b.arms == ["a", "b"] and b.n_features == D
    assert bk.LinearBandit(default_sigma=np.float32(2.0), obs_noise=1).default_sigma == 2.0
