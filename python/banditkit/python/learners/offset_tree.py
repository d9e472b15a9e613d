"""OffsetTree, the NumPy reference (Rust twin: rust/banditkit-core/src/learners/offset_tree.rs).

Beygelzimer and Langford's offset tree: K arms are the leaves of a tournament of K - 1 binary
nodes (consecutive arms paired, an odd one out passed up, round after round). Node j holds a
logistic model ``z = theta_j . x + b_j``; its greedy choice is the left side if z > 0, the right
if z < 0, either with probability 1/2 if z == 0. The tree's greedy policy plays the tournament
from the root down; ``propensities`` mix it with a uniform choice, ``(1 - epsilon) g + epsilon / K``
(over the available arms: a node with one side unavailable passes the other side on).

Learning from (x, a, r, p): with ``w = min(1 / p, max_weight)`` and the offset ``c`` (fixed, or
the mean of the rewards learned before this row, 1/2 before the first), each node on the path
from leaf a to the root gets a binary example: label "a's side" if r > c else "the other side",
importance weight ``|r - c| w q``, where q is the greedy probability that a wins its side of that
node (1 or 0 as in the paper's filter, fractions under ties; computed with the parameters before
this row). The expected weighted loss of choosing side L over R at a node differs by
``E[r_R] - E[r_L]`` (the offset cancels), so each node learns to pick the better side.

Node learner: weighted logistic SGD with per-coordinate AdaGrad steps. Not online Newton: that
keeps a (d+1)^2 matrix per node, and memory must stay K - 1 nodes of O(d) numbers. AdaGrad's
first step moves each coordinate by at most ``learning_rate`` whatever the importance weight
(g / sqrt(g^2)), so a row of weight 1/p = 1000 cannot throw a node's weights away; later steps
shrink as the squared gradients accumulate. ``l2`` adds ``l2 * theta`` (not the intercept) to
the gradient.

The float operations are the Rust core's, in the same order, except the dot products (BLAS
here): the two backends agree to rounding.
"""

from __future__ import annotations

import math
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

INITIAL_OFFSET = 0.5  # the paper's offset for rewards in [0, 1], before any reward is seen


def _hashable(arm: object) -> None:
    try:
        hash(arm)
    except TypeError:
        raise ValueError(f"arm labels must be hashable, got {arm!r}") from None


def tournament(k: int) -> tuple[list[int], list[int]]:
    """(left, right) children of internal nodes 0..k-2; ids below k are leaves (arms), id
    k + j is internal node j. The root is the last node; every node covers a contiguous range
    of arms."""
    left: list[int] = []
    right: list[int] = []
    round_ = list(range(k))
    while len(round_) > 1:
        nxt = []
        for j in range(len(round_) // 2):
            left.append(round_[2 * j])
            right.append(round_[2 * j + 1])
            nxt.append(k + len(left) - 1)
        if len(round_) % 2:
            nxt.append(round_[-1])
        round_ = nxt
    return left, right


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for large |z|."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class _State:
    """Everything learned (copied whole before a batch, committed only if all of it passed)."""

    def __init__(self, n_nodes: int, n_arms: int, d: int):
        self.theta = np.zeros((n_nodes, d + 1))  # weights, intercept last
        self.accum = np.zeros((n_nodes, d + 1))  # AdaGrad sums of squared gradients
        self.node_updates = np.zeros(n_nodes, dtype=np.int64)
        self.arm_rows = np.zeros(n_arms, dtype=np.int64)
        self.arm_weight = np.zeros(n_arms)
        self.arm_reward = np.zeros(n_arms)  # sum of w * r per arm
        self.reward_sum = 0.0
        self.rows = 0

    def copy(self) -> _State:
        new = object.__new__(_State)
        new.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v)
                             for k, v in self.__dict__.items()})  # fmt: skip
        return new

    def is_finite(self) -> bool:
        return bool(
            np.isfinite(self.theta).all()
            and np.isfinite(self.accum).all()
            and np.isfinite(self.arm_weight).all()
            and np.isfinite(self.arm_reward).all()
            and math.isfinite(self.reward_sum)
        )


class OffsetTree(Synchronized, _persist.Persistent):
    """Offset tree over ``arms`` (see the module docstring); contexts of ``n_features``."""

    def __init__(
        self,
        arms: Iterable[Hashable],
        n_features: int,
        learning_rate: float = 0.1,
        l2: float = 0.0,
        epsilon: float = 0.05,
        max_weight: float = math.inf,
        offset: float | None = None,
        seed: int | None = None,
    ):
        d = setting_integer(n_features, "n_features")
        if d <= 0:
            raise ValueError(f"n_features must be positive, got {n_features}")
        lr = check_positive(learning_rate, "learning_rate")
        l2_ = setting_number(l2, "l2")
        if not (math.isfinite(l2_) and l2_ >= 0.0):
            raise ValueError(f"l2 must be non-negative, got {l2!r}")
        eps = setting_number(epsilon, "epsilon")
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        cap = setting_number(max_weight, "max_weight")
        if not cap > 0.0:  # inf is allowed (no cap); NaN fails
            raise ValueError(f"max_weight must be positive, got {max_weight!r}")
        off = None if offset is None else setting_number(offset, "offset")
        if off is not None and not math.isfinite(off):
            raise ValueError(f"offset must be finite or None, got {offset!r}")
        labels: list[Hashable] = []
        for a in check_arm_list(arms, "arms"):
            _hashable(a)
            if any(label is a or label == a for label in labels):
                raise ValueError(f"duplicate arm {a!r}")
            labels.append(a)
        if not labels:
            raise ValueError("arms must not be empty")
        self.n_features, self.learning_rate, self.l2 = d, lr, l2_
        self.epsilon, self.max_weight, self.offset = eps, cap, off
        self.seed = check_seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self._labels = labels
        self._left, self._right = tournament(len(labels))
        k = len(labels)
        self._parent = [0] * (2 * k - 1)
        for j, (lft, rgt) in enumerate(zip(self._left, self._right, strict=True)):
            self._parent[lft] = self._parent[rgt] = k + j
        self._arm_ranges = self._ranges()
        self._state = self._fresh()

    def _fresh(self) -> _State:
        return _State(len(self._labels) - 1, len(self._labels), self.n_features)

    # --- the tree ---

    @property
    def arms(self) -> list[Hashable]:
        return list(self._labels)

    @property
    def n_nodes(self) -> int:
        """Internal (binary) nodes: n_arms - 1."""
        return len(self._left)

    def _ranges(self) -> list[tuple[int, int]]:
        """[lo, hi) arm range of every id (leaves, then internal nodes)."""
        out = [(a, a + 1) for a in range(len(self._labels))]
        for lft, rgt in zip(self._left, self._right, strict=True):
            out.append((out[lft][0], out[rgt][1]))
        return out

    def _z(self, X: np.ndarray) -> np.ndarray:
        """Node logits (n, n_nodes) with the current parameters."""
        th = self._state.theta
        return X @ th[:, :-1].T + th[:, -1]

    def _descend(self, split: np.ndarray) -> np.ndarray:
        """(n, K) leaf masses from per-node probabilities of the left side (n, n_nodes)."""
        k = len(self._labels)
        mass = np.zeros((split.shape[0], 2 * k - 1))
        mass[:, -1] = 1.0
        for j in range(len(self._left) - 1, -1, -1):  # parents before children
            here = mass[:, k + j]
            mass[:, self._left[j]] = here * split[:, j]
            mass[:, self._right[j]] = here * (1.0 - split[:, j])
        return mass[:, :k]

    def _greedy(self, X: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """The greedy tournament's distribution over arms (ties shared), (n, K)."""
        z = self._z(X)
        split = np.where(z > 0.0, 1.0, np.where(z < 0.0, 0.0, 0.5))
        if mask is not None:
            ranges = self._arm_ranges
            for j, (lft, rgt) in enumerate(zip(self._left, self._right, strict=True)):
                has_left = mask[ranges[lft][0] : ranges[lft][1]].any()
                has_right = mask[ranges[rgt][0] : ranges[rgt][1]].any()
                if not (has_left and has_right):
                    split[:, j] = 1.0 if has_left else 0.0
        return self._descend(split)

    def _propensities(self, X: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        g = self._greedy(X, mask)
        k = len(self._labels)
        avail = np.ones(k, dtype=bool) if mask is None else mask
        uniform = np.where(avail, self.epsilon / float(avail.sum()), 0.0)
        return (1.0 - self.epsilon) * g + uniform

    def _draw(self, probs: np.ndarray) -> int:
        """One arm from a row of propensities, by one uniform draw (the Rust core's rule)."""
        cdf = np.cumsum(probs)
        last = int(np.flatnonzero(probs > 0.0)[-1])
        cdf[last:] = np.inf  # rounding never lands past the last possible arm
        return int(np.searchsorted(cdf, self._rng.random(), side="right"))

    # --- choosing ---

    def _mask(self, available_arms: Sequence[Hashable] | None) -> np.ndarray | None:
        return arm_mask(self._labels, available_arms)

    @synchronized
    def select(
        self,
        x: object,
        available_arms: Sequence[Hashable] | None = None,
        return_propensity: bool = False,
    ) -> Any:
        v = check_context(x, self.n_features)
        mask = self._mask(available_arms)
        probs = self._propensities(v[None, :], mask)[0]
        k = self._draw(probs)
        return (self._labels[k], float(probs[k])) if return_propensity else self._labels[k]

    @synchronized
    def predict(self, X: object, available_arms: Sequence[Hashable] | None = None) -> list:
        m = check_contexts(X, self.n_features)
        mask = self._mask(available_arms)
        probs = self._propensities(m, mask)
        return [self._labels[self._draw(row)] for row in probs]

    @synchronized
    def propensities(
        self, X: object, available_arms: Sequence[Hashable] | None = None
    ) -> np.ndarray:
        m = check_contexts(X, self.n_features)
        return self._propensities(m, self._mask(available_arms))

    @synchronized
    def decision_function(self, X: object) -> np.ndarray:
        """The greedy tournament's choice per row (1 for the winner; shares under ties)."""
        return self._greedy(check_contexts(X, self.n_features), None)

    @synchronized
    def predict_proba(self, X: object) -> np.ndarray:
        """The tree's probabilities over arms: the product of the node probabilities
        ``sigmoid(+-z)`` along each arm's path (rows sum to 1)."""
        z = self._z(check_contexts(X, self.n_features))
        with np.errstate(over="ignore"):
            split = np.where(z >= 0.0, 1.0 / (1.0 + np.exp(-np.abs(z))),
                             np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))  # fmt: skip
        return self._descend(split)

    @synchronized
    def predict_expectations(self, X: object) -> np.ndarray:
        """Per arm, the importance-weighted mean reward it earned (self-normalised; 0 before
        any): context-free, since the tree ranks arms without estimating rewards."""
        m = check_contexts(X, self.n_features)
        st = self._state
        means = np.divide(st.arm_reward, st.arm_weight, out=np.zeros_like(st.arm_reward),
                          where=st.arm_weight > 0.0)  # fmt: skip
        return np.tile(means, (m.shape[0], 1))

    # --- learning ---

    def _learn_row(self, st: _State, x: np.ndarray, a: int, r: float, p: float | None) -> None:
        if p is None:
            p = float(self._propensities_with(st, x)[a])
            if p <= 0.0:
                raise ValueError(
                    f"propensity of arm {self._labels[a]!r} is 0 for this context (epsilon=0): "
                    "pass the logging policy's propensity"
                )
        w = min(1.0 / p, self.max_weight)
        c = self.offset
        if c is None:
            c = st.reward_sum / st.rows if st.rows else INITIAL_OFFSET
        st.rows += 1
        st.reward_sum += r
        st.arm_rows[a] += 1
        st.arm_weight[a] += w
        st.arm_reward[a] += w * r
        base = abs(r - c) * w
        if base == 0.0:
            return
        k, d = len(self._labels), self.n_features
        path = []
        child, q = a, 1.0
        while child != 2 * k - 2 and q > 0.0:  # the root's id is 2k - 2
            j = self._parent[child] - k
            th = st.theta[j]
            z = float(th[:d] @ x) + th[d]
            is_left = self._left[j] == child
            path.append((j, is_left, q, z))
            h = 1.0 if z > 0.0 else (0.0 if z < 0.0 else 0.5)
            q *= h if is_left else 1.0 - h
            child = k + j
        xt = np.append(x, 1.0)
        for j, is_left, q_j, z in path:
            y = 1.0 if is_left == (r > c) else 0.0
            g = (base * q_j * (sigmoid(z) - y)) * xt
            g[:d] += self.l2 * st.theta[j, :d]
            st.accum[j] += g * g
            acc = st.accum[j]
            step = np.divide(g, np.sqrt(acc), out=np.zeros_like(g), where=acc > 0.0)
            st.theta[j] -= self.learning_rate * step
            st.node_updates[j] += 1

    def _propensities_with(self, st: _State, x: np.ndarray) -> np.ndarray:
        saved, self._state = self._state, st
        try:
            return self._propensities(x[None, :], None)[0]
        finally:
            self._state = saved

    def _rows(
        self, X: object, arms: object, rewards: object, propensities: object
    ) -> tuple[np.ndarray, list[int], np.ndarray, np.ndarray | None]:
        """The whole call checked: contexts, arm positions, rewards, propensities."""
        if isinstance(X, Mapping):
            if arms is not None or rewards is not None or propensities is not None:
                raise ValueError("pass either a logged-feedback mapping or X, arms, rewards")
            return self._logged(X)
        if arms is None or rewards is None:
            raise ValueError("arms and rewards are required with X")
        m = check_contexts(X, self.n_features)
        idx = [arm_position(self._labels, a) for a in check_arm_list(arms, "arms")]
        r = check_rewards(rewards)
        p = None if propensities is None else _check_propensities(propensities)
        sizes = [m.shape[0], len(idx), len(r)] + ([] if p is None else [len(p)])
        if len(set(sizes)) != 1:
            raise ValueError(
                "X, arms, rewards and propensities must have the same length, got "
                + ", ".join(str(s) for s in sizes)
            )
        return m, idx, r, p

    def _logged(self, logged: Mapping) -> tuple[np.ndarray, list[int], np.ndarray, Any]:
        """OBP's keys: context, action (indices into .arms), reward, pscore (optional)."""
        for key in ("context", "action", "reward"):
            if key not in logged:
                raise ValueError(f"logged feedback needs the key {key!r}")
        m = check_contexts(logged["context"], self.n_features)
        act = numeric_array(logged["action"])
        if act is None or act.ndim != 1 or not np.all(act == np.floor(act)):
            raise ValueError("action must be a 1-D array of integer arm indices")
        if act.size and (act.min() < 0 or act.max() >= len(self._labels)):
            raise ValueError(f"action must be arm indices in [0, {len(self._labels)})")
        r = check_rewards(logged["reward"])
        pscore = logged.get("pscore")
        p = None if pscore is None else _check_propensities(pscore, "pscore")
        sizes = [m.shape[0], act.size, r.size] + ([] if p is None else [p.size])
        if len(set(sizes)) != 1:
            raise ValueError(
                "context, action, reward and pscore must have the same length, got "
                + ", ".join(str(s) for s in sizes)
            )
        return m, [int(a) for a in act], r, p

    def _learn(self, st: _State, rows: tuple) -> None:
        m, idx, r, p = rows
        with np.errstate(over="ignore", invalid="ignore"):
            for i, a in enumerate(idx):
                self._learn_row(st, m[i], a, float(r[i]), None if p is None else float(p[i]))
        if not st.is_finite():
            raise overflow_error("(the tree)")
        self._state = st

    @synchronized
    def update(self, arm: Hashable, x: object, reward: object, propensity: object = None) -> None:
        a = arm_position(self._labels, arm)
        v = check_context(x, self.n_features)
        r = check_reward(reward)
        p = None if propensity is None else float(_check_propensities([propensity])[0])
        arr = None if p is None else np.array([p])
        self._learn(self._state.copy(), (v[None, :], [a], np.array([r]), arr))

    @synchronized
    def partial_fit(
        self, X: object, arms: object = None, rewards: object = None, propensities: object = None
    ) -> None:
        self._learn(self._state.copy(), self._rows(X, arms, rewards, propensities))

    @synchronized
    def fit(
        self, X: object, arms: object = None, rewards: object = None, propensities: object = None
    ) -> None:
        """Forget everything learned, then learn these rows (all or nothing)."""
        self._learn(self._fresh(), self._rows(X, arms, rewards, propensities))

    # --- arms and inspection ---

    def add_arm(self, arm: Hashable) -> None:
        raise ValueError(
            "OffsetTree cannot add arms: its tournament is fixed at construction "
            "(build a new OffsetTree with the new arm list)"
        )

    def remove_arm(self, arm: Hashable) -> None:
        raise ValueError(
            "OffsetTree cannot remove arms: its tournament is fixed at construction "
            "(pass available_arms to select/predict/propensities instead)"
        )

    @synchronized
    def reset(self) -> None:
        """Forgets everything learned (arms, settings and the random stream position stay)."""
        self._state = self._fresh()

    @synchronized
    def get_stats(self) -> dict[str, Any]:
        st = self._state
        return {
            "arms": {
                label: {"rows": int(st.arm_rows[k]), "weight": float(st.arm_weight[k])}
                for k, label in enumerate(self._labels)
            },
            "node_updates": st.node_updates.tolist(),
            "rows": st.rows,
            "offset": self._current_offset(st),
            "n_arms": len(self._labels),
            "n_nodes": self.n_nodes,
            "n_features": self.n_features,
        }

    def _current_offset(self, st: _State) -> float:
        if self.offset is not None:
            return self.offset
        return st.reward_sum / st.rows if st.rows else INITIAL_OFFSET

    @synchronized
    def node_weights(self) -> np.ndarray:
        """(n_nodes, n_features + 1): each node's weights, intercept last."""
        return self._state.theta.copy()

    @synchronized
    def __repr__(self) -> str:
        return (
            f"OffsetTree(n_arms={len(self._labels)}, n_features={self.n_features}, "
            f"learning_rate={self.learning_rate}, l2={self.l2}, epsilon={self.epsilon}, "
            f"max_weight={self.max_weight}, offset={self.offset})"
        )

    # --- saving (docs/format.md) ---

    @synchronized
    def to_bytes(self) -> bytes:
        """This model as a banditkit file (docs/format.md); labels must be str or int."""
        params = {
            "n_features": self.n_features,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            "epsilon": self.epsilon,
            "max_weight": self.max_weight,
            "offset": self.offset,
        }
        st = self._state
        arrays = [
            ("theta", st.theta),
            ("accum", st.accum),
            ("node_updates", st.node_updates),
            ("arm_rows", st.arm_rows),
            ("arm_weight", st.arm_weight),
            ("arm_reward", st.arm_reward),
            ("reward_sum", np.array([st.reward_sum])),
            ("rows", np.array([st.rows], dtype=np.int64)),
        ]
        return _persist.encode(self, params, self._labels, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> OffsetTree:
        """The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid."""
        doc = _persist.decode(data, cls)
        labels = _persist.labels_in(doc)
        params = doc.fields.get("params")
        offset = params.get("offset") if isinstance(params, dict) else None
        try:
            new = cls(
                labels,
                _persist.param(doc, "n_features", int),
                learning_rate=_persist.param(doc, "learning_rate", float),
                l2=_persist.param(doc, "l2", float),
                epsilon=_persist.param(doc, "epsilon", float),
                max_weight=_persist.param(doc, "max_weight", float),
                offset=None if offset is None else _persist.param(doc, "offset", float),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, _persist.FormatError):
                raise
            raise _persist.FormatError(f"invalid banditkit file: {exc}") from None
        k, n, d1 = len(labels), new.n_nodes, new.n_features + 1
        st = new._state
        st.theta = _persist.array(doc, "theta", (n, d1))
        st.accum = _persist.array(doc, "accum", (n, d1))
        if np.any(st.accum < 0.0):
            raise _persist.FormatError("invalid banditkit file: accum must be non-negative")
        st.node_updates = _persist.array(doc, "node_updates", (n,), "i8")
        st.arm_rows = _persist.array(doc, "arm_rows", (k,), "i8")
        st.arm_weight = _persist.array(doc, "arm_weight", (k,))
        if np.any(st.arm_weight < 0.0):
            raise _persist.FormatError("invalid banditkit file: arm_weight must be non-negative")
        st.arm_reward = _persist.array(doc, "arm_reward", (k,))
        st.reward_sum = float(_persist.array(doc, "reward_sum", (1,))[0])
        st.rows = int(_persist.array(doc, "rows", (1,), "i8")[0])
        new._rng = _persist.rng_in(doc)
        new.seed = None
        return new


def _check_propensities(values: object, what: str = "propensities") -> np.ndarray:
    """Probabilities in (0, 1] (a logging policy's probability of the logged arm)."""
    p = numeric_array(values)
    if p is None or p.ndim > 1:
        raise ValueError(f"{what} must be a 1-D array of numbers")
    p = p.reshape(-1)
    if not np.all((p > 0.0) & (p <= 1.0)):  # NaN fails too
        bad = p[~((p > 0.0) & (p <= 1.0))][0]
        raise ValueError(f"{what} must be in (0, 1], got {bad!r}")
    return p
