"""Serving (issue 13): a real `banditkit serve` process under `banditkit loadtest`, same run.

One server process per scenario (one uvicorn worker, a temporary SQLite store, a free loopback
port), so that the server's rolling latency windows (`GET /v1/stats`) and Prometheus sums hold
that scenario only. The load generator runs in this process (httpx, one connection pool, 32
concurrent clients) and shares the machine's cores with the server: every row's note says how
many cores the client, the server and everything else used meanwhile.

Each scenario: a warm-up run (creates the experiment), then `WINDOWS` timed runs; every figure
is the median over the runs. A tenth of the decisions are rewarded by event id (as a live
experiment is), so the updates' latency is measured under the same load.

Groups (case names below):
- `serve.tspar`, cases "10 arms, 32 clients, 1 decision/request" and "... 100
  decisions/request": `http`, seconds per request's decisions at the runs' median rate (per =
  decisions, so ns/unit is the time per decision; target for batches: >= 100,000 decisions/s).
- `serve.latency`, per scenario: client-side `recommend p50` and `recommend p99` (target for
  single decisions: p99 < 10 ms).
- `server CPU` and `client CPU` beside each `http` row: CPU seconds per request's decisions,
  from /proc (rewards included). The wall-clock rate depends on what else runs on the
  machine; CPU time hardly does, so these say what one worker would do with a core to itself.
- `serve.linucb`, "d=67, 10 arms, 100 contexts/request": `http` against `in-process select`
  (100 `select(x)` calls on a LinUCB of the same shape: the service's overhead is the speedup
  column) and `in-process predict` (one call on the 100 contexts).
- `serve.breakdown`, LinUCB case: where a recommend request's time goes, means per request
  from the server's Prometheus sums (`banditkit_request_seconds`,
  `banditkit_operation_seconds`): the endpoint, `model.decide`, `store.append`, the rest of
  the server (validation, JSON, routing), and the client's round trip.
- `serve.fsync`: p50 and p99 of one fsync in the store's folder. The server answers after its
  decisions are committed (SQLite, synchronous=FULL), so this is the floor under every
  request's latency whatever the code does.
- `serve.thresholds`, per scenario: the server's own p99 (`GET /v1/stats`) of the recommend
  and rewards endpoints, against the seed's 50 ms and 20 ms.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditkit.bench import serve_wrk
from banditkit.bench.timing import Row, median_time

CLIENTS = 32
ARMS = 10
D = 67
BATCH = 100
REWARD_RATE = 0.1
TSPAR_SINGLE = f"{ARMS} arms, {CLIENTS} clients, 1 decision/request"
TSPAR_BATCH = f"{ARMS} arms, {CLIENTS} clients, {BATCH} decisions/request"
LINUCB_CASE = f"d={D}, {ARMS} arms, {BATCH} contexts/request"
BREAKDOWN_CASE = f"LinUCB {LINUCB_CASE}"
START_TIMEOUT_S = 60.0


@dataclass
class Server:
    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return bytes(resp.read())


@contextlib.contextmanager
def server(folder: str, *, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A `banditkit serve` process on a free loopback port with an SQLite store in `folder`,
    ready (GET /readyz is 200) when entered, stopped (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    settings = {
        "BANDITKIT_HOST": "127.0.0.1",
        "BANDITKIT_PORT": str(port),
        "BANDITKIT_STORE": f"sqlite:///{os.path.join(folder, f'serve-{port}.db')}",
        "BANDITKIT_WORKERS": "1",
        # uvicorn's access log would cost the server CPU on every request.
        "BANDITKIT_LOG_LEVEL": "warning",
    }
    log_path = os.path.join(folder, f"serve-{port}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "banditkit.cli", "serve"],
            env={**os.environ, **settings, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"banditkit serve exited ({proc.returncode}): {_tail(log_path)}")
            try:
                _get(url + "/readyz", timeout=1.0)
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"banditkit serve not ready after {START_TIMEOUT_S:.0f} s: "
                        f"{_tail(log_path)}"
                    ) from None
                time.sleep(0.1)
        yield Server(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: str, lines: int = 20) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:]).strip() or "(no output)"


# --- CPU accounting (Linux /proc; None elsewhere) ---


def _tree_cpu(pid: int) -> float | None:
    """User + system CPU seconds of `pid` and its children (uvicorn may fork a worker)."""
    from banditkit.bench.threads import _process_cpu

    total = _process_cpu(pid)
    if total is None:
        return None
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        children = []
    for child in children:
        total += _tree_cpu(child) or 0.0
    return total


class CpuMeter:
    """Cores used by this process (the client), the server and everything else, over a span."""

    def __init__(self, server_pid: int) -> None:
        from banditkit.bench.threads import _machine_cpu

        self._machine = _machine_cpu
        self.pid = server_pid
        self.t0 = time.perf_counter()
        self.own0 = time.process_time()
        self.server0 = _tree_cpu(server_pid)
        self.machine0 = _machine_cpu()

    def cores(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        out = {"wall": wall, "client": (time.process_time() - self.own0) / wall}
        server1, machine1 = _tree_cpu(self.pid), self._machine()
        if self.server0 is not None and server1 is not None:
            out["server"] = (server1 - self.server0) / wall
            if self.machine0 is not None and machine1 is not None:
                busy = sum(machine1) - sum(self.machine0)  # busy + steal
                out["other"] = max(0.0, busy / wall - out["client"] - out["server"])
        return out


def cpu_note(shares: list[dict[str, float]]) -> str:
    keys = [k for k in ("client", "server", "other") if all(k in s for s in shares)]
    parts = [f"{k} {statistics.median(s[k] for s in shares):.2f}" for k in keys]
    return f"cores used (median): {', '.join(parts)} of {os.cpu_count()}"


# --- Prometheus sums: mean seconds per call over a span ---


def prometheus_sums(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`_sum` and `_count` samples of the server's histograms, keyed by (name, labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    text = _get(url + "/metrics", timeout=10.0).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith(("_sum", "_count")):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def histogram_delta(
    before: dict[Any, float], after: dict[Any, float], name: str, **labels: str
) -> tuple[float, float]:
    """(seconds, observations) that histogram `name` gained between two `prometheus_sums`,
    over the series whose labels contain `labels` (substring match on each value)."""
    total = count = 0.0
    for (sample, series), value in after.items():
        if sample not in (f"{name}_sum", f"{name}_count"):
            continue
        have = dict(series)
        if not all(v in have.get(k, "") for k, v in labels.items()):
            continue
        delta = value - before.get((sample, series), 0.0)
        if sample.endswith("_sum"):
            total += delta
        else:
            count += delta
    return total, count


# --- scenarios ---


def _runs(quick: bool) -> tuple[int, float, float]:
    """(timed runs per scenario, seconds per run, seconds of warm-up)."""
    return (3, 1.0, 0.5) if quick else (5, 3.0, 2.0)


def _load(url: str, experiment: str, batch: int, duration: float, **options: Any) -> dict[str, Any]:
    """One loadtest run (`options`: LoadConfig's create, arms, n_features, rate)."""
    from banditkit.serve.loadtest import LoadConfig, run

    report = run(
        LoadConfig(
            url=url,
            experiment=experiment,
            duration=duration,
            concurrency=CLIENTS,
            batch=batch,
            reward_rate=REWARD_RATE,
            **options,
        )
    )
    if report["errors"]:
        print(
            f"[serve] {experiment}: {report['errors']} failed requests: {report['error_kinds']}",
            file=sys.stderr,
        )
    return report


@dataclass
class Measured:
    reports: list[dict[str, Any]]
    cpu: list[dict[str, float]]
    stats: dict[str, Any]
    sums: tuple[dict[Any, float], dict[Any, float]] | None


def measure(
    srv: Server,
    experiment: str,
    batch: int,
    quick: bool,
    rate: float | None = None,
    **create: Any,
) -> Measured:
    """Warm up (creating the experiment if `create` says how), then the timed runs (paced at
    `rate` recommend requests per second, else closed loop)."""
    runs, seconds, warmup = _runs(quick)
    if create:
        _load(srv.url, experiment, batch, warmup, **create)
    try:
        before = prometheus_sums(srv.url)
    except (OSError, ValueError) as exc:
        print(f"[serve] no Prometheus sums: {exc}", file=sys.stderr)
        before = None
    reports, cpu = [], []
    for _ in range(runs):
        meter = CpuMeter(srv.pid)
        reports.append(_load(srv.url, experiment, batch, seconds, rate=rate))
        cpu.append(meter.cores())
    sums = None
    if before is not None:
        with contextlib.suppress(OSError, ValueError):
            sums = (before, prometheus_sums(srv.url))
    return Measured(reports, cpu, reports[-1].get("server_stats", {}), sums)


def _med(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def latency_rows(case: str, m: Measured, prefix: str = "", note: str = "") -> list[Row]:
    """Client-side recommend p50/p99 (medians over the runs), in seconds."""
    rows: list[Row] = []
    note = f"{note}; {cpu_note(m.cpu)}" if note else cpu_note(m.cpu)
    for key in ("p50_ms", "p99_ms"):
        value = _med([r["endpoints"]["recommend"][key] for r in m.reports])
        if value is not None:
            rows.append(
                {
                    "group": "serve.latency",
                    "case": case,
                    "impl": f"{prefix}recommend {key[:3]}",
                    "median_s": value / 1e3,
                    "repeats": len(m.reports),
                    "note": note,
                }
            )
    return rows


def throughput_row(group: str, case: str, impl: str, batch: int, m: Measured) -> Row:
    """Seconds per `batch` decisions at the median decisions/s of the runs (per = batch)."""
    rate = statistics.median(r["decisions_per_s"] for r in m.reports)
    return {
        "group": group,
        "case": case,
        "impl": impl,
        "median_s": batch / rate,
        "repeats": len(m.reports),
        "per": float(batch),
        "unit": "decision",
        "note": cpu_note(m.cpu),
    }


def cpu_rows(group: str, case: str, batch: int, m: Measured) -> list[Row]:
    """CPU seconds the server and the client spent per `batch` decisions (median over the
    runs; per = batch). Unlike the wall-clock rate, this hardly depends on what else the
    machine runs: 1 / (server CPU per decision) is what one worker would serve with a core
    of its own and a client elsewhere."""
    rows: list[Row] = []
    for side in ("server", "client"):
        if not all(side in c for c in m.cpu):
            continue
        per_decision = [
            c[side] * c["wall"] / r["decisions"]
            for c, r in zip(m.cpu, m.reports, strict=True)
            if r["decisions"]
        ]
        if per_decision:
            rows.append(
                {
                    "group": group,
                    "case": case,
                    "impl": f"{side} CPU",
                    "median_s": batch * statistics.median(per_decision),
                    "repeats": len(per_decision),
                    "per": float(batch),
                    "unit": "decision",
                    "note": f"{side} CPU seconds per {batch} decisions (rewards included)",
                }
            )
    return rows


def threshold_rows(case: str, m: Measured) -> list[Row]:
    from banditkit.serve.loadtest import threshold_checks

    rows: list[Row] = []
    for check in threshold_checks(m.stats):
        if check["p99_ms"] is None:
            continue
        impl = "recommend p99 (server)" if check["what"] == "recommend" else "rewards p99 (server)"
        rows.append(
            {
                "group": "serve.thresholds",
                "case": case,
                "impl": impl,
                "median_s": check["p99_ms"] / 1e3,
                "repeats": 1,
                "note": "GET /v1/stats after the runs",
            }
        )
    return rows


def breakdown_rows(m: Measured) -> list[Row]:
    """Where a recommend request's time goes, from the server's Prometheus sums over the timed
    runs (means)."""
    if m.sums is None:
        return []
    before, after = m.sums
    requests = sum(r["endpoints"]["recommend"]["ok"] for r in m.reports)
    op = "banditkit_operation_seconds"
    endpoint = histogram_delta(before, after, "banditkit_request_seconds", endpoint="/recommend")
    decide = histogram_delta(before, after, op, kind="model", operation="decide")
    append = histogram_delta(before, after, op, kind="store", operation="append")
    mean = {k: (t / n if n else None) for k, (t, n) in
            (("endpoint", endpoint), ("decide", decide), ("append", append))}  # fmt: skip
    client_ms = _med([r["endpoints"]["recommend"]["mean_ms"] for r in m.reports])
    parts: list[tuple[str, float | None, str]] = [
        ("client round trip", None if client_ms is None else client_ms / 1e3,
         "client-side mean, send to last byte"),
        ("server endpoint", mean["endpoint"], "server-side mean of the recommend route"),
        ("model.decide", mean["decide"], "mean per call (one per request, under the lock)"),
        ("store.append", mean["append"],
         f"mean per commit; group commit: {append[1]:,.0f} commits for {requests:,} recommend "
         "requests and their rewards"),
    ]  # fmt: skip
    e, d, a = mean["endpoint"], mean["decide"], mean["append"]
    if e is not None and d is not None and a is not None:
        rest = max(0.0, e - d - a)
        parts.append(("server rest", rest, "endpoint - decide - append: validation, JSON, "
                      "waiting for a thread or the GIL or a commit in progress"))  # fmt: skip
    return [
        {"group": "serve.breakdown", "case": BREAKDOWN_CASE, "impl": impl, "median_s": v,
         "repeats": len(m.reports), "note": note}
        for impl, v, note in parts
        if v is not None
    ]  # fmt: skip


def in_process_rows(quick: bool) -> list[Row]:
    """`select` (one context per call) and `predict` (the batch) of a LinUCB of the same shape
    as the served one, in this process, on the active backend."""
    import banditkit

    arms = [f"arm{i}" for i in range(ARMS)]
    model = banditkit.LinUCB(arms, D, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, D))
    model.partial_fit(x, [arms[i % ARMS] for i in range(len(x))], rng.normal(size=len(x)))
    contexts = np.round(rng.standard_normal((BATCH, D)), 4)
    rows_list = list(contexts)
    repeats, min_time = (5, 0.01) if quick else (15, 0.05)
    rows: list[Row] = []
    for impl, fn in (
        ("in-process select", lambda: [model.select(v) for v in rows_list]),
        ("in-process predict", lambda: model.predict(contexts)),
    ):
        med, reps = median_time(fn, repeats=repeats, min_time=min_time)
        rows.append(
            {
                "group": "serve.linucb",
                "case": LINUCB_CASE,
                "impl": impl,
                "median_s": med,
                "repeats": reps,
                "per": float(BATCH),
                "unit": "decision",
            }
        )
    return rows


FSYNC_CASE = "4 KiB append + fsync, the store's folder"


def fsync_rows(folder: str, quick: bool) -> list[Row]:
    """p50/p99 of one fsync on the disk the store uses: the floor under every acknowledged
    write (SQLite commits with synchronous=FULL, and the server answers after its commit)."""
    calls = 50 if quick else 200
    times = []
    fd = os.open(os.path.join(folder, "fsync.bin"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        block = b"\0" * 4096
        for _ in range(calls):
            os.write(fd, block)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
    p50, p99 = np.percentile(times, [50, 99])
    return [{"group": "serve.fsync", "case": FSYNC_CASE, "impl": impl, "median_s": float(v),
             "repeats": calls, "note": f"{calls} calls"}
            for impl, v in (("p50", p50), ("p99", p99))]  # fmt: skip


def _say(case: str, m: Measured) -> None:
    rate = statistics.median(r["decisions_per_s"] for r in m.reports)
    p99 = _med([r["endpoints"]["recommend"]["p99_ms"] for r in m.reports])
    print(
        f"[serve] {case}: {rate:,.0f} decisions/s, recommend p99 {p99 or float('nan'):.2f} ms "
        f"(client); {cpu_note(m.cpu)}",
        file=sys.stderr,
    )


def _wrk(
    srv: Server, experiment: str, batch: int, quick: bool, folder: str
) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
    """The same scenario under wrk (see `serve_wrk`), when it is installed: (runs, cpu)."""
    if serve_wrk.available() is None:
        print("[serve] wrk is not installed: no rows with a C client", file=sys.stderr)
        return [], []
    runs, seconds, _ = _runs(quick)
    reports, cpu = [], []
    for _ in range(runs):
        meter = CpuMeter(srv.pid)
        reports.append(serve_wrk.run_wrk(srv.url, experiment, batch, seconds, CLIENTS, folder))
        cpu.append(meter.cores())
    return reports, cpu


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        with server(folder) as srv:
            m = measure(srv, "tspar-single", 1, quick, create="tspar", arms=ARMS)
            # The same clients paced at half the closed-loop rate: the latency a service
            # sees at a load it sustains, rather than the queueing of a saturated one.
            rate = 0.5 * statistics.median(
                r["endpoints"]["recommend"]["ok"] / r["wall_s"] for r in m.reports
            )
            paced = measure(srv, "tspar-single", 1, quick, rate=rate)
            wrk_single = _wrk(srv, "tspar-single", 1, quick, folder)
        _say(TSPAR_SINGLE, m)
        _say(f"{TSPAR_SINGLE}, paced at {rate:,.0f} requests/s", paced)
        rows += latency_rows(TSPAR_SINGLE, m)
        rows += latency_rows(
            TSPAR_SINGLE,
            paced,
            "paced ",
            f"paced at {rate:,.0f} requests/s (half the closed-loop rate)",
        )
        rows.append(throughput_row("serve.tspar", TSPAR_SINGLE, "http", 1, m))
        rows += cpu_rows("serve.tspar", TSPAR_SINGLE, 1, m)
        rows += threshold_rows(TSPAR_SINGLE, m)
        rows += serve_wrk.rows(*wrk_single, "serve.tspar", TSPAR_SINGLE, 1, latency=True)

        with server(folder) as srv:
            m = measure(srv, "tspar-batch", BATCH, quick, create="tspar", arms=ARMS)
            wrk_batch = _wrk(srv, "tspar-batch", BATCH, quick, folder)
        _say(TSPAR_BATCH, m)
        rows.append(throughput_row("serve.tspar", TSPAR_BATCH, "http", BATCH, m))
        rows += cpu_rows("serve.tspar", TSPAR_BATCH, BATCH, m)
        rows += latency_rows(TSPAR_BATCH, m)
        rows += threshold_rows(TSPAR_BATCH, m)
        rows += serve_wrk.rows(*wrk_batch, "serve.tspar", TSPAR_BATCH, BATCH, latency=False)

        with server(folder) as srv:
            m = measure(srv, "linucb-batch", BATCH, quick, create="linucb", arms=ARMS, n_features=D)
        _say(LINUCB_CASE, m)
        rows.append(throughput_row("serve.linucb", LINUCB_CASE, "http", BATCH, m))
        rows += cpu_rows("serve.linucb", LINUCB_CASE, BATCH, m)
        rows += in_process_rows(quick)
        rows += latency_rows(LINUCB_CASE, m)
        rows += breakdown_rows(m)
        rows += threshold_rows(LINUCB_CASE, m)
        rows += fsync_rows(folder, quick)
    return rows
