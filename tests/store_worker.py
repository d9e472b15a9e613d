"""Child processes of the store's durability tests (run as `python store_worker.py MODE ...`).

- `writer URL NAME`: forever, put the next version of NAME, then append a batch of events for
  it; after each call returns (committed) print `V <version>` or `E <id> <id> ...`, flushed.
  The parent kills it with SIGKILL at random moments and checks that everything printed is in
  the store and that nothing half-written is.
- `counter URL NAME N`: N times get NAME, add one, put it back with `expected_version`, retrying
  on VersionConflict; print `ACK` after each put returns. No update may be lost.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys

from banditkit.store import ModelNotFound, VersionConflict, open_store

EVENTS_PER_BATCH = 5
MAGIC = b"BKTEST1\n"


def state(version: int) -> bytes:
    """A self-checking state for `version`: its number, a body of 1-100 kB, the body's hash."""
    rng = random.Random(version)
    body = rng.randbytes(rng.randint(1_000, 100_000))
    return MAGIC + version.to_bytes(8, "little") + hashlib.sha256(body).digest() + body


def check_state(blob: bytes, version: int) -> None:
    """Raise AssertionError unless `blob` is exactly `state(version)`."""
    assert blob[: len(MAGIC)] == MAGIC, "bad magic"
    assert int.from_bytes(blob[8:16], "little") == version, "wrong version inside"
    assert hashlib.sha256(blob[48:]).digest() == blob[16:48], "body does not match its hash"
    assert blob == state(version)


def event_ids(version: int) -> list[str]:
    return [f"v{version}-e{k}" for k in range(EVENTS_PER_BATCH)]


def events(version: int) -> list[dict]:
    return [
        {
            "id": eid,
            "kind": "decision",
            "arm": k % 3,
            "propensity": 0.25,
            "policy_version": version,
            "context": [float(version), float(k)],
        }  # fmt: skip
        for k, eid in enumerate(event_ids(version))
    ]


def writer(url: str, name: str) -> None:
    with open_store(url) as store:
        try:
            version = store.latest_version(name)
        except ModelNotFound:
            version = 0
        while True:
            version = store.put_bytes(name, state(version + 1), expected_version=version)
            print(f"V {version}", flush=True)
            store.append_events(name, events(version))
            print("E " + " ".join(event_ids(version)), flush=True)


def counter(url: str, name: str, n: int) -> None:
    with open_store(url) as store:
        for _ in range(n):
            while True:
                version = store.latest_version(name)
                count = json.loads(store.get_bytes(name, version))["count"]
                try:
                    blob = json.dumps({"count": count + 1}).encode()
                    store.put_bytes(name, blob, expected_version=version)
                    break
                except VersionConflict:
                    continue
            print("ACK", flush=True)


if __name__ == "__main__":
    mode, url, name, *rest = sys.argv[1:]
    if mode == "writer":
        writer(url, name)
    elif mode == "counter":
        counter(url, name, int(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode}")
