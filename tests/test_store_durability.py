"""The store keeps what it acknowledged: SIGKILL at random moments, and concurrent writers.

Both tests run child processes (tests/store_worker.py), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import random
import signal
import time
from typing import Any

import pytest

import banditkit
import store_worker
from banditkit.store import ModelNotFound, open_store

KILLS = 20
PROCESSES = 4
UPDATES_PER_PROCESS = 25


# Children come from a fork server (a fresh interpreter with banditkit imported): they start in
# milliseconds, and never inherit the threads (Rayon's, psycopg_pool's) of the test process.
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["banditkit", "banditkit.store", "store_worker"])
FIRST_ACK_TIMEOUT = 120.0


def start(mode: str, *args: object) -> tuple[Any, Any]:
    """A child running `store_worker.<mode>(*args)`, and the read end of its acknowledgements."""
    read, write = CONTEXT.Pipe(duplex=False)
    proc = CONTEXT.Process(target=store_worker.child, args=(mode, write, *args), daemon=True)
    proc.start()
    write.close()  # the child holds the only write end: EOF when it exits or dies
    return proc, read


def drain(read: Any) -> list[str]:
    """Every acknowledgement left in the pipe, up to the child's exit."""
    out = []
    with read:
        while True:
            try:
                out.append(read.recv_bytes().decode())
            except EOFError:
                return out


def acknowledged(lines: list[str]) -> tuple[set[int], set[str]]:
    versions: set[int] = set()
    ids: set[str] = set()
    for line in lines:
        kind, *rest = line.split()
        if kind == "V":
            versions.add(int(rest[0]))
        else:
            ids.update(rest)
    return versions, ids


def check_store(url: str, acked_versions: set[int], acked_ids: set[str], loaded: int) -> int:
    """Everything acknowledged is there and loads; nothing half-written is visible. Versions
    up to `loaded` loaded at an earlier check (rows are never rewritten): load the others."""
    with open_store(url) as store:
        try:
            stored = [v.version for v in store.versions("m")]
        except ModelNotFound:
            stored = []
        assert stored == list(range(1, len(stored) + 1)), "versions are not contiguous"
        assert acked_versions <= set(stored), "an acknowledged version is missing"
        for v in stored[loaded:]:
            store_worker.check_state(store.get("m", v), v)
        got = store.events("m")
        ids = [e.id for e in got]
        assert len(ids) == len(set(ids))
        assert acked_ids <= set(ids), "an acknowledged event is missing"
        by_version: dict[int, set[str]] = {}
        present = set(stored)
        for e in got:
            v = e.data["policy_version"]
            assert v in present and e.data["context"][0] == float(v)
            by_version.setdefault(v, set()).add(e.id)
        for v, batch in by_version.items():  # a batch is all there or not at all
            assert batch == set(store_worker.event_ids(v)), f"half a batch of version {v}"
    return len(stored)


def test_acknowledged_writes_survive_sigkill(store_url):
    rng = random.Random(20260512)
    acked_versions: set[int] = set()
    acked_ids: set[str] = set()
    stored = 0
    for _ in range(KILLS):
        proc, read = start("writer", store_url, "m")
        if not read.poll(FIRST_ACK_TIMEOUT):  # writing has begun
            proc.kill()
            pytest.fail(f"the writer acknowledged nothing (exit code {proc.exitcode})")
        time.sleep(rng.uniform(0.0, 0.1))
        proc.kill()  # SIGKILL
        lines = drain(read)
        proc.join()
        assert proc.exitcode == -signal.SIGKILL
        versions, ids = acknowledged(lines)
        acked_versions |= versions
        acked_ids |= ids
        stored = check_store(store_url, acked_versions, acked_ids, stored)
    print(f"{len(acked_versions)} versions, {len(acked_ids)} events acknowledged; {stored} stored")
    # the writers really were killed in the middle of writing, many times
    assert len(acked_versions) >= KILLS and stored >= len(acked_versions)


def test_no_update_is_lost_under_concurrent_writers(store_url):
    with open_store(store_url) as store:
        first = banditkit.TSPar(seed=0)
        first.update({"a": [0, 0]})  # Beta(1, 1)
        assert store.put("counter", first) == 1
    children = [
        start("counter", store_url, "counter", UPDATES_PER_PROCESS) for _ in range(PROCESSES)
    ]
    outputs = []
    for proc, read in children:
        outputs += drain(read)
        proc.join(timeout=120)
        assert proc.exitcode == 0, "a counter process failed: see its stderr"
    acks = outputs.count("ACK")
    assert acks == PROCESSES * UPDATES_PER_PROCESS
    with open_store(store_url) as store:
        info = store.versions("counter")
        assert [v.version for v in info] == list(range(1, acks + 2))
        # every version is its predecessor plus exactly one: no update lost, none applied twice
        for v in info:
            counts = store.get("counter", v.version)
            assert (float(counts.alpha[0]), float(counts.beta[0])) == (v.version, 1.0)
        assert float(counts.alpha[0]) - 1 == acks
