"""One served experiment: its model and the bookkeeping derived from the event log.

`Experiment` holds state only; the engine drives it. Two locks: `lock` guards the model (and
the RNG and the per-state cache), held only for CPU work (decide, apply, to_bytes); `apply_lock`
makes one thread at a time read the log and apply it, so that no event is applied twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

from banditkit.serve import payloads
from banditkit.serve.policies import Cache, Policy
from banditkit.store import LogRow

log = logging.getLogger("banditkit.serve")

TIMELINE_SECONDS = 3600  # per-second counts kept (and snapshotted) for the dashboard
# Decisions remembered for their rewards (beyond: a store lookup). With contexts of 67 floats
# that is about 55 MB at most.
RECENT_DECISIONS = 100_000


def make_rng(seed: int | None, name: str) -> np.random.Generator:
    """An experiment's generator: from (seed, name) when a seed is set, else from the OS."""
    if seed is None:
        return np.random.default_rng()
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.default_rng([seed & (2**64 - 1), digest])


# A reward waiting to be applied: (arm index, reward, context, time, logged propensity).
Pending = tuple[int, float, Any, float, float | None]


class Experiment:
    def __init__(
        self,
        name: str,
        policy: Policy,
        params: dict[str, Any],
        arms: list[Hashable],
        model: Any,
        rng: np.random.Generator,
        info: dict[str, Any] | None = None,
        seq: int = 0,
    ) -> None:
        self.name = name
        self.policy = policy
        self.params = params
        self.arms = arms
        self.arm_index = {a: i for i, a in enumerate(arms)}
        self.arm_json = [json.dumps(a) for a in arms]
        self.n_features = policy.n_features(params)
        self.model = model
        self.rng = rng
        self.lock = threading.Lock()
        self.apply_lock = threading.Lock()
        self.cache: Cache = {}
        # batch event id -> (arm index of each decision (ids "batch/i"), their contexts: a
        # float matrix, or JSON texts / None for a non-contextual policy)
        self.recent: OrderedDict[str, tuple[list[int], Any]] = OrderedDict()
        self.recent_lock = threading.Lock()
        self.recent_size = 0  # decisions in `recent`
        info = info or {}
        self.applied_seq = seq
        self.read_started = 0.0  # time.monotonic() when the last catch-up began reading
        self.snapshot_seq = seq
        self.snapshot_time = time.monotonic()
        self.decisions = int(info.get("decisions", 0))
        self.rewards = int(info.get("rewards", 0))
        self.skipped = int(info.get("skipped", 0))
        self.counts = [int(c) for c in info.get("counts", [0] * len(arms))]
        self.reward_sums = [float(s) for s in info.get("reward_sums", [0.0] * len(arms))]
        self.timeline: dict[int, list[float]] = {
            int(t): [d, r, s] for t, d, r, s in info.get("timeline", [])
        }

    @property
    def version(self) -> int:
        """1 + rewards applied: derived from the log, so equal on every server."""
        return 1 + self.rewards

    def info(self) -> dict[str, Any]:
        """What a snapshot records beside the model (call under `lock`)."""
        cutoff = int(time.time()) - TIMELINE_SECONDS
        return {
            "policy": self.policy.name,
            "params": self.params,
            "arms": self.arms,
            "counts": self.counts,
            "reward_sums": self.reward_sums,
            "decisions": self.decisions,
            "rewards": self.rewards,
            "skipped": self.skipped,
            "version": self.version,
            "timeline": [[t, *v] for t, v in sorted(self.timeline.items()) if t >= cutoff],
        }

    def remember(
        self, batch_id: str, arms: list[int], contexts: Any, propensities: list[float]
    ) -> None:
        """Keep a recent batch of decisions so that their rewards need no store lookup."""
        with self.recent_lock:
            self.recent[batch_id] = (arms, contexts, propensities)
            self.recent_size += len(arms)
            while self.recent_size > RECENT_DECISIONS and len(self.recent) > 1:
                self.recent_size -= len(self.recent.popitem(last=False)[1][0])

    def recall(self, event_id: str) -> tuple[int, str, float] | None:
        """(arm index, context fragment, propensity) of decision "batch/i", if remembered."""
        batch_id, _, i = event_id.rpartition("/")
        with self.recent_lock:
            hit = self.recent.get(batch_id)
        if hit is None or not i.isdigit() or int(i) >= len(hit[0]):
            return None
        arms, contexts, props = hit
        k = int(i)
        if contexts is None:
            return arms[k], "", props[k]
        if isinstance(contexts, np.ndarray):
            return arms[k], payloads.row_fragment(contexts[k]), props[k]
        return arms[k], payloads.text_fragment(contexts[k]), props[k]

    # --- applying the log (the caller holds apply_lock) ---

    def apply_rows(self, rows: list[LogRow]) -> int:
        """Apply events in seq order: count decisions, apply rewards in groups (a maximal run
        of consecutive rewards of one request batch). Returns how many rewards were applied."""
        # Decode the rewards before taking the model lock: decisions need not wait for it.
        parsed = [None if row.kind != "reward" else self._parse(row) for row in rows]
        applied = 0
        group: list[Pending] = []
        batch: object = None
        with self.lock:
            for row, item in zip(rows, parsed, strict=True):
                if row.kind != "reward":  # "decisions" (a request's batch) or "decision"
                    applied += self._flush(group)
                    group, batch = [], None
                    self.decisions += row.count
                    self._tick(int(row.time), 0, row.count)
                    continue
                if item is None:  # an event this experiment cannot use (logged in _parse)
                    self.skipped += 1
                    continue
                arm, reward, context, this_batch, propensity = item
                if group and (this_batch is None or this_batch != batch):
                    applied += self._flush(group)
                    group = []
                group.append((arm, reward, context, row.time, propensity))
                batch = this_batch
            applied += self._flush(group)
            if rows:
                self.applied_seq = rows[-1].seq
                self.cache.clear()
        return applied

    def _parse(self, row: LogRow) -> tuple[int, float, Any, object, float | None] | None:
        try:
            data = json.loads(row.payload or "{}")
            arm = self.arm_index[data["arm"]]
            reward = float(data["reward"])
            context = payloads.context_of(data)
            if self.n_features is not None and (context is None or len(context) != self.n_features):
                raise ValueError("no context of the right length")
            batch = (data.get("meta") or {}).get("batch")
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("%s: skipping event seq %d: %r", self.name, row.seq, exc)
            return None
        return arm, reward, context, batch, payloads.propensity_of(data)

    def _flush(self, group: list[Pending]) -> int:
        """Apply one group; if the model refuses it, apply its rewards one by one and skip
        the ones it refuses (the same on every server: the log decides)."""
        if not group:
            return 0
        try:
            self._apply(group)
            return len(group)
        except (ValueError, OverflowError, ArithmeticError) as exc:
            if len(group) == 1:
                log.warning("%s: reward refused by the model, skipped: %s", self.name, exc)
                self.skipped += 1
                return 0
            return sum(self._flush([g]) for g in group)

    def _apply(self, group: list[Pending]) -> None:
        idx = [g[0] for g in group]
        rewards = np.array([g[1] for g in group], dtype=float)
        contexts = (
            np.array([g[2] for g in group], dtype=float) if self.n_features is not None else None
        )
        props = [g[4] for g in group]
        self.policy.apply(self.model, [self.arms[i] for i in idx], contexts, rewards, props)
        for i, r, _, t, _ in group:
            self.counts[i] += 1
            self.reward_sums[i] += r
            self._tick(int(t), 1, 1, r)
        self.rewards += len(group)

    def _tick(self, second: int, kind: int, n: int, reward: float = 0.0) -> None:
        slot = self.timeline.get(second)
        if slot is None:
            slot = self.timeline[second] = [0, 0, 0.0]
            if len(self.timeline) > 2 * TIMELINE_SECONDS:
                cutoff = second - TIMELINE_SECONDS
                for t in [t for t in self.timeline if t < cutoff]:
                    del self.timeline[t]
        slot[kind] += n
        if kind:
            slot[2] += reward
