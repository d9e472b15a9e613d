"""The store's tables and their migrations, shared by SQLite and PostgreSQL.

`bk_schema_version` holds one row per applied migration; a store's schema version is the highest.
Opening a store applies the missing migrations in one transaction (so a crash leaves the old
schema or the new one, never a mix) and refuses a store whose schema is newer than this code.
Never edit a released migration: add the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from banditkit.store.errors import SchemaError


class Migration(NamedTuple):
    version: int
    description: str
    statements: tuple[str, ...]  # with {blob}, {real}, {bigint}, {serial} filled per dialect


DIALECTS = {
    "sqlite": {
        "blob": "BLOB",
        "real": "REAL",
        "bigint": "INTEGER",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
    },
    "postgresql": {
        "blob": "BYTEA",
        "real": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
}

VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS bk_schema_version ("
    "version INTEGER PRIMARY KEY, applied_at {real} NOT NULL, description TEXT NOT NULL)"
)

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "models (versioned state blobs), events (idempotent log), metrics",
        (
            "CREATE TABLE bk_models ("
            "name TEXT NOT NULL, version {bigint} NOT NULL CHECK (version >= 1), "
            "created_at {real} NOT NULL, size {bigint} NOT NULL, state {blob} NOT NULL, "
            "PRIMARY KEY (name, version))",
            "CREATE TABLE bk_events ("
            "seq {serial}, name TEXT NOT NULL, event_id TEXT NOT NULL, kind TEXT NOT NULL, "
            "time {real} NOT NULL, payload TEXT NOT NULL, UNIQUE (name, event_id))",
            "CREATE TABLE bk_metrics ("
            "name TEXT NOT NULL, operation TEXT NOT NULL, time {real} NOT NULL, "
            "value {real} NOT NULL)",
            "CREATE INDEX bk_metrics_time ON bk_metrics (time)",
        ),
    ),
    Migration(
        2,
        "index metrics by (name, operation, time) for per-model queries",
        ("CREATE INDEX bk_metrics_name ON bk_metrics (name, operation, time)",),
    ),
    Migration(
        3,
        "snapshots (the event seq a model version includes); events indexed by (name, seq)",
        (
            "CREATE TABLE bk_snapshots ("
            "name TEXT NOT NULL, version {bigint} NOT NULL, seq {bigint} NOT NULL, "
            "info TEXT NOT NULL, PRIMARY KEY (name, version))",
            # A server reads the tail of a name's log (seq > applied) every poll: without
            # this index that read finds every event of the name and sorts them.
            "CREATE INDEX bk_events_name_seq ON bk_events (name, seq)",
        ),
    ),
]

LATEST = MIGRATIONS[-1].version


def sql(statement: str, dialect: str) -> str:
    return statement.format(**DIALECTS[dialect])


def pending(current: int, migrations: list[Migration] | None = None) -> list[Migration]:
    """The migrations after `current`, in order."""
    return [m for m in (MIGRATIONS if migrations is None else migrations) if m.version > current]


def upgrade(
    execute: Callable[[str, tuple[Any, ...]], object],
    current: int,
    dialect: str,
    now: float,
    migrations: list[Migration] | None = None,
) -> int:
    """Apply the migrations after `current` through `execute(sql, params)` (inside the caller's
    transaction); returns the new version. Refuses a schema newer than this code knows."""
    known = MIGRATIONS if migrations is None else migrations
    latest = known[-1].version
    if current > latest:
        raise SchemaError(
            f"the store's schema is version {current}, newer than this banditkit knows "
            f"({latest}): upgrade banditkit"
        )
    mark = "?" if dialect == "sqlite" else "%s"
    for m in pending(current, known):
        for statement in m.statements:
            execute(sql(statement, dialect), ())
        execute(
            f"INSERT INTO bk_schema_version (version, applied_at, description) "
            f"VALUES ({mark}, {mark}, {mark})",
            (m.version, now, m.description),
        )
        current = m.version
    return current
