"""The one store interface (`Store`) and the logic every backend shares: argument checks made
before anything is written, the state codec, and the records the queries return."""

from __future__ import annotations

import datetime as _dt
import json
import math
import time as _time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, NamedTuple

from banditkit.store.events import Event, EventRow, validate

MAX_NAME = 255


class VersionInfo(NamedTuple):
    """One stored version of a model: when it was written (seconds since the epoch, UTC) and
    the size of its state in bytes."""

    version: int
    created_at: float
    size: int


class Snapshot(NamedTuple):
    """The latest version of a model with what the server recorded about it: the event `seq`
    the state includes (0: none) and its `info` (a JSON object; {} for a plain `put`)."""

    version: int
    seq: int
    info: dict[str, Any]
    state: bytes


class LogRow(NamedTuple):
    """An event as the serve engine replays it: `payload` is the raw JSON text, and None for
    decisions when not asked for (counting them needs no parsing); `count` is the number of
    decisions a `decisions` event holds (1 for any other event)."""

    seq: int
    kind: str
    time: float
    payload: str | None
    count: int = 1


class Metric(NamedTuple):
    name: str
    operation: str
    time: float
    value: float


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or "\x00" in name:
        raise ValueError(
            f"a model name must be a non-empty str of at most {MAX_NAME} characters "
            f"without NUL, got {name!r}"
        )
    return name


def check_version(version: object, what: str, minimum: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {version!r}")
    return version


def check_blob(blob: object) -> bytes:
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"a state must be bytes, got {type(blob).__name__}")
    out = bytes(blob)
    if not out:
        raise ValueError("a state cannot be empty")
    return out


def metric_filter(
    name: str | None, operation: str | None, since: float | None, mark: str
) -> tuple[str, list[Any]]:
    """The WHERE clause (with `mark` as the placeholder) and parameters of a metrics query."""
    where, params = [], []
    for column, value in (("name", name), ("operation", operation)):
        if value is not None:
            where.append(f"{column} = {mark}")
            params.append(value)
    if since is not None:
        where.append(f"time >= {mark}")
        params.append(float(since))
    return (f"WHERE {' AND '.join(where)} " if where else ""), params


def log_columns(decisions: bool, length_of_batch: str) -> str:
    """The payload and count columns of `log_rows` (`length_of_batch`: the dialect's length of
    a `decisions` event's `propensities` array)."""
    payload = (
        "payload"
        if decisions
        else "CASE WHEN kind IN ('decision', 'decisions') THEN NULL ELSE payload END"
    )
    return f"{payload}, CASE WHEN kind = 'decisions' THEN {length_of_batch} ELSE 1 END"


def seconds(older_than: float | _dt.timedelta) -> float:
    if isinstance(older_than, _dt.timedelta):
        older_than = older_than.total_seconds()
    if isinstance(older_than, bool) or not isinstance(older_than, (int, float)):
        raise TypeError(f"older_than must be seconds or a timedelta, got {older_than!r}")
    if not math.isfinite(older_than) or older_than < 0:
        raise ValueError(f"older_than must be a finite, non-negative duration, got {older_than!r}")
    return float(older_than)


class Store(ABC):
    """A durable, versioned home for bandit models, their event log and metrics.

    Use `banditkit.store.open_store(url)`; close it with `close()` or a `with` block. Every
    method either completes or leaves the store as it was (one transaction per call).
    """

    url: str

    # --- models ---

    def put(self, name: str, obj: Any, expected_version: int | None = None) -> int:
        """Store `obj.to_bytes()` as the next version of `name` and return that version
        (`TypeError` if `obj` is not a banditkit model).

        Versions start at 1 and grow by 1. With `expected_version` (0: "no version yet"), the
        write happens only if it is the latest stored version, else `VersionConflict` and
        nothing is written: get, update, put(expected_version=v) cannot lose an update.
        """
        import banditkit

        return self.put_bytes(name, banditkit.dumps(obj), expected_version)

    def get(self, name: str, version: int | None = None) -> Any:
        """The model stored as `name` (latest version, or `version`), as a new object of its
        class on the current backend. `ModelNotFound` if absent; `banditkit.FormatError` if the
        stored state cannot be read (e.g. a class this banditkit does not know)."""
        blob = self.get_bytes(name, version)
        import banditkit

        return banditkit.loads(blob)

    def put_bytes(self, name: str, state: bytes, expected_version: int | None = None) -> int:
        """`put` for a state already serialised (as `to_bytes` or `banditkit.dumps` give it)."""
        check_name(name)
        blob = check_blob(state)
        if expected_version is not None:
            check_version(expected_version, "expected_version", 0)
        return self._put(name, blob, expected_version, _time.time())

    def put_snapshot(
        self,
        name: str,
        state: bytes,
        seq: int,
        info: Mapping[str, Any],
        expected_version: int | None = None,
    ) -> int:
        """Store `state` as the next version of `name` together with the event `seq` it
        includes and a JSON object `info`, in one transaction; returns the version.
        `expected_version` works as in `put` (`VersionConflict`, nothing written)."""
        check_name(name)
        blob = check_blob(state)
        check_version(seq, "seq", 0)
        if expected_version is not None:
            check_version(expected_version, "expected_version", 0)
        if not isinstance(info, Mapping):
            raise TypeError(f"info must be a dict, got {type(info).__name__}")
        try:
            text = json.dumps(dict(info), allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"info must be JSON (finite numbers): {exc}") from None
        return self._put(name, blob, expected_version, _time.time(), (seq, text))

    def latest_snapshot(self, name: str) -> Snapshot:
        """The latest version of `name` with its snapshot row (seq 0 and info {} for a version
        stored by `put`); `ModelNotFound` if none."""
        version, state, seq, info = self._latest_snapshot(check_name(name))
        return Snapshot(version, seq or 0, json.loads(info) if info else {}, state)

    def prune(self, name: str, keep: int) -> int:
        """Delete every version of `name` but the latest `keep` (and their snapshot rows);
        returns how many went. Events are kept."""
        check_name(name)
        check_version(keep, "keep", 1)
        return self._prune(name, keep)

    def get_bytes(self, name: str, version: int | None = None) -> bytes:
        """The stored state of `name` (latest version, or `version`), as bytes."""
        check_name(name)
        if version is not None:
            check_version(version, "version", 1)
        return self._get(name, version)

    def latest_version(self, name: str) -> int:
        """The latest version of `name` (`ModelNotFound` if none)."""
        return self.versions(name)[-1].version

    def versions(self, name: str) -> list[VersionInfo]:
        """Every stored version of `name`, oldest first (`ModelNotFound` if none)."""
        return self._versions(check_name(name))

    def names(self) -> list[str]:
        """The names that have at least one stored version, sorted."""
        return self._names()

    def delete(self, name: str) -> int:
        """Remove every version of `name` and its events; returns how many versions went.
        `ModelNotFound` if the store has neither. A later put starts again at version 1."""
        return self._delete(check_name(name))

    # --- events ---

    def append_events(self, name: str, events: Iterable[Mapping[str, Any]]) -> int:
        """Append events to the log of `name` in one transaction; returns how many were new.

        An id already in the log of `name` (or repeated in the batch) is stored once, the first
        time: retrying a batch after a timeout is safe. All events are checked before any is
        written (`InvalidEvent`). See `banditkit.store.events` for the fields.
        """
        rows = validate(events)
        check_name(name)
        return self._append(name, rows) if rows else 0

    def events(self, name: str, after: int | None = None, limit: int | None = None) -> list[Event]:
        """The events of `name` in the order they were appended, those with `seq > after`."""
        check_name(name)
        if after is not None:
            check_version(after, "after", 0)
        if limit is not None:
            check_version(limit, "limit", 1)
        return self._events(name, after or 0, limit)

    def append_rows(self, name: str, rows: list[EventRow]) -> int:
        """The fast path of `append_events` for events a trusted caller (the serve engine)
        built itself: `EventRow`s whose payload is already canonical JSON of valid fields,
        ids unique in the batch. Nothing is re-checked; returns how many ids were new."""
        check_name(name)
        return self._append(name, rows) if rows else 0

    def find_events(self, name: str, ids: Iterable[str]) -> dict[str, Event]:
        """The events of `name` with these ids (absent ids are simply not in the dict)."""
        check_name(name)
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str)))
        found: dict[str, Event] = {}
        for start in range(0, len(wanted), 500):  # SQLite caps the parameters of one query
            for event in self._find_events(name, wanted[start : start + 500]):
                found[event.id] = event
        return found

    def log_rows(self, name: str, after: int = 0, decisions: bool = False) -> list[LogRow]:
        """The events after `seq` as raw `LogRow`s, the payload of decisions only with
        `decisions` (the serve engine's replay: it parses rewards and counts decisions)."""
        check_name(name)
        check_version(after, "after", 0)
        return self._log_rows(name, after, decisions)

    def last_seq(self, name: str) -> int:
        """The seq of the latest event of `name` (0 if its log is empty)."""
        return self._last_seq(check_name(name))

    def count_events(self, name: str) -> int:
        """How many events the log of `name` holds."""
        return self._count_events(check_name(name))

    # --- metrics ---

    def record_metric(
        self, name: str, operation: str, value: float, time: float | None = None
    ) -> None:
        """Record one measurement (e.g. `("home", "put_ms", 3.1)`) at `time` (default now)."""
        check_name(name)
        if not isinstance(operation, str) or not operation:
            raise ValueError(f"operation must be a non-empty str, got {operation!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"value must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"value must be finite, got {value!r}")
        when = _time.time() if time is None else float(time)
        if not math.isfinite(when):
            raise ValueError(f"time must be finite, got {time!r}")
        self._record_metric(name, operation, float(value), when)

    def metrics(
        self, name: str | None = None, operation: str | None = None, since: float | None = None
    ) -> list[Metric]:
        """Recorded metrics, oldest first, optionally of one name / operation / since a time."""
        return self._metrics(name, operation, since)

    def cleanup(self, older_than: float | _dt.timedelta) -> int:
        """Delete the metrics older than `older_than` (seconds or a timedelta) before now;
        returns how many rows went. Models and events are never removed by cleanup."""
        return self._cleanup(_time.time() - seconds(older_than))

    # --- schema and lifetime ---

    @abstractmethod
    def schema_version(self) -> int:
        """The version of the store's schema (see `banditkit.store.schema`)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection(s); the store cannot be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # --- what a backend implements (arguments already checked) ---

    @abstractmethod
    def _put(
        self,
        name: str,
        blob: bytes,
        expected: int | None,
        now: float,
        snapshot: tuple[int, str] | None = None,
    ) -> int: ...

    @abstractmethod
    def _latest_snapshot(self, name: str) -> tuple[int, bytes, int | None, str | None]: ...

    @abstractmethod
    def _prune(self, name: str, keep: int) -> int: ...

    @abstractmethod
    def _find_events(self, name: str, ids: list[str]) -> list[Event]: ...

    @abstractmethod
    def _log_rows(self, name: str, after: int, decisions: bool) -> list[LogRow]: ...

    @abstractmethod
    def _last_seq(self, name: str) -> int: ...

    @abstractmethod
    def _get(self, name: str, version: int | None) -> bytes: ...

    @abstractmethod
    def _versions(self, name: str) -> list[VersionInfo]: ...

    @abstractmethod
    def _names(self) -> list[str]: ...

    @abstractmethod
    def _delete(self, name: str) -> int: ...

    @abstractmethod
    def _append(self, name: str, rows: list[EventRow]) -> int: ...

    @abstractmethod
    def _events(self, name: str, after: int, limit: int | None) -> list[Event]: ...

    @abstractmethod
    def _count_events(self, name: str) -> int: ...

    @abstractmethod
    def _record_metric(self, name: str, operation: str, value: float, when: float) -> None: ...

    @abstractmethod
    def _metrics(
        self, name: str | None, operation: str | None, since: float | None
    ) -> list[Metric]: ...

    @abstractmethod
    def _cleanup(self, cutoff: float) -> int: ...
