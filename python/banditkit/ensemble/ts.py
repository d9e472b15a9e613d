"""`BootstrapTS`: bootstrapped Thompson sampling for contextual bandits (as Vowpal Wabbit's
`--bag` and contextualbandits' BootstrappedTS).

Each arm keeps `n_estimators` ridge models, an online bootstrap: every observation enters
member j with a Poisson(1) weight (0 leaves the member unchanged). A decision picks one member
index at random and plays the arm whose member j scores highest, so the probability of playing
an arm is exactly its share of the members' votes (`propensities`). Members are kept as
inverses of their ridge matrices (Sherman-Morrison: one rank-one update per observation,
vectorised over members). Unlike LinUCB/LinTS, an object holds no lock: share one between
threads only behind your own lock. It is not saved by `banditkit.save` (yet).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from ..python._validate import (
    arm_mask,
    arm_position,
    check_arm_list,
    check_context,
    check_contexts,
    check_positive,
    check_reward,
    check_rewards,
    check_seed,
    overflow_error,
    setting_integer,
)


class BootstrapTS:
    """Bootstrapped Thompson sampling over `arms`, contexts of `n_features` numbers."""

    def __init__(
        self,
        arms: Iterable[Hashable],
        n_features: int,
        n_estimators: int = 50,
        alpha: float = 1.0,
        seed: int | None = None,
        prior_scale: float = 1.0,
    ) -> None:
        labels = check_arm_list(list(arms) if not isinstance(arms, str) else arms, "arms")
        if not labels:
            raise ValueError("arms must not be empty")
        if len(set(labels)) != len(labels):
            raise ValueError("arms must be distinct")
        self.n_features = setting_integer(n_features, "n_features")
        if self.n_features < 1:
            raise ValueError(f"n_features must be at least 1, got {n_features!r}")
        self.n_estimators = setting_integer(n_estimators, "n_estimators")
        if self.n_estimators < 1:
            raise ValueError(f"n_estimators must be at least 1, got {n_estimators!r}")
        self.alpha = check_positive(alpha, "alpha")
        if isinstance(prior_scale, bool) or not isinstance(prior_scale, (int, float)):
            raise ValueError(f"prior_scale must be a number >= 0, got {prior_scale!r}")
        if not (math.isfinite(prior_scale) and prior_scale >= 0):
            raise ValueError(f"prior_scale must be a finite number >= 0, got {prior_scale!r}")
        self.prior_scale = float(prior_scale)
        self._labels = list(labels)
        self._rng = np.random.default_rng(check_seed(seed))
        self._reset()

    def _reset(self) -> None:
        k, m, d = len(self._labels), self.n_estimators, self.n_features
        self._a_inv = np.broadcast_to(np.eye(d) / self.alpha, (k, m, d, d)).copy()
        # A random prior per member (theta ~ N(0, prior_scale^2) before any data, as alpha
        # pseudo-observations that the data wash out): with all members at 0, an arm that once
        # paid a positive reward would beat every unplayed arm in every member, forever.
        self._b = self._rng.normal(0.0, self.prior_scale * self.alpha, size=(k, m, d))
        self._theta = self._b / self.alpha

    @property
    def arms(self) -> list[Hashable]:
        return list(self._labels)

    def _index(self, arm: Hashable) -> int:
        return arm_position(self._labels, arm)

    def _mask(self, available_arms: Sequence[Hashable] | None) -> np.ndarray | None:
        return arm_mask(self._labels, available_arms)

    # --- deciding ---

    def _member_scores(self, X: np.ndarray) -> np.ndarray:
        """Scores (rows, members, arms)."""
        return np.einsum("nd,kmd->nmk", X, self._theta)

    @staticmethod
    def _votes(scores: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        return np.argmax(scores, axis=-1)  # ties go to the first arm

    def select(self, x: object, available_arms: Sequence[Hashable] | None = None) -> Hashable:
        """The arm of a randomly chosen member (one member index for all arms)."""
        v = check_context(x, self.n_features)
        mask = self._mask(available_arms)
        j = int(self._rng.integers(self.n_estimators))
        scores = self._theta[:, j, :] @ v
        return self._labels[int(self._votes(scores[None, :], mask)[0])]

    def predict(self, X: object, available_arms: Sequence[Hashable] | None = None) -> list:
        """`select` for each row (a fresh member per row)."""
        m = check_contexts(X, self.n_features)
        mask = self._mask(available_arms)
        members = self._rng.integers(self.n_estimators, size=m.shape[0])
        scores = np.einsum("nd,knd->nk", m, self._theta[:, members, :])
        return [self._labels[int(k)] for k in self._votes(scores, mask)]

    def propensities(
        self, x: object, available_arms: Sequence[Hashable] | None = None
    ) -> np.ndarray:
        """The probability that `select(x)` plays each arm (in `arms` order): the share of
        members whose best arm it is. Sums to 1."""
        v = check_context(x, self.n_features)
        mask = self._mask(available_arms)
        votes = self._votes(self._member_scores(v[None, :])[0], mask)
        return np.bincount(votes, minlength=len(self._labels)) / self.n_estimators

    def predict_expectations(self, X: object) -> np.ndarray:
        """The members' mean score per row and arm, (rows, arms)."""
        m = check_contexts(X, self.n_features)
        return m @ self._theta.mean(axis=1).T

    # --- learning ---

    def update(self, arm: Hashable, x: object, reward: object) -> None:
        k = self._index(arm)
        v = check_context(x, self.n_features)
        self._learn([k], v[None, :], np.array([check_reward(reward)]))

    def partial_fit(self, X: object, arms: Iterable[Hashable], rewards: object) -> None:
        m = check_contexts(X, self.n_features)
        idx = [self._index(a) for a in check_arm_list(arms, "arms")]
        r = check_rewards(rewards)
        if not (len(idx) == len(r) == m.shape[0]):
            raise ValueError(
                f"X, arms and rewards must have the same length, got "
                f"{m.shape[0]}, {len(idx)}, {len(r)}"
            )
        self._learn(idx, m, r)

    def fit(self, X: object, arms: Iterable[Hashable], rewards: object) -> None:
        """Forget every observation, then learn these (all or nothing)."""
        saved = (self._a_inv, self._b, self._theta, self._rng.bit_generator.state)
        self._reset()
        try:
            self.partial_fit(X, arms, rewards)
        except BaseException:
            self._a_inv, self._b, self._theta = saved[:3]
            self._rng.bit_generator.state = saved[3]
            raise

    def _learn(self, arms: list[int], X: np.ndarray, rewards: np.ndarray) -> None:
        """Apply to copies and commit only if every touched arm stays finite."""
        rng_state = self._rng.bit_generator.state
        weights = self._rng.poisson(1.0, size=(len(arms), self.n_estimators)).astype(float)
        touched = sorted(set(arms))
        a_inv = {k: self._a_inv[k].copy() for k in touched}
        b = {k: self._b[k].copy() for k in touched}
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for k, x, r, w in zip(arms, X, rewards, weights, strict=True):
                u = a_inv[k] @ x  # (members, d)
                denom = 1.0 + w * (u @ x)
                a_inv[k] -= (w / denom)[:, None, None] * u[:, :, None] * u[:, None, :]
                b[k] += (w * r)[:, None] * x[None, :]
            theta = {k: np.einsum("mij,mj->mi", a_inv[k], b[k]) for k in touched}
            bad = [
                k
                for k in touched
                if not (np.all(np.isfinite(a_inv[k])) and np.all(np.isfinite(theta[k])))
            ]
        if bad:
            self._rng.bit_generator.state = rng_state
            raise overflow_error(self._labels[bad[0]])
        for k in touched:
            self._a_inv[k], self._b[k], self._theta[k] = a_inv[k], b[k], theta[k]
