"""Models of every class in a non-trivial state, their full observable state, and their next
random answers: shared by the format and fuzzing tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bandit_state import linear_state, logistic_state, tspar_state

D = 4
X_NEXT = np.random.default_rng(99).standard_normal((6, D))


def linear(bk: Any, seed: int | None = 5) -> Any:
    b = bk.LinearBandit(
        mu={"p": 0.2}, sigma={"p": 0.7}, default_sigma=2.5, obs_noise=0.1, seed=seed
    )
    b.update({"a": [1.0, 2.0], 3: [0.5], -7: 0.25})
    b.win_prop(draw=100)  # move the generator away from its seeded start
    return b


def tspar(bk: Any, seed: int | None = 5) -> Any:
    b = bk.TSPar(seed=seed)
    b.update({"a": [10, 3], 3: [12, 7], "z": [4, 4]})
    b.select()
    return b


def logistic(bk: Any, seed: int | None = 5) -> Any:
    b = bk.LogisticBandit(seed=seed)
    b.update({"a": [100, 30], 3: [120, 50], "ref": [90, 20]})
    b.update({"a": [10, 3], "new": [20, 4]}, odds_ratios_only=False)
    b.select()
    return b


def contextual(cls: str, **kw: Any) -> Callable[..., Any]:
    def make(bk: Any, seed: int | None = 5) -> Any:
        param = {"alpha": 0.7} if cls == "LinUCB" else {"v": 0.4}
        b = getattr(bk, cls)(["a", 7, "c"], D, seed=seed, refactor_every=5, **param, **kw)
        rng = np.random.default_rng(1)
        n = 23
        b.partial_fit(rng.standard_normal((n, D)), (["a", 7, "c", "a"] * 6)[:n], rng.normal(size=n))
        b.predict(X_NEXT[:2])
        return b

    make.__name__ = f"{cls.lower()}_{'_'.join(kw) or 'plain'}"
    return make


MAKERS = [
    linear,
    tspar,
    logistic,
    contextual("LinUCB"),
    contextual("LinTS"),
    contextual("LinUCB", window_size=5, gamma=0.9),
    contextual("LinTS", window_size=5, gamma=0.9),
]


def state_of(b: Any) -> tuple:
    """Every number of the model's state, as plain Python values (== means bit-identical)."""
    name = type(b).__name__
    if name == "LinearBandit":
        return linear_state(b)
    if name == "TSPar":
        return tspar_state(b)
    if name == "LogisticBandit":
        return logistic_state(b)
    out: list = [
        name,
        b.arms,
        b.n_features,
        b.l2_lambda,
        b.window_size,
        b.gamma,
        b.refactor_every,
        b.get_stats(),
    ]
    for k in b.arms:
        out += [b.theta(k).tolist(), b.a_inv(k).tolist(), b.gram(k).tolist(), b.b(k).tolist()]
    return tuple(out)


def next_answers(b: Any) -> list:
    """The next answers that use the generator: equal only if the generators are in step."""
    name = type(b).__name__
    if name in ("LinUCB", "LinTS"):
        return [b.decision_function(X_NEXT).tolist(), b.predict(X_NEXT), b.select(X_NEXT[0])]
    answers = [b.win_prop(draw=500), b.select(n=2), b.select()]
    return answers + [b.win_prop(draw=500)]
