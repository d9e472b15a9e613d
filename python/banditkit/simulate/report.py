"""Summaries of simulation results: statistics over repeats, the terminal table, the JSON."""

from __future__ import annotations

import math
import platform
from typing import Any

import numpy as np

from banditkit.simulate.envs import ENVIRONMENTS
from banditkit.simulate.policies import POLICIES
from banditkit.simulate.runner import Config, TaskResult, checkpoints

SCHEMA = "banditkit.simulate/1"
MB = 1024.0 * 1024.0
# Memory that rises by at least this much, and still rises in the second half of the run,
# is reported as growing with the number of rounds.
GROWTH_FLAG_MB = 1.0

# Two-sided 95% Student t quantiles for 1..30 degrees of freedom.
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t95(df: int) -> float:
    """The 97.5% quantile of Student's t (Cornish-Fisher expansion beyond the table)."""
    if df <= len(_T95):
        return _T95[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its 95% confidence interval (NaN with a single repeat)."""
    mean = samples.mean(axis=0)
    n = samples.shape[0]
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan
    half = t95(n - 1) * samples.std(axis=0, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def _floats(a: np.ndarray) -> list[float | None]:
    """JSON-safe list: NaN becomes null."""
    return [None if math.isnan(v) else float(v) for v in np.asarray(a, dtype=float)]


def memory_summary(results: list[TaskResult]) -> dict[str, Any]:
    """RSS over rounds (median over repeats, relative to the first checkpoint) and its growth."""
    rss = np.stack([r.rss_bytes for r in results]).astype(float) / MB
    relative = np.median(rss - rss[:, :1], axis=0)
    growth = float(relative[-1])
    late_growth = float(relative[-1] - relative[len(relative) // 2])
    return {
        "peak_rss_mb": float(rss.max()),
        "rss_growth_mb": growth,
        "rss_growth_curve_mb": _floats(relative),
        "grows_with_rounds": bool(growth >= GROWTH_FLAG_MB and late_growth >= 0.25 * growth),
    }


def summarise(cfg: Config, results: list[TaskResult], skipped: dict[str, str]) -> dict[str, Any]:
    """The JSON document of a run (schema `SCHEMA`)."""
    import banditkit

    env = ENVIRONMENTS[cfg.env]
    marks = checkpoints(cfg.rounds)
    policies: dict[str, Any] = {}
    failures: dict[str, list[str]] = {}
    for name in cfg.policies:
        everyone = sorted((r for r in results if r.policy == name), key=lambda r: r.repeat)
        errors = [f"repeat {r.repeat}, {r.error}" for r in everyone if r.error is not None]
        if errors:
            failures[name] = errors
        mine = [r for r in everyone if r.error is None]
        if not mine:
            continue
        curves = np.stack([r.cumulative_regret for r in mine])
        mean, low, high = mean_interval(curves)
        final = curves[:, -1]
        optimal = np.array([r.optimal_plays[-1] / cfg.rounds for r in mine])
        speed = np.array([cfg.rounds / max(r.policy_seconds, 1e-9) for r in mine])
        policies[name] = {
            "description": POLICIES[name].description,
            "final_regret": {
                "mean": float(mean[-1]),
                "ci95_low": _floats(low[-1:])[0],
                "ci95_high": _floats(high[-1:])[0],
                "sd": float(final.std(ddof=1)) if len(final) > 1 else None,
                "per_repeat": _floats(final),
            },
            "regret_curve": {
                "mean": _floats(mean),
                "ci95_low": _floats(low),
                "ci95_high": _floats(high),
            },
            "optimal_arm_rate": float(optimal.mean()),
            "mean_reward": float(np.mean([r.reward for r in mine]) / cfg.rounds),
            "repeats_completed": len(mine),
            "decisions_per_second": float(np.median(speed)),
            "memory": memory_summary(mine),
        }
    return {
        "schema": SCHEMA,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()},
        "environment": {"name": env.name, "description": env.description},
        "versions": {
            "banditkit": banditkit.__version__,
            "backend": _backend_name(cfg.backend),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "checkpoints": [int(m) for m in marks],
        "skipped": dict(skipped),
        "failures": failures,
        "policies": policies,
    }


def _backend_name(backend: str) -> str:
    if backend != "auto":
        return backend
    import banditkit

    return banditkit.backend()


def _fmt_count(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}"


def table(doc: dict[str, Any]) -> str:
    """The terminal table, best final regret first."""
    header = [
        "policy",
        "regret (mean)",
        "95% interval",
        "optimal arm",
        "decisions/s",
        "peak RSS",
        "RSS growth",
    ]
    rows = []
    items = sorted(doc["policies"].items(), key=lambda kv: kv[1]["final_regret"]["mean"])
    for name, p in items:
        fr, mem = p["final_regret"], p["memory"]
        interval = (
            "-"
            if fr["ci95_low"] is None
            else f"[{_fmt_count(fr['ci95_low'])}, {_fmt_count(fr['ci95_high'])}]"
        )
        rows.append(
            [
                name,
                _fmt_count(fr["mean"]),
                interval,
                f"{100 * p['optimal_arm_rate']:.1f}%",
                f"{p['decisions_per_second']:,.0f}",
                f"{mem['peak_rss_mb']:.0f} MB",
                f"{mem['rss_growth_mb']:+.1f} MB" + (" !" if mem["grows_with_rounds"] else ""),
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    cfg = doc["config"]
    lines = [
        f"{doc['environment']['name']}: {cfg['arms']} arms, {cfg['rounds']:,} rounds, batch "
        f"{cfg['batch']}, {cfg['repeats']} repeats, seed {cfg['seed']}, backend "
        f"{doc['versions']['backend']}",
        fmt.format(*header),
    ]
    lines += [fmt.format(*r) for r in rows]
    grows = [name for name, p in items if p["memory"]["grows_with_rounds"]]
    if grows:
        lines.append(f"! memory keeps growing with the rounds: {', '.join(grows)}")
    for name, reason in doc["skipped"].items():
        lines.append(f"skipped {name}: {reason}")
    for name, errors in doc["failures"].items():
        lines.append(
            f"! {name} failed in {len(errors)} of {cfg['repeats']} repeats "
            f"(left out of its statistics); first: {errors[0]}"
        )
    return "\n".join(lines)
