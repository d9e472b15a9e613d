"""The store keeps what it acknowledged: SIGKILL at random moments, and concurrent writers.

Both tests fork child processes (tests/store_worker.py), on SQLite and on PostgreSQL; the
parent holds no open store while it forks.
"""

from __future__ import annotations

import os
import random
import signal
import time
import traceback
from typing import TextIO

import pytest

import banditkit
import store_worker
from banditkit.store import ModelNotFound, open_store

KILLS = 20
PROCESSES = 4
UPDATES_PER_PROCESS = 25


def fork(target, *args) -> tuple[int, TextIO]:
    """Run `target(*args, out)` in a forked child process; returns its pid and the read end of
    the pipe it writes its acknowledgements to. The child never returns into pytest."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.close(read)
            with os.fdopen(write, "w") as out:
                target(*args, out)
            status = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(write)
    return pid, os.fdopen(read)


def wait(pid: int) -> int:
    """The child's exit status, or minus the signal that killed it."""
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def acknowledged(lines: list[str]) -> tuple[set[int], set[str]]:
    versions: set[int] = set()
    ids: set[str] = set()
    for line in lines:
        if not line.endswith("\n"):  # cut by the kill: not acknowledged
            continue
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
        pid, out = fork(store_worker.writer, store_url, "m")
        with out:
            first = out.readline()  # writing has begun
            if not first:
                pytest.fail(f"the writer died on its own (status {wait(pid)}): see its stderr")
            time.sleep(rng.uniform(0.0, 0.1))
            os.kill(pid, signal.SIGKILL)
            rest = out.readlines()
        assert wait(pid) == -signal.SIGKILL
        versions, ids = acknowledged([first, *rest])
        acked_versions |= versions
        acked_ids |= ids
        stored = check_store(store_url, acked_versions, acked_ids, stored)
    print(f"{len(acked_versions)} versions, {len(acked_ids)} events acknowledged; {stored} stored")
    # the writers really were killed in the middle of writing, many times
    assert len(acked_versions) >= KILLS and stored >= len(acked_versions)


def test_no_update_is_lost_under_concurrent_writers(store_url):
    with open_store(store_url) as store:
        start = banditkit.TSPar(seed=0)
        start.update({"a": [0, 0]})  # Beta(1, 1)
        assert store.put("counter", start) == 1
    children = [
        fork(store_worker.counter, store_url, "counter", UPDATES_PER_PROCESS)
        for _ in range(PROCESSES)
    ]
    outputs = []
    for pid, out in children:
        with out:
            outputs.append(out.read())
        assert wait(pid) == 0, "a counter process failed: see its stderr"
    acks = sum(out.split().count("ACK") for out in outputs)
    assert acks == PROCESSES * UPDATES_PER_PROCESS
    with open_store(store_url) as store:
        info = store.versions("counter")
        assert [v.version for v in info] == list(range(1, acks + 2))
        # every version is its predecessor plus exactly one: no update lost, none applied twice
        for v in info:
            counts = store.get("counter", v.version)
            assert (float(counts.alpha[0]), float(counts.beta[0])) == (v.version, 1.0)
        assert float(counts.alpha[0]) - 1 == acks
