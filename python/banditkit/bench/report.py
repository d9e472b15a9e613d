"""Tables from bench rows: same-run ratios, targets met or missed, and the BENCHMARKS.md body."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from banditkit.bench.timing import Row

SCENARIOS_NOTE = "Scenarios, baselines and targets: docs/benchmarks.md in the banditkit repository."


class Target(NamedTuple):
    """`fast` must be at least `ratio` x faster than `slow` on (group, case), same run."""

    group: str
    case: str
    fast: str
    slow: str
    ratio: float
    label: str


TARGETS = [
    Target(
        "ensemble",
        "150 x 598, 1,000 members",
        "rust",
        "sklearn",
        100.0,
        "BootstrapRidge fit 150x598, 1,000 members: vs BaggingRegressor(Ridge) >= 100x (aim 300x)",
    ),
    Target(
        "linear.win_prop",
        "10 arms x 100,000 draws",
        "rust",
        "python",
        8.0,
        "LinearBandit win_prop 10x100k: Rust vs NumPy backend >= 8x (aim 12x)",
    ),
    Target(
        "linear.win_prop",
        "10 arms x 100,000 draws",
        "rust",
        "upstream",
        30.0,
        "LinearBandit win_prop 10x100k: Rust vs upstream >= 30x (aim 50x)",
    ),
    Target(
        "tspar.win_prop",
        "10 arms x 10,000 draws",
        "rust",
        "python",
        2.5,
        "TSPar win_prop 10x10k: Rust vs NumPy backend >= 2.5x",
    ),
    Target(
        "tspar.win_prop",
        "10 arms x 10,000 draws",
        "rust",
        "upstream",
        6.0,
        "TSPar win_prop 10x10k: Rust vs upstream (orts 2.5.0) >= 6x",
    ),
    Target(
        "threads",
        "10 arms x 1,000,000 draws",
        "rust-2-thread",
        "rust-1-thread",
        1.7,
        "Thread scaling 10x1M: 2 threads >= 1.7x 1 thread",
    ),
    Target(
        "logistic.update",
        "10 arms x 100,000 obs",
        "rust",
        "scipy-newton-cg",
        50.0,
        "LogisticBandit update 10 arms: Rust vs SciPy Newton-CG >= 50x",
    ),
    Target(
        "logistic.win_prop",
        "10 arms x 100,000 draws",
        "rust",
        "python",
        8.0,
        "LogisticBandit win_prop 10x100k: Rust vs NumPy backend >= 8x",
    ),
    Target(
        "contextual.select",
        "d=387",
        "rust",
        "numpy-sherman-morrison",
        1.4,
        "LinUCB select d=387: Rust vs tight NumPy Sherman-Morrison >= 1.4x",
    ),
    Target(
        "contextual.update",
        "d=387",
        "rust",
        "numpy-sherman-morrison",
        2.5,
        "LinUCB select+update d=387: Rust vs NumPy Sherman-Morrison >= 2.5x",
    ),
    Target(
        "contextual.select",
        "d=67",
        "rust",
        "numpy-sherman-morrison",
        3.0,
        "LinUCB select d=67: Rust vs NumPy Sherman-Morrison >= 3x",
    ),
    Target(
        "contextual.update",
        "d=67",
        "rust",
        "numpy-sherman-morrison",
        3.0,
        "LinUCB select+update d=67: Rust vs NumPy Sherman-Morrison >= 3x",
    ),
    Target(
        "exact.linear",
        "10 arms",
        "rust-exact",
        "rust-mc-100k",
        20.0,
        "LinearBandit exact vs MC 100k draws (Rust) >= 20x",
    ),
    Target(
        "exact.tspar",
        "10 arms",
        "rust-exact",
        "rust-mc-100k",
        20.0,
        "TSPar exact vs MC 100k draws (Rust) >= 20x",
    ),
    Target(
        "exact.logistic",
        "10 arms",
        "rust-exact",
        "rust-mc-100k",
        1.0,
        "LogisticBandit exact faster than MC 100k draws (Rust)",
    ),
    # Persistence (issue 12): ratio = memcpy time / codec time, so 0.5 means "at most 2x".
    Target(
        "store.to_bytes",
        "LinUCB d=387, 3 arms",
        "rust",
        "memcpy",
        0.5,
        "LinUCB d=387 to_bytes (Rust) <= 2x one memcpy of its 7.2 MB of matrices",
    ),
    Target(
        "store.from_bytes",
        "LinUCB d=387, 3 arms",
        "rust",
        "memcpy",
        0.5,
        "LinUCB d=387 from_bytes (Rust) <= 2x one memcpy of its 7.2 MB of matrices",
    ),
    Target(
        "store.to_bytes",
        "LinUCB d=387, 3 arms",
        "rust",
        "pickle-numpy",
        1.0,
        "LinUCB d=387 to_bytes (Rust) faster than pickle.dumps of the NumPy object",
    ),
    Target(
        "store.from_bytes",
        "LinUCB d=387, 3 arms",
        "rust",
        "pickle-numpy",
        1.0,
        "LinUCB d=387 from_bytes (Rust) faster than pickle.loads of the NumPy object",
    ),
    Target(
        "ope.dr_interval",
        "1,000,000 events, 10 arms, 1,000 resamples",
        "rust",
        "python",
        10.0,
        "DR estimate + 1,000-resample bootstrap interval, 1e6 events: Rust vs NumPy >= 10x",
    ),
]


class RateTarget(NamedTuple):
    """`impl` must do at least `per_second` units of work per second on (group, case): calls,
    or the row's `per` units per call (decisions, for the serve rows)."""

    group: str
    case: str
    impl: str
    per_second: float
    label: str


RATE_TARGETS = [
    RateTarget("contextual.select", "d=387", "rust", 20_000, "LinUCB select d=387 >= 20,000 QPS"),
    RateTarget(
        "contextual.update", "d=387", "rust", 12_000, "LinUCB select+update d=387 >= 12,000 UPS"
    ),
    RateTarget("contextual.select", "d=67", "rust", 250_000, "LinUCB select d=67 >= 250,000 QPS"),
    RateTarget(
        "contextual.update", "d=67", "rust", 200_000, "LinUCB select+update d=67 >= 200,000 UPS"
    ),
    RateTarget(
        "serve.tspar",
        "10 arms, 32 clients, 100 decisions/request",
        "http",
        100_000,
        "serve TSPar 10 arms, 32 clients, batches of 100 >= 100,000 decisions/s",
    ),
    RateTarget(
        "serve.tspar",
        "10 arms, 32 clients, 100 decisions/request",
        "http (wrk client)",
        100_000,
        "serve TSPar batches of 100 >= 100,000 decisions/s, wrk as the client",
    ),
]


class LatencyTarget(NamedTuple):
    """The row (group, case, impl), a latency, must be at most `max_s` seconds."""

    group: str
    case: str
    impl: str
    max_s: float
    label: str


def _threshold_targets(case: str) -> list[LatencyTarget]:
    """The seed's thresholds, checked on the server's own p99 under a serve scenario's load."""
    return [
        LatencyTarget("serve.thresholds", case, "recommend p99 (server)", 0.050,
                      f"serve {case}: recommend p99 <= 50 ms (seed threshold)"),
        LatencyTarget("serve.thresholds", case, "rewards p99 (server)", 0.020,
                      f"serve {case}: rewards p99 <= 20 ms (seed threshold)"),
    ]  # fmt: skip


LATENCY_TARGETS = [
    LatencyTarget(
        "serve.latency",
        "10 arms, 32 clients, 1 decision/request",
        "recommend p99",
        0.010,
        "serve TSPar 10 arms, 32 clients, single decisions: recommend p99 < 10 ms",
    ),
    LatencyTarget(
        "serve.latency",
        "10 arms, 32 clients, 1 decision/request",
        "recommend p99 (wrk client)",
        0.010,
        "serve TSPar single decisions: recommend p99 < 10 ms, wrk as the client",
    ),
    *_threshold_targets("10 arms, 32 clients, 1 decision/request"),
    *_threshold_targets("10 arms, 32 clients, 100 decisions/request"),
    *_threshold_targets("d=67, 10 arms, 100 contexts/request"),
]


def grouped(rows: list[Row]) -> OrderedDict[tuple[str, str], dict[str, Row]]:
    out: OrderedDict[tuple[str, str], dict[str, Row]] = OrderedDict()
    for r in rows:
        out.setdefault((r["group"], r["case"]), {})[r["impl"]] = r
    return out


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def speedup(impls: dict[str, Row], slow: str, fast: str) -> float:
    """How many times faster `fast` is than `slow`: the median of the per-pair ratios when the
    two were timed in interleaved pairs, else the ratio of the two medians."""
    r = impls[slow]
    if r.get("paired_with") == fast and "ratio_spread" in r:
        return r["ratio_spread"][2]
    return r["median_s"] / impls[fast]["median_s"]


def spread_note(r: Row) -> str:
    """The spread of a paired row's ratios and the machine's other load, or ""."""
    if "ratio_spread" not in r:
        return ""
    lo, q1, _, q3, hi = r["ratio_spread"]
    note = f"{r.get('repeats', '?')} pairs: min {lo:.2f}, quartiles {q1:.2f}-{q3:.2f}, max {hi:.2f}"
    if "other_load" in r:
        note += f"; other processes {r['other_load']:.2f} cores"
    return note


def _reference_impl(impls: dict[str, Row]) -> str | None:
    for name in ("rust", "rust-exact", "rust-2-thread", "in-process select"):
        if name in impls:
            return name
    return None


def table(rows: list[Row], markdown: bool = False) -> str:
    """One line per (group, case, impl): median, ns per unit, the reference impl's speedup and
    the row's note (e.g. the cores the serve rows' client and server used)."""
    header = ["group", "case", "impl", "median", "ns/unit", "speedup of ref", "note"]
    lines: list[list[str]] = []
    for (group, case), impls in grouped(rows).items():
        ref = _reference_impl(impls)
        for name, r in impls.items():
            per = r.get("per")
            ns = f"{r['median_s'] / per * 1e9:.2f}" if per else ""
            speed = ""
            if ref and name != ref:
                speed = f"{speedup(impls, name, ref):.1f}x ({ref})"
                if note := spread_note(r):
                    speed += f"; {note}"
            lines.append([group, case, name, fmt_time(r["median_s"]), ns, speed, r.get("note", "")])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*line) for line in lines])


def target_results(rows: list[Row]) -> list[tuple[Target, float | None, str]]:
    """Per target: the measured ratio (None if not measured) and the spread note of its rows."""
    g = grouped(rows)
    out: list[tuple[Target, float | None, str]] = []
    for t in TARGETS:
        impls = g.get((t.group, t.case), {})
        if t.fast in impls and t.slow in impls:
            out.append((t, speedup(impls, t.slow, t.fast), spread_note(impls[t.slow])))
        else:
            out.append((t, None, ""))
    return out


def rate_results(rows: list[Row]) -> list[tuple[RateTarget, float | None]]:
    g = grouped(rows)
    out = []
    for t in RATE_TARGETS:
        r = g.get((t.group, t.case), {}).get(t.impl)
        out.append((t, None if r is None else r.get("per", 1.0) / r["median_s"]))
    return out


def latency_results(rows: list[Row]) -> list[tuple[LatencyTarget, float | None]]:
    g = grouped(rows)
    out = []
    for t in LATENCY_TARGETS:
        r = g.get((t.group, t.case), {}).get(t.impl)
        out.append((t, None if r is None else r["median_s"]))
    return out


def targets_table(rows: list[Row], markdown: bool = False) -> str:
    lines = []
    for t, ratio, note in target_results(rows):
        if ratio is None:
            status, shown = "not measured", "-"
        else:
            status, shown = ("met" if ratio >= t.ratio else "MISSED"), f"{ratio:.1f}x"
            if note:
                shown += f" ({note})"
        lines.append((t.label, shown, status))
    for rt, rate in rate_results(rows):
        if rate is None:
            lines.append((rt.label, "-", "not measured"))
        else:
            lines.append((rt.label, f"{rate:,.0f}/s", "met" if rate >= rt.per_second else "MISSED"))
    for lt, seconds in latency_results(rows):
        if seconds is None:
            lines.append((lt.label, "-", "not measured"))
        else:
            lines.append((lt.label, fmt_time(seconds), "met" if seconds <= lt.max_s else "MISSED"))
    if markdown:
        out = ["| target | measured | status |", "|---|---|---|"]
        return "\n".join(out + [f"| {a} | {b} | {c} |" for a, b, c in lines])
    w = max(len(a) for a, _, _ in lines)
    return "\n".join(f"{a:<{w}}  {b:>8}  {c}" for a, b, c in lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _rustc() -> str:
    try:
        return subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "rustc not found"


PEERS = ("orts", "scipy", "mabwiser", "contextualbandits")


def _peer_versions() -> dict[str, str]:
    """Versions of the installed peer libraries the bench compares against."""
    from importlib import metadata

    out = {}
    for name in PEERS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, str]:
    """The machine and versions a run was measured with (printed and written to BENCHMARKS.md)."""
    import banditkit

    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rustc": _rustc(),
        "banditkit": banditkit.__version__,
        **_peer_versions(),
    }


def markdown(rows: list[Row], command: str) -> str:
    info = machine()
    parts = [
        "# Benchmarks",
        "",
        f"Generated by `{command}`; do not edit by hand. Medians over repeated timed calls;",
        "every ratio compares implementations measured in the same run on the same machine.",
        "The scenarios, baselines and targets are described in",
        "[docs/benchmarks.md](docs/benchmarks.md).",
        "",
        "## Machine",
        "",
        "\n".join(f"- {k}: {v}" for k, v in info.items()),
        "",
        "## Targets",
        "",
        targets_table(rows, markdown=True),
        "",
        "## All measurements",
        "",
        "`speedup of ref` is how many times faster the reference implementation named in",
        "brackets (the Rust one) is than the row's implementation. `ns/unit` divides the median",
        "by the work per call (draws x arms for sampling). The Rust Gaussian kernel skips, chunk",
        "by chunk, arms whose largest possible draw is below every current best (exact: such an",
        "arm cannot win there), so well-separated posteriors cost less than tied ones; the",
        "`tied arms` case is its worst case. The `threads` rows are timed as interleaved pairs",
        "(a 1-thread and a 2-thread call in turn): their speedup is the median of the per-pair",
        "ratios, followed by the ratios' spread and the CPU that other processes used meanwhile.",
        "",
        table(rows, markdown=True),
        "",
        "## Analyses",
        "",
        "- Where the time of LinUCB's `select`/`update` goes, against the memory-bandwidth",
        "  bound of reading the arm matrices:",
        "  [docs/contextual-benchmarks.md](docs/contextual-benchmarks.md).",
        "- `banditkit serve` under load (the `serve.*` rows): the load generator runs on the same",
        "  2 cores as the server, and each row's note says how many cores each used; where a",
        "  request's time goes:",
        "  [docs/benchmarks.md](docs/benchmarks.md#serving-where-the-time-goes).",
        "",
    ]
    return "\n".join(parts)
