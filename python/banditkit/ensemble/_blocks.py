"""`BootstrapRidge` members fitted in blocks under joblib, so that a process pool or a cluster
(`joblib.parallel_config(backend="ray")` after `ray.util.joblib.register_ray()`) fits them.

Member m's bootstrap rows depend only on m and the seed: its own MT19937 seed (`seeds[m]`,
scikit-learn sampling) or the fast stream keyed by `seed + GOLDEN_GAMMA * (m + 1)`. A block of
members [a, b) is therefore the kernel called for b - a members with `seeds[a:b]`, or with the
seed advanced by `GOLDEN_GAMMA * a`. Each member is computed alone in a fixed order of
operations, and the mean member is summed as the Rust kernel sums it (per KERNEL_BLOCK members
in member order, then over those partial sums in order), so the coefficients and the mean are
bit for bit those of one kernel call, whatever the block size, the joblib backend or the
machine that fitted each block.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np

# The Rust kernel's partial sums of the mean (rust/banditkit-core/src/ensemble/mod.rs BLOCK).
KERNEL_BLOCK = 64
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
# Blocks per joblib worker: enough to even out slow and fast workers, few enough that each
# task's overhead (shipping X and y, a remote call) stays small next to its fitting.
BLOCKS_PER_WORKER = 4


@dataclass(frozen=True)
class Problem:
    """What every block needs: the data and the fit's settings (shipped to each worker)."""

    backend: str  # module holding `ridge_ensemble_fit`: "banditkit_rs" or "banditkit.python"
    x: np.ndarray
    y: np.ndarray
    alpha: float
    fit_intercept: bool
    sampling: str
    seed: int
    n_draws: int
    cdf: np.ndarray | None
    dtype: str


@dataclass(frozen=True)
class BlockFit:
    coef: np.ndarray  # (members, p) in the fit's dtype
    intercept: np.ndarray  # (members,)
    coef_sums: np.ndarray  # (ceil(members / KERNEL_BLOCK), p): partial sums, float64
    intercept_sums: list[float]


def distributed_backend() -> tuple[bool, int | None]:
    """(whether the active joblib backend runs in other processes or machines, its n_jobs).

    Outside any `joblib.parallel_config` this is (False, None): one kernel call on Rayon
    threads is the fastest local fit. A thread backend chosen explicitly counts as local too.
    """
    from joblib.parallel import get_active_backend

    backend, n_jobs = get_active_backend(prefer="threads")
    return not getattr(backend, "uses_threads", False), n_jobs


def block_sizes(members: int, workers: int) -> list[int]:
    """Members per block: multiples of KERNEL_BLOCK (the last one takes the rest), about
    BLOCKS_PER_WORKER blocks per worker."""
    chunks = math.ceil(members / KERNEL_BLOCK)
    per_block = max(1, math.ceil(chunks / (BLOCKS_PER_WORKER * max(1, workers))))
    sizes = [per_block * KERNEL_BLOCK] * (chunks // per_block)
    rest = members - sum(sizes)
    if rest > 0:
        sizes.append(rest)
    elif rest < 0:  # the last full-size block runs past `members`
        sizes[-1] += rest
    return sizes


def fit_block(pb: Problem, first: int, count: int, seeds: np.ndarray | None) -> BlockFit:
    """Members first .. first + count - 1 (`seeds`: theirs, for scikit-learn sampling)."""
    kernel = importlib.import_module(pb.backend).ridge_ensemble_fit
    coef, intercept, _, _ = kernel(
        pb.x,
        pb.y,
        pb.alpha,
        pb.fit_intercept,
        count,
        pb.sampling,
        (pb.seed + GOLDEN_GAMMA * first) % (1 << 64),
        seeds,
        pb.n_draws,
        pb.cdf,
        "float64",  # the mean is summed from the float64 coefficients, as the kernel does
        1,  # one thread per block: the parallelism is joblib's workers
    )
    coef_sums = np.array(
        [np.cumsum(coef[i : i + KERNEL_BLOCK], axis=0)[-1] for i in range(0, count, KERNEL_BLOCK)]
    )
    intercept_sums = [
        _sequential_sum(intercept[i : i + KERNEL_BLOCK]) for i in range(0, count, KERNEL_BLOCK)
    ]
    return BlockFit(coef.astype(pb.dtype, copy=False), intercept, coef_sums, intercept_sums)


def _sequential_sum(values: np.ndarray) -> float:
    total = 0.0
    for v in values.tolist():
        total += v
    return total


def fit_in_blocks(
    pb: Problem, members: int, seeds: np.ndarray | None, n_jobs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(coef, intercept, coef_mean, intercept_mean) of `members` members, blocks run by
    `joblib.Parallel(n_jobs)` on the active backend."""
    from joblib import Parallel, delayed, effective_n_jobs

    starts = np.cumsum([0, *block_sizes(members, effective_n_jobs(n_jobs))])
    parallel = Parallel(n_jobs=n_jobs)
    blocks = parallel(
        delayed(fit_block)(pb, int(a), int(b - a), None if seeds is None else seeds[a:b])
        for a, b in zip(starts[:-1], starts[1:], strict=True)
    )
    coef = np.concatenate([b.coef for b in blocks])
    intercept = np.concatenate([b.intercept for b in blocks])
    coef_total = np.zeros(pb.x.shape[1])
    intercept_total = 0.0
    for block in blocks:
        for part, ipart in zip(block.coef_sums, block.intercept_sums, strict=True):
            coef_total += part
            intercept_total += ipart
    return coef, intercept, coef_total / members, intercept_total / members
