"""`banditkit simulate --ray`: every (policy, repeat) task of a run as a Ray task.

A task is `runner.run_task`, the function the local runs call, and its seeds come from the run
seed and the task's coordinates (`runner.env_seed`, `runner.policy_seed`), never from where or
when it ran: the results are those of a local run with the same seed (only the timings and the
memory readings, which belong to the process that ran the task, differ). A task whose worker or
node dies is run again by Ray (`MAX_RETRIES`) from the start, with the same seeds, so a lost
machine costs time, not a different answer.

Every node needs the same banditkit installed (the workers import `banditkit.simulate`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from banditkit.simulate.runner import Config, TaskResult, run_task

INSTALL_HINT = "pip install 'banditkit[distributed]'"
# Attempts after the first for a task whose worker process or node died (Ray's max_retries).
MAX_RETRIES = 3


def ray_module() -> Any:
    """`ray`, or ImportError with the line to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"--ray needs Ray: {INSTALL_HINT}") from exc
    return ray


def _resolved(cfg: Config) -> Config:
    """`cfg` with backend "auto" replaced by the backend this process uses, so that workers
    whose environment would choose differently (BANDITKIT_BACKEND) run the same code."""
    if cfg.backend != "auto":
        return cfg
    import banditkit

    return dataclasses.replace(cfg, backend=banditkit.backend())


def run_all_on_ray(
    cfg: Config,
    address: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[TaskResult]:
    """Every (policy, repeat) of `cfg` as Ray tasks; results in `run_all`'s order.

    `address`: the cluster (`host:port`, `ray://...`); None or "" connects as `ray.init()` does
    (RAY_ADDRESS, else the cluster last started on this machine, else a new local one). A
    driver already connected in this process is used as it is and left connected.
    """
    return run_sweep_on_ray([cfg], address, progress)[0]


def run_sweep_on_ray(
    cfgs: list[Config],
    address: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[list[TaskResult]]:
    """Every (environment, policy, repeat) of a sweep (one `Config` per environment) as Ray
    tasks, all in flight together; per config, the results in `run_all`'s order."""
    ray = ray_module()
    connect = not ray.is_initialized()
    if connect:
        ray.init(address=address or None, logging_level=logging.WARNING)
    try:
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(run_task)
        tasks = [[(p, r) for r in range(cfg.repeats) for p in cfg.policies] for cfg in cfgs]
        where = {}
        for i, cfg in enumerate(cfgs):
            shipped = _resolved(cfg)
            where.update({remote.remote(shipped, p, r): (i, p, r) for p, r in tasks[i]})
        results: dict[tuple[int, str, int], TaskResult] = {}
        pending = list(where)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                results[where[ref]] = ray.get(ref)
                if progress is not None:
                    progress(cfgs[where[ref][0]].rounds)
        return [[results[(i, p, r)] for p, r in tasks[i]] for i in range(len(cfgs))]
    finally:
        if connect:
            ray.shutdown()
