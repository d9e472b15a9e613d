"""LinUCB and LinTS, the NumPy reference (behaviour pinned by tests/test_contextual*.py).

One ridge model per arm: ``A = ridge I + sum w_i x_i x_i^T``, ``b = sum w_i r_i x_i``,
``theta = A^{-1} b``. ``A^{-1}`` and ``theta`` follow each observation by Sherman-Morrison
(O(d^2)); an observation leaving the sliding window is removed by a guarded rank-1 downdate;
forgetting (``gamma``) scales ``A`` (ridge included) and ``b`` by ``gamma`` and ``A^{-1}`` by
``1/gamma`` before each observation of that arm, so after an arm's n observations
``A = gamma^n l2_lambda I + sum_i gamma^(n-i) x_i x_i^T`` (an observation leaving a window of W
has weight ``gamma^(W-1)``). ``A^{-1}`` is rebuilt from the exact ``A`` by Cholesky every
``refactor_every`` updates, when a downdate is ill-conditioned, or when the residual
``||A u - x|| / ||x||`` (checked every ``CHECK_EVERY`` updates) exceeds ``RESIDUAL_TOL``.
The Rust backend does the same on packed symmetric storage.

LinTS scores a context with ``theta^T x + v sqrt(x^T A^{-1} x) z``, ``z ~ N(0, 1)``: for one
context this is exactly ``theta_tilde^T x`` with ``theta_tilde ~ N(theta, v^2 A^{-1})``. Every
scored context (one ``select``, or one row of ``predict``/``decision_function``) draws one
normal per arm, in arm order, so ``predict(X)`` equals ``select`` on each row in turn.
Tied maxima are broken uniformly at random (one more draw, only for a row with a tie), so
``propensities`` is exact: the tied arms' share for LinUCB, the Gaussian win probabilities of
the scores given x for LinTS.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from . import _persist
from ._sync import Synchronized, synchronized
from ._validate import (
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
    setting_number,
)
from .exact import prob_best_gaussian_rows

CHECK_EVERY = 32
RESIDUAL_TOL = 1e-7
DOWNDATE_TOL = 1e-2  # 1 / denominator amplifies the error already in A^{-1}


def default_refactor_every(d: int) -> int:
    """Rebuild ``A^{-1}`` every ``max(2000, 50 d)`` updates (about d^3 against d^2 each)."""
    return max(2000, 50 * d)


def _hashable(arm: object) -> None:
    try:
        hash(arm)
    except TypeError:
        raise ValueError(f"arm labels must be hashable, got {arm!r}") from None


class _ArmModel:
    """One arm's state; see the module docstring."""

    def __init__(self, d: int, l2_lambda: float, window: int, gamma: float, refactor_every: int):
        self.window, self.gamma, self.refactor_every = window, gamma, refactor_every
        self.A = l2_lambda * np.eye(d)
        self.b = np.zeros(d)
        self.a_inv = np.eye(d) / l2_lambda
        self.theta = np.zeros(d)
        self.history: deque[tuple[np.ndarray, float]] = deque()
        self.pulls = self.since_refactor = self.refactors = 0

    def copy(self) -> _ArmModel:
        """An independent copy. Updates replace the arrays instead of writing into them, so
        the copy may share them (and the history's, which are never modified)."""
        new = object.__new__(_ArmModel)
        new.__dict__.update(self.__dict__)
        new.history = deque(self.history)
        return new

    def is_finite(self) -> bool:
        arrays = (self.A, self.b, self.a_inv, self.theta)
        # A finite sum proves every entry finite (an inf or NaN entry makes it inf or NaN);
        # only a sum that overflows needs the entries looked at. (Call under np.errstate.)
        if all(math.isfinite(a.sum()) for a in arrays):
            return True
        return all(bool(np.isfinite(a).all()) for a in arrays)

    def add(self, x: np.ndarray, r: float) -> None:
        if self.window and len(self.history) == self.window:
            self._remove_oldest()
        if self.gamma < 1.0:
            self.A = self.A * self.gamma
            self.b = self.b * self.gamma
            self.a_inv = self.a_inv / self.gamma
        u = self.a_inv @ x
        if (
            (self.pulls + 1) % CHECK_EVERY == 0
            and self.since_refactor >= CHECK_EVERY
            and np.linalg.norm(self.A @ u - x) > RESIDUAL_TOL * np.linalg.norm(x)
            and self.refactor()
        ):
            u = self.a_inv @ x
        denom = 1.0 + x @ u
        err = r - x @ self.theta
        self.a_inv = self.a_inv - np.outer(u, u) / denom
        self.theta = self.theta + u * (err / denom)
        self.b = self.b + r * x
        self.A = self.A + np.outer(x, x)
        if self.window:
            self.history.append((x.copy(), r))
        self.pulls += 1
        self.since_refactor += 1
        if self.since_refactor >= self.refactor_every:
            self.refactor()

    def _remove_oldest(self) -> None:
        x, r = self.history.popleft()
        w = self.gamma ** (self.window - 1)  # its weight after window - 1 newer observations
        u = self.a_inv @ x
        denom = 1.0 - w * (x @ u)
        err = x @ self.theta - r
        self.A = self.A - w * np.outer(x, x)
        self.b = self.b - w * r * x
        if denom > DOWNDATE_TOL:
            self.a_inv = self.a_inv + (w / denom) * np.outer(u, u)
            self.theta = self.theta + u * (w * err / denom)
        else:
            self.refactor()

    def refactor(self) -> bool:
        """``A^{-1} = L^{-T} L^{-1}`` from ``A = L L^T``; False (nothing changed) if not SPD."""
        self.since_refactor = 0
        try:
            l_inv = np.linalg.inv(np.linalg.cholesky(self.A))
        except np.linalg.LinAlgError:
            return False
        a_inv = l_inv.T @ l_inv
        # Exactly symmetric (the product's two triangles round differently), as the Rust
        # backend's packed storage is: files then round-trip bit for bit between backends.
        self.a_inv = 0.5 * (a_inv + a_inv.T)
        self.theta = self.a_inv @ self.b
        self.refactors += 1
        return True

    def variances(self, X: np.ndarray) -> np.ndarray:
        """``x^T A^{-1} x`` for each row of X."""
        return np.maximum(((X @ self.a_inv) * X).sum(axis=1), 0.0)


class _LinearBandit(Synchronized, _persist.Persistent, ABC):
    """Shared implementation of LinUCB and LinTS (one disjoint ridge model per arm)."""

    def __init__(
        self,
        arms: Iterable[Hashable],
        n_features: int,
        l2_lambda: float,
        window_size: int,
        gamma: float,
        seed: int | None,
        refactor_every: int | None,
    ):
        d = setting_integer(n_features, "n_features")
        if d <= 0:
            raise ValueError(f"n_features must be positive, got {n_features}")
        window = setting_integer(window_size, "window_size")
        if window < 0:
            raise ValueError(f"window_size must be non-negative, got {window_size}")
        lam = check_positive(l2_lambda, "l2_lambda")
        g = setting_number(gamma, "gamma")
        if not (0.0 < g <= 1.0):
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        every = default_refactor_every(d) if refactor_every is None else refactor_every
        if setting_integer(every, "refactor_every") <= 0:
            raise ValueError(f"refactor_every must be positive, got {refactor_every}")
        labels: list[Hashable] = []
        for a in check_arm_list(arms, "arms"):
            _hashable(a)
            if a in labels:
                raise ValueError(f"duplicate arm {a!r}")
            labels.append(a)
        self.n_features, self.l2_lambda, self.window_size = d, lam, window
        self.gamma, self.refactor_every = g, int(every)
        self.seed = check_seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self._labels = labels
        self._models = self._fresh_models()

    def _fresh_models(self) -> list[_ArmModel]:
        return [self._new_model() for _ in self._labels]

    def _new_model(self) -> _ArmModel:
        return _ArmModel(
            self.n_features, self.l2_lambda, self.window_size, self.gamma, self.refactor_every
        )

    # --- validation (nothing is changed before all of it passes) ---

    @property
    @synchronized
    def arms(self) -> list[Hashable]:
        return list(self._labels)

    def _index(self, arm: Hashable) -> int:
        return arm_position(self._labels, arm)

    def _available(self, available_arms: Sequence[Hashable] | None) -> np.ndarray | None:
        return arm_mask(self._labels, available_arms)

    def _ready_to_score(self) -> None:
        if not self._labels:
            raise ValueError("no arms to choose from")

    # --- scoring ---

    @abstractmethod
    def _scores(self, X: np.ndarray) -> np.ndarray:
        """Scores (n, n_arms); LinTS consumes one normal per arm per row."""

    @abstractmethod
    def _propensities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """P(the choice for each row is each arm), (n, n_arms), 0 outside `mask`; no draw."""

    def _choose(self, scores: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """Argmax per row; tied maxima uniformly at random (one draw per row with a tie), so
        a tied arm's propensity is exactly 1 / (number tied)."""
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        top = scores == scores.max(axis=1, keepdims=True)
        choice = np.argmax(top, axis=1)
        for i in np.flatnonzero(top.sum(axis=1) > 1):
            tied = np.flatnonzero(top[i])
            choice[i] = tied[self._rng.integers(tied.size)]
        return choice

    def _open(self, mask: np.ndarray | None) -> np.ndarray:
        return np.ones(len(self._labels), dtype=bool) if mask is None else mask

    @synchronized
    def select(
        self,
        x: object,
        available_arms: Sequence[Hashable] | None = None,
        return_propensity: bool = False,
    ) -> Any:
        """The arm to play for `x`; with `return_propensity`, `(arm, P(this call picks it))`."""
        v = check_context(x, self.n_features)
        mask = self._available(available_arms)
        self._ready_to_score()
        k = int(self._choose(self._scores(v[None, :]), mask)[0])
        if not return_propensity:
            return self._labels[k]
        return self._labels[k], float(self._propensities(v[None, :], self._open(mask))[0, k])

    @synchronized
    def propensities(
        self, X: object, available_arms: Sequence[Hashable] | None = None
    ) -> np.ndarray:
        """Probability that `select` picks each arm for each row of `X`, (n, n_arms), columns
        in arm order, unavailable arms 0. Exact: LinUCB's tied maxima share evenly; LinTS's
        scores given x are independent Gaussians, so it is their win probability."""
        m = check_contexts(X, self.n_features)
        mask = self._available(available_arms)
        self._ready_to_score()
        return self._propensities(m, self._open(mask))

    @synchronized
    def predict(self, X: object, available_arms: Sequence[Hashable] | None = None) -> list:
        m = check_contexts(X, self.n_features)
        mask = self._available(available_arms)
        self._ready_to_score()
        return [self._labels[int(k)] for k in self._choose(self._scores(m), mask)]

    @synchronized
    def decision_function(self, X: object) -> np.ndarray:
        m = check_contexts(X, self.n_features)
        self._ready_to_score()
        return self._scores(m)

    @synchronized
    def predict_expectations(self, X: object) -> np.ndarray:
        m = check_contexts(X, self.n_features)
        if not self._models:
            return np.zeros((m.shape[0], 0))
        return m @ np.stack([mod.theta for mod in self._models], axis=1)

    # --- learning ---

    @synchronized
    def update(self, arm: Hashable, x: object, reward: object) -> None:
        k = self._index(arm)
        v = check_context(x, self.n_features)
        self._learn([(k, v, check_reward(reward))], self._models)

    def _observations(
        self, X: object, arms: Iterable[Hashable], rewards: object
    ) -> list[tuple[int, np.ndarray, float]]:
        m = check_contexts(X, self.n_features)
        idx = [self._index(a) for a in check_arm_list(arms, "arms")]
        r = check_rewards(rewards)
        if not (len(idx) == len(r) == m.shape[0]):
            raise ValueError(
                f"X, arms and rewards must have the same length, got "
                f"{m.shape[0]}, {len(idx)}, {len(r)}"
            )
        return [(k, m[i], float(r[i])) for i, k in enumerate(idx)]

    def _learn(
        self, observations: list[tuple[int, np.ndarray, float]], models: list[_ArmModel]
    ) -> None:
        """Apply observations to copies of `models` and commit them only if every touched arm's
        state is finite (a finite context of 1e200 or rewards of 1e308 can overflow it)."""
        candidates = {k: models[k].copy() for k in dict.fromkeys(k for k, _, _ in observations)}
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for k, x, r in observations:
                candidates[k].add(x, r)
            bad = [k for k, model in candidates.items() if not model.is_finite()]
        if bad:
            raise overflow_error(self._labels[bad[0]])
        committed = list(models)
        for k, model in candidates.items():
            committed[k] = model
        self._models = committed

    @synchronized
    def partial_fit(self, X: object, arms: Iterable[Hashable], rewards: object) -> None:
        self._learn(self._observations(X, arms, rewards), self._models)

    @synchronized
    def fit(self, X: object, arms: Iterable[Hashable], rewards: object) -> None:
        """Forget every observation, then learn these (all or nothing)."""
        self._learn(self._observations(X, arms, rewards), self._fresh_models())

    # --- arms and inspection ---

    @synchronized
    def add_arm(self, arm: Hashable) -> None:
        _hashable(arm)
        if any(label is arm or label == arm for label in self._labels):
            raise ValueError(f"arm {arm!r} already exists")
        self._labels = [*self._labels, arm]
        self._models = [*self._models, self._new_model()]

    @synchronized
    def remove_arm(self, arm: Hashable) -> None:
        k = self._index(arm)
        self._labels = self._labels[:k] + self._labels[k + 1 :]
        self._models = self._models[:k] + self._models[k + 1 :]

    @synchronized
    def reset(self) -> None:
        """Forgets every observation (arms, settings and the random stream position stay)."""
        self._models = self._fresh_models()

    @synchronized
    def get_stats(self) -> dict[str, Any]:
        with np.errstate(over="ignore"):  # a finite state can have a norm beyond 1.8e308
            return self._stats()

    def _stats(self) -> dict[str, Any]:
        arms = {
            label: {
                "pulls": m.pulls,
                "theta_norm": float(np.linalg.norm(m.theta)),
                "condition_estimate": float(np.linalg.norm(m.A, 1) * np.linalg.norm(m.a_inv, 1)),
                "window_len": len(m.history),
                "refactors": m.refactors,
            }
            for label, m in zip(self._labels, self._models, strict=True)
        }
        return {
            "arms": arms,
            "total_pulls": sum(m.pulls for m in self._models),
            "n_arms": len(self._labels),
            "n_features": self.n_features,
        }

    @synchronized
    def theta(self, arm: Hashable) -> np.ndarray:
        return self._models[self._index(arm)].theta.copy()

    @synchronized
    def a_inv(self, arm: Hashable) -> np.ndarray:
        return self._models[self._index(arm)].a_inv.copy()

    @synchronized
    def gram(self, arm: Hashable) -> np.ndarray:
        """The exact Gram matrix ``A`` of ``arm``."""
        return self._models[self._index(arm)].A.copy()

    @synchronized
    def b(self, arm: Hashable) -> np.ndarray:
        return self._models[self._index(arm)].b.copy()

    # --- saving (docs/format.md) ---

    @abstractmethod
    def _parameter(self) -> tuple[str, float]:
        """("alpha", alpha) or ("v", v)."""

    @synchronized
    def to_bytes(self) -> bytes:
        """This model as a banditkit file (docs/format.md); labels must be str or int."""
        name, value = self._parameter()
        params = {
            "n_features": self.n_features,
            name: value,
            "l2_lambda": self.l2_lambda,
            "window_size": self.window_size,
            "gamma": self.gamma,
            "refactor_every": self.refactor_every,
        }
        ms, d = self._models, self.n_features

        def stack(get: Any, shape: tuple[int, ...], dtype: Any = float) -> np.ndarray:
            return np.array([get(m) for m in ms], dtype=dtype).reshape((len(ms), *shape))

        hist = [h for m in ms for h in m.history]
        upper = _persist.packed_indices(d)
        arrays = [
            ("gram", stack(lambda m: m.A[upper], (upper[0].size,))),
            ("a_inv", stack(lambda m: m.a_inv[upper], (upper[0].size,))),
            ("a_inv_scale", np.ones(len(ms))),  # the Rust backend's lazy scale of A^{-1}
            ("b", stack(lambda m: m.b, (d,))),
            ("theta", stack(lambda m: m.theta, (d,))),
            ("pulls", stack(lambda m: m.pulls, (), np.int64)),
            ("since_refactor", stack(lambda m: m.since_refactor, (), np.int64)),
            ("refactors", stack(lambda m: m.refactors, (), np.int64)),
            ("window_len", stack(lambda m: len(m.history), (), np.int64)),
            ("history_x", np.array([x for x, _ in hist], dtype=float).reshape(len(hist), d)),
            ("history_r", np.array([r for _, r in hist], dtype=float)),
        ]
        return _persist.encode(self, params, self._labels, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        """The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid."""
        doc = _persist.decode(data, cls)
        labels = _persist.labels_in(doc)
        name = "alpha" if cls.__name__ == "LinUCB" else "v"
        try:
            new = cls(
                labels,
                _persist.param(doc, "n_features", int),
                _persist.param(doc, name, float),
                l2_lambda=_persist.param(doc, "l2_lambda", float),
                window_size=_persist.param(doc, "window_size", int),
                gamma=_persist.param(doc, "gamma", float),
                refactor_every=_persist.param(doc, "refactor_every", int),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, _persist.FormatError):
                raise
            raise _persist.FormatError(f"invalid banditkit file: {exc}") from None
        k, d = len(labels), new.n_features
        gram = _persist.packed_symmetric(doc, "gram", k, d)
        a_inv = _persist.packed_symmetric(doc, "a_inv", k, d)
        scale = _persist.array(doc, "a_inv_scale", (k,))
        _persist.check_positive(scale, "a_inv_scale")
        a_inv = scale[:, None, None] * a_inv
        b, theta = _persist.array(doc, "b", (k, d)), _persist.array(doc, "theta", (k, d))
        pulls = _persist.array(doc, "pulls", (k,), "i8")
        since = _persist.array(doc, "since_refactor", (k,), "i8")
        refactors = _persist.array(doc, "refactors", (k,), "i8")
        windows = _persist.history(doc, k, d, new.window_size, pulls)
        new._rng = _persist.rng_in(doc)
        new.seed = None
        for i, m in enumerate(new._models):
            m.A, m.a_inv, m.b, m.theta = gram[i], a_inv[i], b[i], theta[i]
            m.pulls, m.since_refactor = int(pulls[i]), int(since[i])
            m.refactors, m.history = int(refactors[i]), windows[i]
        return new


class LinUCB(_LinearBandit):
    """LinUCB: score ``theta^T x + alpha sqrt(x^T A^{-1} x)``."""

    def __init__(
        self,
        arms: Iterable[Hashable],
        n_features: int,
        alpha: float = 1.0,
        l2_lambda: float = 1.0,
        window_size: int = 0,
        gamma: float = 1.0,
        seed: int | None = None,
        refactor_every: int | None = None,
    ):
        self.alpha = check_positive(alpha, "alpha")
        super().__init__(arms, n_features, l2_lambda, window_size, gamma, seed, refactor_every)

    def _parameter(self) -> tuple[str, float]:
        return ("alpha", self.alpha)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], len(self._models)))
        for k, m in enumerate(self._models):
            out[:, k] = X @ m.theta + self.alpha * np.sqrt(m.variances(X))
        return out

    def _propensities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        scores = np.where(mask, self._scores(X), -np.inf)
        top = scores == scores.max(axis=1, keepdims=True)
        return top / top.sum(axis=1, keepdims=True)

    @synchronized
    def __repr__(self) -> str:
        return (
            f"LinUCB(n_arms={len(self._labels)}, n_features={self.n_features}, "
            f"alpha={self.alpha}, l2_lambda={self.l2_lambda}, window_size={self.window_size}, "
            f"gamma={self.gamma})"
        )


class LinTS(_LinearBandit):
    """Linear Thompson sampling: ``theta_tilde^T x``, ``theta_tilde ~ N(theta, v^2 A^{-1})``."""

    def __init__(
        self,
        arms: Iterable[Hashable],
        n_features: int,
        v: float = 1.0,
        l2_lambda: float = 1.0,
        window_size: int = 0,
        gamma: float = 1.0,
        seed: int | None = None,
        refactor_every: int | None = None,
    ):
        self.v = check_positive(v, "v")
        super().__init__(arms, n_features, l2_lambda, window_size, gamma, seed, refactor_every)

    def _parameter(self) -> tuple[str, float]:
        return ("v", self.v)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        z = self._rng.standard_normal((X.shape[0], len(self._models)))
        out = np.empty_like(z)
        for k, m in enumerate(self._models):
            out[:, k] = X @ m.theta + self.v * np.sqrt(m.variances(X)) * z[:, k]
        return out

    def _propensities(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        models = [m for m, open_ in zip(self._models, mask, strict=True) if open_]
        mean = np.stack([X @ m.theta for m in models], axis=1)
        sd = np.stack([self.v * np.sqrt(m.variances(X)) for m in models], axis=1)
        out = np.zeros((X.shape[0], len(self._models)))
        out[:, mask] = prob_best_gaussian_rows(mean, sd, share_ties=True)
        return out

    @synchronized
    def __repr__(self) -> str:
        return (
            f"LinTS(n_arms={len(self._labels)}, n_features={self.n_features}, v={self.v}, "
            f"l2_lambda={self.l2_lambda}, window_size={self.window_size}, gamma={self.gamma})"
        )
