"""The embedded store: one SQLite file (stdlib `sqlite3`).

Durability settings, set on every connection:
- `journal_mode=WAL`: readers never block the writer, and a commit is one append to the
  write-ahead log, so a process killed at any moment leaves every committed transaction and
  none of an uncommitted one (SQLite replays or ignores the log on the next open).
- `synchronous=FULL`: the log is fsynced at every commit, before `put`/`append_events` return,
  so an acknowledged write also survives a power cut or an OS crash (if the disk honours fsync).
- a busy timeout (`busy_timeout` seconds, default 30): writers of other processes wait for
  each other instead of failing with "database is locked".
- every write runs in `BEGIN IMMEDIATE`: the write lock is taken before the read of a
  read-modify-write (`put`), so two writers can never both read version n and both write n + 1.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager

from banditkit.store import schema
from banditkit.store.base import LogRow, Metric, Store, VersionInfo, log_columns, metric_filter
from banditkit.store.errors import ModelNotFound, SchemaError, StoreNotFound, VersionConflict
from banditkit.store.events import Event, EventRow, from_row


class SQLiteStore(Store):
    def __init__(self, url: str, path: str, *, create: bool = True, busy_timeout: float = 30.0):
        self.url = url
        self.path = path
        if not create and not os.path.exists(path):
            raise StoreNotFound(2, f"no SQLite store at {path} (create=False)", path)
        if os.path.isdir(path):
            raise StoreNotFound(21, f"{path} is a directory, not a SQLite store", path)
        self._lock = threading.RLock()  # one connection, shared by the object's threads
        self._conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._set_wal()
            self._conn.execute("PRAGMA synchronous = FULL")
            self._migrate(create)
        except BaseException:
            self._conn.close()
            raise

    def _set_wal(self) -> None:
        # Switching to WAL needs a moment of exclusive access: retry while another process
        # opening the same new file holds it (the busy handler does not cover this pragma).
        deadline = _time.monotonic() + 30
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or _time.monotonic() > deadline:
                    raise
                _time.sleep(0.01)
        if mode.lower() != "wal":
            raise SchemaError(f"{self.path}: cannot use WAL mode (journal_mode is {mode})")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the write lock from its start (BEGIN IMMEDIATE)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _migrate(self, create: bool) -> None:
        with self._write() as conn:
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bk_schema_version'"
            ).fetchone()
            if not has_table:
                if not create:
                    raise SchemaError(f"{self.path} is not a banditkit store (create=False)")
                conn.execute(schema.sql(schema.VERSION_TABLE, "sqlite"))
            current = conn.execute("SELECT max(version) FROM bk_schema_version").fetchone()[0]
            schema.upgrade(conn.execute, current or 0, "sqlite", _time.time())

    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT max(version) FROM bk_schema_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- models ---

    def _put(
        self,
        name: str,
        blob: bytes,
        expected: int | None,
        now: float,
        snapshot: tuple[int, str] | None = None,
    ) -> int:
        with self._write() as conn:
            current = conn.execute(
                "SELECT max(version) FROM bk_models WHERE name = ?", (name,)
            ).fetchone()[0]
            if expected is not None and (current or 0) != expected:
                raise VersionConflict(name, expected, current)
            version = (current or 0) + 1
            conn.execute(
                "INSERT INTO bk_models (name, version, created_at, size, state) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, version, now, len(blob), blob),
            )
            if snapshot is not None:
                conn.execute(
                    "INSERT INTO bk_snapshots (name, version, seq, info) VALUES (?, ?, ?, ?)",
                    (name, version, *snapshot),
                )
        return version

    def _latest_snapshot(self, name: str) -> tuple[int, bytes, int | None, str | None]:
        with self._lock:
            row = self._conn.execute(
                "SELECT m.version, m.state, s.seq, s.info FROM bk_models m "
                "LEFT JOIN bk_snapshots s ON s.name = m.name AND s.version = m.version "
                "WHERE m.name = ? ORDER BY m.version DESC LIMIT 1",
                (name,),
            ).fetchone()
        if row is None:
            raise ModelNotFound(name)
        return int(row[0]), bytes(row[1]), row[2], row[3]

    def _prune(self, name: str, keep: int) -> int:
        with self._write() as conn:
            (latest,) = conn.execute(
                "SELECT max(version) FROM bk_models WHERE name = ?", (name,)
            ).fetchone()
            if latest is None:
                return 0
            conn.execute(
                "DELETE FROM bk_snapshots WHERE name = ? AND version <= ?", (name, latest - keep)
            )
            return conn.execute(
                "DELETE FROM bk_models WHERE name = ? AND version <= ?", (name, latest - keep)
            ).rowcount

    def _get(self, name: str, version: int | None) -> bytes:
        with self._lock:
            if version is None:
                row = self._conn.execute(
                    "SELECT state FROM bk_models WHERE name = ? ORDER BY version DESC LIMIT 1",
                    (name,),
                ).fetchone()
            else:
                row = self._conn.execute(
                    "SELECT state FROM bk_models WHERE name = ? AND version = ?", (name, version)
                ).fetchone()
        if row is None:
            raise ModelNotFound(name, version)
        return bytes(row[0])

    def _versions(self, name: str) -> list[VersionInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT version, created_at, size FROM bk_models WHERE name = ? ORDER BY version",
                (name,),
            ).fetchall()
        if not rows:
            raise ModelNotFound(name)
        return [VersionInfo(int(v), float(t), int(s)) for v, t, s in rows]

    def _names(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT name FROM bk_models ORDER BY name")
            return [r[0] for r in rows.fetchall()]

    def _delete(self, name: str) -> int:
        with self._write() as conn:
            versions = conn.execute("DELETE FROM bk_models WHERE name = ?", (name,)).rowcount
            events = conn.execute("DELETE FROM bk_events WHERE name = ?", (name,)).rowcount
            conn.execute("DELETE FROM bk_snapshots WHERE name = ?", (name,))
            if versions == 0 and events == 0:
                raise ModelNotFound(name)  # rolls back nothing: nothing was deleted
        return versions

    # --- events ---

    def _append(self, name: str, rows: list[EventRow]) -> int:
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO bk_events (name, event_id, kind, time, payload) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, event_id) DO NOTHING",
                [(name, r.id, r.kind, r.time, r.payload) for r in rows],
            )
            return conn.total_changes - before

    def _events(self, name: str, after: int, limit: int | None) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, event_id, kind, time, payload FROM bk_events "
                "WHERE name = ? AND seq > ? ORDER BY seq LIMIT ?",
                (name, after, -1 if limit is None else limit),
            ).fetchall()
        return [from_row(*r) for r in rows]

    def _find_events(self, name: str, ids: list[str]) -> list[Event]:
        marks = ", ".join("?" * len(ids))
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, event_id, kind, time, payload FROM bk_events "
                f"WHERE name = ? AND event_id IN ({marks})",
                (name, *ids),
            ).fetchall()
        return [from_row(*r) for r in rows]

    def _log_rows(self, name: str, after: int, decisions: bool) -> list[LogRow]:
        columns = log_columns(decisions, "json_array_length(payload, '$.propensities')")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT seq, kind, time, {columns} FROM bk_events "
                "WHERE name = ? AND seq > ? ORDER BY seq",
                (name, after),
            ).fetchall()
        return [LogRow(*r) for r in rows]

    def _last_seq(self, name: str) -> int:
        with self._lock:
            sql = "SELECT max(seq) FROM bk_events WHERE name = ?"
            return int(self._conn.execute(sql, (name,)).fetchone()[0] or 0)

    def _count_events(self, name: str) -> int:
        with self._lock:
            sql = "SELECT count(*) FROM bk_events WHERE name = ?"
            return int(self._conn.execute(sql, (name,)).fetchone()[0])

    # --- metrics ---

    def _record_metric(self, name: str, operation: str, value: float, when: float) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO bk_metrics (name, operation, time, value) VALUES (?, ?, ?, ?)",
                (name, operation, when, value),
            )

    def _metrics(
        self, name: str | None, operation: str | None, since: float | None
    ) -> list[Metric]:
        clause, params = metric_filter(name, operation, since, "?")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT name, operation, time, value FROM bk_metrics {clause}ORDER BY time",
                params,
            ).fetchall()
        return [Metric(n, o, float(t), float(v)) for n, o, t, v in rows]

    def _cleanup(self, cutoff: float) -> int:
        with self._write() as conn:
            return conn.execute("DELETE FROM bk_metrics WHERE time < ?", (cutoff,)).rowcount
