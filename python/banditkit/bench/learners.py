"""Contextual learners at d = 67 and 10 arms (issue 14's benchmark, docs/benchmarks.md).

For each of LinUCB, DoublyRobust, OffsetTree and ContextTree that the backend defines (looked
up by name, so a learner not built yet is skipped with a note), on both backends:

- `select` per second: one `select(x)` call per event on pre-generated contexts;
- `update` per second: one `update(arm, x, r)` call per event (live feedback: the learners
  that weight by propensity use their own, as for `propensity=None`);
- memory growth: in a fresh process, `partial_fit` in batches of 10,000 random events (fewer
  when a tenth of the run is smaller)
  (uniform logging, propensity 1/10, rewards in [0, 1]); resident memory (VmRSS) after the
  first tenth of the updates and at the end. A bounded learner (DoublyRobust's `max_history`,
  the trees' `max_nodes`) should grow by about nothing between the two. The Rust backend runs
  1,000,000 updates; the NumPy reference 100,000 (its learners loop in Python); `--quick`
  divides both by 10.

Plus what exact propensities cost: `LinUCB.propensities` and LinTS's on 10,000 contexts, and
`prob_best_gaussian_rows` on 10,000 x 10 (what `banditkit evaluate --policy lints` runs).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from types import ModuleType
from typing import Any

import numpy as np

from banditkit.bench.timing import Row, backends, row

CLASSES = ("LinUCB", "DoublyRobust", "OffsetTree", "ContextTree")
D, K = 67, 10
N_CONTEXTS = 2000
WARMUP = 2000  # events learned before timing, so trees and models are not empty
BATCH = 10_000
PROPENSITY_ROWS = 10_000


def updates(backend: str, quick: bool) -> int:
    """Updates of the memory run (see the module docstring)."""
    full = 1_000_000 if backend == "rust" else 100_000
    return full // 10 if quick else full


def events(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n random events: contexts, uniformly logged arms, rewards in [0, 1]."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    arms = rng.integers(0, K, n)
    rewards = (rng.random(n) < 0.3 + 0.4 * (X[:, 0] > 0)).astype(float)
    return X, arms, rewards


def learn(model: Any, name: str, X: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
    """partial_fit of a uniform log (propensity 1/K) for the learners that take one."""
    labels = arms.tolist()
    if name == "LinUCB":
        model.partial_fit(X, labels, rewards)
    else:
        model.partial_fit(X, labels, rewards, propensities=np.full(len(labels), 1.0 / K))


def build(mod: ModuleType, name: str) -> Any:
    return getattr(mod, name)(list(range(K)), D, seed=0)


_MEMORY_CHILD = """
import json, sys, time
from banditkit.bench.learners import BATCH, build, events, learn
from banditkit.bench.timing import backends

backend, name, total = sys.argv[1], sys.argv[2], int(sys.argv[3])

def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

model = build(backends()[backend], name)
size = min(BATCH, total // 10)  # the first tenth ends on a batch boundary
batches = [events(size, seed) for seed in range(4)]  # reused: generation costs no memory
out, done, t0 = {}, 0, time.perf_counter()
while done < total:
    X, arms, rewards = batches[(done // size) % 4]
    learn(model, name, X, arms, rewards)
    done += size
    if done == total // 10:
        out["first_kb"] = rss_kb()
out.update(last_kb=rss_kb(), seconds=time.perf_counter() - t0, updates=done)
print(json.dumps(out))
"""


def memory(backend: str, name: str, total: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, backend, name, str(total)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _memory_row(backend: str, name: str, quick: bool) -> Row | None:
    total = updates(backend, quick)
    try:
        m = memory(backend, name, total)
    except (RuntimeError, OSError) as exc:
        print(f"[learners] {backend} {name} memory run failed: {exc}", file=sys.stderr)
        return None
    first, last = m["first_kb"] / 1024, m["last_kb"] / 1024
    return {
        "group": "learners",
        "case": f"{name} memory, {total:,} updates",
        "impl": backend,
        "median_s": m["seconds"],
        "repeats": 1,
        "per": float(total),
        "unit": "update",
        "note": (
            f"RSS {first:.1f} MB after {total // 10:,}, {last:.1f} MB after {total:,}: "
            f"growth {last - first:+.1f} MB"
        ),
    }


def _speed_rows(backend: str, mod: ModuleType, name: str, quick: bool) -> list[Row]:
    model = build(mod, name)
    learn(model, name, *events(WARMUP, 1))
    X, arms, rewards = events(N_CONTEXTS, 2)
    labels = arms.tolist()
    pick = itertools.cycle(range(N_CONTEXTS))
    case = f"d={D}, {K} arms"
    rows = [
        row(
            "learners",
            f"{name} select, {case}",
            backend,
            lambda: model.select(X[next(pick)]),
            quick=quick,
            per=1,
            unit="select",
        ),
    ]

    def update() -> None:
        i = next(pick)
        model.update(labels[i], X[i], rewards[i])

    rows.append(
        row(
            "learners", f"{name} update, {case}", backend, update, quick=quick, per=1, unit="update"
        )
    )
    return rows


def _propensity_rows(backend: str, mod: ModuleType, quick: bool) -> list[Row]:
    n = PROPENSITY_ROWS // 10 if quick else PROPENSITY_ROWS
    rows: list[Row] = []
    X, arms, rewards = events(n, 3)
    for name in ("LinUCB", "LinTS"):
        model = build(mod, name)
        learn(model, "LinUCB", *events(WARMUP, 1))
        rows.append(
            row(
                "learners",
                f"{name}.propensities, {n:,} x d={D}, {K} arms",
                backend,
                lambda m=model: m.propensities(X),
                quick=quick,
                per=n,
                unit="row",
            )
        )
    rng = np.random.default_rng(4)
    mu, sd = rng.standard_normal((n, K)), rng.uniform(0.1, 1.0, (n, K))
    rows.append(
        row(
            "learners",
            f"prob_best_gaussian_rows, {n:,} x {K} (evaluate --policy lints)",
            backend,
            lambda: mod.prob_best_gaussian_rows(mu, sd, share_ties=True),
            quick=quick,
            per=n,
            unit="row",
        )
    )
    return rows


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    for backend, mod in backends().items():
        for name in CLASSES:
            if not hasattr(mod, name):
                print(
                    f"[learners] {name} skipped: not in the {backend} backend yet", file=sys.stderr
                )
                continue
            t0 = time.perf_counter()
            rows.extend(_speed_rows(backend, mod, name, quick))
            mem = _memory_row(backend, name, quick)
            if mem is not None:
                rows.append(mem)
            print(
                f"[learners] {backend} {name}: {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        rows.extend(_propensity_rows(backend, mod, quick))
    return rows
