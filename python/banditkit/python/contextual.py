"""LinUCB and LinTS, the NumPy reference (spec/contextual-linear.md).

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
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from . import _persist
from ._validate import check_seed

CHECK_EVERY = 32
RESIDUAL_TOL = 1e-7
DOWNDATE_TOL = 1e-2  # 1 / denominator amplifies the error already in A^{-1}


def default_refactor_every(d: int) -> int:
    """Rebuild ``A^{-1}`` every ``max(2000, 50 d)`` updates (about d^3 against d^2 each)."""
    return max(2000, 50 * d)


def _positive(name: str, value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be positive, got {value!r}") from None
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return v


def _hashable(arm: object) -> None:
    try:
        hash(arm)
    except TypeError:
        raise ValueError(f"arm labels must be hashable, got {arm!r}") from None


def _int(name: str, value: object) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


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

    def add(self, x: np.ndarray, r: float) -> None:
        if self.window and len(self.history) == self.window:
            self._remove_oldest()
        if self.gamma < 1.0:
            self.A *= self.gamma
            self.b *= self.gamma
            self.a_inv /= self.gamma
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
        self.a_inv -= np.outer(u, u) / denom
        self.theta += u * (err / denom)
        self.b += r * x
        self.A += np.outer(x, x)
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
        self.A -= w * np.outer(x, x)
        self.b -= w * r * x
        if denom > DOWNDATE_TOL:
            self.a_inv += (w / denom) * np.outer(u, u)
            self.theta += u * (w * err / denom)
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


class _LinearBandit(_persist.Persistent, ABC):
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
        d = _int("n_features", n_features)
        if d <= 0:
            raise ValueError(f"n_features must be positive, got {n_features}")
        window = _int("window_size", window_size)
        if window < 0:
            raise ValueError(f"window_size must be non-negative, got {window_size}")
        lam = _positive("l2_lambda", l2_lambda)
        g = float(gamma)
        if not (0.0 < g <= 1.0):
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        every = default_refactor_every(d) if refactor_every is None else refactor_every
        if _int("refactor_every", every) <= 0:
            raise ValueError(f"refactor_every must be positive, got {refactor_every}")
        labels: list[Hashable] = []
        for a in arms:
            _hashable(a)
            if a in labels:
                raise ValueError(f"duplicate arm {a!r}")
            labels.append(a)
        self.n_features, self.l2_lambda, self.window_size = d, lam, window
        self.gamma, self.refactor_every = g, int(every)
        self.seed = check_seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self._labels = labels
        self._models = [self._new_model() for _ in labels]

    def _new_model(self) -> _ArmModel:
        return _ArmModel(
            self.n_features, self.l2_lambda, self.window_size, self.gamma, self.refactor_every
        )

    # --- validation (nothing is changed before all of it passes) ---

    @property
    def arms(self) -> list[Hashable]:
        return list(self._labels)

    def _index(self, arm: Hashable) -> int:
        for k, label in enumerate(self._labels):
            if label is arm or label == arm:
                return k
        raise ValueError(f"unknown arm {arm!r}")

    def _context(self, x: object) -> np.ndarray:
        try:
            v = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("context must be a 1-D array of numbers") from None
        if v.ndim != 1:
            raise ValueError("context must be a 1-D array of numbers")
        if v.shape[0] != self.n_features:
            raise ValueError(f"context must have {self.n_features} features, got {v.shape[0]}")
        if not np.isfinite(v).all():
            raise ValueError("context must be finite")
        return v

    def _batch(self, X: object) -> np.ndarray:
        try:
            m = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("X must be a 2-D array of numbers") from None
        if m.ndim != 2:
            raise ValueError("X must be a 2-D array of numbers")
        if m.shape[1] != self.n_features:
            raise ValueError(f"X must have {self.n_features} columns, got {m.shape[1]}")
        if not np.isfinite(m).all():
            raise ValueError("contexts must be finite")
        return m

    def _available(self, available_arms: Sequence[Hashable] | None) -> np.ndarray | None:
        if available_arms is None:
            return None
        idx = [self._index(a) for a in available_arms]
        if not idx:
            raise ValueError("available_arms must not be empty")
        mask = np.zeros(len(self._labels), dtype=bool)
        mask[idx] = True
        return mask

    def _ready_to_score(self) -> None:
        if not self._labels:
            raise ValueError("no arms to choose from")

    @staticmethod
    def _reward(reward: object) -> float:
        try:
            r = float(reward)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"reward must be a number, got {reward!r}") from None
        if not math.isfinite(r):
            raise ValueError(f"reward must be finite, got {reward!r}")
        return r

    # --- scoring ---

    @abstractmethod
    def _scores(self, X: np.ndarray) -> np.ndarray:
        """Scores (n, n_arms); LinTS consumes one normal per arm per row."""

    def _choose(self, scores: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        return np.argmax(scores, axis=1)  # first maximum: ties go to the first arm

    def select(self, x: object, available_arms: Sequence[Hashable] | None = None) -> Hashable:
        v = self._context(x)
        mask = self._available(available_arms)
        self._ready_to_score()
        return self._labels[int(self._choose(self._scores(v[None, :]), mask)[0])]

    def predict(self, X: object, available_arms: Sequence[Hashable] | None = None) -> list:
        m = self._batch(X)
        mask = self._available(available_arms)
        self._ready_to_score()
        return [self._labels[int(k)] for k in self._choose(self._scores(m), mask)]

    def decision_function(self, X: object) -> np.ndarray:
        m = self._batch(X)
        self._ready_to_score()
        return self._scores(m)

    def predict_expectations(self, X: object) -> np.ndarray:
        m = self._batch(X)
        if not self._models:
            return np.zeros((m.shape[0], 0))
        return m @ np.stack([mod.theta for mod in self._models], axis=1)

    # --- learning ---

    def update(self, arm: Hashable, x: object, reward: object) -> None:
        k = self._index(arm)
        v = self._context(x)
        self._models[k].add(v, self._reward(reward))

    def _observations(
        self, X: object, arms: Iterable[Hashable], rewards: object
    ) -> tuple[np.ndarray, list[int], np.ndarray]:
        m = self._batch(X)
        idx = [self._index(a) for a in arms]
        try:
            r = np.asarray(rewards, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError("rewards must be a 1-D array of numbers") from None
        if not (len(idx) == len(r) == m.shape[0]):
            raise ValueError(
                f"X, arms and rewards must have the same length, got "
                f"{m.shape[0]}, {len(idx)}, {len(r)}"
            )
        if not np.isfinite(r).all():
            raise ValueError("rewards must be finite")
        return m, idx, r

    def partial_fit(self, X: object, arms: Iterable[Hashable], rewards: object) -> None:
        m, idx, r = self._observations(X, arms, rewards)
        for i, k in enumerate(idx):
            self._models[k].add(m[i], float(r[i]))

    def fit(self, X: object, arms: Iterable[Hashable], rewards: object) -> None:
        m, idx, r = self._observations(X, arms, rewards)
        self.reset()
        for i, k in enumerate(idx):
            self._models[k].add(m[i], float(r[i]))

    # --- arms and inspection ---

    def add_arm(self, arm: Hashable) -> None:
        _hashable(arm)
        if any(label is arm or label == arm for label in self._labels):
            raise ValueError(f"arm {arm!r} already exists")
        self._labels.append(arm)
        self._models.append(self._new_model())

    def remove_arm(self, arm: Hashable) -> None:
        k = self._index(arm)
        del self._labels[k]
        del self._models[k]

    def reset(self) -> None:
        """Forgets every observation (arms, settings and the random stream position stay)."""
        self._models = [self._new_model() for _ in self._labels]

    def get_stats(self) -> dict[str, Any]:
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

    def theta(self, arm: Hashable) -> np.ndarray:
        return self._models[self._index(arm)].theta.copy()

    def a_inv(self, arm: Hashable) -> np.ndarray:
        return self._models[self._index(arm)].a_inv.copy()

    def gram(self, arm: Hashable) -> np.ndarray:
        """The exact Gram matrix ``A`` of ``arm``."""
        return self._models[self._index(arm)].A.copy()

    def b(self, arm: Hashable) -> np.ndarray:
        return self._models[self._index(arm)].b.copy()

    # --- saving (docs/format.md) ---

    @abstractmethod
    def _parameter(self) -> tuple[str, float]:
        """("alpha", alpha) or ("v", v)."""

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
        self.alpha = _positive("alpha", alpha)
        super().__init__(arms, n_features, l2_lambda, window_size, gamma, seed, refactor_every)

    def _parameter(self) -> tuple[str, float]:
        return ("alpha", self.alpha)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], len(self._models)))
        for k, m in enumerate(self._models):
            out[:, k] = X @ m.theta + self.alpha * np.sqrt(m.variances(X))
        return out

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
        self.v = _positive("v", v)
        super().__init__(arms, n_features, l2_lambda, window_size, gamma, seed, refactor_every)

    def _parameter(self) -> tuple[str, float]:
        return ("v", self.v)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        z = self._rng.standard_normal((X.shape[0], len(self._models)))
        out = np.empty_like(z)
        for k, m in enumerate(self._models):
            out[:, k] = X @ m.theta + self.v * np.sqrt(m.variances(X)) * z[:, k]
        return out

    def __repr__(self) -> str:
        return (
            f"LinTS(n_arms={len(self._labels)}, n_features={self.n_features}, v={self.v}, "
            f"l2_lambda={self.l2_lambda}, window_size={self.window_size}, gamma={self.gamma})"
        )
