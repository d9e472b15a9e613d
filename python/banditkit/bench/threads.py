"""Thread scaling (docs/benchmarks.md): LinearBandit `win_prop`, 10 arms x 1,000,000 draws, on a
1-thread and on a 2-thread Rust pool, timed as interleaved pairs.

Why pairs: on a shared machine the speed of a core changes from one second to the next (other
processes, other virtual machines on the host). Timing every 1-thread call first and every
2-thread call afterwards, as this bench once did, compares two different machines: the same code
gave ratios from 0.55x to 3.7x. Here two worker processes stay up side by side, each with its own
rayon pool built once (rayon reads RAYON_NUM_THREADS when a process's pool starts), and the parent
asks them for one timed call in turn (1 then 2, then 2 then 1, ...). Each pair's ratio compares
two calls made within a few tens of milliseconds of each other; the spread of the ratios and the
CPU time other processes took meanwhile say how far to trust the median.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import NamedTuple

from banditkit.bench.timing import Row, backends

DRAWS = 1_000_000
ARMS = 10
CASE = f"{ARMS} arms x {DRAWS:,} draws"

# One request per line on stdin: reply with the seconds one call took (the same seed every time,
# so every call does the same work whatever the pruning of dominated arms skips).
_WORKER = f"""
import sys, time
import banditkit_rs
from banditkit.bench.thompson import linear_obs
b = banditkit_rs.LinearBandit(seed=1)
b.update(linear_obs({ARMS}, 1000))
first = b.win_prop(draw={DRAWS}, seed=7)
for _ in range(3):  # warm-up: the pool's threads, page faults, caches
    b.win_prop(draw={DRAWS}, seed=7)
print(repr(sorted(first.items())), flush=True)
for _ in sys.stdin:
    t0 = time.perf_counter()
    b.win_prop(draw={DRAWS}, seed=7)
    print(time.perf_counter() - t0, flush=True)
"""


def _machine_cpu() -> tuple[float, float] | None:
    """CPU seconds since boot, all cores: (busy, stolen by the hypervisor); None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / tick, v[7] / tick


def _process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` (all its threads); None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _start(threads: int) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _timed_call(proc: subprocess.Popen[str]) -> float:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def _snapshot(procs: dict[int, subprocess.Popen[str]]) -> tuple[float, float, float] | None:
    """(machine busy, machine steal, the workers' CPU) seconds, or None off Linux."""
    machine = _machine_cpu()
    workers = [_process_cpu(p.pid) for p in procs.values()]
    if machine is None or None in workers:
        return None
    return machine[0], machine[1], sum(w for w in workers if w is not None)


def spread(values: list[float]) -> list[float]:
    """[min, first quartile, median, third quartile, max]."""
    q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return [min(values), q1, med, q3, max(values)]


class Pairs(NamedTuple):
    samples: dict[int, list[float]]  # seconds per call, by pool size, in pair order
    ratios: list[float]  # per pair: 1-thread time / 2-thread time
    other_load: float | None  # cores' worth of CPU used by others meanwhile (None: unknown)


def measure(pairs: int) -> Pairs:
    """`pairs` interleaved (1-thread, 2-thread) timings, alternating which goes first."""
    workers = {threads: _start(threads) for threads in (1, 2)}
    try:
        results = {threads: answer for threads, (_, answer) in workers.items()}
        if results[1] != results[2]:  # the engine promises the same counts on any pool
            raise RuntimeError(f"win_prop differs between 1 and 2 threads: {results}")
        procs = {threads: proc for threads, (proc, _) in workers.items()}
        before = _snapshot(procs)
        own0, wall0 = time.process_time(), time.perf_counter()
        samples: dict[int, list[float]] = {1: [], 2: []}
        for i in range(pairs):
            for threads in (1, 2) if i % 2 == 0 else (2, 1):
                samples[threads].append(_timed_call(procs[threads]))
        wall = time.perf_counter() - wall0
        own = time.process_time() - own0
        after = _snapshot(procs)
    finally:
        for proc, _ in workers.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
    other = None
    if before is not None and after is not None:
        busy, steal, workers_cpu = (b - a for a, b in zip(before, after, strict=True))
        other = max(0.0, busy + steal - workers_cpu - own) / wall
    ratios = [a / b for a, b in zip(samples[1], samples[2], strict=True)]
    return Pairs(samples, ratios, other)


def run(quick: bool) -> list[Row]:
    if "rust" not in backends():
        return []
    pairs = 21 if quick else 61
    m = measure(pairs)
    rows: list[Row] = []
    for threads in (1, 2):
        r: Row = {
            "group": "threads",
            "case": CASE,
            "impl": f"rust-{threads}-thread",
            "median_s": statistics.median(m.samples[threads]),
            "repeats": pairs,
            "per": DRAWS * ARMS,
            "unit": "draw x arm",
        }
        if threads == 1:
            r["paired_with"] = "rust-2-thread"
            r["ratio_spread"] = spread(m.ratios)
            if m.other_load is not None:
                r["other_load"] = m.other_load
        rows.append(r)
    return rows
