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


def _cpu_seconds(pid: int | None = None) -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, or with `pid` that process's
    (user + system, 0) seconds. None off Linux."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        if pid is None:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            # user nice system idle iowait irq softirq steal
            return (v[0] + v[1] + v[2] + v[5] + v[6]) / tick, v[7] / tick
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick, 0.0
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


def spread(values: list[float]) -> list[float]:
    """[min, first quartile, median, third quartile, max]."""
    q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return [min(values), q1, med, q3, max(values)]


def measure(pairs: int) -> dict[str, object]:
    """`pairs` interleaved (1-thread, 2-thread) timings: both sample lists, the per-pair ratios
    (1-thread time / 2-thread time) and the cores' worth of CPU other processes used meanwhile
    (None if it cannot be read)."""
    workers = {threads: _start(threads) for threads in (1, 2)}
    try:
        results = {threads: answer for threads, (_, answer) in workers.items()}
        if results[1] != results[2]:  # the engine promises the same counts on any pool
            raise RuntimeError(f"win_prop differs between 1 and 2 threads: {results}")
        procs = {threads: proc for threads, (proc, _) in workers.items()}
        before = [_cpu_seconds()] + [_cpu_seconds(p.pid) for p in procs.values()]
        own0, wall0 = time.process_time(), time.perf_counter()
        samples: dict[int, list[float]] = {1: [], 2: []}
        for i in range(pairs):
            for threads in (1, 2) if i % 2 == 0 else (2, 1):
                samples[threads].append(_timed_call(procs[threads]))
        wall = time.perf_counter() - wall0
        own = time.process_time() - own0
        after = [_cpu_seconds()] + [_cpu_seconds(p.pid) for p in procs.values()]
    finally:
        for proc, _ in workers.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
    other = None
    if None not in before and None not in after:
        (busy0, steal0), *mine0 = before
        (busy1, steal1), *mine1 = after
        workers_cpu = sum(b[0] - a[0] for a, b in zip(mine0, mine1, strict=True))
        other = max(0.0, (busy1 - busy0) - workers_cpu - own + (steal1 - steal0)) / wall
    ratios = [a / b for a, b in zip(samples[1], samples[2], strict=True)]
    return {"samples": samples, "ratios": ratios, "other_load": other}


def run(quick: bool) -> list[Row]:
    if "rust" not in backends():
        return []
    pairs = 21 if quick else 61
    m = measure(pairs)
    samples, ratios, other = m["samples"], m["ratios"], m["other_load"]
    assert isinstance(samples, dict) and isinstance(ratios, list)
    rows: list[Row] = []
    for threads in (1, 2):
        r: Row = {
            "group": "threads",
            "case": CASE,
            "impl": f"rust-{threads}-thread",
            "median_s": statistics.median(samples[threads]),
            "repeats": pairs,
            "per": DRAWS * ARMS,
            "unit": "draw x arm",
        }
        if threads == 1:
            r["paired_with"] = "rust-2-thread"
            r["ratio_spread"] = spread(ratios)
            if isinstance(other, float):
                r["other_load"] = other
        rows.append(r)
    return rows
