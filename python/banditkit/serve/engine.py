"""The serve engine: experiments over one store, where the event log is the truth.

Every method is synchronous and thread-safe (the HTTP layer calls them from a thread pool).
Decisions and rewards are logged (durably, by the group-commit writer) before a call returns;
the model state changes only in `catch_up`, which applies the log in `seq` order, so every
server reading one store reaches the same counts and the same state. Snapshots (model bytes +
the seq they include) bound the replay on start; nothing acknowledged lives only in memory.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from typing import Any

import banditkit
from banditkit.serve import checks, payloads
from banditkit.serve import rewards as rewards_mod
from banditkit.serve.errors import (
    ExperimentExists,
    ExperimentNotFound,
    InvalidInput,
    ServeError,
    Unavailable,
)
from banditkit.serve.experiment import Experiment, make_rng
from banditkit.serve.policies import POLICIES, policy_of
from banditkit.serve.writer import EventWriter
from banditkit.store import EventRow, ModelNotFound, Store, VersionConflict, open_store

log = logging.getLogger("banditkit.serve")

Observer = Callable[[str, str, float], None]  # observe(kind, operation, seconds)


class Engine:
    """Experiments (one model each) served from the store at `store_url`.

    `snapshot_every_events` / `snapshot_every_seconds`: when an experiment's state is saved
    (with the seq it includes) so that a start replays little; `close()` saves too.
    `poll_interval`: seconds between reads of the log (other servers' events, experiments
    created elsewhere). `keep_snapshots`: versions kept per experiment. `seed`: reproducible
    decisions (a generator per experiment from (seed, name)); None: from the OS.
    `observe(kind, operation, seconds)`: called with the duration of each model ("decide",
    "apply", "snapshot", "replay", "win_probabilities") and store ("append", "read_events",
    "find_events", "put_snapshot", "load") operation, from whichever thread ran it.
    """

    def __init__(
        self,
        store_url: str,
        *,
        snapshot_every_events: int = 1000,
        snapshot_every_seconds: float = 30.0,
        poll_interval: float = 0.5,
        keep_snapshots: int = 5,
        seed: int | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.store_url = store_url
        self.snapshot_every_events = snapshot_every_events
        self.snapshot_every_seconds = snapshot_every_seconds
        self.poll_interval = poll_interval
        self.keep_snapshots = keep_snapshots
        self.seed = seed
        self._observe = observe
        self._experiments: dict[str, Experiment] = {}
        self._unservable: set[str] = set()  # names in the store this engine cannot load
        self._lock = threading.Lock()  # guards the dict, never held during I/O
        self._store: Store | None = None
        self._writer: EventWriter | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._started = False
        self._closed = False
        self._store_ok = False
        # Event ids: a random prefix per engine and a counter (unique across servers and
        # restarts, and much cheaper than a uuid per decision).
        self._prefix = uuid.uuid4().hex[:20] + "-"
        self._counter = itertools.count(1)

    # --- lifetime ---

    def start(self) -> None:
        """Open the store, load every experiment (snapshot + replay), start the threads."""
        if self._started:
            return
        t0 = time.perf_counter()
        try:
            self._store = open_store(self.store_url)
            # The writer has a connection of its own: its commits (and fsyncs) never make
            # the readers wait for the SQLite connection's lock.
            self._writer = EventWriter(open_store(self.store_url), self._observe)
            names = self._store.names()
        except ServeError:
            raise
        except Exception as exc:
            self._close_stores()
            raise Unavailable(f"cannot open the store: {exc}") from exc
        for name in names:
            self._load(name)
        self._timed("store", "load", t0)
        self._started = self._store_ok = True
        for target, label in ((self._poll, "poller"), (self._snapshotter, "snapshotter")):
            thread = threading.Thread(target=target, name=f"banditkit-{label}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop the threads, snapshot every changed experiment, close the store."""
        if self._closed or not self._started:
            self._closed = True
            return
        self._closed = True
        self._stop.set()
        for thread in self._threads:
            thread.join()
        if self._writer is not None:
            self._writer.close()
        for exp in list(self._experiments.values()):
            try:
                self._catch_up(exp)
                if exp.applied_seq > exp.snapshot_seq:
                    self._snapshot(exp)
            except Exception as exc:  # noqa: BLE001 - a failed snapshot loses nothing
                log.error("final snapshot of %r failed: %s", exp.name, exc)
        self._close_stores()
        self._store = None

    def _close_stores(self) -> None:
        for store in (self._store, self._writer.store if self._writer else None):
            if store is not None:
                try:
                    store.close()
                except Exception:  # noqa: BLE001
                    pass

    def ready(self) -> bool:
        """True once started (and not closed) while the store answers."""
        return self._started and not self._closed and self._store_ok

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- experiments ---

    def names(self) -> list[str]:
        """The experiments' names, sorted."""
        with self._lock:
            return sorted(self._experiments)

    def create(self, name: str, policy: str, arms: list[str | int], params: dict) -> dict:
        """Create an experiment; returns `describe(name)`. ExperimentExists / InvalidInput."""
        checks.check_name(name)
        if not isinstance(policy, str) or policy not in POLICIES:
            raise InvalidInput(
                f"unknown policy {policy!r}: one of {', '.join(POLICIES)}", field="policy"
            )
        adapter = POLICIES[policy]
        arm_list = checks.check_arms(arms)
        parsed = adapter.parse_params(params)
        if name in self._experiments:
            raise ExperimentExists(f"experiment {name!r} already exists")
        try:
            model = adapter.create(arm_list, parsed)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{policy}: {exc}", field="params") from None
        t0 = time.perf_counter()
        try:
            store = self._ready_store()
            # Events a stale server logged for an earlier experiment of this name (deleted
            # since) are before this seq: the new experiment never replays them.
            seq = store.last_seq(name)
            exp = Experiment(
                name, adapter, parsed, arm_list, model, make_rng(self.seed, name), None, seq
            )
            store.put_snapshot(name, model.to_bytes(), seq, exp.info(), expected_version=0)
        except VersionConflict:
            raise ExperimentExists(f"experiment {name!r} already exists") from None
        except ServeError:
            raise
        except Exception as exc:
            raise Unavailable(f"the store did not take the experiment: {exc}") from exc
        self._timed("store", "put_snapshot", t0)
        with self._lock:
            self._experiments.setdefault(name, exp)
        return self.describe(name)

    def describe(self, name: str) -> dict:
        """{"name", "policy", "params", "version", "decisions", "rewards",
        "arms": [{"arm", "count", "reward_sum", "win_probability"}]} after catching up, so
        that a read after an acknowledged write on any server sees it."""
        exp = self._get(name)
        self._catch_up(exp)
        with exp.lock:
            t0 = time.perf_counter()
            wins = exp.policy.win_probabilities(exp.model, exp.arms, exp.cache)
            self._timed("model", "win_probabilities", t0)
            arms = [
                {
                    "arm": arm,
                    "count": exp.counts[i],
                    "reward_sum": exp.reward_sums[i],
                    "win_probability": None if wins is None else wins[i],
                }
                for i, arm in enumerate(exp.arms)
            ]
            return {
                "name": name,
                "policy": exp.policy.name,
                "params": dict(exp.params),
                "version": exp.version,
                "decisions": exp.decisions,
                "rewards": exp.rewards,
                "skipped_rewards": exp.skipped,
                "arms": arms,
            }

    def delete(self, name: str) -> None:
        """Remove the experiment, its versions and its events."""
        exp = self._get(name)
        with exp.apply_lock:
            try:
                self._ready_store().delete(name)
            except ModelNotFound:
                pass  # another server deleted it first
            except ServeError:
                raise
            except Exception as exc:
                raise Unavailable(f"the store did not delete {name!r}: {exc}") from exc
            with self._lock:
                self._experiments.pop(name, None)

    # --- decisions and rewards ---

    def recommend(self, name: str, requests: list[dict]) -> list[dict]:
        """[{"id", "context"?, "candidates"?}] -> [{"id", "arm", "propensity", "event_id"}],
        in order, logged durably before returning."""
        exp = self._get(name)
        requests = checks.check_list(requests, "requests")
        n_features = exp.n_features
        # Comprehensions over the batch, per-item work only where a field is present: most
        # batches have neither candidates nor (non-contextual) contexts.
        for i, req in enumerate(requests):
            if type(req) is not dict:
                raise InvalidInput("a request is an object", field=f"requests[{i}]")
        ids = [req.get("id") for req in requests]
        cands: list[tuple[int, ...] | None] = [req.get("candidates") for req in requests]
        if cands.count(None) != len(cands):
            cands = [
                checks.candidate_set(c, exp.arm_index, f"requests[{i}].candidates")
                for i, c in enumerate(cands)
            ]
        texts: list[str | None] | None = None
        if n_features is None:  # a context is optional here, logged as given
            raw = [req.get("context") for req in requests]
            if raw.count(None) != len(raw):
                texts = [
                    None if c is None else checks.context_text(c, None, f"requests[{i}].context")[1]
                    for i, c in enumerate(raw)
                ]
        contexts = None
        if n_features is not None:
            contexts = checks.contexts_matrix(
                [r.get("context") for r in requests], n_features, exp.policy.name
            )

        t0 = time.perf_counter()
        with exp.lock:
            version = exp.version
            chosen, props = exp.policy.decide(
                exp.model, exp.arms, contexts, cands, exp.rng, exp.cache
            )
        self._timed("model", "decide", t0)

        chosen_list = chosen.tolist()
        prop_list = props.tolist()
        # One event per request batch (kind "decisions"), decision i known as "<id>/i": one
        # row to insert instead of one per decision (see payloads.py).
        batch_id = f"{self._prefix}{next(self._counter)}"
        payload = payloads.decisions_payload(
            exp.arm_json, chosen_list, prop_list, version, contexts, texts
        )
        self._append(name, [EventRow(batch_id, "decisions", time.time(), payload)])
        exp.remember(batch_id, chosen_list, contexts if contexts is not None else texts, prop_list)
        event_ids = [f"{batch_id}/{i}" for i in range(len(chosen_list))]
        arms = exp.arms
        return [
            {"id": rid, "arm": arms[k], "propensity": p, "event_id": eid}
            for rid, k, p, eid in zip(ids, chosen_list, prop_list, event_ids, strict=True)
        ]

    def reward(self, name: str, rewards: list[dict]) -> int:
        """[{"event_id"?, "arm"?, "reward", "context"?, "id"?}] -> how many were accepted,
        logged durably and applied before returning. A reward for a decision is stored as
        "reward:<event_id>", so a retried one counts once."""
        exp = self._get(name)
        rewards = checks.check_list(rewards, "rewards")
        found = self._decisions_of(exp, rewards)  # before any check: one store read at most
        events = rewards_mod.reward_rows(exp, rewards, found, self._new_id)
        self._append(name, events)
        self._catch_up(exp, committed=time.monotonic())
        return len(events)

    def _decisions_of(self, exp: Experiment, rewards: list[Any]) -> dict[str, tuple[int, str]]:
        """The decisions (arm index, context fragment) the rewards refer to: from the recent
        cache, else from the store (one read)."""
        found, missing = rewards_mod.recalled(exp, rewards)
        if missing:
            # A decision of another server: its batch event ("batch/i"), or a single one.
            wanted = set(missing) | {m.rpartition("/")[0] for m in missing if "/" in m}
            t0 = time.perf_counter()
            try:
                events = self._ready_store().find_events(exp.name, sorted(wanted))
            except ServeError:
                raise
            except Exception as exc:
                raise Unavailable(f"cannot read the decisions: {exc}") from exc
            self._timed("store", "find_events", t0)
            rewards_mod.resolve(exp, events, missing, found)
        return found

    def _new_id(self) -> str:
        return f"{self._prefix}r{next(self._counter)}"

    # --- timeline ---

    def timeline(self, name: str, seconds: int = 600, bucket: int = 10) -> dict:
        """{"name", "bucket_seconds", "buckets": [{"t", "decisions", "rewards", "reward_sum"}]}
        over the last `seconds`, from the events applied (every server's)."""
        for value, field in ((seconds, "seconds"), (bucket, "bucket")):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 86400:
                raise InvalidInput(f"{field} must be an integer in [1, 86400]", field=field)
        exp = self._get(name)
        end = int(time.time()) // bucket * bucket + bucket
        start = end - max(bucket, seconds // bucket * bucket)
        buckets = {t: [0, 0, 0.0] for t in range(start, end, bucket)}
        with exp.lock:
            items = [(t, list(v)) for t, v in exp.timeline.items() if start <= t < end]
        for t, (d, r, s) in items:
            slot = buckets[start + (t - start) // bucket * bucket]
            slot[0] += d
            slot[1] += r
            slot[2] += s
        return {
            "name": name,
            "bucket_seconds": bucket,
            "buckets": [
                {"t": t, "decisions": int(d), "rewards": int(r), "reward_sum": s}
                for t, (d, r, s) in buckets.items()
            ],
        }

    # --- the log ---

    def catch_up(self, name: str) -> None:
        """Apply the log's events after the experiment's applied seq."""
        self._catch_up(self._get(name))

    def _catch_up(self, exp: Experiment, committed: float | None = None) -> int:
        """Apply the new events. With `committed` (when the caller's events were committed):
        a catch-up that began reading after that has applied them, so concurrent writers
        share one read instead of queueing for one each."""
        with exp.apply_lock:
            if committed is not None and exp.read_started > committed:
                return 0
            started = time.monotonic()
            t0 = time.perf_counter()
            try:
                rows = self._ready_store().log_rows(exp.name, exp.applied_seq)
            except ServeError:
                raise
            except Exception as exc:
                raise Unavailable(f"cannot read the event log: {exc}") from exc
            self._timed("store", "read_events", t0)
            applied = 0
            if rows:
                t0 = time.perf_counter()
                applied = exp.apply_rows(rows)
                self._timed("model", "apply", t0)
            exp.read_started = started  # only once what it read is applied
            return applied

    def _load(self, name: str) -> Experiment | None:
        """Load an experiment: its latest snapshot, then the events after it."""
        t0 = time.perf_counter()
        try:
            snap = self._ready_store().latest_snapshot(name)
            model = banditkit.loads(snap.state)
            info = snap.info
            if "policy" in info:
                adapter = POLICIES[info["policy"]]
                params, arms = info["params"], list(info["arms"])
            else:  # a model put by a user: served with what its class says
                adapter = policy_of(model)
                params = adapter.params_of(model)
                arms = list(model.arms if adapter.contextual else model.get_models())
            exp = Experiment(
                name, adapter, params, arms, model, make_rng(self.seed, name), info, snap.seq
            )
        except ModelNotFound:
            return None
        except Exception as exc:  # noqa: BLE001 - one unreadable experiment must not stop the rest
            if name not in self._unservable:  # the poller retries: say it once
                self._unservable.add(name)
                log.error("cannot serve %r: %s", name, exc)
            return None
        self._unservable.discard(name)
        self._timed("store", "load", t0)
        t0 = time.perf_counter()
        self._catch_up(exp)
        self._timed("model", "replay", t0)
        with self._lock:
            return self._experiments.setdefault(name, exp)

    # --- snapshots ---

    def _snapshot(self, exp: Experiment) -> None:
        t0 = time.perf_counter()
        with exp.apply_lock, exp.lock:
            state = exp.model.to_bytes()
            info = exp.info()
            seq = exp.applied_seq
        self._timed("model", "snapshot", t0)
        t0 = time.perf_counter()
        store = self._ready_store()
        store.put_snapshot(exp.name, state, seq, info)
        store.prune(exp.name, self.keep_snapshots)
        self._timed("store", "put_snapshot", t0)
        exp.snapshot_seq = seq
        exp.snapshot_time = time.monotonic()

    def snapshot(self, name: str) -> None:
        """Snapshot one experiment now (after catching up)."""
        exp = self._get(name)
        self._catch_up(exp)
        self._snapshot(exp)

    # --- background threads ---

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                names = set(self._ready_store().names())
                self._store_ok = True
            except Exception as exc:  # noqa: BLE001
                self._store_ok = False
                log.warning("the store does not answer: %s", exc)
                continue
            with self._lock:
                known = set(self._experiments)
                for gone in known - names:  # deleted by another server
                    self._experiments.pop(gone, None)
            for name in sorted(names - known):
                self._load(name)
            for exp in list(self._experiments.values()):
                try:
                    self._catch_up(exp)
                except Exception as exc:  # noqa: BLE001
                    log.warning("catching up %r failed: %s", exp.name, exc)

    def _snapshotter(self) -> None:
        tick = min(1.0, max(0.05, self.snapshot_every_seconds / 10))
        while not self._stop.wait(tick):
            now = time.monotonic()
            for exp in list(self._experiments.values()):
                behind = exp.applied_seq - exp.snapshot_seq
                due = now - exp.snapshot_time >= self.snapshot_every_seconds
                if behind >= self.snapshot_every_events or (behind > 0 and due):
                    try:
                        self._snapshot(exp)
                    except Exception as exc:  # noqa: BLE001 - retried at the next tick
                        log.warning("snapshot of %r failed: %s", exp.name, exc)

    # --- helpers ---

    def _get(self, name: str) -> Experiment:
        exp = self._experiments.get(name) if isinstance(name, str) else None
        if exp is None:
            try:
                checks.check_name(name)
            except InvalidInput:
                raise ExperimentNotFound(f"no experiment named {name!r}") from None
            # Created by another server since the last poll?
            exp = self._load(name) if self._started and not self._closed else None
            if exp is None:
                raise ExperimentNotFound(f"no experiment named {name!r}")
        return exp

    def _ready_store(self) -> Store:
        if self._store is None:
            raise Unavailable("the engine is not running")
        return self._store

    def _append(self, name: str, events: list[EventRow]) -> None:
        if self._writer is None or self._closed:
            raise Unavailable("the engine is not running")
        self._writer.append(name, events)

    def _timed(self, kind: str, operation: str, t0: float) -> None:
        if self._observe is not None:
            self._observe(kind, operation, time.perf_counter() - t0)

    def _experiment(self, name: str) -> Experiment:
        """The experiment object (tests)."""
        return self._get(name)

    def arms_of(self, name: str) -> list[Hashable]:
        return list(self._get(name).arms)
