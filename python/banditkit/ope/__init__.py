"""`banditkit.ope`: off-policy evaluation of a policy from logged bandit feedback.

    from banditkit.ope import DR, RewardModel, evaluate, load_logged

    log = load_logged("log.npz")                     # context, action, reward, pscore, n_actions
    q = RewardModel(log["n_actions"]).fit_predict(log["context"], log["action"], log["reward"])
    DR().estimate_policy_value(log["reward"], log["action"], log["pscore"], action_dist, q)
    DR().estimate_interval(..., alpha=0.05, n_bootstrap=1000, seed=0)   # dict(mean, lower, upper)
    print(evaluate(log, action_dist))                # all seven estimators, with intervals

The estimators (IPS, SNIPS, DM, DR, SNDR, SwitchDR, DRos) follow Open Bandit Pipeline's
definitions and verbs; the bootstrap runs in the Rust core (deterministic per seed, parallel).
See docs/ope.md.
"""

from __future__ import annotations

from banditkit.ope.estimators import (
    DM,
    DR,
    ESTIMATORS,
    IPS,
    SNDR,
    SNIPS,
    DRos,
    Estimate,
    OffPolicyEstimator,
    SwitchDR,
)
from banditkit.ope.evaluate import Table, evaluate, true_value
from banditkit.ope.loaders import check_logged, from_events, from_store, load_logged, save_logged
from banditkit.ope.reward_model import RewardModel
from banditkit.ope.synthetic import SyntheticBandit, simulate

__all__ = [
    "DM",
    "DR",
    "DRos",
    "ESTIMATORS",
    "Estimate",
    "IPS",
    "OffPolicyEstimator",
    "RewardModel",
    "SNDR",
    "SNIPS",
    "SwitchDR",
    "SyntheticBandit",
    "Table",
    "check_logged",
    "evaluate",
    "from_events",
    "from_store",
    "load_logged",
    "save_logged",
    "simulate",
    "true_value",
]
