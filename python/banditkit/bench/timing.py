"""Timing primitives shared by every bench module: medians of repeated timed calls."""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from types import ModuleType
from typing import TypedDict


class Row(TypedDict, total=False):
    """One measurement: `median_s` seconds per call of `impl` on scenario (`group`, `case`).

    Ratios are formed between impls of the same (group, case) in the same run; `per` (optional)
    is how many units of work one call does (e.g. draws x arms), for ns-per-unit figures.
    Rows timed in interleaved pairs against another impl (`paired_with`) carry the spread of the
    per-pair ratios (this row's time / the other's): [min, q1, median, q3, max], and the CPU
    other processes used meanwhile, in cores (`other_load`).
    """

    group: str
    case: str
    impl: str
    median_s: float
    repeats: int
    per: float
    unit: str
    note: str
    paired_with: str
    ratio_spread: list[float]
    other_load: float


def median_time(
    fn: Callable[[], object], *, repeats: int = 15, min_time: float = 0.02, warmup: int = 2
) -> tuple[float, int]:
    """Median seconds per call of `fn` over `repeats` samples.

    Each sample loops `fn` enough times to last at least `min_time` seconds, so that timer
    resolution does not dominate microsecond-scale calls. Returns (median, repeats).
    """
    for _ in range(warmup):
        fn()
    # Calibrate the inner loop count once.
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time or number >= 1 << 20:
            break
        number *= 2 if elapsed <= 0 else max(2, min(10, int(min_time / elapsed) + 1))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples), repeats


def row(
    group: str,
    case: str,
    impl: str,
    fn: Callable[[], object],
    *,
    quick: bool,
    per: float | None = None,
    unit: str = "",
    note: str = "",
) -> Row:
    """Time `fn` and package the result as a Row (fewer repeats with `quick`)."""
    med, reps = median_time(fn, repeats=5 if quick else 15, min_time=0.01 if quick else 0.05)
    r: Row = {"group": group, "case": case, "impl": impl, "median_s": med, "repeats": reps}
    if per is not None:
        r["per"] = per
        r["unit"] = unit
    if note:
        r["note"] = note
    return r


def backends() -> dict[str, ModuleType]:
    """The backends to time: "python" always, "rust" when the extension imports."""
    out = {"python": importlib.import_module("banditkit.python")}
    try:
        out["rust"] = importlib.import_module("banditkit_rs")
    except ImportError:
        pass
    return out
