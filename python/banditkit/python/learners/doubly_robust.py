"""DoublyRobust, the NumPy reference (docs/learners.md; the Rust backend does the same maths).

Two ridge models per arm, kept by Sherman-Morrison (`contextual._ArmModel`, no window, no
forgetting), so memory is O(K d^2) whatever the history:
- the reward model ``q_a``, fitted on the rewards of the rows where ``a`` was logged;
- the policy model ``pi_a``, fitted on the doubly robust pseudo-reward of EVERY row:
  ``Gamma_a = q_a(x) + 1[a == a_i] w_i (r_i - q_a(x))``, ``w_i = min(1 / p_i, max_weight)``,
  with ``q`` as it was before the row (the row never corrects itself).

Scores (``decision_function``): ``pi_a(x)``, plus ``alpha sqrt(x^T A_q_a^{-1} x)`` with
exploration "ucb" (the width of the reward model: how much arm ``a`` was logged near ``x``; the
policy model sees every row for every arm, so its width is the same for all arms).
Propensities: "ucb" shares the probability among tied maxima; "epsilon" mixes that with a
uniform draw over the available arms; "softmax" is ``exp(score / temperature)`` normalised.
``select`` draws one uniform per event and picks the arm by the inverse CDF of the
propensities, so its frequencies are the propensities by construction.

``propensity=None`` in ``update``/``partial_fit`` means the row was chosen by this learner:
its own propensity of that arm for ``x`` under the state before the call is used; if that is 0
(the learner would not pick the arm now) the row carries no correction (``w = 0``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _persist
from .._sync import Synchronized, synchronized
from .._validate import (
    arm_mask,
    arm_position,
    check_arm_list,
    check_context,
    check_contexts,
    check_positive,
    check_reward,
    check_rewards,
    check_seed,
    numeric_array,
    overflow_error,
    setting_integer,
    setting_number,
)
from ..contextual import _ArmModel, _hashable, default_refactor_every

EXPLORATIONS = ("ucb", "epsilon", "softmax")
Row = tuple[np.ndarray, int, float, float]  # context, arm index, reward, propensity used


def _learner_arms(arms: Iterable[Hashable]) -> list[Hashable]:
    labels: list[Hashable] = []
    for a in check_arm_list(arms, "arms"):
        _hashable(a)
        if a in labels:
            raise ValueError(f"duplicate arm {a!r}")
        labels.append(a)
    return labels


def check_propensities(values: object, n: int) -> np.ndarray:
    """Logged propensities: `n` numbers in (0, 1]."""
    p = numeric_array(values)
    if p is None:
        raise ValueError("propensities must be a 1-D array of numbers")
    p = p.reshape(-1)
    if p.shape[0] != n:
        raise ValueError(f"propensities must have {n} values, got {p.shape[0]}")
    bad = np.flatnonzero(~((p > 0.0) & (p <= 1.0)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"propensities must be in (0, 1], got {p[i]} at index {i}")
    return p


def check_propensity(value: object) -> float:
    p = numeric_array(value)
    if p is None or p.ndim != 0:
        raise ValueError(f"propensity must be a number, got {value!r}")
    v = float(p)
    if not (0.0 < v <= 1.0):
        raise ValueError(f"propensity must be in (0, 1], got {v}")
    return v


class DoublyRobust(Synchronized, _persist.Persistent):
    """A policy learnt from doubly robust pseudo-rewards; see the module docstring."""

    def __init__(
        self,
        arms: Iterable[Hashable],
        n_features: int,
        alpha: float = 1.0,
        l2_lambda: float = 1.0,
        max_weight: float = math.inf,
        max_history: int = 10_000,
        exploration: str = "ucb",
        epsilon: float = 0.05,
        temperature: float = 1.0,
        seed: int | None = None,
    ):
        d = setting_integer(n_features, "n_features")
        if d <= 0:
            raise ValueError(f"n_features must be positive, got {n_features}")
        a = setting_number(alpha, "alpha")
        if not (math.isfinite(a) and a >= 0.0):
            raise ValueError(f"alpha must be non-negative, got {alpha!r}")
        lam = check_positive(l2_lambda, "l2_lambda")
        w = setting_number(max_weight, "max_weight")
        if not w > 0.0:  # +inf allowed (no cap), NaN refused
            raise ValueError(f"max_weight must be positive, got {max_weight!r}")
        h = setting_integer(max_history, "max_history")
        if h < 0:
            raise ValueError(f"max_history must be non-negative, got {max_history}")
        if not isinstance(exploration, str):
            raise TypeError(f"exploration must be a string, got {exploration!r}")
        if exploration not in EXPLORATIONS:
            raise ValueError(
                f"exploration must be 'ucb', 'epsilon' or 'softmax', got {exploration!r}"
            )
        eps = setting_number(epsilon, "epsilon")
        if not (0.0 <= eps <= 1.0):
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        temp = check_positive(temperature, "temperature")
        self._labels = _learner_arms(arms)
        self.n_features, self.alpha, self.l2_lambda = d, a, lam
        self.max_weight, self.max_history, self.exploration = w, h, exploration
        self.epsilon, self.temperature = eps, temp
        self.seed = check_seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self._reward, self._policy = self._fresh(), self._fresh()
        self._history: deque[Row] = deque(maxlen=h)

    def _fresh(self) -> list[_ArmModel]:
        every = default_refactor_every(self.n_features)
        return [_ArmModel(self.n_features, self.l2_lambda, 0, 1.0, every) for _ in self._labels]

    # --- arms ---

    @property
    @synchronized
    def arms(self) -> list[Hashable]:
        return list(self._labels)

    def add_arm(self, arm: Hashable) -> None:
        raise ValueError(
            "DoublyRobust cannot add arms: every arm's policy model is fitted on every row; "
            "create a new learner with the new arm list and fit it on the logs"
        )

    def remove_arm(self, arm: Hashable) -> None:
        raise ValueError(
            "DoublyRobust cannot remove arms: every arm's policy model is fitted on every row; "
            "create a new learner with the new arm list and fit it on the logs"
        )

    # --- scoring ---

    def _scores(self, X: np.ndarray, fresh: bool = False) -> np.ndarray:
        """Scores of this learner (`fresh`: of a learner with no data, for `fit`)."""
        out = np.empty((X.shape[0], len(self._labels)))
        models = (self._fresh(), self._fresh()) if fresh else (self._policy, self._reward)
        for k, (pi, q) in enumerate(zip(*models, strict=True)):
            out[:, k] = X @ pi.theta
            if self.exploration == "ucb":
                out[:, k] += self.alpha * np.sqrt(q.variances(X))
        return out

    def _probabilities(
        self, X: np.ndarray, mask: np.ndarray | None, fresh: bool = False
    ) -> np.ndarray:
        s = self._scores(X, fresh)
        avail = np.ones(s.shape, dtype=bool) if mask is None else np.broadcast_to(mask, s.shape)
        s = np.where(avail, s, -np.inf)
        top = s.max(axis=1, keepdims=True)
        if self.exploration == "softmax":
            e = np.where(avail, np.exp((s - top) / self.temperature), 0.0)
            return e / e.sum(axis=1, keepdims=True)
        ties = s == top
        greedy = ties / ties.sum(axis=1, keepdims=True)
        if self.exploration == "ucb":
            return greedy
        uniform = avail / avail.sum(axis=1, keepdims=True)
        return (1.0 - self.epsilon) * greedy + self.epsilon * uniform

    def _ready(self) -> None:
        if not self._labels:
            raise ValueError("no arms to choose from")

    def _draw(self, probs: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The inverse CDF of each row at its uniform (rounding: the last possible arm)."""
        out = np.empty(len(probs), dtype=np.int64)
        for i, (p, v) in enumerate(zip(probs, u, strict=True)):
            k = int(np.searchsorted(np.cumsum(p), v, side="right"))
            out[i] = k if k < len(p) else int(np.flatnonzero(p > 0.0)[-1])
        return out

    @synchronized
    def select(
        self,
        x: object,
        available_arms: Sequence[Hashable] | None = None,
        return_propensity: bool = False,
    ) -> Any:
        v = check_context(x, self.n_features)
        mask = arm_mask(self._labels, available_arms)
        self._ready()
        p = self._probabilities(v[None, :], mask)
        k = int(self._draw(p, self._rng.random(1))[0])
        label = self._labels[k]
        return (label, float(p[0, k])) if return_propensity else label

    @synchronized
    def predict(self, X: object, available_arms: Sequence[Hashable] | None = None) -> list:
        m = check_contexts(X, self.n_features)
        mask = arm_mask(self._labels, available_arms)
        self._ready()
        picks = self._draw(self._probabilities(m, mask), self._rng.random(m.shape[0]))
        return [self._labels[int(k)] for k in picks]

    @synchronized
    def propensities(
        self, X: object, available_arms: Sequence[Hashable] | None = None
    ) -> np.ndarray:
        m = check_contexts(X, self.n_features)
        mask = arm_mask(self._labels, available_arms)
        self._ready()
        return self._probabilities(m, mask)

    @synchronized
    def decision_function(self, X: object) -> np.ndarray:
        return self._scores(check_contexts(X, self.n_features))

    @synchronized
    def predict_expectations(self, X: object) -> np.ndarray:
        """The reward model's estimate ``q_a(x)``, shape (n, n_arms)."""
        m = check_contexts(X, self.n_features)
        out = np.empty((m.shape[0], len(self._labels)))
        for k, q in enumerate(self._reward):
            out[:, k] = m @ q.theta
        return out

    @synchronized
    def policy_values(self, X: object) -> np.ndarray:
        """The policy model's estimate ``pi_a(x)`` (the DR value of each arm), (n, n_arms)."""
        m = check_contexts(X, self.n_features)
        out = np.empty((m.shape[0], len(self._labels)))
        for k, pi in enumerate(self._policy):
            out[:, k] = m @ pi.theta
        return out

    # --- learning ---

    def _rows(
        self, X: object, arms: object, rewards: object, propensities: object
    ) -> tuple[np.ndarray, list[int], np.ndarray, np.ndarray | None]:
        m = check_contexts(X, self.n_features)
        idx = [arm_position(self._labels, a) for a in check_arm_list(arms, "arms")]
        r = check_rewards(rewards)
        if not (len(idx) == len(r) == m.shape[0]):
            raise ValueError(
                f"X, arms and rewards must have the same length, got "
                f"{m.shape[0]}, {len(idx)}, {len(r)}"
            )
        p = None if propensities is None else check_propensities(propensities, m.shape[0])
        return m, idx, r, p

    def _logged(self, logged: Mapping[str, Any]) -> tuple[Any, list, Any, Any]:
        """OBP's keys: context, action (indices into .arms), reward, pscore (optional)."""
        for key in ("context", "action", "reward"):
            if key not in logged:
                raise ValueError(f"logged feedback must have the key {key!r}")
        actions = numeric_array(logged["action"])
        if actions is None or actions.ndim != 1:
            raise ValueError("action must be a 1-D array of arm indices")
        if np.any((actions != np.floor(actions)) | (actions < 0) | (actions >= len(self._labels))):
            raise ValueError(f"action must hold arm indices in [0, {len(self._labels)})")
        arms = [self._labels[int(a)] for a in actions]
        return logged["context"], arms, logged["reward"], logged.get("pscore")

    def _learn(
        self,
        X: np.ndarray,
        idx: list[int],
        r: np.ndarray,
        p: np.ndarray,
        reward: list[_ArmModel],
        policy: list[_ArmModel],
        history: deque[Row],
    ) -> None:
        """Apply the rows to copies; commit only if every model stays finite."""
        reward = [m.copy() for m in reward]
        policy = [m.copy() for m in policy]
        rows = []
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for i, k in enumerate(idx):
                x = X[i]
                self._add_policy_row(x, k, float(r[i]), float(p[i]), reward, policy)
                reward[k].add(x, float(r[i]))
                rows.append((x.copy(), k, float(r[i]), float(p[i])))
            self._commit(reward, policy, history)
        history.extend(rows)  # after the commit: the ring is never copied

    def _add_policy_row(
        self,
        x: np.ndarray,
        k: int,
        r: float,
        p: float,
        reward: list[_ArmModel],
        policy: list[_ArmModel],
    ) -> None:
        q = np.array([m.theta @ x for m in reward])
        w = 0.0 if p == 0.0 else min(1.0 / p, self.max_weight)
        gamma = q.copy()
        gamma[k] += w * (r - q[k])
        for a, m in enumerate(policy):
            m.add(x, float(gamma[a]))

    def _commit(
        self, reward: list[_ArmModel], policy: list[_ArmModel], history: deque[Row]
    ) -> None:
        for models in (reward, policy):
            bad = [k for k, m in enumerate(models) if not m.is_finite()]
            if bad:
                raise overflow_error(self._labels[bad[0]])
        self._reward, self._policy, self._history = reward, policy, history

    def _own(self, X: np.ndarray, idx: list[int], fresh: bool = False) -> np.ndarray:
        """This learner's propensity of each row's arm (state before the call)."""
        if not self._labels:
            return np.zeros(len(idx))
        probs = self._probabilities(X, None, fresh)
        return probs[np.arange(len(idx)), idx]

    @synchronized
    def update(self, arm: Hashable, x: object, reward: object, propensity: object = None) -> None:
        k = arm_position(self._labels, arm)
        v = check_context(x, self.n_features)
        r = check_reward(reward)
        p = self._own(v[None, :], [k]) if propensity is None else [check_propensity(propensity)]
        self._learn(
            v[None, :], [k], np.array([r]), np.asarray(p), self._reward, self._policy, self._history
        )

    def _fit(self, X: Any, arms: Any, rewards: Any, propensities: Any, reset: bool) -> None:
        if isinstance(X, Mapping):
            if arms is not None or rewards is not None or propensities is not None:
                raise ValueError("pass either logged feedback (a mapping) or X, arms, rewards")
            X, arms, rewards, propensities = self._logged(X)
        elif arms is None or rewards is None:
            raise ValueError("arms and rewards are required with X")
        m, idx, r, p = self._rows(X, arms, rewards, propensities)
        if reset:
            fresh = (self._fresh(), self._fresh(), deque(maxlen=self.max_history))
            if p is None:
                p = self._own(m, idx, fresh=True)
            self._learn(m, idx, r, p, *fresh)
        else:
            p = self._own(m, idx) if p is None else p
            self._learn(m, idx, r, p, self._reward, self._policy, self._history)

    @synchronized
    def partial_fit(
        self,
        X: Any,
        arms: Iterable[Hashable] | None = None,
        rewards: object = None,
        propensities: object = None,
    ) -> None:
        """Learn rows in order (all or nothing); `X` may be OBP-style logged feedback."""
        self._fit(X, arms, rewards, propensities, reset=False)

    @synchronized
    def fit(
        self,
        X: Any,
        arms: Iterable[Hashable] | None = None,
        rewards: object = None,
        propensities: object = None,
    ) -> None:
        """Forget everything, then `partial_fit` (on bad input nothing changes)."""
        self._fit(X, arms, rewards, propensities, reset=True)

    @synchronized
    def refit(self) -> None:
        """Refit the policy model on the kept rows (`max_history`) with the current reward
        model; the reward model is unchanged."""
        policy = self._fresh()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for x, k, r, p in self._history:
                self._add_policy_row(x, k, r, p, self._reward, policy)
            self._commit(self._reward, policy, self._history)

    @synchronized
    def reset(self) -> None:
        """Forget every observation (arms, settings and the random stream position stay)."""
        self._reward, self._policy = self._fresh(), self._fresh()
        self._history = deque(maxlen=self.max_history)

    @synchronized
    def get_stats(self) -> dict[str, Any]:
        with np.errstate(over="ignore"):
            arms = {
                label: {
                    "pulls": q.pulls,
                    "reward_theta_norm": float(np.linalg.norm(q.theta)),
                    "policy_theta_norm": float(np.linalg.norm(pi.theta)),
                }
                for label, q, pi in zip(self._labels, self._reward, self._policy, strict=True)
            }
        return {
            "arms": arms,
            "total_updates": sum(q.pulls for q in self._reward),
            "history_len": len(self._history),
            "n_arms": len(self._labels),
            "n_features": self.n_features,
        }

    @synchronized
    def __repr__(self) -> str:
        return (
            f"DoublyRobust(n_arms={len(self._labels)}, n_features={self.n_features}, "
            f"alpha={self.alpha}, l2_lambda={self.l2_lambda}, max_weight={self.max_weight}, "
            f"max_history={self.max_history}, exploration='{self.exploration}', "
            f"epsilon={self.epsilon}, temperature={self.temperature})"
        )

    # --- saving (docs/format.md) ---

    @synchronized
    def to_bytes(self) -> bytes:
        """This learner as a banditkit file; labels must be str or int."""
        params = {
            "n_features": self.n_features,
            "alpha": self.alpha,
            "l2_lambda": self.l2_lambda,
            "max_weight": self.max_weight,
            "max_history": self.max_history,
            "exploration": self.exploration,
            "epsilon": self.epsilon,
            "temperature": self.temperature,
        }
        d, k, upper = self.n_features, len(self._labels), _persist.packed_indices(self.n_features)
        arrays: list[tuple[str, np.ndarray]] = []
        for prefix, ms in (("q", self._reward), ("pi", self._policy)):

            def stack(get: Any, shape: tuple[int, ...], dtype: Any = float) -> np.ndarray:
                return np.array([get(m) for m in ms], dtype=dtype).reshape((k, *shape))  # noqa: B023

            arrays += [
                (f"{prefix}_gram", stack(lambda m: m.A[upper], (upper[0].size,))),
                (f"{prefix}_a_inv", stack(lambda m: m.a_inv[upper], (upper[0].size,))),
                (f"{prefix}_a_inv_scale", np.ones(k)),
                (f"{prefix}_b", stack(lambda m: m.b, (d,))),
                (f"{prefix}_theta", stack(lambda m: m.theta, (d,))),
                (f"{prefix}_pulls", stack(lambda m: m.pulls, (), np.int64)),
                (f"{prefix}_since_refactor", stack(lambda m: m.since_refactor, (), np.int64)),
                (f"{prefix}_refactors", stack(lambda m: m.refactors, (), np.int64)),
            ]
        h = list(self._history)
        arrays += [
            ("history_x", np.array([row[0] for row in h], dtype=float).reshape(len(h), d)),
            ("history_arm", np.array([row[1] for row in h], dtype=np.int64)),
            ("history_r", np.array([row[2] for row in h], dtype=float)),
            ("history_p", np.array([row[3] for row in h], dtype=float)),
        ]
        return _persist.encode(self, params, self._labels, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> DoublyRobust:
        """The learner saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid."""
        doc = _persist.decode(data, cls)
        labels = _persist.labels_in(doc)
        try:
            new = cls(
                labels,
                _persist.param(doc, "n_features", int),
                _persist.param(doc, "alpha", float),
                l2_lambda=_persist.param(doc, "l2_lambda", float),
                max_weight=_persist.param(doc, "max_weight", float),
                max_history=_persist.param(doc, "max_history", int),
                exploration=_persist.param(doc, "exploration", str),
                epsilon=_persist.param(doc, "epsilon", float),
                temperature=_persist.param(doc, "temperature", float),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, _persist.FormatError):
                raise
            raise _persist.FormatError(f"invalid banditkit file: {exc}") from None
        k, d = len(labels), new.n_features
        for prefix, ms in (("q", new._reward), ("pi", new._policy)):
            gram = _persist.packed_symmetric(doc, f"{prefix}_gram", k, d)
            a_inv = _persist.packed_symmetric(doc, f"{prefix}_a_inv", k, d)
            scale = _persist.array(doc, f"{prefix}_a_inv_scale", (k,))
            _persist.check_positive(scale, f"{prefix}_a_inv_scale")
            a_inv = scale[:, None, None] * a_inv
            b = _persist.array(doc, f"{prefix}_b", (k, d))
            theta = _persist.array(doc, f"{prefix}_theta", (k, d))
            pulls = _persist.array(doc, f"{prefix}_pulls", (k,), "i8")
            since = _persist.array(doc, f"{prefix}_since_refactor", (k,), "i8")
            refactors = _persist.array(doc, f"{prefix}_refactors", (k,), "i8")
            for i, m in enumerate(ms):
                m.A, m.a_inv, m.b, m.theta = gram[i], a_inv[i], b[i], theta[i]
                m.pulls, m.since_refactor = int(pulls[i]), int(since[i])
                m.refactors = int(refactors[i])
        n = _history_len(doc, new.max_history)
        xs = _persist.array(doc, "history_x", (n, d))
        arm = _persist.array(doc, "history_arm", (n,), "i8")
        rs = _persist.array(doc, "history_r", (n,))
        ps = _persist.array(doc, "history_p", (n,))
        if np.any(arm >= k) or np.any((ps < 0.0) | (ps > 1.0)):
            raise _persist.FormatError("invalid banditkit file: bad history rows")
        new._history.extend(
            (xs[i].copy(), int(arm[i]), float(rs[i]), float(ps[i])) for i in range(n)
        )
        new._rng = _persist.rng_in(doc)
        new.seed = None
        return new


def _history_len(doc: Any, max_history: int) -> int:
    arr = doc.arrays.get("history_r")
    n = 0 if arr is None or arr.ndim != 1 else int(arr.shape[0])
    if n > max_history:
        raise _persist.FormatError("invalid banditkit file: history longer than max_history")
    return n
