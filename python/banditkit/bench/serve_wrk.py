"""The serve scenarios again with `wrk` (Debian's C load generator) as the client, when it is
installed: the Python load generator costs about twice the server's CPU per request, so on a
2-core machine it, not the server, sets the closed-loop rate. wrk uses a few percent of a core,
so these rows say what one server worker does with the machine nearly to itself.

wrk sends one fixed recommend body (`requests` with ids "0".."B-1") over `CLIENTS` keep-alive
connections for the run's duration; latency percentiles are wrk's own (`--latency`).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
from typing import Any

from banditkit.bench.timing import Row

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def available() -> str | None:
    return shutil.which("wrk")


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if m is None:
        raise ValueError(f"cannot read wrk's latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(output: str) -> dict[str, Any]:
    """Requests, requests/s, p50/p99 (seconds) and non-2xx answers from wrk's report."""
    out: dict[str, Any] = {"non_2xx": 0, "socket_errors": 0}
    if m := re.search(r"(\d+) requests in ([0-9.]+)(us|ms|s|m),", output):
        out["requests"] = int(m.group(1))
        out["wall_s"] = float(m.group(2)) * _UNITS[m.group(3)]
    if m := re.search(r"Requests/sec:\s+([0-9.]+)", output):
        out["requests_per_s"] = float(m.group(1))
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", output, re.M):
            out[f"p{pct}_s"] = _seconds(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        out["non_2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: (.*)", output):
        out["socket_errors"] = sum(int(n) for n in re.findall(r"\d+", m.group(1)))
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str, experiment: str, batch: int, seconds: float, clients: int, folder: str
) -> dict[str, Any]:
    """One closed-loop wrk run against the recommend endpoint."""
    wrk = available()
    assert wrk is not None
    body = json.dumps({"requests": [{"id": str(i)} for i in range(batch)]})
    script = os.path.join(folder, f"recommend-{batch}.lua")
    with open(script, "w") as f:
        # A Lua long string holds the JSON as is (it never contains "]]").
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write(f"wrk.body = [[{body}]]\n")
    cpu0 = _children_cpu()
    done = subprocess.run(
        [wrk, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency", "-s", script,
         f"{url}/v1/experiments/{experiment}/recommend"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    out = parse(done.stdout)
    out["client_cpu_s"] = _children_cpu() - cpu0
    if out["non_2xx"] or out["socket_errors"]:
        print(
            f"[serve] wrk {experiment}: {out['non_2xx']} non-2xx answers, "
            f"{out['socket_errors']} socket errors",
            file=sys.stderr,
        )
    return out


def rows(
    runs: list[dict[str, Any]],
    cpu: list[dict[str, float]],
    group: str,
    case: str,
    batch: int,
    latency: bool,
) -> list[Row]:
    """Throughput (per decision), server CPU per decision and, if `latency`, p50/p99 rows."""
    good = [r for r in runs if r.get("requests_per_s")]
    if not good:
        return []
    client = statistics.median(r["client_cpu_s"] / r["wall_s"] for r in good)
    server = statistics.median(c.get("server", float("nan")) for c in cpu)
    note = f"client wrk: cores used (median): client {client:.2f}, server {server:.2f}"
    rate = statistics.median(r["requests_per_s"] for r in good) * batch
    out: list[Row] = [
        {
            "group": group,
            "case": case,
            "impl": "http (wrk client)",
            "median_s": batch / rate,
            "repeats": len(good),
            "per": float(batch),
            "unit": "decision",
            "note": note,
        }
    ]
    per_decision = [
        c["server"] * c["wall"] / (r["requests_per_s"] * r["wall_s"] * batch)
        for c, r in zip(cpu, good, strict=False)
        if "server" in c
    ]
    if per_decision:
        out.append(
            {
                "group": group,
                "case": case,
                "impl": "server CPU (wrk client)",
                "median_s": batch * statistics.median(per_decision),
                "repeats": len(per_decision),
                "per": float(batch),
                "unit": "decision",
                "note": f"server CPU seconds per {batch} decisions under wrk",
            }
        )
    if latency:
        for key in ("p50", "p99"):
            values = [r[f"{key}_s"] for r in good if f"{key}_s" in r]
            if values:
                out.append(
                    {
                        "group": "serve.latency",
                        "case": case,
                        "impl": f"recommend {key} (wrk client)",
                        "median_s": statistics.median(values),
                        "repeats": len(values),
                        "note": note,
                    }
                )
    return out
