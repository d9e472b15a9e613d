"""The store's serve extensions (schema 3), on SQLite and PostgreSQL: snapshots (a version and
the event seq it includes, in one transaction), prune, find_events, reward contexts, and the
fast paths `append_rows` / `log_rows`."""

from __future__ import annotations

import json

import pytest

from banditkit.store import (
    EventRow,
    InvalidEvent,
    ModelNotFound,
    VersionConflict,
    event_context,
    expand_decisions,
    open_store,
)


def test_put_snapshot_and_latest_snapshot(store) -> None:
    assert store.put_snapshot("m", b"s1", 0, {"policy": "tspar"}, expected_version=0) == 1
    with pytest.raises(VersionConflict):
        store.put_snapshot("m", b"sx", 5, {}, expected_version=0)
    snap = store.latest_snapshot("m")
    assert snap == (1, 0, {"policy": "tspar"}, b"s1")
    assert store.put_snapshot("m", b"s2", 7, {"n": [1, 2.5]}) == 2
    assert store.latest_snapshot("m") == (2, 7, {"n": [1, 2.5]}, b"s2")
    store.put_bytes("m", b"plain")  # a version without a snapshot row
    assert store.latest_snapshot("m") == (3, 0, {}, b"plain")
    assert store.get_bytes("m", 2) == b"s2"
    with pytest.raises(ModelNotFound):
        store.latest_snapshot("nope")


def test_put_snapshot_checks_before_writing(store) -> None:
    for args, error in [
        (("m", b"s", -1, {}), ValueError),
        (("m", b"s", 0, {"x": float("nan")}), ValueError),
        (("m", b"s", 0, {"x": object()}), ValueError),
        (("m", b"s", 0, []), TypeError),
        (("m", b"", 0, {}), ValueError),
    ]:
        with pytest.raises(error):
            store.put_snapshot(*args)
    assert store.names() == []


def test_prune_keeps_the_latest_versions(store) -> None:
    for i in range(6):
        store.put_snapshot("m", f"s{i}".encode(), i, {"i": i})
    store.put_snapshot("other", b"o", 0, {})
    assert store.prune("m", 2) == 4
    assert [v.version for v in store.versions("m")] == [5, 6]
    assert store.latest_snapshot("m") == (6, 5, {"i": 5}, b"s5")
    assert store.prune("m", 2) == 0 and store.prune("nope", 1) == 0
    assert store.put_snapshot("m", b"s7", 9, {}) == 7
    with pytest.raises(ValueError):
        store.prune("m", 0)
    store.delete("m")
    assert store.put_snapshot("m", b"again", 0, {}) == 1
    assert store.latest_snapshot("m").info == {}


def test_find_events(store) -> None:
    store.append_events(
        "m",
        [
            {"id": "d1", "kind": "decision", "arm": "a", "propensity": 0.5, "context": [1, 2]},
            {"id": "d2", "kind": "decision", "arm": 3, "propensity": 1.0},
        ],
    )
    store.append_events("n", [{"id": "d3", "kind": "decision", "arm": "a", "propensity": 1}])
    found = store.find_events("m", ["d1", "d3", "zz", "d1"])
    assert set(found) == {"d1"}
    assert found["d1"].data == {"arm": "a", "propensity": 0.5, "context": [1.0, 2.0]}
    many = [f"x{i}" for i in range(1200)] + ["d2"]  # more than one query's parameters
    assert set(store.find_events("m", many)) == {"d2"}
    assert store.find_events("m", []) == {}


def test_reward_events_take_a_context(store) -> None:
    reward = {"id": "r1", "kind": "reward", "reward": 0.5, "arm": "a", "context": [0.5, -1]}
    assert store.append_events("m", [reward]) == 1
    (event,) = store.events("m")
    assert event.data["context"] == [0.5, -1.0]
    with pytest.raises(InvalidEvent):
        store.append_events("m", [{**reward, "id": "r2", "context": [float("inf")]}])
    with pytest.raises(InvalidEvent):
        store.append_events("m", [{**reward, "id": "r3", "context": "1,2"}])


def test_append_rows_and_log_rows(store) -> None:
    rows = [
        EventRow("d1", "decision", 10.0, '{"arm":"a","propensity":0.5}'),
        EventRow("r1", "reward", 11.0, '{"arm":"a","reward":1.0}'),
    ]
    assert store.append_rows("m", rows) == 2
    assert store.append_rows("m", rows + [EventRow("d2", "decision", 12.0, '{"arm":"b"}')]) == 1
    store.append_events("other", [{"id": "x", "kind": "reward", "reward": 2}])
    log = store.log_rows("m")
    assert [(r.kind, r.time, r.payload) for r in log] == [
        ("decision", 10.0, None),  # decisions are counted, not parsed
        ("reward", 11.0, '{"arm":"a","reward":1.0}'),
        ("decision", 12.0, None),
    ]
    assert [r.seq for r in log] == [e.seq for e in store.events("m")]
    assert store.log_rows("m", after=log[1].seq) == [log[2]]
    full = store.log_rows("m", decisions=True)
    assert json.loads(full[0].payload) == {"arm": "a", "propensity": 0.5}
    assert store.events("m")[1].data == {"arm": "a", "reward": 1.0}


def test_schema_3_migrates_an_older_store(store_url: str) -> None:
    from banditkit.store import schema

    with open_store(store_url) as store:
        assert store.schema_version() == 3 == schema.LATEST
        store.put_snapshot("m", b"s", 4, {"a": 1})
    with open_store(store_url) as again:  # re-opening migrates nothing and keeps the rows
        assert again.latest_snapshot("m").seq == 4


def test_decisions_events_hold_a_batch(store) -> None:
    batch = {
        "id": "B",
        "kind": "decisions",
        "arms": ["a", 2, "a"],
        "propensities": [0.5, 1, 0.25],
        "contexts": [[1, 2], None, [3, 4]],
        "policy_version": 4,
        "time": 5.0,
    }
    assert store.append_events("m", [batch]) == 1
    (event,) = store.events("m")
    assert [d["id"] for d in expand_decisions(event)] == ["B/0", "B/1", "B/2"]
    assert expand_decisions(event)[1] == {
        "id": "B/1",
        "kind": "decision",
        "time": 5.0,
        "arm": 2,
        "propensity": 1.0,
        "policy_version": 4,
    }
    assert expand_decisions(event)[2]["context"] == [3.0, 4.0]
    (row,) = store.log_rows("m")
    assert (row.kind, row.payload, row.count) == ("decisions", None, 3)
    for bad in (
        {"propensities": [0.5, 1]},
        {"propensities": [0.5, 1, 0]},
        {"arms": [], "propensities": []},
        {"contexts": [[1, 2]]},
        {"contexts": [[1, float("nan")], None, None]},
        {"arms": ["a", True, "a"]},
        {"context": [1, 2]},
    ):
        with pytest.raises(InvalidEvent):
            store.append_events("m", [{**batch, "id": "C", **bad}])
    assert store.count_events("m") == 1


def test_binary_contexts(store) -> None:
    import numpy as np

    from banditkit.store.events import encode_matrix

    X = np.array([[0.1, -2.0], [3.5, 1e-300]])
    batch = {
        "id": "B",
        "kind": "decisions",
        "arms": ["a", "b"],
        "propensities": [0.5, 1],
        "contexts_f8": encode_matrix(X),
    }
    reward = {"id": "R", "kind": "reward", "reward": 1, "context_f8": encode_matrix(X[1])}
    assert store.append_events("m", [batch, reward]) == 2
    decisions, rew = store.events("m")
    assert [d["context"] for d in expand_decisions(decisions)] == X.tolist()
    assert event_context(rew.data) == X[1].tolist()
    for bad in (
        {**batch, "contexts_f8": encode_matrix(X[:1, :1])},  # not two whole rows
        {**batch, "contexts_f8": encode_matrix(np.array([[1.0, np.inf], [0, 0]]))},
        {**batch, "contexts_f8": "not base64!"},
        {**batch, "contexts": [[1, 2], [3, 4]]},  # both forms
        {**reward, "context": [1.0, 2.0]},
    ):
        with pytest.raises(InvalidEvent):
            store.append_events("m", [{**bad, "id": "C"}])
    assert store.count_events("m") == 2
