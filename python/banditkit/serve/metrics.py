"""What the server measures: Prometheus metrics (one registry per app, so that two apps in one
process, as in tests, never mix their numbers) and rolling latency windows for `/v1/stats`.

Prometheus histograms answer "how many requests took under 10 ms" across scrapes; the rolling
windows give exact p50/p95/p99 of the last 10,000 samples, which is what the dashboard and the
thresholds (50 ms per recommendation, 20 ms per update) are about.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("banditkit.serve")

WINDOW = 10_000
SLOW_LOG_INTERVAL = 5.0  # seconds between two "slow" log lines of one operation
# From 100 µs (one decision in a batch) to 10 s (a store that hangs).
BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
)  # fmt: skip

RECOMMEND = "POST /v1/experiments/{name}/recommend"
REWARDS = "POST /v1/experiments/{name}/rewards"


class LatencyWindow:
    """The last `size` durations of one endpoint or operation."""

    def __init__(self, size: int = WINDOW) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)

    def summary(self) -> dict[str, float | int]:
        with self._lock:
            samples = np.fromiter(self._samples, dtype=float, count=len(self._samples))
        if samples.size == 0:
            return {"count": 0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        p50, p95, p99 = np.percentile(samples, [50, 95, 99]) * 1e3
        return {
            "count": int(samples.size),
            "p50_ms": round(float(p50), 3),
            "p95_ms": round(float(p95), 3),
            "p99_ms": round(float(p99), 3),
            "max_ms": round(float(samples.max()) * 1e3, 3),
        }


class ExperimentCollector(Collector):
    """Per-experiment numbers read at scrape time from the engine, so that every server reports
    the counts of the shared log rather than only what it served itself."""

    def __init__(self, describe_all: Callable[[], list[Mapping[str, Any]]]) -> None:
        self._describe_all = describe_all

    def collect(self) -> Iterator[Metric]:
        version = GaugeMetricFamily(
            "banditkit_state_version",
            "model state version (1 + rewards applied)",
            labels=["experiment"],
        )
        decisions = CounterMetricFamily(
            "banditkit_decisions", "decisions logged", labels=["experiment"]
        )
        rewards = CounterMetricFamily("banditkit_rewards", "rewards applied", labels=["experiment"])
        try:
            described = self._describe_all()
        except Exception:  # a scrape must not fail because the store is briefly away
            log.exception("could not read the experiments for /metrics")
            described = []
        for d in described:
            version.add_metric([d["name"]], d["version"])
            decisions.add_metric([d["name"]], d["decisions"])
            rewards.add_metric([d["name"]], d["rewards"])
        yield from (version, decisions, rewards)


class ServeMetrics:
    """The metrics of one app; `observe` is the engine's observer."""

    def __init__(self, slow_recommend_ms: float = 50.0, slow_update_ms: float = 20.0) -> None:
        self.started = time.time()
        self.thresholds_ms = {"recommend": slow_recommend_ms, "update": slow_update_ms}
        self.registry = CollectorRegistry()
        # The process's CPU, memory and file descriptors, and the interpreter's GC, as the
        # default registry would report them.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.requests = Counter(
            "banditkit_requests",
            "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "banditkit_request_seconds",
            "HTTP request latency",
            ["endpoint"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.operation_seconds = Histogram(
            "banditkit_operation_seconds",
            "latency of model and store operations",
            ["kind", "operation"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.slow = Counter(
            "banditkit_slow_operations",
            "requests slower than their threshold (recommend 50 ms, update 20 ms by default)",
            ["operation"],
            registry=self.registry,
        )
        self._windows: dict[str, LatencyWindow] = {}
        self._windows_lock = threading.Lock()
        self._slow_total = 0
        self._slow_pending: dict[str, list[Any]] = {}  # operation -> [count, slowest seconds]
        self._slow_logged: dict[str, float] = {}

    def _window(self, key: str) -> LatencyWindow:
        window = self._windows.get(key)
        if window is None:
            with self._windows_lock:
                window = self._windows.setdefault(key, LatencyWindow())
        return window

    def observe(self, kind: str, operation: str, seconds: float) -> None:
        """One model or store operation (`kind` "model" or "store") took `seconds`."""
        self.operation_seconds.labels(kind, operation).observe(seconds)
        self._window(f"{kind}.{operation}").add(seconds)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request; `endpoint` is the route ("POST /v1/experiments/{name}/recommend")."""
        self.requests.labels(endpoint, method, str(status)).inc()
        self.request_seconds.labels(endpoint).observe(seconds)
        self._window(endpoint).add(seconds)
        if status < 400:
            self._check_slow(endpoint, seconds)

    def _check_slow(self, endpoint: str, seconds: float) -> None:
        operation = {RECOMMEND: "recommend", REWARDS: "update"}.get(endpoint)
        if operation is None or seconds * 1e3 <= self.thresholds_ms[operation]:
            return
        self.slow.labels(operation).inc()
        now = time.monotonic()
        with self._windows_lock:
            self._slow_total += 1
            pending = self._slow_pending.setdefault(operation, [0, 0.0])
            pending[0] += 1
            pending[1] = max(pending[1], seconds)
            # At most one line per operation per interval: an overloaded server must not also
            # flood its log; the counter above still counts every slow call.
            if now - self._slow_logged.get(operation, -SLOW_LOG_INTERVAL) < SLOW_LOG_INTERVAL:
                return
            count, worst = pending
            self._slow_pending[operation] = [0, 0.0]
            self._slow_logged[operation] = now
        log.warning(
            "slow %s: %d call%s over %.0f ms (slowest %.1f ms)",
            operation,
            count,
            "" if count == 1 else "s",
            self.thresholds_ms[operation],
            worst * 1e3,
        )

    def watch_experiments(self, describe_all: Callable[[], list[Mapping[str, Any]]]) -> None:
        """Report per-experiment versions and counts from `describe_all()` at each scrape."""
        self.registry.register(ExperimentCollector(describe_all))

    def stats(self) -> dict[str, Any]:
        """The body of `GET /v1/stats` (without the version and backend, which the app adds)."""
        with self._windows_lock:
            windows = dict(self._windows)
            slow = self._slow_total
        return {
            "uptime_seconds": round(time.time() - self.started, 3),
            "thresholds_ms": dict(self.thresholds_ms),
            "latency": {key: windows[key].summary() for key in sorted(windows)},
            "slow_operations": slow,
        }
