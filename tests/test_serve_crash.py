"""Crash safety of `banditkit serve`, on SQLite and PostgreSQL: a server killed with SIGKILL in
the middle of a stream of rewards loses none it acknowledged and counts each exactly once, even
when the client retries; SIGTERM writes a final snapshot; two servers on one PostgreSQL store
report the same counts, equal to what they acknowledged. Server starts dominate the time, so
each test starts as few as it can."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from banditkit.store import open_store
from serve_server import AUTH, Server

ARMS = ["a", "b"]


class RewardStream(threading.Thread):
    """Sends reward batches until the server stops answering; remembers which were
    acknowledged and the one that was in flight when it died. Odd batches reward decisions
    (by event id), even ones name the arm (with client ids, as a retrying client must)."""

    def __init__(self, server: Server, name: str, size: int = 10) -> None:
        super().__init__(daemon=True)
        self.server, self.name, self.size = server, name, size
        self.acked: list[list[dict[str, Any]]] = []
        self.in_flight: list[dict[str, Any]] | None = None
        self.decisions_acked = 0
        self.error: BaseException | None = None

    def batch(self, i: int) -> list[dict[str, Any]] | None:
        if i % 2 == 0:
            return [
                {
                    "arm": ARMS[j % 2],
                    "reward": float(j % 3 == 0),
                    "id": f"r{i}-{j}",
                    "_arm": ARMS[j % 2],
                }
                for j in range(self.size)
            ]
        requests = [{"id": f"u{i}-{j}"} for j in range(self.size)]
        response = self.server.client.post(
            f"/v1/experiments/{self.name}/recommend", json={"requests": requests}, headers=AUTH
        )
        response.raise_for_status()
        self.decisions_acked += self.size
        results = response.json()["results"]
        return [
            {"event_id": r["event_id"], "reward": float(j % 2), "_arm": r["arm"]}
            for j, r in enumerate(results)
        ]

    def run(self) -> None:
        try:
            for i in range(100_000):
                batch = self.batch(i)
                self.in_flight = batch
                response = self.server.client.post(
                    f"/v1/experiments/{self.name}/rewards",
                    json={"rewards": strip(batch)},
                    headers=AUTH,
                )
                response.raise_for_status()
                self.acked.append(batch)
                self.in_flight = None
        except httpx.TransportError:
            return  # the server died: that is the test
        except BaseException as exc:  # reported by the test
            self.error = exc


def strip(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rewards without the test's own bookkeeping (`_arm`, the arm each one rewards)."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in batch]


def expected_counts(batches: list[list[dict[str, Any]]]) -> dict[str, tuple[int, float]]:
    count: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for batch in batches:
        for r in batch:
            count[r["_arm"]] += 1
            total[r["_arm"]] += r["reward"]
    return {arm: (count[arm], total[arm]) for arm in ARMS}


def counts(state: dict[str, Any]) -> dict[str, tuple[int, float]]:
    return {a["arm"]: (a["count"], a["reward_sum"]) for a in state["arms"]}


def send(server: Server, name: str, batch: list[dict[str, Any]]) -> None:
    server.reward(name, strip(batch))


def test_sigkill_mid_stream_then_sigterm(store_url: str, tmp_path: Path) -> None:
    """SIGKILL mid-stream: nothing acknowledged is lost, retries count once. Then SIGTERM on
    the restarted server: its final snapshot covers the whole log."""
    # Frequent snapshots first, so that the restart loads one and replays the events after it.
    first = Server(store_url, tmp_path, "--snapshot-every-events", "50").start()
    first.create("crash", "tspar", ARMS)
    stream = RewardStream(first, "crash")
    stream.start()
    # Kill once a snapshot covers part of the stream (the restart then loads it and replays
    # the events after it) and 30 batches were acknowledged.
    with open_store(store_url) as store:
        deadline = time.monotonic() + 30
        while stream.is_alive() and time.monotonic() < deadline:
            if len(stream.acked) >= 30 and store.latest_snapshot("crash").seq > 0:
                break
            time.sleep(0.05)
    first.kill()
    stream.join(10)
    assert stream.error is None, stream.error
    assert len(stream.acked) >= 30, first.output()

    # No snapshot by count or time from now on: the one found at the end is the shutdown's.
    second = Server(
        store_url,
        tmp_path,
        "--snapshot-every-events",
        "1000000",
        "--snapshot-every-seconds",
        "3600",
    ).start()
    try:
        state = second.describe("crash")
        acked = expected_counts(stream.acked)
        with_in_flight = expected_counts(stream.acked + [stream.in_flight or []])
        # The batch in flight at the kill was not acknowledged: all of it or none is there.
        assert counts(state) in (acked, with_in_flight)
        assert state["decisions"] >= stream.decisions_acked
        # The client retries what it was not told about, and, its acknowledgements lost, a few
        # batches it was: each reward still counts once.
        for batch in [stream.in_flight or [], *stream.acked[-3:], stream.acked[0]]:
            if batch:
                send(second, "crash", batch)
        state = second.describe("crash")
        assert counts(state) == with_in_flight
        assert state["rewards"] == sum(n for n, _ in with_in_flight.values())
        assert state["version"] == 1 + state["rewards"]

        # uvicorn re-raises SIGTERM once the app has shut down (the final snapshot written).
        assert second.terminate() in (0, -signal.SIGTERM), second.output()
        assert "Application shutdown complete" in second.output()
    finally:
        second.close()
    with open_store(store_url) as store:
        snapshot = store.latest_snapshot("crash")
        assert snapshot.seq == list(store.events("crash"))[-1].seq
    assert snapshot.info["version"] == state["version"]
    assert snapshot.info["decisions"] == state["decisions"]


def test_two_servers_on_one_postgres_store_agree(postgres_url: str, tmp_path: Path) -> None:
    servers = [Server(postgres_url, tmp_path, "--poll-interval", "0.1").spawn() for _ in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        servers[0].create("shared", "tspar", ["x", "y", "z"])
        deadline = time.monotonic() + 10
        while servers[1].client.get("/v1/experiments/shared").status_code != 200:
            assert time.monotonic() < deadline, "the second server never saw the experiment"
            time.sleep(0.05)

        acked: list[list[dict[str, Any]]] = []
        for i in range(12):
            here, there = servers[i % 2], servers[1 - i % 2]
            decided = here.recommend("shared", [{"id": f"{i}-{j}"} for j in range(8)])
            # Rewards for one server's decisions arrive at the other (as behind a load balancer).
            batch = [
                {"event_id": d["event_id"], "reward": float(j % 2), "_arm": d["arm"]}
                for j, d in enumerate(decided)
            ]
            batch.append({"arm": "z", "reward": 1.0, "id": f"direct-{i}", "_arm": "z"})
            send(there, "shared", batch)
            acked.append(batch)
        send(servers[0], "shared", acked[3])  # a retry, to the other server: counted once

        states = [s.describe("shared") for s in servers]
        want = {
            arm: (sum(r["_arm"] == arm for b in acked for r in b),
                  sum(r["reward"] for b in acked for r in b if r["_arm"] == arm))
            for arm in ("x", "y", "z")
        }  # fmt: skip
        for state in states:
            assert counts(state) == want
            assert state["decisions"] == 12 * 8
        assert states[0]["version"] == states[1]["version"] == 1 + 12 * 9
        assert (
            states[0]["arms"] == states[1]["arms"]
        )  # the same state, so the same win probabilities
    finally:
        for s in servers:
            s.close()
