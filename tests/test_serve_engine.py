"""The serve engine in process, on SQLite and PostgreSQL: the log is the truth (engines on one
store converge, a killed engine loses no acknowledged reward, retries count once, snapshot +
replay equals the full replay), and every bad input names its field and logs nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from serve_fixtures import serve_bk  # noqa: F401

import banditkit
from banditkit.serve import Engine
from banditkit.serve.errors import ExperimentExists, ExperimentNotFound, InvalidInput
from banditkit.store import event_context, expand_decisions, open_store

ARMS = ["a", "b", "c"]
D = 3
PARAMS = {
    "tspar": {},
    "linear": {"obs_noise": 0.5},
    "logistic": {},
    "linucb": {"n_features": D, "alpha": 0.5},
    "lints": {"n_features": D, "v": 0.5},
}
CONTEXTUAL = {"linucb", "lints"}


def engine(url: str, **kw) -> Engine:
    """An engine whose background threads never act during a test unless asked to."""
    opts = {"poll_interval": 3600.0, "snapshot_every_seconds": 3600.0, "seed": 7}
    opts.update(kw)
    eng = Engine(url, **opts)
    eng.start()
    return eng


def kill(eng: Engine) -> None:
    """What SIGKILL leaves: no final catch-up, no snapshot; only the connections are closed
    (so that the test does not leak them)."""
    eng._stop.set()
    for thread in eng._threads:
        thread.join()
    eng._writer.close()
    eng._close_stores()


def requests(policy: str, rng: np.random.Generator, n: int) -> list[dict]:
    out = []
    for i in range(n):
        req: dict = {"id": f"r{i}"}
        if policy in CONTEXTUAL:
            req["context"] = rng.normal(size=D).round(3).tolist()
        if i % 3 == 2:
            req["candidates"] = ["a", "c"]
        out.append(req)
    return out


def rewards_for(policy: str, results: list[dict], rng: np.random.Generator) -> list[dict]:
    rate = {"a": 0.3, "b": 0.5, "c": 0.7}
    out = []
    for r in results:
        if policy in ("tspar", "logistic"):
            value = float(rng.random() < rate[r["arm"]])
        else:
            value = round(float(rng.normal(rate[r["arm"]], 0.3)), 4)
        out.append({"event_id": r["event_id"], "reward": value})
    return out


def parameters(model) -> list:
    """A model's learnt state (not its sampling RNG, which `to_bytes` also records)."""
    name = type(model).__name__
    if name == "TSPar":
        return [model.action_list, model.alpha.tolist(), model.beta.tolist()]
    if name == "LinearBandit":
        return [model.mu, model.sigma, model.counts, model.sum_rewards]
    if name == "LogisticBandit":
        return [model.action_list, model.mu.tolist(), model.sigma_inv.tolist()]
    return [
        [model.theta(a).tolist(), model.a_inv(a).tolist(), model.b(a).tolist()] for a in model.arms
    ]


def state(eng: Engine, name: str) -> tuple[dict, list]:
    desc = eng.describe(name)
    exp = eng._experiment(name)
    with exp.lock:
        return desc, parameters(exp.model)


def totals(desc: dict) -> tuple[int, float]:
    return sum(a["count"] for a in desc["arms"]), sum(a["reward_sum"] for a in desc["arms"])


@pytest.mark.usefixtures("serve_bk")
@pytest.mark.parametrize("policy", ["tspar", "lints"])
def test_two_engines_on_one_store_converge(store_url: str, policy: str) -> None:
    rng = np.random.default_rng(1)
    e1, e2 = engine(store_url), engine(store_url)
    try:
        e1.create("x", policy, ARMS, PARAMS[policy])
        sent = 0
        for step in range(8):
            decider, rewarder = (e1, e2) if step % 2 else (e2, e1)
            results = decider.recommend("x", requests(policy, rng, 6))
            # The other engine has not seen these decisions: it finds them in the store.
            sent += rewarder.reward("x", rewards_for(policy, results, rng))
        e1.catch_up("x")
        e2.catch_up("x")
        (d1, b1), (d2, b2) = state(e1, "x"), state(e2, "x")
        assert d1 == d2 and b1 == b2
        assert d1["rewards"] == sent == 48 and d1["decisions"] == 48 and d1["version"] == 49
    finally:
        e1.close()
        e2.close()


@pytest.mark.parametrize("policy", ["tspar", "linucb"])
def test_killed_engine_loses_no_acknowledged_reward(store_url: str, policy: str) -> None:
    rng = np.random.default_rng(2)
    e1 = engine(store_url, snapshot_every_events=25, snapshot_every_seconds=0.05)
    e1._threads[1].join(0)  # the snapshotter runs: snapshots happen mid-stream
    acknowledged: dict[str, float] = {}
    e1.create("k", policy, ARMS, PARAMS[policy])
    for step in range(30):
        results = e1.recommend("k", requests(policy, rng, 4))
        batch = rewards_for(policy, results, rng)
        assert e1.reward("k", batch) == 4
        acknowledged.update({b["event_id"]: b["reward"] for b in batch})
        if step % 7 == 3:  # a retry of an acknowledged batch (its answer was lost)
            e1.reward("k", batch)
    # Rewards by arm with a client id, retried: counted once.
    ctx = {"context": [0.1, 0.2, 0.3]} if policy in CONTEXTUAL else {}
    for _ in range(2):
        e1.reward("k", [{"arm": "b", "reward": 1.0, "id": "client-1", **ctx}])
    acknowledged["client-1"] = 1.0
    with open_store(store_url) as store:
        assert store.latest_snapshot("k").seq > 0  # the restart replays after a snapshot
    kill(e1)

    e2 = engine(store_url)
    try:
        desc = e2.describe("k")
        count, total = totals(desc)
        assert count == desc["rewards"] == len(acknowledged) == 121
        assert math.isclose(total, sum(acknowledged.values()), abs_tol=1e-9)
        assert desc["decisions"] == 120
    finally:
        e2.close()


@pytest.mark.usefixtures("serve_bk")
@pytest.mark.parametrize("policy", list(PARAMS))
def test_snapshot_plus_replay_equals_the_full_replay(store_url: str, policy: str) -> None:
    rng = np.random.default_rng(3)
    e1 = engine(store_url, snapshot_every_events=10**9)
    try:
        e1.create("s", policy, ARMS, PARAMS[policy])
        for step in range(10):
            results = e1.recommend("s", requests(policy, rng, 5))
            e1.reward("s", rewards_for(policy, results, rng))
            if step == 4:
                e1.snapshot("s")
        with open_store(store_url) as store:
            assert 0 < store.latest_snapshot("s").seq < store.count_events("s")
        e2 = engine(store_url)  # the snapshot of step 4 + the replay of the rest
        try:
            assert state(e2, "s") == state(e1, "s")
        finally:
            e2.close()
    finally:
        e1.close()


def test_decisions_are_logged_with_exact_propensities(store_url: str) -> None:
    with engine(store_url) as eng:
        eng.create("p", "tspar", ARMS, {})
        eng.reward("p", [{"arm": "c", "reward": 1}, {"arm": "c", "reward": 1}])
        wins = {a["arm"]: a["win_probability"] for a in eng.describe("p")["arms"]}
        results = eng.recommend("p", [{"id": str(i)} for i in range(30)])
        for r in results:
            assert r["propensity"] == pytest.approx(wins[r["arm"]], rel=1e-12)
        exp = eng._experiment("p")
        assert exp.model.win_prop(method="exact") == pytest.approx(wins, rel=1e-9)
        eng.create("q", "linucb", ARMS, PARAMS["linucb"])
        (res,) = eng.recommend("q", [{"id": "z", "context": [1, 2, 3], "candidates": ["b"]}])
        assert res["arm"] == "b" and res["propensity"] == 1.0
        check_log(store_url, eng, results, res)


def check_log(store_url: str, eng: Engine, results: list[dict], res: dict) -> None:
    with open_store(store_url) as store:
        logged = {
            d["id"]: d
            for e in store.events("p")
            if e.kind == "decisions"
            for d in expand_decisions(e)
        }
        assert len(logged) == 30
        for r in results:
            one = logged[r["event_id"]]
            assert one["kind"] == "decision" and one["arm"] == r["arm"]
            assert one["propensity"] == r["propensity"] and one["policy_version"] == 3
        (event,) = store.events("q")
        assert event.kind == "decisions" and expand_decisions(event) == [
            {
                "id": res["event_id"],
                "kind": "decision",
                "time": event.time,
                "arm": "b",
                "propensity": 1.0,
                "context": [1.0, 2.0, 3.0],
                "policy_version": 1,
            }
        ]
        # A reward carries its decision's context; a replay reads it back exactly.
        eng.reward("q", [{"event_id": res["event_id"], "reward": 0.25}])
        (reward,) = [e for e in store.events("q") if e.kind == "reward"]
        assert event_context(reward.data) == [1.0, 2.0, 3.0]
        assert reward.data["decision_id"] == res["event_id"] and reward.data["reward"] == 0.25


BAD_RECOMMEND = [
    ("t", [], "requests"),
    ("t", [{"id": "1"}, {"id": "2", "candidates": ["zz"]}], "requests[1].candidates[0]"),
    ("t", [{"id": "1"}, {"id": "2", "candidates": ["a", "a"]}], "requests[1].candidates"),
    ("t", [{"id": "1"}, {"id": "2", "candidates": []}], "requests[1].candidates"),
    ("t", [{"id": "1"}, {"id": "2", "context": [1.0, float("nan")]}], "requests[1].context"),
    ("u", [{"id": "1", "context": [1, 2, 3]}, {"id": "2"}], "requests[1].context"),
    (
        "u",
        [{"id": "1", "context": [1, 2, 3]}, {"id": "2", "context": [1, 2]}],
        "requests[1].context",
    ),
    ("u", [{"id": "1", "context": [1, 2, "x"]}], "requests[0].context"),
    ("u", [{"id": "1", "context": [1, 2, 10**400]}], "requests[0].context"),
    ("t", [{"id": "1", "context": [10**400]}], "requests[0].context"),
]
BAD_REWARD = [
    ("t", [], "rewards"),
    ("t", [{"arm": "a", "reward": 1}, {"event_id": "nope", "reward": 1}], "rewards[1].event_id"),
    ("t", [{"arm": "a", "reward": 1}, {"reward": 1}], "rewards[1]"),
    ("t", [{"arm": "a", "reward": 1}, {"arm": "zz", "reward": 1}], "rewards[1].arm"),
    ("t", [{"arm": "a", "reward": 1}, {"arm": "a", "reward": 0.5}], "rewards[1].reward"),
    ("t", [{"arm": "a", "reward": float("inf")}], "rewards[0].reward"),
    ("t", [{"arm": "a", "reward": 10**400}], "rewards[0].reward"),
    ("t", [{"event_id": "DECISION", "arm": "OTHER", "reward": 1}], "rewards[0].arm"),
    ("u", [{"arm": "a", "reward": 1}], "rewards[0].context"),
    ("t", [{"event_id": "DECISION", "arm": ["a"], "reward": 1}], "rewards[0].arm"),
    ("t", [{"arm": ["a"], "reward": 1}], "rewards[0].arm"),
    ("t", [{"event_id": ["x"], "reward": 1}], "rewards[0].event_id"),
    ("u", [{"arm": "a", "reward": 1, "context": [1, 2]}], "rewards[0].context"),
]


def test_bad_input_names_its_field_and_logs_nothing(store_url: str) -> None:
    with engine(store_url) as eng:
        eng.create("t", "tspar", ARMS, {})
        eng.create("u", "linucb", ARMS, PARAMS["linucb"])
        (d,) = eng.recommend("t", [{"id": "0"}])
        other = next(a for a in ARMS if a != d["arm"])
        before = {n: (eng.describe(n)["version"], eng._store.count_events(n)) for n in "tu"}
        for name, reqs, field in BAD_RECOMMEND:
            with pytest.raises(InvalidInput) as err:
                eng.recommend(name, reqs)
            assert err.value.field == field and err.value.status == 422, (reqs, err.value)
        for name, items, field in BAD_REWARD:
            swap = {"DECISION": d["event_id"], "OTHER": other}
            items = [
                {k: swap.get(v, v) if isinstance(v, str) else v for k, v in i.items()}
                for i in items
            ]
            with pytest.raises(InvalidInput) as err:
                eng.reward(name, items)
            assert err.value.field == field, (items, err.value)
        assert "67" not in str(err.value)
        with pytest.raises(ExperimentNotFound):
            eng.describe(["unhashable"])
        with pytest.raises(ExperimentNotFound) as missing:
            eng.recommend("nope", [{"id": "1"}])
        assert missing.value.field == "name" and missing.value.status == 404
        after = {n: (eng.describe(n)["version"], eng._store.count_events(n)) for n in "tu"}
        assert after == before
        for name, policy, arms, params, field, error in [
            ("t", "tspar", ARMS, {}, "name", ExperimentExists),
            ("v", "nope", ARMS, {}, "policy", InvalidInput),
            ("v", "tspar", ["a", "a"], {}, "arms[1]", InvalidInput),
            ("v", "tspar", [], {}, "arms", InvalidInput),
            ("v", "linucb", ARMS, {"n_features": 0}, "params.n_features", InvalidInput),
            ("", "tspar", ARMS, {}, "name", InvalidInput),
            ("v", ["tspar"], ARMS, {}, "policy", InvalidInput),
            ("v", "tspar", [["a"]], {}, "arms[0]", InvalidInput),
            ("v", "linear", ARMS, [1], "params", InvalidInput),
        ]:
            with pytest.raises(error) as err:
                eng.create(name, policy, arms, params)
            assert err.value.field == field
        assert eng.names() == ["t", "u"] and eng._store.names() == ["t", "u"]


def test_context_message_says_the_expected_length(store_url: str) -> None:
    with engine(store_url) as eng:
        eng.create("u", "linucb", ARMS, {"n_features": 67})
        with pytest.raises(InvalidInput) as err:
            eng.recommend("u", [{"id": "1", "context": [1.0, 2.0, 3.0]}])
        assert str(err.value) == "context must have 67 numbers, got 3"


def test_experiments_created_elsewhere_and_plain_models_are_served(store_url: str) -> None:
    with open_store(store_url) as store:
        plain = banditkit.TSPar()
        plain.update({"x": [4, 1], "y": [4, 3]})
        store.put("plain", plain)
    e1, e2 = engine(store_url), engine(store_url)
    try:
        desc = e1.describe("plain")
        assert desc["policy"] == "tspar" and [a["arm"] for a in desc["arms"]] == ["x", "y"]
        assert desc["arms"][1]["win_probability"] > 0.8
        e1.create("new", "linear", ARMS, {})
        assert e2.describe("new")["policy"] == "linear"  # loaded on first use
        e2.reward("new", [{"arm": "a", "reward": 2.5}])
        assert e1.describe("new")["rewards"] == 1  # a read catches up from the log
        e1.delete("new")
        with pytest.raises(ExperimentNotFound):
            e1.describe("new")
    finally:
        e1.close()
        e2.close()


def test_timeline_counts_applied_events(store_url: str) -> None:
    with engine(store_url) as eng:
        eng.create("t", "tspar", ARMS, {})
        results = eng.recommend("t", [{"id": str(i)} for i in range(5)])
        eng.reward("t", [{"event_id": r["event_id"], "reward": 1} for r in results[:3]])
        eng.catch_up("t")
        tl = eng.timeline("t", seconds=60, bucket=10)
        assert tl["bucket_seconds"] == 10 and len(tl["buckets"]) == 6
        assert sum(b["decisions"] for b in tl["buckets"]) == 5
        assert sum(b["rewards"] for b in tl["buckets"]) == 3
        assert sum(b["reward_sum"] for b in tl["buckets"]) == 3.0
        with pytest.raises(InvalidInput) as err:
            eng.timeline("t", seconds=0)
        assert err.value.field == "seconds"


def test_concurrent_retries_count_once_and_contexts_follow_rewards(store_url: str) -> None:
    import threading

    with engine(store_url) as eng:
        eng.create("c", "linear", ARMS, {})
        # A non-contextual policy logs a context when one is given, and its reward carries it.
        results = eng.recommend("c", [{"id": "1", "context": [0.5, 2]}, {"id": "2"}] * 10)
        batch = [{"event_id": r["event_id"], "reward": 1.5} for r in results]
        threads = [threading.Thread(target=eng.reward, args=("c", batch)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        desc = eng.describe("c")
        assert desc["rewards"] == 20 and totals(desc) == (20, 30.0)
        with open_store(store_url) as store:
            rewards = [e for e in store.events("c") if e.kind == "reward"]
        assert len(rewards) == 20
        with_context = [e for e in rewards if event_context(e.data) == [0.5, 2.0]]
        assert len(with_context) == 10


@pytest.mark.usefixtures("serve_bk")
def test_a_reward_the_model_refuses_is_skipped_everywhere(store_url: str) -> None:
    e1, e2 = engine(store_url), engine(store_url)
    try:
        e1.create("o", "linear", ARMS, {})
        # The first group overflows as a whole: its rewards are applied one by one and the
        # one the model refuses is skipped, the same way on every server.
        e1.reward("o", [{"arm": "a", "reward": 1.7e308}, {"arm": "a", "reward": 1.7e308}])
        e1.reward("o", [{"arm": "b", "reward": 2.0}])
        # An event someone else logged that the experiment cannot use: skipped too.
        e1._store.append_events("o", [{"id": "u1", "kind": "reward", "reward": 1, "arm": "zz"}])
        for eng in (e1, e2):
            desc = eng.describe("o")
            assert desc["rewards"] == 2 and desc["skipped_rewards"] == 2
            assert [a["count"] for a in desc["arms"]] == [1, 1, 0]
        assert state(e1, "o") == state(e2, "o")
    finally:
        e1.close()
        e2.close()


class SlowStore:
    """A store whose commits take a while (as an fsync does), recording each one."""

    def __init__(self, fail: bool = False) -> None:
        self.commits: list[list[str]] = []
        self.fail = fail

    def append_rows(self, name: str, rows: list) -> int:
        import time

        time.sleep(0.2)
        if self.fail:
            raise OSError("disk full")
        self.commits.append([r.id for r in rows])
        return len(rows)


@pytest.mark.parametrize("fail", [False, True])
def test_writer_groups_concurrent_appends_into_few_commits(fail: bool) -> None:
    import threading

    from banditkit.serve.errors import Unavailable
    from banditkit.serve.writer import EventWriter
    from banditkit.store import EventRow

    store = SlowStore(fail)
    writer = EventWriter(store)
    errors: list[BaseException] = []

    def append(i: int) -> None:
        try:
            writer.append("x", [EventRow(f"e{i}", "reward", 0.0, '{"reward":1}')])
        except Unavailable as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    if fail:
        assert len(errors) == 32 and store.commits == []  # every waiter hears of the failure
    else:
        assert errors == [] and sorted(i for c in store.commits for i in c) == sorted(
            f"e{i}" for i in range(32)
        )
        assert len(store.commits) <= 4  # one commit per wave of waiting requests, not 32
    with pytest.raises(Unavailable):
        writer.append("x", [])


def test_a_seed_makes_decisions_reproducible(tmp_path) -> None:
    answers = []
    for run in range(2):
        with engine(f"sqlite:///{tmp_path / f'{run}.db'}", seed=123) as eng:
            eng.create("r", "tspar", ARMS, {})
            eng.reward("r", [{"arm": "b", "reward": 1}])
            answers.append([r["arm"] for r in eng.recommend("r", [{"id": "1"}] * 50)])
    assert answers[0] == answers[1] and len(set(answers[0])) > 1


def test_a_store_failure_is_unavailable_and_acknowledges_nothing(tmp_path) -> None:
    from banditkit.serve.errors import Unavailable

    with engine(f"sqlite:///{tmp_path / 's.db'}") as eng:
        eng.create("f", "tspar", ARMS, {})
        (d,) = eng.recommend("f", [{"id": "1"}])
        writer_store = eng._writer.store
        real = writer_store.append_rows

        def broken(name: str, rows: list) -> int:
            raise OSError("disk I/O error")

        writer_store.append_rows = broken
        for call in (
            lambda: eng.recommend("f", [{"id": "2"}]),
            lambda: eng.reward("f", [{"event_id": d["event_id"], "reward": 1}]),
        ):
            with pytest.raises(Unavailable) as err:
                call()
            assert err.value.status == 503
        writer_store.append_rows = real
        desc = eng.describe("f")
        assert (desc["decisions"], desc["rewards"]) == (1, 0)
        assert eng.reward("f", [{"event_id": d["event_id"], "reward": 1}]) == 1  # it recovers
        assert eng.describe("f")["rewards"] == 1


def test_a_recreated_experiment_ignores_the_old_log(store_url: str) -> None:
    with engine(store_url) as eng:
        eng.create("r", "tspar", ARMS, {})
        eng.reward("r", [{"arm": "a", "reward": 1}])
        eng.delete("r")
        # A stale server still logs for the old experiment after the delete...
        eng._store.append_events("r", [{"id": "late", "kind": "reward", "reward": 1, "arm": "a"}])
        eng.create("r", "tspar", ARMS, {})
        desc = eng.describe("r")  # ...the new experiment starts empty all the same
        assert (desc["rewards"], desc["version"]) == (0, 1)
        assert eng._store.last_seq("r") > 0
