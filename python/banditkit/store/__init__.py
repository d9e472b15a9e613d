"""`banditkit.store`: a durable, versioned home for bandit models, their event log and metrics.

    from banditkit.store import open_store

    with open_store("sqlite:///models.db") as store:       # or "postgresql://user@host/db"
        v = store.put("home", model)                        # -> 1, 2, 3, ...
        model = store.get("home")                           # the latest version
        store.put("home", model, expected_version=v)        # VersionConflict if someone else wrote
        store.append_events("home", [{"id": "d1", "kind": "decision", "arm": "a",
                                      "propensity": 0.5}])

URLs: `sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (the embedded default;
stdlib sqlite3), `postgresql://user:password@host:port/dbname` (several processes or nodes;
needs `pip install 'banditkit[postgres]'`). The store keeps the bytes of `obj.to_bytes()`
(the versioned banditkit format, never pickle) and loads them with `banditkit.loads`.

Errors (all `StoreError`s): `UnsupportedURL` (a `ValueError`) for another scheme;
`StoreNotFound` (a `FileNotFoundError` and `ValueError`) for `open_store(url, create=False)` on
a SQLite file that does not exist; `ModelNotFound` (a `KeyError`) for a name or version that is
not there; `VersionConflict` when `expected_version` is stale; `InvalidEvent` (a `ValueError`)
for a malformed event; `SchemaError` (a `ValueError`) for a store newer than this banditkit.
A state that cannot be read raises `banditkit.FormatError` from `get`. A call that raises
leaves the store as it was.
"""

from __future__ import annotations

from typing import Any

from banditkit.store.base import LogRow, Metric, Snapshot, Store, VersionInfo
from banditkit.store.errors import (
    InvalidEvent,
    ModelNotFound,
    SchemaError,
    StoreError,
    StoreNotFound,
    UnsupportedURL,
    VersionConflict,
)
from banditkit.store.events import Event, EventRow, event_context, expand_decisions

__all__ = [
    "open_store",
    "Store",
    "VersionInfo",
    "Event",
    "EventRow",
    "expand_decisions",
    "event_context",
    "LogRow",
    "Metric",
    "Snapshot",
    "StoreError",
    "UnsupportedURL",
    "StoreNotFound",
    "ModelNotFound",
    "VersionConflict",
    "InvalidEvent",
    "SchemaError",
]


def sqlite_path(url: str) -> str:
    """The file of a `sqlite:///...` URL (three slashes and a relative path, or four and an
    absolute one, as SQLAlchemy reads them)."""
    rest = url[len("sqlite:///") :]
    if not url.startswith("sqlite:///") or not rest:
        raise UnsupportedURL(
            f"a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db, "
            f"got {url!r}"
        )
    if "?" in rest or rest == ":memory:":
        raise UnsupportedURL(f"a SQLite store is a file path without options, got {url!r}")
    return rest


def open_store(url: str, *, create: bool = True, **options: Any) -> Store:
    """Open (and with `create`, make if needed) the store at `url`.

    `create=False` refuses to make anything: a missing SQLite file raises `StoreNotFound`, a
    database without banditkit's tables `SchemaError` (what `banditkit store ls` uses, so a
    typo does not leave an empty store behind). Either way a store of an older schema is
    migrated on open. Options: SQLite `busy_timeout` (seconds, default 30); PostgreSQL
    `min_size`/`max_size` (the connection pool, default 1/4) and `timeout` (seconds, default 30).
    """
    if not isinstance(url, str):
        raise UnsupportedURL(f"a store URL must be a str, got {type(url).__name__}")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from banditkit.store.sqlite import SQLiteStore

        return SQLiteStore(url, sqlite_path(url), create=create, **options)
    if scheme in ("postgresql", "postgres"):
        from banditkit.store.postgres import PostgresStore

        return PostgresStore(url, create=create, **options)
    raise UnsupportedURL(
        f"unsupported store URL {url!r}: use sqlite:///path.db or postgresql://user@host/db"
    )
