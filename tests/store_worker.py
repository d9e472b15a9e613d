"""Child processes of the store's durability tests: the tests fork them (so a child starts in
milliseconds, with banditkit already imported), and `python store_worker.py MODE URL NAME [N]`
runs one by hand. Each writes its acknowledgements as lines to `out` (stdout by hand).

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
from typing import TextIO

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


def writer(url: str, name: str, out: TextIO) -> None:
    with open_store(url) as store:
        try:
            version = store.latest_version(name)
            model = store.get(name, version)
        except ModelNotFound:
            version, model = 0, banditkit.TSPar(seed=0)
        while True:
            step(model)
            version = store.put(name, model, expected_version=version)
            print(f"V {version}", file=out, flush=True)
            store.append_events(name, events(version))
            print("E " + " ".join(event_ids(version)), file=out, flush=True)


def counter(url: str, name: str, n: int, out: TextIO) -> None:
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
            print("ACK", file=out, flush=True)


if __name__ == "__main__":
    mode, url, name, *rest = sys.argv[1:]
    if mode == "writer":
        writer(url, name, sys.stdout)
    elif mode == "counter":
        counter(url, name, int(rest[0]), sys.stdout)
    else:
        raise SystemExit(f"unknown mode {mode}")
