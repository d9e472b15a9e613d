"""`evaluate`: every estimator on one log and one evaluation policy, as a table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from banditkit.ope import _inputs
from banditkit.ope.estimators import ESTIMATORS, OffPolicyEstimator
from banditkit.ope.loaders import check_logged
from banditkit.ope.reward_model import RewardModel

DEFAULT_ESTIMATORS = tuple(ESTIMATORS)
COLUMNS = ("estimator", "value", "se", "lower", "upper", "boot_lower", "boot_upper")


class Table(list[dict[str, Any]]):
    """Rows (dicts) of an evaluation; `str()` prints them aligned, `to_pandas()` if you like."""

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(list(self))

    def __str__(self) -> str:
        if not self:
            return "(no rows)"
        cols = [c for c in self[0] if not isinstance(self[0][c], (list, dict))]

        def cell(v: Any) -> str:
            if isinstance(v, float):
                return "-" if math.isnan(v) else f"{v:.5g}"
            return "-" if v is None else str(v)

        cells = [[cell(r.get(c)) for c in cols] for r in self]
        widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)


def make_estimators(
    estimators: Sequence[str | OffPolicyEstimator] | None,
) -> list[OffPolicyEstimator]:
    """Estimator instances from instances or names (default: all seven, unclipped)."""
    out = []
    for e in DEFAULT_ESTIMATORS if estimators is None else estimators:
        if isinstance(e, OffPolicyEstimator):
            out.append(e)
        elif isinstance(e, str) and e in ESTIMATORS:
            out.append(ESTIMATORS[e]())
        else:
            raise ValueError(f"unknown estimator {e!r}; choose from {', '.join(ESTIMATORS)}")
    if not out:
        raise ValueError("estimators is empty")
    return out


def evaluate(
    logged: Mapping[str, Any],
    action_dist: npt.ArrayLike,
    estimators: Sequence[str | OffPolicyEstimator] | None = None,
    estimated_rewards: npt.ArrayLike | None = None,
    *,
    alpha: float = 0.05,
    n_bootstrap: int | None = 1000,
    seed: int | None = 0,
    reward_model: RewardModel | None = None,
) -> Table:
    """One row per estimator: value, standard error, normal and bootstrap intervals.

    The estimators that need a reward model use `estimated_rewards`; when it is None and the
    log has a context, a cross-fitted `reward_model` (default: `RewardModel(K)`, per-arm
    ridge, 5 folds) makes it. Every estimator bootstraps with the same seed, so their resamples
    are the same events (their intervals are comparable)."""
    log = check_logged(logged)
    ests = make_estimators(estimators)
    pi = _inputs.probabilities("action_dist", action_dist)
    q = (
        None
        if estimated_rewards is None
        else _inputs.matrix("estimated_rewards", estimated_rewards)
    )
    if q is None and any(e.needs_model for e in ests):
        if log["context"].shape[1] == 0 and reward_model is None:
            raise ValueError(
                "estimated_rewards is required by "
                + ", ".join(e.name for e in ests if e.needs_model)
                + " and the log has no context to fit a reward model on"
            )
        model = reward_model or RewardModel(log["n_actions"])
        q = model.fit_predict(log["context"], log["action"], log["reward"])
    # One check of the whole call before any estimator runs.
    _inputs.check(log["reward"], log["action"], log["pscore"], pi, q)
    rows = Table()
    for est in ests:
        result = est.estimate(
            log["reward"],
            log["action"],
            log["pscore"],
            pi,
            q if est.needs_model else None,
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
        row = result.as_dict()
        rows.append({c: row[c] for c in COLUMNS})
    return rows


def true_value(action_dist: npt.ArrayLike, expected_reward: npt.ArrayLike) -> float:
    """mean_i sum_a pi(a|x_i) q(x_i, a): the policy's value on the log's contexts."""
    pi = _inputs.probabilities("action_dist", action_dist)
    q = _inputs.matrix("expected_reward", expected_reward)
    return float(np.mean((pi * q).sum(axis=1)))
