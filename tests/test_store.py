"""`banditkit.store`: the interface's semantics and errors, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time

import pytest

from banditkit.store import (
    Event,
    InvalidEvent,
    ModelNotFound,
    SchemaError,
    StoreError,
    StoreNotFound,
    UnsupportedURL,
    VersionConflict,
    open_store,
    schema,
)


def decision(eid: str, arm: str = "a", **kw) -> dict:
    return {"id": eid, "kind": "decision", "arm": arm, "propensity": 0.5, **kw}


def reward(eid: str, value: float = 1.0, **kw) -> dict:
    return {"id": eid, "kind": "reward", "reward": value, **kw}


def snapshot(store, name: str) -> tuple:
    """Everything the store holds about `name` (to show an error changed nothing)."""
    try:
        versions = [(v.version, v.size) for v in store.versions(name)]
        blobs = [store.get_bytes(name, v) for v, _ in versions]
    except ModelNotFound:
        versions, blobs = [], []
    return versions, blobs, store.events(name), store.names()


# --- versions ---


def test_versions_start_at_one_and_grow_by_one(store):
    assert [store.put_bytes("m", f"state {i}".encode()) for i in range(3)] == [1, 2, 3]
    assert store.get_bytes("m") == b"state 2"
    assert [store.get_bytes("m", v) for v in (1, 2, 3)] == [b"state 0", b"state 1", b"state 2"]
    info = store.versions("m")
    assert [v.version for v in info] == [1, 2, 3]
    assert [v.size for v in info] == [7, 7, 7]
    assert info[0].created_at <= info[1].created_at <= info[2].created_at
    assert abs(info[-1].created_at - time.time()) < 60
    assert store.latest_version("m") == 3


def test_names_are_independent_and_sorted(store):
    store.put_bytes("b", b"1")
    store.put_bytes("a", b"1")
    store.put_bytes("b", b"2")
    assert store.names() == ["a", "b"]
    assert store.latest_version("a") == 1 and store.latest_version("b") == 2


def test_expected_version_writes_only_on_the_latest(store):
    assert store.put_bytes("m", b"one", expected_version=0) == 1  # 0: "no version yet"
    assert store.put_bytes("m", b"two", expected_version=1) == 2
    before = snapshot(store, "m")
    with pytest.raises(VersionConflict) as err:
        store.put_bytes("m", b"stale", expected_version=1)
    assert (err.value.name, err.value.expected, err.value.actual) == ("m", 1, 2)
    assert "expected version 1" in str(err.value)
    with pytest.raises(VersionConflict):
        store.put_bytes("m", b"again", expected_version=0)
    with pytest.raises(VersionConflict) as err:
        store.put_bytes("new", b"x", expected_version=3)
    assert err.value.actual is None
    assert snapshot(store, "m") == before
    assert "new" not in store.names()


def test_missing_names_and_versions_raise_model_not_found(store):
    for call in (
        lambda: store.get_bytes("nope"),
        lambda: store.get("nope"),
        lambda: store.versions("nope"),
        lambda: store.latest_version("nope"),
        lambda: store.delete("nope"),
    ):
        with pytest.raises(ModelNotFound) as err:
            call()
        assert isinstance(err.value, KeyError)
        assert str(err.value) == "no model named 'nope' in the store"
    store.put_bytes("m", b"x")
    with pytest.raises(ModelNotFound, match="model 'm' has no version 2") as err:
        store.get_bytes("m", 2)
    assert err.value.version == 2


def test_delete_removes_versions_and_events_and_restarts_at_one(store):
    store.put_bytes("m", b"1")
    store.put_bytes("m", b"2")
    store.put_bytes("keep", b"k")
    store.append_events("m", [decision("d1")])
    store.append_events("keep", [decision("d1")])
    assert store.delete("m") == 2
    assert store.names() == ["keep"]
    assert store.events("m") == []
    assert len(store.events("keep")) == 1
    assert store.put_bytes("m", b"again") == 1
    # a name with only events can be deleted too
    store.append_events("log-only", [reward("r1")])
    assert store.delete("log-only") == 0
    assert store.events("log-only") == []


@pytest.mark.parametrize(
    "args, error",
    [
        (("", b"x"), ValueError),
        ((None, b"x"), ValueError),
        (("a\x00b", b"x"), ValueError),
        (("x" * 256, b"x"), ValueError),
        (("m", "text"), TypeError),
        (("m", b""), ValueError),
        (("m", b"x", -1), ValueError),
        (("m", b"x", True), ValueError),
        (("m", b"x", 1.0), ValueError),
    ],
)
def test_bad_put_arguments_change_nothing(store, args, error):
    store.put_bytes("m", b"first")
    before = snapshot(store, "m")
    with pytest.raises(error):
        store.put_bytes(*args)
    assert snapshot(store, "m") == before


def test_bad_get_arguments(store):
    store.put_bytes("m", b"x")
    for version in (0, -1, True, "1"):
        with pytest.raises(ValueError):
            store.get_bytes("m", version)


def test_put_needs_a_model_with_to_bytes(store):
    with pytest.raises(TypeError, match="not a banditkit model"):
        store.put("m", {"not": "a model"})
    assert store.names() == []


# --- events ---


def test_events_are_appended_once_per_id(store):
    batch = [
        decision("d1", context=[1.0, 0.5], policy_version=3),
        reward("r1", 0.25, decision_id="d1", arm="a"),
    ]
    assert store.append_events("m", batch) == 2
    assert store.append_events("m", batch) == 0  # a retried batch stores nothing twice
    assert store.append_events("m", [decision("d1", arm="b"), decision("d2")]) == 1
    assert store.append_events("m", [decision("d3"), decision("d3", arm="z")]) == 1
    got = store.events("m")
    assert [e.id for e in got] == ["d1", "r1", "d2", "d3"]
    assert got[0].data == {"arm": "a", "propensity": 0.5, "context": [1.0, 0.5],
                           "policy_version": 3}  # fmt: skip
    assert got[1].data == {"reward": 0.25, "decision_id": "d1", "arm": "a"}
    assert got[2].data["arm"] == "a" and got[3].data["arm"] == "a"  # the first one stays
    assert all(isinstance(e, Event) for e in got)
    seqs = [e.seq for e in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4


def test_events_after_and_limit(store):
    store.append_events("m", [decision(f"d{i}") for i in range(10)])
    store.append_events("other", [decision("d0")])
    every = store.events("m")
    assert len(every) == 10
    assert [e.id for e in store.events("m", after=every[3].seq)] == [f"d{i}" for i in range(4, 10)]
    assert [e.id for e in store.events("m", after=every[3].seq, limit=2)] == ["d4", "d5"]
    assert store.events("m", after=every[-1].seq) == []
    assert store.events("nobody") == []


def test_event_round_trip_through_as_dict(store, tmp_path):
    when = 1_700_000_000.5
    event = decision("d1", arm=7, context=[0.0, -1.5], time=when, meta={"user": "u1"})
    store.append_events("m", [event])
    (got,) = store.events("m")
    assert got.time == when
    assert got.as_dict() == {**event, "propensity": 0.5}
    with open_store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        assert copy.append_events("m", [got.as_dict()]) == 1
        assert copy.events("m")[0].as_dict() == got.as_dict()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"kind": "decision", "arm": "a", "propensity": 0.5}, "non-empty str id"),
        ({"id": "", "kind": "reward", "reward": 1}, "non-empty str id"),
        ({"id": "x", "kind": "click", "reward": 1}, "kind must be one of"),
        ({"id": "x", "kind": "decision", "arm": "a"}, "missing propensity"),
        ({"id": "x", "kind": "decision", "arm": "a", "propensity": 0.0}, r"in \(0, 1\]"),
        ({"id": "x", "kind": "decision", "arm": "a", "propensity": 1.5}, r"in \(0, 1\]"),
        ({"id": "x", "kind": "decision", "arm": 1.5, "propensity": 0.5}, "arm must be"),
        ({"id": "x", "kind": "decision", "arm": True, "propensity": 0.5}, "arm must be"),
        (
            {"id": "x", "kind": "decision", "arm": "a", "propensity": 0.5, "context": [1, "b"]},
            "context must be a number",
        ),
        (
            {"id": "x", "kind": "decision", "arm": "a", "propensity": 0.5, "policy_version": 0},
            "policy_version",
        ),
        ({"id": "x", "kind": "reward", "reward": float("nan")}, "finite"),
        ({"id": "x", "kind": "reward", "reward": "1"}, "must be a number"),
        ({"id": "x", "kind": "reward", "reward": 1, "rewrd": 2}, "unknown field"),
        ({"id": "x", "kind": "reward", "reward": 1, "meta": {"f": {1, 2}}}, "JSON"),
    ],
)
def test_invalid_events_write_nothing(store, bad, message):
    store.append_events("m", [decision("d0")])
    before = snapshot(store, "m")
    with pytest.raises(InvalidEvent, match=message) as err:
        store.append_events("m", [decision("d1"), bad, decision("d2")])
    assert isinstance(err.value, ValueError)
    assert snapshot(store, "m") == before


def test_append_events_takes_a_list(store):
    with pytest.raises(InvalidEvent, match="list of events"):
        store.append_events("m", decision("d1"))
    assert store.append_events("m", []) == 0


# --- metrics ---


def test_metrics_record_query_and_cleanup(store):
    now = time.time()
    store.record_metric("m", "put_ms", 3.5, time=now - 7200)
    store.record_metric("m", "get_ms", 1.0, time=now - 10)
    store.record_metric("other", "put_ms", 2.0)
    assert [(x.name, x.operation, x.value) for x in store.metrics()] == [
        ("m", "put_ms", 3.5),
        ("m", "get_ms", 1.0),
        ("other", "put_ms", 2.0),
    ]
    assert [x.value for x in store.metrics(operation="put_ms")] == [3.5, 2.0]
    assert [x.value for x in store.metrics(name="m", operation="put_ms")] == [3.5]
    assert [x.value for x in store.metrics(since=now - 60)] == [1.0, 2.0]
    assert store.cleanup(older_than=dt.timedelta(hours=1)) == 1
    assert [x.value for x in store.metrics()] == [1.0, 2.0]
    assert store.cleanup(older_than=3600.0) == 0


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda s: s.record_metric("m", "", 1.0), ValueError),
        (lambda s: s.record_metric("m", "op", float("inf")), ValueError),
        (lambda s: s.record_metric("m", "op", "1"), TypeError),
        (lambda s: s.cleanup(older_than=-1), ValueError),
        (lambda s: s.cleanup(older_than="1h"), TypeError),
    ],
)
def test_bad_metric_arguments(store, call, error):
    store.record_metric("m", "op", 1.0, time=0.0)
    with pytest.raises(error):
        call(store)
    assert len(store.metrics()) == 1


# --- schema and opening ---


def test_schema_is_at_the_latest_version(store):
    assert store.schema_version() == schema.LATEST == len(schema.MIGRATIONS)


def test_migrates_a_store_made_by_the_first_schema(store_url, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        with open_store(store_url) as first:
            assert first.schema_version() == 1
            first.put_bytes("m", b"old")
            first.append_events("m", [decision("d1")])
            first.record_metric("m", "op", 1.0)
    with open_store(store_url) as upgraded:
        assert upgraded.schema_version() == schema.LATEST
        assert upgraded.get_bytes("m") == b"old"
        assert [e.id for e in upgraded.events("m")] == ["d1"]
        assert len(upgraded.metrics(name="m", operation="op")) == 1


def test_refuses_a_newer_schema(store_url):
    with open_store(store_url) as s:
        s.put_bytes("m", b"x")
    _execute(store_url, f"INSERT INTO bk_schema_version VALUES ({schema.LATEST + 1}, 0, 'future')")
    with pytest.raises(SchemaError, match="newer than this banditkit knows"):
        open_store(store_url)


def _execute(url: str, sql: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            conn.execute(sql)
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)


def test_reopened_store_keeps_everything(store_url):
    with open_store(store_url) as s:
        s.put_bytes("m", b"1")
        s.append_events("m", [decision("d1")])
    with open_store(store_url, create=False) as s:
        assert s.get_bytes("m") == b"1" and s.events("m")[0].id == "d1"


@pytest.mark.parametrize(
    "url",
    ["mysql://localhost/db", "models.db", "", "sqlite://relative.db", "sqlite:///", "http://x"],
)
def test_unsupported_urls(url):
    with pytest.raises(UnsupportedURL) as err:
        open_store(url)
    assert isinstance(err.value, ValueError) and isinstance(err.value, StoreError)


def test_url_must_be_a_str():
    with pytest.raises(UnsupportedURL):
        open_store(None)  # type: ignore[arg-type]


def test_sqlite_create_false_on_a_missing_file(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(StoreNotFound, match="no SQLite store at") as err:
        open_store(f"sqlite:///{path}", create=False)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)
    assert not path.exists()


def test_sqlite_create_false_on_a_file_that_is_not_a_store(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(SchemaError, match="not a banditkit store"):
        open_store(f"sqlite:///{path}", create=False)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"t"}


def test_sqlite_relative_url_and_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel.db") as s:
        s.put_bytes("m", b"x")
        conn = s._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    assert os.path.exists(tmp_path / "rel.db")


def test_postgres_create_false_on_an_empty_database(postgres_url):
    with pytest.raises(SchemaError, match="no banditkit store"):
        open_store(postgres_url, create=False)


def test_postgres_unreachable_server_is_a_store_error():
    with pytest.raises(StoreError, match="cannot use the store at postgresql://u:\\*\\*\\*@"):
        open_store("postgresql://u:secret@127.0.0.1:1/db", timeout=2)


def test_closed_store_cannot_be_used(store_url):
    with open_store(store_url) as s:
        s.put_bytes("m", b"x")
    with pytest.raises(Exception):  # noqa: B017 (sqlite3 and psycopg_pool differ)
        s.get_bytes("m")


# --- concurrency within a process ---


def test_concurrent_first_opens_migrate_once(store_url):
    from concurrent.futures import ThreadPoolExecutor

    def open_and_put(i: int) -> int:
        with open_store(store_url) as s:  # a connection of its own, like another process
            return s.put_bytes(f"m{i}", b"x")

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_and_put, range(8))) == [1] * 8
    with open_store(store_url) as s:
        assert s.names() == [f"m{i}" for i in range(8)]
        assert s.schema_version() == schema.LATEST


def test_one_store_shared_by_threads_loses_no_update(store):
    from concurrent.futures import ThreadPoolExecutor

    store.put_bytes("n", b"0")

    def add_one(_: int) -> None:
        while True:
            v = store.latest_version("n")
            count = int(store.get_bytes("n", v))
            try:
                store.put_bytes("n", str(count + 1).encode(), expected_version=v)
                return
            except VersionConflict:
                continue

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add_one, range(40)))
    assert store.get_bytes("n") == b"40" and store.latest_version("n") == 41
