"""`banditkit serve` end to end: a real server process on a free loopback port (SQLite store),
driven with httpx. The happy path (create, recommend, reward, state, metrics, timeline, stats,
dashboard), every bad input of the contract (a 4xx whose JSON names the field, and no change
to the experiment), the bearer token, and the refusal to listen beyond loopback without one."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_server import AUTH, Server, free_port, serve_command, server_env

MAX_BATCH = 50
MAX_BODY = 20_000
ARMS = ["a", "b", "c"]
D = 3  # the contextual experiment's context length


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve-api")
    srv = Server(
        f"sqlite:///{folder / 'store.db'}",
        folder,
        "--max-batch", str(MAX_BATCH),
        "--max-body-bytes", str(MAX_BODY),
        "--seed", "7",
    )  # fmt: skip
    srv.start()
    srv.create("ab", "tspar", ARMS)
    srv.create("ctx", "linucb", [0, 1], n_features=D, alpha=1.0)
    yield srv
    srv.close()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$" if labels else rf"^{name} (\S+)$"
    found = re.search(pattern, text, re.M)
    assert found, f"no sample {name}{{{want}}} in /metrics"
    return float(found.group(1))


def test_recommend_reward_state_metrics(server: Server) -> None:
    before = server.describe("ab")
    results = server.recommend("ab", [{"id": f"u{i}"} for i in range(20)])
    assert [r["id"] for r in results] == [f"u{i}" for i in range(20)]
    assert all(r["arm"] in ARMS and 0 < r["propensity"] <= 1 for r in results)
    assert len({r["event_id"] for r in results}) == 20
    # TSPar's propensity is the exact probability that the arm is best: equal arms, equal shares.
    if before["rewards"] == 0:
        assert all(math.isclose(r["propensity"], 1 / 3, rel_tol=1e-6) for r in results)

    rewards = [{"event_id": r["event_id"], "reward": float(i % 2)} for i, r in enumerate(results)]
    assert server.reward("ab", rewards) == 20
    after = server.describe("ab")
    assert after["version"] == before["version"] + 20
    assert after["rewards"] == before["rewards"] + 20
    assert after["decisions"] == before["decisions"] + 20
    arms = {a["arm"]: a for a in after["arms"]}
    old = {a["arm"]: a for a in before["arms"]}
    chosen = Counter(r["arm"] for r in results)
    for arm in ARMS:
        assert arms[arm]["count"] == old[arm]["count"] + chosen[arm]
        won = sum(rw["reward"] for rw, r in zip(rewards, results, strict=True) if r["arm"] == arm)
        assert math.isclose(arms[arm]["reward_sum"], old[arm]["reward_sum"] + won)
    assert math.isclose(sum(a["win_probability"] for a in after["arms"]), 1.0, rel_tol=1e-6)

    # A retried batch (its acknowledgement lost) is counted once.
    server.reward("ab", rewards)
    assert server.describe("ab")["version"] == after["version"]

    text = server.client.get("/metrics").text
    recommend = "POST /v1/experiments/{name}/recommend"
    assert (
        metric(text, "banditkit_requests_total", endpoint=recommend, method="POST", status="200")
        >= 1
    )
    assert metric(text, "banditkit_request_seconds_count", endpoint=recommend) >= 1
    assert metric(text, "banditkit_state_version", experiment="ab") == after["version"]
    assert metric(text, "banditkit_rewards_total", experiment="ab") == after["rewards"]
    assert metric(text, "banditkit_decisions_total", experiment="ab") == after["decisions"]
    assert "banditkit_operation_seconds_bucket{" in text
    assert 'kind="model"' in text and 'kind="store"' in text

    line = server.call("GET", "/v1/experiments/ab/timeline", params={"seconds": 600, "bucket": 5})
    assert line["name"] == "ab" and line["bucket_seconds"] == 5
    assert sum(b["decisions"] for b in line["buckets"]) == after["decisions"]
    assert sum(b["rewards"] for b in line["buckets"]) == after["rewards"]

    stats = server.call("GET", "/v1/stats")
    assert stats["thresholds_ms"] == {"recommend": 50, "update": 20}
    window = stats["latency"][recommend]
    assert window["count"] >= 1 and 0 < window["p50_ms"] <= window["p99_ms"] <= window["max_ms"]
    assert any(key.startswith("model.") for key in stats["latency"])
    assert stats["backend"] in ("rust", "python") and stats["uptime_seconds"] > 0


def test_contextual_experiment(server: Server) -> None:
    before = server.describe("ctx")
    contexts = [[1.0, 0.0, 0.5], [0.0, 1.0, -0.5], [0.2, 0.2, 0.2]]
    results = server.recommend(
        "ctx", [{"id": str(i), "context": x, "candidates": [0, 1]} for i, x in enumerate(contexts)]
    )
    assert all(r["arm"] in (0, 1) and 0 < r["propensity"] <= 1 for r in results)
    server.reward("ctx", [{"event_id": r["event_id"], "reward": 1.0} for r in results])
    server.reward("ctx", [{"arm": 1, "context": contexts[0], "reward": -0.5, "id": "direct-1"}])
    after = server.describe("ctx")
    assert after["version"] == before["version"] + 4
    assert after["policy"] == "linucb"
    assert all(a["win_probability"] is None for a in after["arms"])


def test_reads(server: Server) -> None:
    assert server.client.get("/healthz").status_code == 200
    assert server.client.get("/readyz").json() == {"status": "ready"}
    assert set(server.client.get("/v1/experiments").json()["experiments"]) >= {"ab", "ctx"}
    page = server.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()
    assert server.client.get("/static/dashboard.js").status_code == 200


def test_create_and_delete(server: Server) -> None:
    made = server.create("tmp-exp", "linear", ["x", "y"], default_sigma=2.0)
    assert made["version"] == 1 and [a["arm"] for a in made["arms"]] == ["x", "y"]
    server.call(
        "POST", "/v1/experiments", 409, json={"name": "tmp-exp", "policy": "tspar", "arms": ["z"]}
    )
    server.call("DELETE", "/v1/experiments/tmp-exp")
    server.call("GET", "/v1/experiments/tmp-exp", 404)


RECOMMEND = "/v1/experiments/{}/recommend"
REWARDS = "/v1/experiments/{}/rewards"
CREATE = "/v1/experiments"


def _raw(text: str) -> dict[str, Any]:
    """A body sent as written: Python's json would never emit NaN or Infinity itself."""
    return {"content": text.encode(), "headers": {**AUTH, "content-type": "application/json"}}


def _json(body: Any) -> dict[str, Any]:
    return {"json": body}


# (experiment, method path, request, status, field): each must be refused with that status and
# field, before anything is logged.
BAD_INPUTS = {
    "body over the limit": (
        "ab",
        REWARDS,
        _json({"rewards": [{"arm": "a", "reward": 1.0, "id": "x" * 150}] * 140}),
        413,
        "body",
    ),
    "recommend batch over the limit": (
        "ab",
        RECOMMEND,
        _json({"requests": [{"id": str(i)} for i in range(MAX_BATCH + 1)]}),
        422,
        "requests",
    ),
    "rewards batch over the limit": (
        "ab",
        REWARDS,
        _json({"rewards": [{"arm": "a", "reward": 1.0}] * (MAX_BATCH + 1)}),
        422,
        "rewards",
    ),
    "empty batch": ("ab", RECOMMEND, _json({"requests": []}), 422, "requests"),
    "id of the wrong type": (
        "ab",
        RECOMMEND,
        _json({"requests": [{"id": 5}]}),
        422,
        "requests[0].id",
    ),
    "reward as a string": (
        "ab",
        REWARDS,
        _json({"rewards": [{"arm": "a", "reward": "1"}]}),
        422,
        "rewards[0].reward",
    ),
    "reward as a bool": (
        "ab",
        REWARDS,
        _json({"rewards": [{"arm": "a", "reward": True}]}),
        422,
        "rewards[0].reward",
    ),
    "arm as a float": (
        "ab",
        REWARDS,
        _json({"rewards": [{"arm": 1.5, "reward": 1.0}]}),
        422,
        "rewards[0].arm",
    ),
    "context not a list": (
        "ctx",
        RECOMMEND,
        _json({"requests": [{"id": "1", "context": "1,2,3"}]}),
        422,
        "requests[0].context",
    ),
    "unknown key": (
        "ab",
        REWARDS,
        _json({"rewards": [{"arm": "a", "reward": 1.0, "weight": 2}]}),
        422,
        "rewards[0].weight",
    ),
    "neither event_id nor arm": (
        "ab",
        REWARDS,
        _json({"rewards": [{"reward": 1.0}]}),
        422,
        "rewards[0]",
    ),
    "NaN reward": (
        "ab",
        REWARDS,
        _raw('{"rewards": [{"arm": "a", "reward": NaN}]}'),
        422,
        "rewards[0].reward",
    ),
    "Infinity in a context": (
        "ctx",
        RECOMMEND,
        _raw('{"requests": [{"id": "1", "context": [1, Infinity, 0]}]}'),
        422,
        "requests[0].context[1]",
    ),
    "1e999 (inf) in a reward's context": (
        "ctx",
        REWARDS,
        _raw('{"rewards": [{"arm": 0, "reward": 1, "context": [1e999, 0, 0]}]}'),
        422,
        "rewards[0].context[0]",
    ),
    "NaN after a good reward (the whole batch is refused)": (
        "ab",
        REWARDS,
        _raw('{"rewards": [{"arm": "a", "reward": 1}, {"arm": "b", "reward": NaN}]}'),
        422,
        "rewards[1].reward",
    ),
    "not JSON": ("ab", REWARDS, _raw('{"rewards": [{"arm": "a", "reward": 1}'), 422, "body"),
    "not a JSON object": ("ab", REWARDS, _json([1, 2]), 422, "body"),
    "form-encoded body": (
        "ab",
        REWARDS,
        {
            "content": b"rewards=1",
            "headers": {**AUTH, "content-type": "application/x-www-form-urlencoded"},
        },
        422,
        "body",
    ),
    "unknown arm in a reward": (
        "ab",
        REWARDS,
        _json({"rewards": [{"arm": "zzz", "reward": 1.0}]}),
        422,
        "rewards[0].arm",
    ),
    "unknown arm after a good reward": (
        "ab",
        REWARDS,
        _json({"rewards": [{"arm": "a", "reward": 1.0}, {"arm": "q", "reward": 0.0}]}),
        422,
        "rewards[1].arm",
    ),
    "unknown candidate": (
        "ab",
        RECOMMEND,
        _json({"requests": [{"id": "1", "candidates": ["a", "zzz"]}]}),
        422,
        "requests[0].candidates[1]",
    ),
    "reward outside [0, 1] for tspar": (
        "ab",
        REWARDS,
        _json({"rewards": [{"arm": "a", "reward": 2.0}]}),
        422,
        "rewards[0].reward",
    ),
    "unknown event id": (
        "ab",
        REWARDS,
        _json({"rewards": [{"event_id": "no-such-decision", "reward": 1.0}]}),
        422,
        "rewards[0].event_id",
    ),
    "missing context": (
        "ctx",
        RECOMMEND,
        _json({"requests": [{"id": "1"}]}),
        422,
        "requests[0].context",
    ),
    "wrong context length": (
        "ctx",
        RECOMMEND,
        _json({"requests": [{"id": "1", "context": [1.0, 2.0]}]}),
        422,
        "requests[0].context",
    ),
    "wrong context length in a reward": (
        "ctx",
        REWARDS,
        _json({"rewards": [{"arm": 0, "reward": 1.0, "context": [1.0] * (D + 1)}]}),
        422,
        "rewards[0].context",
    ),
    "missing context in a reward": (
        "ctx",
        REWARDS,
        _json({"rewards": [{"arm": 0, "reward": 1.0}]}),
        422,
        "rewards[0].context",
    ),
    "unknown experiment (recommend)": (
        "nope",
        RECOMMEND,
        _json({"requests": [{"id": "1"}]}),
        404,
        "name",
    ),
    "unknown experiment (rewards)": (
        "nope",
        REWARDS,
        _json({"rewards": [{"arm": "a", "reward": 1}]}),
        404,
        "name",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_and_changes_nothing(server: Server, case: str) -> None:
    name, path, request, status, field = BAD_INPUTS[case]
    before = {n: server.describe(n) for n in ("ab", "ctx")}
    request = {"headers": AUTH, **request}
    response = server.client.post(path.format(name), **request)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status
    assert error["field"] == field, error
    assert isinstance(error["message"], str) and len(error["message"]) > 5
    after = {n: server.describe(n) for n in ("ab", "ctx")}
    assert after == before


BAD_CREATES = {
    "unknown policy": ({"policy": "epsilon", "arms": ["a"]}, "policy"),
    "no arms": ({"policy": "tspar", "arms": []}, "arms"),
    "an arm twice": ({"policy": "tspar", "arms": ["a", "a"]}, "arms"),
    "a bad name": ({"policy": "tspar", "arms": ["a"], "name": "no spaces"}, "name"),
    "a negative alpha": (
        {"policy": "linucb", "arms": [0], "params": {"n_features": 2, "alpha": -1}},
        "params.alpha",
    ),
    "a param of the wrong type": (
        {"policy": "linucb", "arms": [0], "params": {"n_features": "two"}},
        "params.n_features",
    ),
    "a missing required param": (
        {"policy": "lints", "arms": [0], "params": {}},
        "params.n_features",
    ),
    "an unknown param": (
        {"policy": "tspar", "arms": ["a"], "params": {"alpha": 1}},
        "params.alpha",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CREATES))
def test_bad_create_is_refused(server: Server, case: str) -> None:
    body, field = BAD_CREATES[case]
    body = {"name": "never-made", **body}
    response = server.client.post(CREATE, json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert "never-made" not in server.client.get("/v1/experiments").json()["experiments"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdC10b2tlbg=="}],
    ids=["no token", "wrong token", "not bearer"],
)
def test_writes_need_the_token(server: Server, headers: dict[str, str]) -> None:
    before = server.describe("ab")
    for method, path, body in [
        ("POST", REWARDS.format("ab"), {"rewards": [{"arm": "a", "reward": 1.0}]}),
        ("POST", RECOMMEND.format("ab"), {"requests": [{"id": "1"}]}),
        ("POST", CREATE, {"name": "sneaky", "policy": "tspar", "arms": ["a"]}),
        ("DELETE", "/v1/experiments/ab", None),
    ]:
        response = server.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"].lower().startswith("bearer")
        assert response.json()["error"]["status"] == 401
    assert server.describe("ab") == before
    # Reads stay open: the dashboard and monitoring need no secret.
    assert server.client.get("/v1/experiments/ab").status_code == 200


def test_non_loopback_without_token_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "never.db"
    proc = subprocess.run(
        serve_command(
            "--host", "0.0.0.0", "--port", str(free_port()), "--store", f"sqlite:///{store}"
        ),
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "without a token" in proc.stderr and "BANDITKIT_TOKEN" in proc.stderr
    assert not store.exists()  # refused before anything was opened


def test_error_bodies_are_json_everywhere(server: Server) -> None:
    for response in (
        server.client.get("/no/such/path"),
        server.client.put("/v1/experiments", headers=AUTH),
        server.client.get("/v1/experiments/ab/timeline", params={"seconds": 0}),
    ):
        assert 400 <= response.status_code < 500
        error = json.loads(response.text)["error"]
        assert error["status"] == response.status_code and error["message"]
    assert (
        httpx.get(f"{server.url}/v1/experiments/ab/timeline?bucket=x").json()["error"]["field"]
        == "bucket"
    )


def test_chunked_body_over_the_limit_is_cut_off(server: Server) -> None:
    """Without Content-Length (chunked upload) the limit holds on the bytes received."""
    before = server.describe("ab")

    def chunks() -> Iterator[bytes]:
        yield b'{"rewards": ['
        for i in range(1000):
            yield b'{"arm": "a", "reward": 1.0, "id": "chunk-%d"},' % i
        yield b'{"arm": "a", "reward": 1.0}]}'

    headers = {**AUTH, "content-type": "application/json"}
    response = server.client.post(REWARDS.format("ab"), content=chunks(), headers=headers)
    assert response.status_code == 413 and response.json()["error"]["field"] == "body"
    assert server.describe("ab") == before


def test_two_workers_share_the_experiments(tmp_path: Path) -> None:
    """`--workers 2`: uvicorn workers built by the app factory from the settings in their
    environment; whichever worker answers, a read sees every acknowledged write."""
    srv = Server(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, "--workers", "2").start()
    try:
        srv.create("w", "tspar", ARMS)
        sent = 0
        for _ in range(4):
            decided = srv.recommend("w", [{"id": str(j)} for j in range(5)])
            srv.reward("w", [{"event_id": d["event_id"], "reward": 1.0} for d in decided])
            sent += 5
            assert srv.describe("w")["rewards"] == sent
        assert srv.terminate() in (0, -signal.SIGTERM), srv.output()
    finally:
        srv.close()
