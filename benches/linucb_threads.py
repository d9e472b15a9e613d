"""LinUCB select+update throughput, 1 thread against 2 (own objects, then one shared object):
the measurement behind the GIL rule of one-event calls (README, "Contextual linear bandits").

    python benches/linucb_threads.py 67 20000    # d, events per thread

To compare with releasing the GIL on every call, rebuild with `DETACH_MIN_ENTRIES = 0`
(rust/banditkit-py/src/contextual.rs) and run again. Best of 5 interleaved runs.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

import banditkit_rs as rs

ARMS = ["a", "b", "c"]


def play(bandit: rs.LinUCB, X: np.ndarray, R: np.ndarray, n: int) -> None:
    for i in range(n):
        x = X[i % len(X)]
        bandit.update(bandit.select(x), x, float(R[i % len(R)]))


def events_per_second(d: int, threads: int, shared: bool, n: int) -> float:
    rng = np.random.default_rng(0)
    X, R = rng.normal(size=(256, d)), rng.normal(size=256)
    bandits = [rs.LinUCB(ARMS, d, seed=1) for _ in range(1 if shared else threads)]
    for b in bandits:
        play(b, X, R, 50)
    workers = [
        threading.Thread(target=play, args=(bandits[0 if shared else k], X, R, n))
        for k in range(threads)
    ]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return threads * n / (time.perf_counter() - start)


def main() -> None:
    d, n = int(sys.argv[1]), int(sys.argv[2])
    for shared in (False, True):
        best = {1: 0.0, 2: 0.0}
        for _ in range(5):
            for threads in (1, 2):
                best[threads] = max(best[threads], events_per_second(d, threads, shared, n))
        where = "one shared object" if shared else "own objects"
        print(
            f"d={d}, {where}: 1 thread {best[1]:,.0f} events/s, "
            f"2 threads {best[2]:,.0f} events/s, ratio {best[2] / best[1]:.2f}"
        )


if __name__ == "__main__":
    main()
