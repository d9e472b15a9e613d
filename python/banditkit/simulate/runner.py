"""Running simulations: one (policy, repeat) task, and all of them in parallel.

Determinism: the world of repeat r comes from the seed sequence (seed, r, 0), the policy's
generator from (seed, r, 1, crc32(policy name)); a task's result therefore does not depend on
which process ran it, in what order, or how many there were. Only the timings vary.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import queue
import resource
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from banditkit.simulate.envs import Environment, make_env
from banditkit.simulate.policies import POLICIES, Policy, backend_module

MAX_CHECKPOINTS = 200
# Below this many rounds in total, run in this process: starting workers takes about a second.
PARALLEL_MIN_ROUNDS = 50_000


@dataclass(frozen=True)
class Config:
    env: str
    policies: tuple[str, ...]
    arms: int = 5
    rounds: int = 10_000
    batch: int = 10
    repeats: int = 10
    seed: int = 0
    features: int = 5
    window: int = 1000
    backend: str = "auto"
    jobs: int = 1


@dataclass
class TaskResult:
    """One policy on one repeat; curves are sampled at `checkpoints(rounds)`."""

    policy: str
    repeat: int
    cumulative_regret: np.ndarray  # expected regret summed up to each checkpoint
    optimal_plays: np.ndarray  # rounds that played a best arm, up to each checkpoint
    rss_bytes: np.ndarray  # the process's resident memory at each checkpoint
    policy_seconds: float  # time spent in choose + learn
    reward: float  # total reward collected
    error: str | None = None  # why the policy stopped early (its curves are then incomplete)


def checkpoints(rounds: int) -> np.ndarray:
    """Up to MAX_CHECKPOINTS round counts, evenly spaced, ending at `rounds`."""
    return np.unique(np.linspace(0, rounds, MAX_CHECKPOINTS + 1).round().astype(np.int64))[1:]


def _seed(*words: int) -> int:
    return int(np.random.SeedSequence(list(words)).generate_state(1, np.uint32)[0])


def env_seed(seed: int, repeat: int) -> int:
    return _seed(seed, repeat, 0)


def policy_seed(seed: int, repeat: int, policy: str) -> int:
    return _seed(seed, repeat, 1, zlib.crc32(policy.encode()))


def current_rss_bytes() -> int:
    """Resident memory now (Linux /proc), else the peak so far (getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if os.uname().sysname == "Darwin" else peak * 1024  # Linux reports KiB


def run_task(
    cfg: Config,
    policy: str,
    repeat: int,
    progress: Callable[[int], None] | None = None,
    build: Callable[[ModuleType, Environment, int, int], Policy] | None = None,
) -> TaskResult:
    """Play `policy` for `cfg.rounds` rounds on repeat `repeat`'s world.

    `build` replaces the policy's own builder (same arguments as `PolicySpec.build`): how
    `banditkit tune` plays a policy with other knobs on the same worlds and seeds."""
    env = make_env(
        cfg.env,
        cfg.arms,
        cfg.rounds,
        np.random.default_rng(env_seed(cfg.seed, repeat)),
        cfg.features,
    )
    agent = (build or POLICIES[policy].build)(
        backend_module(cfg.backend), env, policy_seed(cfg.seed, repeat, policy), cfg.window
    )
    marks = checkpoints(cfg.rounds)
    regret_at = np.empty(len(marks))
    optimal_at = np.empty(len(marks), dtype=np.int64)
    rss_at = np.empty(len(marks), dtype=np.int64)
    regret_at[:], optimal_at[:], rss_at[:] = np.nan, -1, -1  # rounds not reached (on error)
    regret_sum, optimal_sum, reward_sum, seconds = 0.0, 0, 0.0, 0.0
    error = None
    next_mark, reported = 0, 0
    for start in range(0, cfg.rounds, cfg.batch):
        stop = min(start + cfg.batch, cfg.rounds)
        rounds = env.rounds(start, stop)
        t0 = time.perf_counter()
        idx = np.arange(len(rounds))
        try:
            arms = agent.choose(rounds)
            agent.learn(rounds.contexts, arms, rounds.rewards[idx, arms])
        except Exception as exc:  # a policy that breaks is a finding to report, not a crash
            error = f"round {start:,}: {type(exc).__name__}: {exc}"
            break
        seconds += time.perf_counter() - t0

        best = rounds.means.max(axis=1)
        chosen = rounds.means[idx, arms]
        regret = np.cumsum(best - chosen) + regret_sum
        optimal = np.cumsum(chosen >= best) + optimal_sum
        regret_sum, optimal_sum = float(regret[-1]), int(optimal[-1])
        reward_sum += float(rounds.rewards[idx, arms].sum())
        while next_mark < len(marks) and marks[next_mark] <= stop:
            regret_at[next_mark] = regret[marks[next_mark] - start - 1]
            optimal_at[next_mark] = optimal[marks[next_mark] - start - 1]
            rss_at[next_mark] = current_rss_bytes()
            next_mark += 1
        if progress is not None and (stop - reported >= 1000 or stop == cfg.rounds):
            progress(stop - reported)
            reported = stop
    if progress is not None and reported < cfg.rounds:  # stopped early: complete the bar
        progress(cfg.rounds - reported)
    return TaskResult(policy, repeat, regret_at, optimal_at, rss_at, seconds, reward_sum, error)


_progress_queue: multiprocessing.Queue | None = None


def _init_worker(q: multiprocessing.Queue) -> None:
    global _progress_queue
    _progress_queue = q


def _run_in_worker(cfg: Config, policy: str, repeat: int) -> TaskResult:
    q = _progress_queue
    return run_task(cfg, policy, repeat, None if q is None else q.put)


def run_all(cfg: Config, progress: Callable[[int], None] | None = None) -> list[TaskResult]:
    """Every (policy, repeat) of `cfg`, on `cfg.jobs` processes; results in a fixed order."""
    tasks = [(p, r) for r in range(cfg.repeats) for p in cfg.policies]
    small = cfg.rounds * len(tasks) < PARALLEL_MIN_ROUNDS
    if cfg.jobs <= 1 or len(tasks) == 1 or small:
        return [run_task(cfg, p, r, progress) for p, r in tasks]
    # "spawn": a forked child would inherit the parent's Rust thread pool without its threads.
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    results: dict[tuple[str, int], TaskResult] = {}
    with cf.ProcessPoolExecutor(
        min(cfg.jobs, len(tasks)), mp_context=ctx, initializer=_init_worker, initargs=(q,)
    ) as pool:
        futures = {pool.submit(_run_in_worker, cfg, p, r): (p, r) for p, r in tasks}
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.1)
            for fut in done:
                results[futures[fut]] = fut.result()
            _drain(q, progress)
        _drain(q, progress)
    return [results[t] for t in tasks]


def _drain(q: multiprocessing.Queue, progress: Callable[[int], None] | None) -> None:
    while True:
        try:
            n = q.get_nowait()
        except queue.Empty:
            return
        if progress is not None:
            progress(n)
