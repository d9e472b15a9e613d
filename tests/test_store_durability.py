"""The store keeps what it acknowledged: SIGKILL at random moments, and concurrent writers.

Both tests run child processes (tests/store_worker.py) on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import store_worker
from banditkit.store import ModelNotFound, open_store

HERE = Path(__file__).resolve().parent
KILLS = 20
PROCESSES = 4
UPDATES_PER_PROCESS = 25


def spawn(*args: str, stderr) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent / "python"), str(HERE), env.get("PYTHONPATH", "")]
    )
    return subprocess.Popen(
        [sys.executable, str(HERE / "store_worker.py"), *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )


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


def check_store(url: str, acked_versions: set[int], acked_ids: set[str]) -> int:
    """Everything acknowledged is there and loads; nothing half-written is visible."""
    with open_store(url) as store:
        try:
            stored = [v.version for v in store.versions("m")]
        except ModelNotFound:
            stored = []
        assert stored == list(range(1, len(stored) + 1)), "versions are not contiguous"
        assert acked_versions <= set(stored), "an acknowledged version is missing"
        for v in stored:
            store_worker.check_state(store.get_bytes("m", v), v)
        got = store.events("m")
        ids = [e.id for e in got]
        assert len(ids) == len(set(ids))
        assert acked_ids <= set(ids), "an acknowledged event is missing"
        by_version: dict[int, set[str]] = {}
        for e in got:
            v = e.data["policy_version"]
            assert v in stored and e.data["context"][0] == float(v)
            by_version.setdefault(v, set()).add(e.id)
        for v, batch in by_version.items():  # a batch is all there or not at all
            assert batch == set(store_worker.event_ids(v)), f"half a batch of version {v}"
    return len(stored)


def test_acknowledged_writes_survive_sigkill(store_url, tmp_path):
    rng = random.Random(20260512)
    acked_versions: set[int] = set()
    acked_ids: set[str] = set()
    stored = 0
    for kill in range(KILLS):
        with open(tmp_path / f"stderr-{kill}.txt", "w+") as err:
            proc = spawn("writer", store_url, "m", stderr=err)
            first = proc.stdout.readline()  # writing has begun
            if not first:
                proc.wait()
                err.seek(0)
                pytest.fail(f"the writer died on its own: {err.read()}")
            time.sleep(rng.uniform(0.0, 0.15))
            proc.send_signal(signal.SIGKILL)
            rest = proc.stdout.readlines()
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
        versions, ids = acknowledged([first, *rest])
        acked_versions |= versions
        acked_ids |= ids
        stored = check_store(store_url, acked_versions, acked_ids)
    # the writers really were killed in the middle of writing, many times
    assert len(acked_versions) >= KILLS and stored >= len(acked_versions)


def test_no_update_is_lost_under_concurrent_writers(store_url, tmp_path):
    with open_store(store_url) as store:
        assert store.put_bytes("counter", json.dumps({"count": 0}).encode()) == 1
    errs = [open(tmp_path / f"stderr-{i}.txt", "w+") for i in range(PROCESSES)]
    procs = [
        spawn("counter", store_url, "counter", str(UPDATES_PER_PROCESS), stderr=err) for err in errs
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for p, err in zip(procs, errs, strict=True):
        err.seek(0)
        assert p.returncode == 0, err.read()
        err.close()
    acks = sum(out.split().count("ACK") for out in outputs)
    assert acks == PROCESSES * UPDATES_PER_PROCESS
    with open_store(store_url) as store:
        info = store.versions("counter")
        assert [v.version for v in info] == list(range(1, acks + 2))
        # every version is its predecessor plus exactly one: no update lost, none applied twice
        for v in info:
            assert json.loads(store.get_bytes("counter", v.version))["count"] == v.version - 1
