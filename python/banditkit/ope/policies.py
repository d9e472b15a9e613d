"""Evaluation policies that need no learner: what `banditkit evaluate --policy` accepts.

- `uniform`: 1/K each;
- `logged`: the logging policy itself (an on-policy check: IPS and SNIPS are then the mean
  reward). With the log's `behaviour_dist` that is the whole distribution. Most logs keep only
  the logged arm's probability: the rest is then spread evenly over the other arms, which
  leaves the importance weights (all 1) exact, but makes pi_e depend on the logged arm, so
  DM and the DR family are not valid on it (`logged_weights_only` says so);
- `greedy`, `linucb`, `lints`: policies fitted on the log's own per-arm ridge `RewardModel`
  (in-sample, so they look at the same events they are evaluated on): the argmax of q, of
  q + alpha * width, or Thompson sampling with scores N(q, (alpha * width)^2), whose arm
  probabilities are computed exactly per event (`banditkit.prob_best_gaussian_rows`, the
  scores being independent given x). Ties share the probability;
- a `.npz` file holding `action_dist` (n, K) (or a single array).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from banditkit.ope import _inputs
from banditkit.ope.reward_model import RewardModel

POLICIES = ("uniform", "logged", "greedy", "linucb", "lints")


def logged_weights_only(spec: str, logged: dict[str, Any]) -> bool:
    """True when `spec` is the logging policy known only through its pscores: then only the
    importance weights are right, and only IPS and SNIPS may be used."""
    return spec == "logged" and "behaviour_dist" not in logged


def share_ties(scores: np.ndarray) -> np.ndarray:
    """The argmax of each row as a distribution, ties sharing it evenly."""
    top = scores == scores.max(axis=1, keepdims=True)
    return top / top.sum(axis=1, keepdims=True)


def action_dist(spec: str, logged: dict[str, Any], *, alpha: float = 1.0) -> np.ndarray:
    """The (n, K) action distribution of the policy named `spec` on the log's events."""
    n, k = logged["reward"].size, logged["n_actions"]
    if spec == "uniform":
        return np.full((n, k), 1.0 / k)
    if spec == "logged":
        if "behaviour_dist" in logged:
            return logged["behaviour_dist"]
        if k == 1:
            return np.ones((n, 1))
        dist = np.repeat(((1.0 - logged["pscore"]) / (k - 1))[:, None], k, axis=1)
        dist[np.arange(n), logged["action"]] = logged["pscore"]
        return dist
    if spec in ("greedy", "linucb", "lints"):
        if logged["context"].shape[1] == 0:
            raise ValueError(f"the {spec} policy needs a log with contexts")
        model = RewardModel(k, n_folds=1).fit(logged["context"], logged["action"], logged["reward"])
        q = model.predict(logged["context"])
        if spec == "greedy":
            return share_ties(q)
        assert model.ridge is not None
        width = model.ridge.widths(logged["context"])
        if spec == "linucb":
            return share_ties(q + alpha * width)
        import banditkit

        return banditkit.prob_best_gaussian_rows(q, alpha * width, share_ties=True)
    if spec.lower().endswith(".npz") or os.path.exists(spec):
        with np.load(spec, allow_pickle=False) as data:
            if "action_dist" in data.files:
                arr = data["action_dist"]
            elif len(data.files) == 1:
                arr = data[data.files[0]]
            else:
                raise ValueError(f"{spec} holds {', '.join(data.files)}; name one action_dist")
        return _inputs.probabilities("action_dist", arr)
    raise ValueError(f"unknown policy {spec!r}: choose from {', '.join(POLICIES)} or a .npz file")
