"""Synthetic logs whose true policy values are known: for tests, `banditkit evaluate
--simulate` and the bench.

The world: contexts x ~ N(0, I_d); expected rewards q(x, a) = x . theta_a + b_a (linear, so the
ridge `RewardModel` is well specified); rewards q + N(0, noise^2). The logging policy is a
softmax of q / temperature mixed with `epsilon` of uniform (so every pscore >= epsilon / K). The
true value of a policy on a log is mean_i sum_a pi(a|x_i) q(x_i, a), exact given the contexts,
which is the quantity every estimator here is unbiased for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from banditkit.ope.estimators import OffPolicyEstimator
from banditkit.ope.evaluate import Table, make_estimators, true_value
from banditkit.ope.loaders import Logged
from banditkit.ope.reward_model import RewardModel


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = np.exp(scores - scores.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def sample_actions(dist: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One arm per row of the (n, K) distribution `dist`."""
    u = rng.random((dist.shape[0], 1))
    picked = (np.cumsum(dist, axis=1) < u).sum(axis=1)
    return np.minimum(picked, dist.shape[1] - 1)  # rounding of the last cumulative sum


class SyntheticBandit:
    """A fixed linear-reward world (drawn from `seed`) that samples logs."""

    def __init__(
        self,
        n_actions: int = 10,
        n_features: int = 5,
        *,
        noise: float = 1.0,
        temperature: float = 1.0,
        epsilon: float = 0.1,
        seed: int = 0,
    ) -> None:
        if n_actions < 2 or n_features < 1:
            raise ValueError("a synthetic bandit needs n_actions >= 2 and n_features >= 1")
        rng = np.random.default_rng(seed)
        self.n_actions, self.n_features = n_actions, n_features
        self.noise, self.temperature, self.epsilon = noise, temperature, epsilon
        self.theta = rng.normal(0.0, 1.0 / math.sqrt(n_features), (n_actions, n_features))
        self.bias = rng.normal(0.0, 0.5, n_actions)

    def expected_reward(self, context: np.ndarray) -> np.ndarray:
        return context @ self.theta.T + self.bias

    def behaviour(self, expected_reward: np.ndarray) -> np.ndarray:
        soft = _softmax(expected_reward / self.temperature)
        return (1 - self.epsilon) * soft + self.epsilon / self.n_actions

    def target(self, expected_reward: np.ndarray, epsilon: float = 0.2) -> np.ndarray:
        """An evaluation policy unlike the logging one: epsilon-greedy on the true q."""
        best = np.argmax(expected_reward, axis=1)
        dist = np.full(expected_reward.shape, epsilon / self.n_actions)
        dist[np.arange(len(best)), best] += 1 - epsilon
        return dist

    def sample(self, n: int, seed: int | np.random.Generator) -> Logged:
        """A log of n events, with `expected_reward` (n, K) and `behaviour_dist` (n, K)."""
        rng = np.random.default_rng(seed)
        context = rng.standard_normal((n, self.n_features))
        q = self.expected_reward(context)
        dist = self.behaviour(q)
        action = sample_actions(dist, rng)
        rows = np.arange(n)
        return {
            "context": context,
            "action": action,
            "reward": q[rows, action] + self.noise * rng.standard_normal(n),
            "pscore": dist[rows, action],
            "n_actions": self.n_actions,
            "expected_reward": q,
            "behaviour_dist": dist,
        }


def simulate(
    world: SyntheticBandit,
    n: int,
    repeats: int,
    estimators: Sequence[str | OffPolicyEstimator] | None = None,
    *,
    seed: int = 0,
    alpha: float = 0.05,
    reward_model: RewardModel | None = None,
) -> Table:
    """Bias and RMSE of each estimator over `repeats` logs of `n` events, against each log's
    true value of the world's target policy; also the spread (sd), the standard error of the
    bias (sd / sqrt(repeats)) and how often the normal interval covered the truth."""
    from statistics import NormalDist

    ests = make_estimators(estimators)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    errors = np.empty((repeats, len(ests)))
    covered = np.zeros(len(ests))
    truths = np.empty(repeats)
    for rep in range(repeats):
        log = world.sample(n, np.random.default_rng([seed, rep]))
        pi = world.target(log["expected_reward"])
        truths[rep] = true_value(pi, log["expected_reward"])
        model = reward_model or RewardModel(world.n_actions, seed=rep)
        q = model.fit_predict(log["context"], log["action"], log["reward"])
        for j, est in enumerate(ests):
            terms = est.terms(log["reward"], log["action"], log["pscore"], pi, q)
            value, se = terms.value(), terms.standard_error()
            errors[rep, j] = value - truths[rep]
            covered[j] += abs(value - truths[rep]) <= z * se
    rows = Table()
    for j, est in enumerate(ests):
        err = errors[:, j]
        sd = float(err.std(ddof=1)) if repeats > 1 else math.nan
        rows.append(
            {
                "estimator": est.name,
                "bias": float(err.mean()),
                "bias_se": sd / math.sqrt(repeats),
                "rmse": float(np.sqrt(np.mean(err**2))),
                "sd": sd,
                "coverage": float(covered[j] / repeats),
                "true_value": float(truths.mean()),
            }
        )
    return rows
