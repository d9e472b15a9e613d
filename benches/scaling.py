"""The figures of docs/scaling.md: Ray's per-task overhead on a local cluster, the speed-up of a
simulate sweep and of a BootstrapRidge fit from one to two worker processes, and what those
numbers give on paper for 10 and 100 nodes.

It starts its own local cluster (tests/ray_cluster.py: `ray start` head + worker node, one CPU
each, stopped at the end), so it needs `pip install '.[distributed,ensemble]'` and pytest.
Run from the repository root:

    PYTHONPATH=python python benches/scaling.py [--json scaling.json] [--quick]

Every time is the median of `--repeats` runs (wall clock). The machine's load average is
printed with the figures: on a busy machine the speed-up is bounded by the free cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from banditkit.ensemble._blocks import BLOCKS_PER_WORKER, KERNEL_BLOCK, block_sizes  # noqa: E402
from banditkit.simulate.on_ray import run_all_on_ray  # noqa: E402
from banditkit.simulate.runner import Config, run_all  # noqa: E402
from ray_cluster import RayCluster  # noqa: E402

# The paper projections: a sweep of 10,000 repeats of SWEEP's policies, a 100,000-member fit of
# the ridge problem below, on nodes of CORES_PER_NODE cores each.
PROJECT_REPEATS = 10_000
PROJECT_MEMBERS = 100_000
PROJECT_NODES = (1, 10, 100)
CORES_PER_NODE = 16


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ridge_problem() -> tuple[np.ndarray, np.ndarray]:
    """The seed's shape: 150 weekly rows x 598 features (the dual form)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(150, 598))
    return X, X @ rng.normal(size=598) / 20 + rng.normal(size=150)


def task_overhead(ray: Any, n: int) -> dict[str, float]:
    """An empty task's round trip alone, and per task when `n` are in flight at once."""

    @ray.remote(num_cpus=1)
    def noop() -> None:
        return None

    ray.get([noop.remote() for _ in range(20)])  # start the workers first
    t0 = time.perf_counter()
    for _ in range(100):
        ray.get(noop.remote())
    latency = (time.perf_counter() - t0) / 100
    t0 = time.perf_counter()
    ray.get([noop.remote() for _ in range(n)])
    return {
        "round_trip_ms": 1e3 * latency,
        "per_task_in_bulk_ms": 1e3 * (time.perf_counter() - t0) / n,
    }


def sweep(cfg: Config, address: str, repeats: int) -> float:
    return median_time(lambda: run_all_on_ray(cfg, address), repeats)


def ridge_fit(n_estimators: int, repeats: int, backend: str | None) -> float:
    """A BootstrapRidge fit: on one local thread (backend None) or in blocks under joblib."""
    import joblib

    from banditkit.ensemble import BootstrapRidge

    X, y = ridge_problem()
    jobs = 1 if backend is None else None  # None: every worker of the backend

    def fit() -> None:
        BootstrapRidge(n_estimators=n_estimators, random_state=1, n_jobs=jobs).fit(X, y)

    if backend is None:
        return median_time(fit, repeats)
    with joblib.parallel_config(backend=backend):
        return median_time(fit, repeats)


def projections(m: dict[str, Any]) -> dict[str, Any]:
    """Seconds on paper. The cores work in waves of tasks, each task costing its local time
    plus the measured overhead; the driver dispatches and collects every task alone, so the
    run takes at least tasks x its per-task cost."""
    driver_s = m["overhead"]["per_task_in_bulk_ms"] / 1e3
    tasks = PROJECT_REPEATS * m["sweep"]["policies"]
    task_s = m["sweep"]["task_seconds"] + max(0.0, m["sweep"]["ray_overhead_per_task_ms"]) / 1e3
    member_s = m["ridge"]["member_seconds"]
    block_overhead_s = m["ridge"]["block_overhead_seconds"]
    out: dict[str, Any] = {"cores_per_node": CORES_PER_NODE, "sweep": {}, "ridge": {}}
    for nodes in PROJECT_NODES:
        cores = nodes * CORES_PER_NODE
        out["sweep"][nodes] = max(math.ceil(tasks / cores) * task_s, tasks * driver_s)
        blocks = BLOCKS_PER_WORKER * cores
        per_core = PROJECT_MEMBERS * member_s / cores + BLOCKS_PER_WORKER * block_overhead_s
        out["ridge"][nodes] = m["ridge"]["ray_pool_start_seconds"] + max(
            per_core, blocks * driver_s
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="smaller sweep and fit")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray
    from ray.util.joblib import register_ray

    rounds = 5_000 if args.quick else 20_000
    members = 1_000 if args.quick else 4_000
    cfg = Config(env="bernoulli", policies=("ts", "logistic"), rounds=rounds, repeats=8, seed=1)
    m: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "ray": ray.__version__,
            "load_average_before": os.getloadavg(),
        }
    }
    n_tasks = cfg.repeats * len(cfg.policies)
    local = median_time(lambda: run_all(cfg), args.repeats)
    ridge_local = ridge_fit(members, args.repeats, None)

    with tempfile.TemporaryDirectory(prefix="bkray-") as tmp:
        cluster = RayCluster(Path(tmp))
        cluster.start()  # head + one worker node: two worker processes of one CPU each
        try:
            ray.init(address=cluster.address, logging_level="ERROR")
            register_ray()
            m["overhead"] = task_overhead(ray, 1_000)
            two = sweep(cfg, cluster.address, args.repeats)
            ridge_two = ridge_fit(members, args.repeats, "ray")
            # Ray's joblib backend starts a pool of actors (new processes) for every fit: the
            # fixed cost, measured as a one-block fit minus that block's local time.
            ridge_pool = ridge_fit(KERNEL_BLOCK, args.repeats, "ray") - ridge_fit(
                KERNEL_BLOCK, args.repeats, None
            )
            cluster.kill_worker()
            cluster.wait_for_nodes(1)
            single = sweep(cfg, cluster.address, args.repeats)
        finally:
            cluster.stop()
    m["sweep"] = {
        "env": cfg.env,
        "policies": len(cfg.policies),
        "rounds": cfg.rounds,
        "tasks": n_tasks,
        # The mean task (policies differ in cost: timing one task would skew the projection).
        "task_seconds": local / n_tasks,
        "local_serial_seconds": local,
        "ray_1_worker_seconds": single,
        "ray_2_workers_seconds": two,
        "speedup_1_to_2": single / two,
        "ray_overhead_per_task_ms": 1e3 * (single - local) / n_tasks,
    }
    blocks = len(block_sizes(members, 2))
    m["ridge"] = {
        "shape": list(ridge_problem()[0].shape),
        "members": members,
        "local_1_thread_seconds": ridge_local,
        "member_seconds": ridge_local / members,
        "ray_2_workers_seconds": ridge_two,
        "ray_pool_start_seconds": ridge_pool,
        "blocks": blocks,
        # One worker process (the local single-thread fit) to two Ray workers, fixed cost aside.
        "speedup_1_to_2_after_pool_start": ridge_local / max(1e-9, ridge_two - ridge_pool),
        # What a block costs beyond its members' fitting, per block (2 workers share them).
        "block_overhead_seconds": max(0.0, ridge_two - ridge_pool - ridge_local / 2) * 2 / blocks,
    }
    m["machine"]["load_average_after"] = os.getloadavg()
    m["projection"] = projections(m)
    print(json.dumps(m, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(m, indent=1))


if __name__ == "__main__":
    main()
