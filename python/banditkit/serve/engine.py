"""The serve engine: experiments over one store, where the event log is the truth.

Every method is synchronous and thread-safe (the HTTP layer calls them from a thread pool).
Decisions and rewards are logged (durably, by the group-commit writer) before a call returns;
the model state changes only in `catch_up`, which applies the log in `seq` order, so every
server reading one store reaches the same counts and the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Observer = Callable[[str, str, float], None]  # observe(kind, operation, seconds)


class Engine:
    """Experiments (one model each) served from the store at `store_url`."""

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
        self.observe = observe

    def start(self) -> None:
        """Open the store, load every experiment (snapshot + replay), start the threads."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the threads, snapshot every changed experiment, close the store."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once started and the store answers."""
        raise NotImplementedError

    def names(self) -> list[str]:
        """The experiments' names, sorted."""
        raise NotImplementedError

    def create(self, name: str, policy: str, arms: list[str | int], params: dict) -> dict:
        """Create an experiment; returns `describe(name)`. ExperimentExists / InvalidInput."""
        raise NotImplementedError

    def describe(self, name: str) -> dict:
        """{"name", "policy", "params", "version", "decisions", "rewards",
        "arms": [{"arm", "count", "reward_sum", "win_probability"}]} after catching up."""
        raise NotImplementedError

    def recommend(self, name: str, requests: list[dict]) -> list[dict]:
        """[{"id", "context"?, "candidates"?}] -> [{"id", "arm", "propensity", "event_id"}],
        logged before returning."""
        raise NotImplementedError

    def reward(self, name: str, rewards: list[dict]) -> int:
        """[{"event_id"?, "arm"?, "reward", "context"?, "id"?}] -> how many were accepted,
        logged before returning; a reward for an event id already rewarded counts once."""
        raise NotImplementedError

    def timeline(self, name: str, seconds: int = 600, bucket: int = 10) -> dict:
        """{"name", "bucket_seconds", "buckets": [{"t", "decisions", "rewards", "reward_sum"}]}."""
        raise NotImplementedError

    def delete(self, name: str) -> None:
        """Remove the experiment, its versions and its events."""
        raise NotImplementedError

    def catch_up(self, name: str) -> None:
        """Apply the log's events after the experiment's applied seq."""
        raise NotImplementedError

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
