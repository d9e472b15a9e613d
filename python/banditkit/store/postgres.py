"""The shared store: PostgreSQL through psycopg 3 and a psycopg_pool connection pool.

Several processes on several machines can use one store. Every call is one transaction:
- `put` reads the latest version and inserts the next one; the primary key (name, version)
  makes two concurrent writers of the same version impossible: the second one's insert fails,
  and it re-reads (and raises `VersionConflict` if it had an `expected_version`).
- `append_events` inserts the batch with `ON CONFLICT DO NOTHING` (idempotent ids) under a
  per-name advisory lock, so the events of one name are committed in `seq` order and a reader
  following `events(name, after=seq)` never skips one committed late.
A write is acknowledged after PostgreSQL's COMMIT returns: with the server's default
`synchronous_commit = on` it is then in the server's fsynced WAL, so it survives the client's
death, the server's crash and a power cut of the server's machine.
"""

from __future__ import annotations

import re
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from banditkit.store import schema
from banditkit.store.base import LogRow, Metric, Store, VersionInfo, log_columns, metric_filter
from banditkit.store.errors import ModelNotFound, SchemaError, StoreError, VersionConflict
from banditkit.store.events import Event, EventRow, from_row

# Advisory lock keys (first int4 of the pair): schema migrations, and event appends per name.
_LOCK_MIGRATE = 0x626B0001
_LOCK_EVENTS = 0x626B0002
_PUT_RETRIES = 100


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class PostgresStore(Store):
    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 30.0,
    ) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise ImportError(
                "a postgresql:// store needs psycopg 3 and psycopg_pool: "
                "pip install 'banditkit[postgres]'"
            ) from exc
        self.url = url
        self._psycopg = psycopg
        try:
            # Migrate on a connection of our own first: a bad host or password fails here
            # with the server's message, instead of as a pool timeout.
            with psycopg.connect(url, autocommit=True, connect_timeout=int(timeout)) as conn:
                self._migrate(conn, create)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot use the store at {redact(url)}: {exc}") from exc
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True},
            open=True,
            name="banditkit.store",
        )

    @staticmethod
    def _migrate(conn: Any, create: bool) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
            found = conn.execute("SELECT to_regclass('bk_schema_version')").fetchone()[0]
            if found is None:
                if not create:
                    raise SchemaError("the database holds no banditkit store (create=False)")
                conn.execute(schema.sql(schema.VERSION_TABLE, "postgresql"))
            current = conn.execute("SELECT max(version) FROM bk_schema_version").fetchone()[0]
            schema.upgrade(conn.execute, current or 0, "postgresql", _time.time())

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """A pooled connection inside one transaction (committed when the block ends)."""
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _query(
        self, sql: str, params: tuple[Any, ...] = (), binary: bool = False
    ) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            return conn.execute(sql, params, binary=binary).fetchall()

    def schema_version(self) -> int:
        return self._query("SELECT max(version) FROM bk_schema_version")[0][0]

    def close(self) -> None:
        self._pool.close()

    # --- models ---

    def _put(
        self,
        name: str,
        blob: bytes,
        expected: int | None,
        now: float,
        snapshot: tuple[int, str] | None = None,
    ) -> int:
        for _ in range(_PUT_RETRIES):
            try:
                with self._tx() as conn:
                    current = conn.execute(
                        "SELECT max(version) FROM bk_models WHERE name = %s", (name,)
                    ).fetchone()[0]
                    if expected is not None and (current or 0) != expected:
                        raise VersionConflict(name, expected, current)
                    version = (current or 0) + 1
                    conn.execute(
                        "INSERT INTO bk_models (name, version, created_at, size, state) "
                        "VALUES (%s, %s, %s, %s, %b)",  # %b: the state goes as binary
                        (name, version, now, len(blob), blob),
                    )
                    if snapshot is not None:
                        conn.execute(
                            "INSERT INTO bk_snapshots (name, version, seq, info) "
                            "VALUES (%s, %s, %s, %s)",
                            (name, version, *snapshot),
                        )
                return version
            except self._psycopg.errors.UniqueViolation:
                continue  # another writer took that version: read again
        raise StoreError(f"put {name!r}: {_PUT_RETRIES} concurrent writers beat this one")

    def _get(self, name: str, version: int | None) -> bytes:
        if version is None:
            rows = self._query(
                "SELECT state FROM bk_models WHERE name = %s ORDER BY version DESC LIMIT 1",
                (name,),
                binary=True,  # the state as raw bytes, not hex text twice its size
            )
        else:
            rows = self._query(
                "SELECT state FROM bk_models WHERE name = %s AND version = %s",
                (name, version),
                binary=True,
            )
        if not rows:
            raise ModelNotFound(name, version)
        return bytes(rows[0][0])

    def _latest_snapshot(self, name: str) -> tuple[int, bytes, int | None, str | None]:
        rows = self._query(
            "SELECT m.version, m.state, s.seq, s.info FROM bk_models m "
            "LEFT JOIN bk_snapshots s ON s.name = m.name AND s.version = m.version "
            "WHERE m.name = %s ORDER BY m.version DESC LIMIT 1",
            (name,),
            binary=True,
        )
        if not rows:
            raise ModelNotFound(name)
        version, state, seq, info = rows[0]
        return int(version), bytes(state), None if seq is None else int(seq), info

    def _prune(self, name: str, keep: int) -> int:
        with self._tx() as conn:
            latest = conn.execute(
                "SELECT max(version) FROM bk_models WHERE name = %s", (name,)
            ).fetchone()[0]
            if latest is None:
                return 0
            conn.execute(
                "DELETE FROM bk_snapshots WHERE name = %s AND version <= %s",
                (name, latest - keep),
            )
            return conn.execute(
                "DELETE FROM bk_models WHERE name = %s AND version <= %s", (name, latest - keep)
            ).rowcount

    def _versions(self, name: str) -> list[VersionInfo]:
        rows = self._query(
            "SELECT version, created_at, size FROM bk_models WHERE name = %s ORDER BY version",
            (name,),
        )
        if not rows:
            raise ModelNotFound(name)
        return [VersionInfo(int(v), float(t), int(s)) for v, t, s in rows]

    def _names(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT name FROM bk_models ORDER BY name")]

    def _delete(self, name: str) -> int:
        with self._tx() as conn:
            versions = conn.execute("DELETE FROM bk_models WHERE name = %s", (name,)).rowcount
            events = conn.execute("DELETE FROM bk_events WHERE name = %s", (name,)).rowcount
            conn.execute("DELETE FROM bk_snapshots WHERE name = %s", (name,))
            if versions == 0 and events == 0:
                raise ModelNotFound(name)
        return versions

    # --- events ---

    def _append(self, name: str, rows: list[EventRow]) -> int:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_EVENTS, name))
            cur = conn.execute(
                "INSERT INTO bk_events (name, event_id, kind, time, payload) "
                "SELECT %s, e.id, e.kind, e.time, e.payload FROM unnest("
                "%s::text[], %s::text[], %s::float8[], %s::text[]) WITH ORDINALITY "
                "AS e(id, kind, time, payload, ord) ORDER BY e.ord "
                "ON CONFLICT (name, event_id) DO NOTHING",
                (
                    name,
                    [r.id for r in rows],
                    [r.kind for r in rows],
                    [r.time for r in rows],
                    [r.payload for r in rows],
                ),
            )
            return cur.rowcount

    def _events(self, name: str, after: int, limit: int | None) -> list[Event]:
        rows = self._query(
            "SELECT seq, event_id, kind, time, payload FROM bk_events "
            "WHERE name = %s AND seq > %s ORDER BY seq LIMIT %s",
            (name, after, limit),
        )
        return [from_row(*r) for r in rows]

    def _find_events(self, name: str, ids: list[str]) -> list[Event]:
        rows = self._query(
            "SELECT seq, event_id, kind, time, payload FROM bk_events "
            "WHERE name = %s AND event_id = ANY(%s)",
            (name, ids),
        )
        return [from_row(*r) for r in rows]

    def _log_rows(self, name: str, after: int, decisions: bool) -> list[LogRow]:
        columns = log_columns(decisions, "json_array_length(payload::json -> 'propensities')")
        rows = self._query(
            f"SELECT seq, kind, time, {columns} FROM bk_events "
            "WHERE name = %s AND seq > %s ORDER BY seq",
            (name, after),
        )
        return [LogRow(int(q), k, float(t), p, int(n)) for q, k, t, p, n in rows]

    def _last_seq(self, name: str) -> int:
        rows = self._query("SELECT max(seq) FROM bk_events WHERE name = %s", (name,))
        return int(rows[0][0] or 0)

    def _count_events(self, name: str) -> int:
        return int(self._query("SELECT count(*) FROM bk_events WHERE name = %s", (name,))[0][0])

    # --- metrics ---

    def _record_metric(self, name: str, operation: str, value: float, when: float) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO bk_metrics (name, operation, time, value) VALUES (%s, %s, %s, %s)",
                (name, operation, when, value),
            )

    def _metrics(
        self, name: str | None, operation: str | None, since: float | None
    ) -> list[Metric]:
        clause, params = metric_filter(name, operation, since, "%s")
        rows = self._query(
            f"SELECT name, operation, time, value FROM bk_metrics {clause}ORDER BY time",
            tuple(params),
        )
        return [Metric(n, o, float(t), float(v)) for n, o, t, v in rows]

    def _cleanup(self, cutoff: float) -> int:
        with self._tx() as conn:
            return conn.execute("DELETE FROM bk_metrics WHERE time < %s", (cutoff,)).rowcount
