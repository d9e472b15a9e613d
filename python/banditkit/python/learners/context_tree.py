"""ContextTree, the NumPy reference (the Rust core is banditkit_core::learners::context_tree).

A regression tree over the context whose leaves run Thompson sampling per arm.

- Each leaf keeps, per arm, the count, sum and sum of squares of the rewards seen there (the
  posterior's sufficient statistics).
- Split candidates: a leaf above `max_depth` keeps its first `sketch_size` rows
  (`min_samples_split` clipped to [64, 256]: bounded), takes `n_quantiles` empirical quantiles
  of each feature from them as thresholds, replays them into per-(feature, bin, arm)
  count/sum/sum-of-squares statistics and frees the rows. From then on every row only updates
  those statistics, so a leaf's memory is O(d n_quantiles K) however many rows it sees, and the
  tree's is bounded by `max_nodes`.
- Every `min_samples_split` rows (once binned), the leaf scores each threshold by the reward
  variance reduction within each arm: the drop of the arm's sum of squared deviations (children
  vs leaf) minus what pure noise is expected to give at the best of M candidates ((1 + 2 ln M)
  residual variances), per row of that arm, averaged over the arms with at least
  `max(1, min_samples_split // 4)` rows on each side (so an arm the policy rarely plays counts
  as much as one it plays all the time). The best split (first on ties) is taken if its gain
  exceeds `split_threshold`, each side holds that many rows too and the tree stays within
  `max_nodes`; the children start from the leaf's statistics on their side (rows since the
  leaf was made).
- Thompson at a leaf. "gaussian": arm a ~ N(m_a, s_a^2) with one pseudo-observation at the
  leaf's pooled mean m0 (pooled variance v0, plus a unit pseudo-residual): m_a = (S_a + m0) /
  (n_a + 1), s_a^2 = (v0 + SSE_a) / (n_a + 1)^2. "beta" (rewards in [0, 1]): Beta(1 + S_a,
  1 + n_a - S_a). Propensities are the exact win probabilities of these posteriors.

The arithmetic is scalar and in the same order as the Rust core's, so both backends build the
same tree with bit-identical statistics from the same rows.
"""

from __future__ import annotations

import bisect
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
    check_reward,
    check_rewards,
    check_seed,
    is_number,
    numeric_array,
    setting_integer,
    setting_number,
)
from ..exact import prob_best_beta, prob_best_gaussian

SKETCH_MIN, SKETCH_MAX = 64, 256
PRIORS = ("gaussian", "beta")
INTERNAL, SKETCH, BINNED, FROZEN = 0, 1, 2, 3


def _hashable(arm: object) -> None:
    try:
        hash(arm)
    except TypeError:
        raise ValueError(f"arm labels must be hashable, got {arm!r}") from None


def _sse(n: float, s: float, q: float) -> float:
    """Sum of squared deviations from the mean, from count, sum and sum of squares."""
    if n <= 0:
        return 0.0
    return max(q - s * (s / n), 0.0)


class _Node:
    """A tree node: internal (feature, threshold, left; right is left + 1) or a leaf."""

    __slots__ = ("feature", "threshold", "left", "depth", "phase", "n", "s", "q", "since",
                 "sketch", "thresholds", "bin_n", "bin_s", "bin_q")  # fmt: skip

    def __init__(self, depth: int, k: int, phase: int) -> None:
        self.feature, self.threshold, self.left, self.depth = 0, 0.0, 0, depth
        self.phase = phase
        self.n = [0] * k
        self.s = [0.0] * k
        self.q = [0.0] * k
        self.since = 0
        self.sketch: list[tuple[np.ndarray, int, float]] = []
        self.thresholds: list[list[float]] = []
        self.bin_n: list[np.ndarray] = []  # per feature (bins, K) int64
        self.bin_s: list[np.ndarray] = []
        self.bin_q: list[np.ndarray] = []

    def copy(self) -> _Node:
        new = object.__new__(_Node)
        for name in _Node.__slots__:
            setattr(new, name, getattr(self, name))
        new.n, new.s, new.q = list(self.n), list(self.s), list(self.q)
        new.sketch = list(self.sketch)
        new.thresholds = [list(t) for t in self.thresholds]
        new.bin_n = [b.copy() for b in self.bin_n]
        new.bin_s = [b.copy() for b in self.bin_s]
        new.bin_q = [b.copy() for b in self.bin_q]
        return new

    def add_to_bins(self, x: np.ndarray, k: int, r: float) -> None:
        for j, thr in enumerate(self.thresholds):
            b = bisect.bisect_left(thr, float(x[j]))  # first bin with x <= threshold
            self.bin_n[j][b, k] += 1
            self.bin_s[j][b, k] += r
            self.bin_q[j][b, k] += r * r


class ContextTree(Synchronized, _persist.Persistent):
    """Context tree with Thompson sampling per arm at each leaf (see the module docstring)."""

    def __init__(
        self,
        arms: Iterable[Hashable],
        n_features: int,
        max_depth: int = 3,
        min_samples_split: int = 20,
        split_threshold: float = 0.01,
        max_nodes: int = 2000,
        n_quantiles: int = 8,
        prior: str = "gaussian",
        seed: int | None = None,
    ) -> None:
        d = setting_integer(n_features, "n_features")
        if d <= 0:
            raise ValueError(f"n_features must be positive, got {n_features}")
        depth = setting_integer(max_depth, "max_depth")
        if depth < 0:
            raise ValueError(f"max_depth must be non-negative, got {max_depth}")
        mss = setting_integer(min_samples_split, "min_samples_split")
        if mss < 2:
            raise ValueError(f"min_samples_split must be at least 2, got {min_samples_split}")
        thr = setting_number(split_threshold, "split_threshold")
        if not (math.isfinite(thr) and thr >= 0.0):
            raise ValueError(f"split_threshold must be finite and >= 0, got {split_threshold}")
        nodes = setting_integer(max_nodes, "max_nodes")
        if nodes < 1:
            raise ValueError(f"max_nodes must be positive, got {max_nodes}")
        nq = setting_integer(n_quantiles, "n_quantiles")
        if nq < 1:
            raise ValueError(f"n_quantiles must be positive, got {n_quantiles}")
        if not isinstance(prior, str):
            raise TypeError(f"prior must be 'gaussian' or 'beta', got {prior!r}")
        if prior not in PRIORS:
            raise ValueError(f"prior must be 'gaussian' or 'beta', got {prior!r}")
        labels: list[Hashable] = []
        for a in check_arm_list(arms, "arms"):
            _hashable(a)
            if any(label is a or label == a for label in labels):
                raise ValueError(f"duplicate arm {a!r}")
            labels.append(a)
        self.n_features, self.max_depth, self.min_samples_split = d, depth, mss
        self.split_threshold, self.max_nodes, self.n_quantiles = thr, nodes, nq
        self.prior = str(prior)
        self.seed = check_seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self._labels = labels
        self._fresh()

    def _fresh(self) -> None:
        self._nodes = [self._leaf(0)]
        self._pulls = [0] * len(self._labels)
        self._sq_total = 0.0  # >= every leaf's sum of squares: the overflow guard

    def _leaf(self, depth: int) -> _Node:
        return _Node(depth, len(self._labels), SKETCH if depth < self.max_depth else FROZEN)

    @property
    def sketch_size(self) -> int:
        return min(max(self.min_samples_split, SKETCH_MIN), SKETCH_MAX)

    @property
    @synchronized
    def arms(self) -> list[Hashable]:
        return list(self._labels)

    # --- validation (nothing is changed before all of it passes) ---

    def _index(self, arm: Hashable) -> int:
        return arm_position(self._labels, arm)

    def _ready(self) -> None:
        if not self._labels:
            raise ValueError("no arms to choose from")

    def _check_reward(self, r: float) -> float:
        if self.prior == "beta" and not (0.0 <= r <= 1.0):
            raise ValueError(f"rewards must be in [0, 1] with prior='beta', got {r}")
        return r

    @staticmethod
    def _check_propensity(p: object) -> None:
        if p is None:
            return
        value = float(p.item()) if isinstance(p, np.ndarray) and p.ndim == 0 else p
        if not is_number(value) or not (0.0 < float(value) <= 1.0):  # type: ignore[arg-type]
            raise ValueError(f"propensity must be a number in (0, 1], got {p!r}")

    def _check_propensities(self, propensities: object, n: int) -> None:
        if propensities is None:
            return
        p = numeric_array(propensities)
        if p is None:
            raise ValueError("propensities must be a 1-D array of numbers")
        p = p.reshape(-1)
        if p.shape[0] != n:
            raise ValueError(f"propensities must have length {n}, got {p.shape[0]}")
        if not np.all((p > 0.0) & (p <= 1.0)):  # NaN fails too
            raise ValueError("propensities must be in (0, 1]")

    def _check_overflow(self, rewards: Sequence[float], total: float) -> None:
        for r in rewards:
            total += r * r
        if not math.isfinite(total):
            raise ValueError("update would make the tree's reward statistics non-finite (overflow)")

    # --- the tree ---

    def _leaf_of(self, x: np.ndarray) -> int:
        i = 0
        nodes = self._nodes
        while nodes[i].phase == INTERNAL:
            node = nodes[i]
            i = node.left if x[node.feature] <= node.threshold else node.left + 1
        return i

    def _observe(self, k: int, x: np.ndarray, r: float) -> None:
        i = self._leaf_of(x)
        leaf = self._nodes[i]
        leaf.n[k] += 1
        leaf.s[k] += r
        leaf.q[k] += r * r
        leaf.since += 1
        self._pulls[k] += 1
        self._sq_total += r * r
        if leaf.phase == SKETCH:
            leaf.sketch.append((x.copy(), k, r))
            if len(leaf.sketch) >= self.sketch_size:
                self._build_bins(leaf)
        elif leaf.phase == BINNED:
            leaf.add_to_bins(x, k, r)
        if leaf.phase == BINNED and leaf.since % self.min_samples_split == 0:
            self._try_split(i)

    def _build_bins(self, leaf: _Node) -> None:
        """Quantile thresholds of each feature over the sketch, then the sketch into bins."""
        rows = leaf.sketch
        m, nq, k = len(rows), self.n_quantiles, len(self._labels)
        leaf.thresholds = []
        for j in range(self.n_features):
            values = sorted(float(x[j]) for x, _, _ in rows)
            top = values[-1]
            thr: list[float] = []
            for i in range(1, nq + 1):
                t = values[(i * m) // (nq + 1)]
                if t < top and (not thr or t > thr[-1]):
                    thr.append(t)
            leaf.thresholds.append(thr)
        leaf.bin_n = [np.zeros((len(t) + 1, k), dtype=np.int64) for t in leaf.thresholds]
        leaf.bin_s = [np.zeros((len(t) + 1, k)) for t in leaf.thresholds]
        leaf.bin_q = [np.zeros((len(t) + 1, k)) for t in leaf.thresholds]
        for x, a, r in rows:
            leaf.add_to_bins(x, a, r)
        leaf.sketch = []
        leaf.phase = BINNED

    def _best_split(self, leaf: _Node) -> tuple[float, int, int]:
        """(gain, feature, threshold index) of the best candidate; gain -inf if none."""
        k = len(self._labels)
        min_side = max(1, self.min_samples_split // 4)
        best_none = (-math.inf, -1, -1)
        n_candidates = sum(len(thr) for thr in leaf.thresholds)
        if n_candidates == 0:
            return best_none
        # Pure noise gives each arm's sum of squares a drop of about one residual variance
        # per candidate, and the best of M candidates about 1 + 2 ln M of them.
        noise = 1.0 + 2.0 * math.log(n_candidates)
        best = best_none
        for j, thr in enumerate(leaf.thresholds):
            if not thr:
                continue
            cn = np.cumsum(leaf.bin_n[j], axis=0)  # sequential sums, as the Rust core
            cs = np.cumsum(leaf.bin_s[j], axis=0)
            cq = np.cumsum(leaf.bin_q[j], axis=0)
            tn, ts, tq = cn[-1], cs[-1], cq[-1]
            total = int(tn.sum())
            for b in range(len(thr)):
                left = int(cn[b].sum())
                if left < min_side or total - left < min_side:
                    continue
                gain, used = 0.0, 0
                for a in range(k):
                    nl, nr = int(cn[b, a]), int(tn[a] - cn[b, a])
                    if nl < min_side or nr < min_side or nl + nr <= 2:
                        continue
                    sl, ql = float(cs[b, a]), float(cq[b, a])
                    sr, qr = float(ts[a]) - sl, float(tq[a]) - ql
                    children = _sse(nl, sl, ql) + _sse(nr, sr, qr)
                    drop = _sse(nl + nr, float(ts[a]), float(tq[a])) - children
                    gain += (drop - noise * (children / (nl + nr - 2))) / (nl + nr)
                    used += 1
                if used == 0:
                    continue
                gain = gain / used
                if gain > best[0]:
                    best = (gain, j, b)
        return best

    def _try_split(self, i: int) -> None:
        leaf = self._nodes[i]
        if len(self._nodes) + 2 > self.max_nodes:
            return
        gain, j, b = self._best_split(leaf)
        if not gain > self.split_threshold:
            return
        cn = np.cumsum(leaf.bin_n[j], axis=0)
        cs = np.cumsum(leaf.bin_s[j], axis=0)
        cq = np.cumsum(leaf.bin_q[j], axis=0)
        left, right = self._leaf(leaf.depth + 1), self._leaf(leaf.depth + 1)
        for a in range(len(self._labels)):
            left.n[a], left.s[a], left.q[a] = int(cn[b, a]), float(cs[b, a]), float(cq[b, a])
            right.n[a] = int(cn[-1, a]) - left.n[a]
            right.s[a] = float(cs[-1, a]) - left.s[a]
            right.q[a] = max(float(cq[-1, a]) - left.q[a], 0.0)
        internal = _Node(leaf.depth, 0, INTERNAL)
        internal.feature, internal.threshold = j, leaf.thresholds[j][b]
        internal.left = len(self._nodes)
        internal.n, internal.s, internal.q = [], [], []
        self._nodes[i] = internal
        self._nodes.extend([left, right])

    # --- the posterior at a leaf ---

    def _posterior(self, leaf: _Node) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian (means, sds) or Beta (alpha, beta) of every arm at `leaf`."""
        k = len(self._labels)
        first, second = np.empty(k), np.empty(k)
        if self.prior == "beta":
            for a in range(k):
                first[a] = 1.0 + leaf.s[a]
                second[a] = 1.0 + (leaf.n[a] - leaf.s[a])
            return first, second
        big_n, t, u = 0, 0.0, 0.0
        for a in range(k):
            big_n += leaf.n[a]
            t += leaf.s[a]
            u += leaf.q[a]
        m0 = t / big_n if big_n > 0 else 0.0
        v0 = (1.0 + max(u - t * m0, 0.0)) / (big_n + 1)
        for a in range(k):
            n1 = leaf.n[a] + 1
            first[a] = (leaf.s[a] + m0) / n1
            second[a] = math.sqrt((v0 + _sse(leaf.n[a], leaf.s[a], leaf.q[a])) / n1 / n1)
        return first, second

    def _means(self, leaf: _Node) -> np.ndarray:
        first, second = self._posterior(leaf)
        return first / (first + second) if self.prior == "beta" else first

    def _draw(self, leaf: _Node) -> np.ndarray:
        """One Thompson draw per arm, in arm order."""
        first, second = self._posterior(leaf)
        if self.prior == "beta":
            return self._rng.beta(first, second)
        return first + second * self._rng.standard_normal(first.size)

    def _win_probabilities(self, leaf: _Node, mask: np.ndarray | None) -> np.ndarray:
        first, second = self._posterior(leaf)
        idx = np.arange(first.size) if mask is None else np.flatnonzero(mask)
        out = np.zeros(first.size)
        kernel = prob_best_beta if self.prior == "beta" else prob_best_gaussian
        out[idx] = kernel(first[idx], second[idx])
        return out

    def _choose(self, x: np.ndarray, mask: np.ndarray | None) -> int:
        scores = self._draw(self._nodes[self._leaf_of(x)])
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        return int(np.argmax(scores))

    # --- deciding ---

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
        k = self._choose(v, mask)
        if not return_propensity:
            return self._labels[k]
        p = self._win_probabilities(self._nodes[self._leaf_of(v)], mask)
        return self._labels[k], float(p[k])

    @synchronized
    def predict(self, X: object, available_arms: Sequence[Hashable] | None = None) -> list:
        m = check_contexts(X, self.n_features)
        mask = arm_mask(self._labels, available_arms)
        self._ready()
        return [self._labels[self._choose(row, mask)] for row in m]

    @synchronized
    def propensities(
        self, X: object, available_arms: Sequence[Hashable] | None = None
    ) -> np.ndarray:
        m = check_contexts(X, self.n_features)
        mask = arm_mask(self._labels, available_arms)
        self._ready()
        out = np.empty((m.shape[0], len(self._labels)))
        cache: dict[int, np.ndarray] = {}
        for r, row in enumerate(m):
            i = self._leaf_of(row)
            if i not in cache:
                cache[i] = self._win_probabilities(self._nodes[i], mask)
            out[r] = cache[i]
        return out

    @synchronized
    def predict_expectations(self, X: object) -> np.ndarray:
        m = check_contexts(X, self.n_features)
        out = np.empty((m.shape[0], len(self._labels)))
        for r, row in enumerate(m):
            out[r] = self._means(self._nodes[self._leaf_of(row)])
        return out

    def decision_function(self, X: object) -> np.ndarray:
        """The posterior means the Thompson draws are centred on (the deterministic part)."""
        return self.predict_expectations(X)

    @synchronized
    def apply(self, X: object) -> np.ndarray:
        """The index of the leaf each row of X falls in."""
        m = check_contexts(X, self.n_features)
        return np.array([self._leaf_of(row) for row in m], dtype=np.int64)

    # --- learning ---

    @synchronized
    def update(self, arm: Hashable, x: object, reward: object, propensity: object = None) -> None:
        k = self._index(arm)
        v = check_context(x, self.n_features)
        r = self._check_reward(check_reward(reward))
        self._check_propensity(propensity)
        self._check_overflow([r], self._sq_total)
        self._observe(k, v, r)

    def _observations(
        self, X: object, arms: object, rewards: object, propensities: object, sq_total: float
    ) -> tuple[np.ndarray, list[int], list[float]]:
        if isinstance(X, Mapping):
            if arms is not None or rewards is not None or propensities is not None:
                raise ValueError("pass either a logged-feedback mapping or X, arms, rewards")
            X, arms, rewards, propensities = self._logged(X)
        elif arms is None or rewards is None:
            raise ValueError("arms and rewards are required with X")
        m = check_contexts(X, self.n_features)
        idx = [self._index(a) for a in check_arm_list(arms, "arms")]
        r = check_rewards(rewards)
        if not (len(idx) == len(r) == m.shape[0]):
            raise ValueError(
                f"X, arms and rewards must have the same length, got "
                f"{m.shape[0]}, {len(idx)}, {len(r)}"
            )
        rs = [self._check_reward(float(v)) for v in r]
        self._check_propensities(propensities, m.shape[0])
        self._check_overflow(rs, sq_total)
        return m, idx, rs

    def _logged(self, logged: Mapping[str, Any]) -> tuple[Any, list[Hashable], Any, Any]:
        """OBP's keys: context, action (indices into .arms), reward, pscore (optional)."""
        for key in ("context", "action", "reward"):
            if key not in logged:
                raise ValueError(f"logged feedback needs the key {key!r}")
        action = numeric_array(logged["action"])
        if action is None or action.ndim != 1:
            raise ValueError("action must be a 1-D array of arm indices")
        k = len(self._labels)
        if not np.all((action == np.floor(action)) & (action >= 0) & (action < k)):
            raise ValueError(f"action must hold integer arm indices in [0, {k})")
        arms = [self._labels[int(a)] for a in action]
        return logged["context"], arms, logged["reward"], logged.get("pscore")

    @synchronized
    def partial_fit(
        self, X: object, arms: object = None, rewards: object = None, propensities: object = None
    ) -> None:
        m, idx, rs = self._observations(X, arms, rewards, propensities, self._sq_total)
        for row, k, r in zip(m, idx, rs, strict=True):
            self._observe(k, row, r)

    @synchronized
    def fit(
        self, X: object, arms: object = None, rewards: object = None, propensities: object = None
    ) -> None:
        """Forget every observation, then learn these (on bad input nothing changes)."""
        m, idx, rs = self._observations(X, arms, rewards, propensities, 0.0)
        self._fresh()
        for row, k, r in zip(m, idx, rs, strict=True):
            self._observe(k, row, r)

    # --- arms and inspection ---

    @synchronized
    def add_arm(self, arm: Hashable) -> None:
        """A new arm, unplayed in every leaf (its prior there is the leaf's pooled rewards)."""
        _hashable(arm)
        if any(label is arm or label == arm for label in self._labels):
            raise ValueError(f"arm {arm!r} already exists")
        self._labels = [*self._labels, arm]
        self._pulls = [*self._pulls, 0]
        nodes = [node.copy() for node in self._nodes]
        for node in nodes:
            if node.phase == INTERNAL:
                continue
            node.n.append(0)
            node.s.append(0.0)
            node.q.append(0.0)
            node.bin_n = [np.column_stack([b, np.zeros(len(b), np.int64)]) for b in node.bin_n]
            node.bin_s = [np.column_stack([b, np.zeros(len(b))]) for b in node.bin_s]
            node.bin_q = [np.column_stack([b, np.zeros(len(b))]) for b in node.bin_q]
        self._nodes = nodes

    @synchronized
    def remove_arm(self, arm: Hashable) -> None:
        """Drops the arm and its statistics; the splits it helped choose stay."""
        k = self._index(arm)
        nodes = [node.copy() for node in self._nodes]
        for node in nodes:
            if node.phase == INTERNAL:
                continue
            del node.n[k], node.s[k], node.q[k]
            node.sketch = [(x, a - (a > k), r) for x, a, r in node.sketch if a != k]
            node.since = node.since if node.phase != SKETCH else len(node.sketch)
            node.bin_n = [np.delete(b, k, axis=1) for b in node.bin_n]
            node.bin_s = [np.delete(b, k, axis=1) for b in node.bin_s]
            node.bin_q = [np.delete(b, k, axis=1) for b in node.bin_q]
        self._labels = self._labels[:k] + self._labels[k + 1 :]
        self._pulls = self._pulls[:k] + self._pulls[k + 1 :]
        self._nodes = nodes

    @synchronized
    def reset(self) -> None:
        """Forgets every observation (arms, settings and the random stream position stay)."""
        self._fresh()

    @synchronized
    def get_stats(self) -> dict[str, Any]:
        leaves = [n for n in self._nodes if n.phase != INTERNAL]
        return {
            "arms": {
                label: {"pulls": p} for label, p in zip(self._labels, self._pulls, strict=True)
            },
            "total_pulls": sum(self._pulls),
            "n_nodes": len(self._nodes),
            "n_leaves": len(leaves),
            "depth": max(n.depth for n in leaves),
            "n_arms": len(self._labels),
            "n_features": self.n_features,
        }

    @synchronized
    def tree(self) -> list[dict[str, Any]]:
        """The nodes in storage order: splits (feature, threshold, left, right) and leaves
        (per-arm count, sum, sum of squares of the rewards they hold)."""
        out: list[dict[str, Any]] = []
        for node in self._nodes:
            if node.phase == INTERNAL:
                split = {"feature": node.feature, "threshold": node.threshold}
                out.append(
                    {**split, "left": node.left, "right": node.left + 1, "depth": node.depth}
                )
            else:
                stats = {"counts": list(node.n), "sums": list(node.s), "sums_sq": list(node.q)}
                out.append({**stats, "depth": node.depth})
        return out

    # --- saving (docs/format.md, "ContextTree") ---

    @synchronized
    def to_bytes(self) -> bytes:
        """This model as a banditkit file (docs/format.md); labels must be str or int."""
        k, d, nodes = len(self._labels), self.n_features, self._nodes
        params = {
            "n_features": d,
            "max_depth": self.max_depth,
            "min_samples_split": self.min_samples_split,
            "split_threshold": self.split_threshold,
            "max_nodes": self.max_nodes,
            "n_quantiles": self.n_quantiles,
            "prior": self.prior,
        }
        leaves = [n if n.phase != INTERNAL else None for n in nodes]
        sketch = [row for n in nodes for row in n.sketch]
        binned = [n for n in nodes if n.phase == BINNED]

        def ints(values: list[int]) -> np.ndarray:
            return np.array(values, dtype=np.int64)

        def per_leaf(get: Any, dtype: Any) -> np.ndarray:
            rows = [get(n) if n is not None else [0] * k for n in leaves]
            return np.array(rows, dtype=dtype).reshape(len(nodes), k)

        def bins(name: str, dtype: Any) -> np.ndarray:
            blocks = [b for n in binned for b in getattr(n, name)]
            return np.concatenate(blocks).astype(dtype) if blocks else np.zeros((0, k), dtype)

        n_thr = [[len(t) for t in n.thresholds] if n.phase == BINNED else [0] * d for n in nodes]
        arrays = [
            ("node_phase", ints([n.phase for n in nodes])),
            ("node_feature", ints([n.feature for n in nodes])),
            ("node_threshold", np.array([n.threshold for n in nodes], dtype=float)),
            ("node_left", ints([n.left for n in nodes])),
            ("node_since", ints([n.since for n in nodes])),
            ("leaf_n", per_leaf(lambda n: n.n, np.int64)),
            ("leaf_s", per_leaf(lambda n: n.s, float)),
            ("leaf_q", per_leaf(lambda n: n.q, float)),
            ("sketch_x", np.array([x for x, _, _ in sketch], dtype=float).reshape(-1, d)),
            ("sketch_arm", ints([a for _, a, _ in sketch])),
            ("sketch_r", np.array([r for _, _, r in sketch], dtype=float)),
            ("n_thresholds", np.array(n_thr, dtype=np.int64).reshape(len(nodes), d)),
            ("thresholds", np.array([t for n in binned for thr in n.thresholds for t in thr])),
            ("bin_n", bins("bin_n", np.int64)),
            ("bin_s", bins("bin_s", float)),
            ("bin_q", bins("bin_q", float)),
            ("pulls", ints(self._pulls)),
        ]
        return _persist.encode(self, params, self._labels, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> ContextTree:
        """The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid."""
        doc = _persist.decode(data, cls)
        labels = _persist.labels_in(doc)
        try:
            prior = _persist.param(doc, "prior", str)
            new = cls(
                labels,
                _persist.param(doc, "n_features", int),
                max_depth=_persist.param(doc, "max_depth", int),
                min_samples_split=_persist.param(doc, "min_samples_split", int),
                split_threshold=_persist.param(doc, "split_threshold", float),
                max_nodes=_persist.param(doc, "max_nodes", int),
                n_quantiles=_persist.param(doc, "n_quantiles", int),
                prior=prior,
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, _persist.FormatError):
                raise
            raise _persist.FormatError(f"invalid banditkit file: {exc}") from None
        try:
            new._load_arrays(doc)
        except (ValueError, IndexError) as exc:
            if isinstance(exc, _persist.FormatError):
                raise
            raise _persist.FormatError(f"invalid banditkit file: {exc}") from None
        new._rng = _persist.rng_in(doc)
        new.seed = None
        return new

    def _load_arrays(self, doc: Any) -> None:
        k, d = len(self._labels), self.n_features
        arr = _persist.array
        raw = doc.arrays.get("node_phase")
        m = raw.shape[0] if raw is not None and raw.ndim == 1 else -1
        phase = arr(doc, "node_phase", (m,), "i8")
        feature = arr(doc, "node_feature", (m,), "i8")
        threshold = arr(doc, "node_threshold", (m,))
        left = arr(doc, "node_left", (m,), "i8")
        since = arr(doc, "node_since", (m,), "i8")
        leaf_n = arr(doc, "leaf_n", (m, k), "i8")
        leaf_s, leaf_q = arr(doc, "leaf_s", (m, k)), arr(doc, "leaf_q", (m, k))
        n_thr = arr(doc, "n_thresholds", (m, d), "i8")
        if not (1 <= m <= self.max_nodes) or np.any(phase > FROZEN):
            raise ValueError("bad node_phase")
        n_sketch = int(since[phase == SKETCH].sum())
        sketch_x = arr(doc, "sketch_x", (n_sketch, d))
        sketch_arm = arr(doc, "sketch_arm", (n_sketch,), "i8")
        sketch_r = arr(doc, "sketch_r", (n_sketch,))
        if np.any(n_thr > self.n_quantiles) or np.any(n_thr[phase != BINNED] != 0):
            raise ValueError("bad n_thresholds")
        thresholds = arr(doc, "thresholds", (int(n_thr.sum()),))
        n_bins = int((n_thr[phase == BINNED] + 1).sum())
        bin_n = arr(doc, "bin_n", (n_bins, k), "i8")
        bin_s, bin_q = arr(doc, "bin_s", (n_bins, k)), arr(doc, "bin_q", (n_bins, k))
        pulls = arr(doc, "pulls", (k,), "i8")
        if np.any(sketch_arm >= k) or np.any(leaf_q < 0) or np.any(bin_q < 0):
            raise ValueError("bad statistics")
        nodes: list[_Node] = []
        depth = [0] * m
        has_parent = [False] * m
        sk = th = bi = 0
        for i in range(m):
            if i > 0 and not has_parent[i]:
                raise ValueError("a node has no parent")
            node = _Node(depth[i], k, int(phase[i]))
            node.since = int(since[i])
            splittable = depth[i] < self.max_depth
            if node.phase == INTERNAL:
                node.feature, node.threshold, node.left = (
                    int(feature[i]),
                    threshold[i],
                    int(left[i]),
                )
                node.n, node.s, node.q = [], [], []
                c = node.left
                if not (i < c and c + 1 < m) or has_parent[c] or has_parent[c + 1]:
                    raise ValueError("bad child index")
                if node.feature >= d or not splittable:
                    raise ValueError("bad split")
                has_parent[c] = has_parent[c + 1] = True
                depth[c] = depth[c + 1] = depth[i] + 1
                nodes.append(node)
                continue
            if (node.phase == FROZEN) == splittable:
                raise ValueError("a leaf's phase disagrees with its depth")
            node.n = [int(v) for v in leaf_n[i]]
            node.s = [float(v) for v in leaf_s[i]]
            node.q = [float(v) for v in leaf_q[i]]
            if node.phase == SKETCH:
                if node.since >= self.sketch_size:
                    raise ValueError("bad sketch")
                node.sketch = [
                    (sketch_x[r].copy(), int(sketch_arm[r]), float(sketch_r[r]))
                    for r in range(sk, sk + node.since)
                ]
                sk += node.since
            if node.phase == BINNED:
                for j in range(d):
                    t = int(n_thr[i, j])
                    thr = [float(v) for v in thresholds[th : th + t]]
                    if any(a >= b for a, b in zip(thr, thr[1:], strict=False)):
                        raise ValueError("thresholds must increase")
                    node.thresholds.append(thr)
                    th += t
                    node.bin_n.append(bin_n[bi : bi + t + 1].copy())
                    node.bin_s.append(bin_s[bi : bi + t + 1].copy())
                    node.bin_q.append(bin_q[bi : bi + t + 1].copy())
                    bi += t + 1
            nodes.append(node)
        self._nodes = nodes
        self._pulls = [int(p) for p in pulls]
        self._sq_total = float(sum(sum(n.q) for n in nodes if n.phase != INTERNAL))
        if not math.isfinite(self._sq_total):
            raise ValueError("reward statistics overflow")

    @synchronized
    def __repr__(self) -> str:
        return (
            f"ContextTree(n_arms={len(self._labels)}, n_features={self.n_features}, "
            f"max_depth={self.max_depth}, min_samples_split={self.min_samples_split}, "
            f"split_threshold={self.split_threshold}, max_nodes={self.max_nodes}, "
            f"n_quantiles={self.n_quantiles}, prior='{self.prior}')"
        )
