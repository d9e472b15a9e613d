"""Off-policy evaluation (issue 14): a DR estimate with its bootstrap interval.

Group `ope.dr_interval`, case "1,000,000 events, 10 arms, 1,000 resamples": one
`DR().estimate(..., n_bootstrap=1000, seed=0, kernels=backend)` call on a synthetic log (the
checks, the per-event DR terms in NumPy, the normal interval and the bootstrap), with the Rust
kernels (`rust`) and with their NumPy reference (`python`). `per` = events x resamples, so
ns/unit is the cost of one event in one resample. The NumPy call lasts tens of seconds, so it
is timed 3 times (1 with --quick) and the Rust one 7 (3).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from banditkit.bench.timing import Row, backends

EVENTS = 1_000_000
ARMS = 10
RESAMPLES = 1000
CASE = "1,000,000 events, 10 arms, 1,000 resamples"


def dr_inputs() -> tuple[Any, ...]:
    """A log of EVENTS events with a softmax logging policy, a uniform-ish evaluation policy
    and a noisy reward model (its quality does not change the cost)."""
    rng = np.random.default_rng(0)
    q = rng.random((EVENTS, ARMS))
    logging = np.exp(2 * q)
    logging /= logging.sum(axis=1, keepdims=True)
    action = (np.cumsum(logging, axis=1) < rng.random((EVENTS, 1))).sum(axis=1)
    action = np.minimum(action, ARMS - 1)
    rows = np.arange(EVENTS)
    reward = (rng.random(EVENTS) < q[rows, action]).astype(float)
    pi = np.full((EVENTS, ARMS), 0.5 / ARMS)
    pi[rows, np.argmax(q, axis=1)] += 0.5
    q_hat = np.clip(q + 0.1 * rng.standard_normal(q.shape), 0, 1)
    return reward, action, logging[rows, action], pi, q_hat


def _time(fn: Any, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def run(quick: bool) -> list[Row]:
    from banditkit.ope import DR

    args = dr_inputs()
    rows: list[Row] = []
    for impl, mod in sorted(backends().items(), reverse=True):  # rust first: it is quick
        repeats = (3 if quick else 7) if impl == "rust" else (1 if quick else 3)

        def call(m: Any = mod) -> object:
            return DR().estimate(*args, n_bootstrap=RESAMPLES, seed=0, kernels=m)

        call()  # warm-up (page faults, thread pool)
        median = _time(call, repeats)
        rows.append(
            {
                "group": "ope.dr_interval",
                "case": CASE,
                "impl": impl,
                "median_s": median,
                "repeats": repeats,
                "per": float(EVENTS * RESAMPLES),
                "unit": "event x resample",
            }
        )
    return rows
