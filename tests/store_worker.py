"""Child processes of the store's durability tests. The tests start them from a multiprocessing
fork server that has banditkit imported (a child starts in milliseconds, and never inherits
the test process's threads); `python store_worker.py MODE URL NAME [N]` runs one by hand. Each
reports its acknowledgements through `ack(line)`: a message on a pipe, or a line on stdout.

- `writer URL NAME`: forever, put the next version of NAME, then append a batch of events for
  it; after each call returns (committed) print `V <version>` or `E <id> <id> ...`, flushed.
  Each version is a TSPar of 100 arms (`step`). The parent kills it with SIGKILL at random
  moments and checks that everything printed is in the store and nothing half-written is.
- `counter URL NAME N`: N times get the TSPar NAME, add one success of arm "a", put it back with
  `expected_version`, retrying on VersionConflict; print `ACK` after each put returns. No
  update may be lost.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import banditkit
from banditkit.store import ModelNotFound, VersionConflict, open_store

EVENTS_PER_BATCH = 5
ARMS = [f"arm{k}" for k in range(100)]  # a state of about 2.5 kB


def step(model) -> None:
    """One version's update: after v steps every arm has alpha = beta = 1 + v."""
    model.update({arm: [2, 1] for arm in ARMS})


def check_state(model, version: int) -> None:
    """Raise AssertionError unless `model` is the writer's state of `version`."""
    assert type(model).__name__ == "TSPar"
    assert list(model.get_models()) == ARMS
    assert set(map(float, model.alpha)) == {1.0 + version}
    assert set(map(float, model.beta)) == {1.0 + version}


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


def writer(url: str, name: str, ack: Callable[[str], None]) -> None:
    with open_store(url) as store:
        try:
            version = store.latest_version(name)
            model = store.get(name, version)
        except ModelNotFound:
            version, model = 0, banditkit.TSPar(seed=0)
        while True:
            step(model)
            version = store.put(name, model, expected_version=version)
            ack(f"V {version}")
            store.append_events(name, events(version))
            ack("E " + " ".join(event_ids(version)))


def counter(url: str, name: str, n: int, ack: Callable[[str], None]) -> None:
    with open_store(url) as store:
        for _ in range(n):
            while True:
                version = store.latest_version(name)
                model = store.get(name, version)
                model.update({"a": [1, 1]})
                try:
                    store.put(name, model, expected_version=version)
                    break
                except VersionConflict:
                    continue
            ack("ACK")


def child(mode: str, conn: Any, *args: Any) -> None:
    """A child's entry point: run `mode` and send each acknowledgement (one small message, one
    write on the pipe: a kill cannot cut it) after the call it acknowledges returned."""
    {"writer": writer, "counter": counter}[mode](*args, lambda line: conn.send_bytes(line.encode()))


def print_line(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    mode, url, name, *rest = sys.argv[1:]
    if mode == "writer":
        writer(url, name, print_line)
    elif mode == "counter":
        counter(url, name, int(rest[0]), print_line)
    else:
        raise SystemExit(f"unknown mode {mode}")
