"""The serve metrics in-process: rolling latency windows (exact percentiles of the last 10,000
samples), slow-call counting against the thresholds, one registry per app, and the
per-experiment numbers read from the engine at scrape time."""

from __future__ import annotations

import numpy as np
from prometheus_client import generate_latest

from banditkit.serve.metrics import RECOMMEND, REWARDS, WINDOW, LatencyWindow, ServeMetrics


def test_window_percentiles_are_those_of_the_last_samples() -> None:
    window = LatencyWindow()
    rng = np.random.default_rng(3)
    old = rng.uniform(1.0, 2.0, size=500)  # pushed out by the newer samples
    new = rng.exponential(0.01, size=WINDOW)
    for x in [*old, *new]:
        window.add(float(x))
    got = window.summary()
    assert got["count"] == WINDOW
    for q in (50, 95, 99):
        assert abs(got[f"p{q}_ms"] - np.percentile(new, q) * 1e3) < 1e-3
    assert abs(got["max_ms"] - new.max() * 1e3) < 1e-3
    assert LatencyWindow().summary()["count"] == 0


def test_slow_calls_are_counted_by_threshold() -> None:
    m = ServeMetrics(slow_recommend_ms=50, slow_update_ms=20)
    m.observe_request(RECOMMEND, "POST", 200, 0.049)  # under
    m.observe_request(RECOMMEND, "POST", 200, 0.051)  # over
    m.observe_request(REWARDS, "POST", 200, 0.021)  # over the update threshold
    m.observe_request(REWARDS, "POST", 422, 0.5)  # a refused call is not a slow update
    m.observe_request("GET /v1/stats", "GET", 200, 1.0)  # no threshold
    stats = m.stats()
    assert stats["slow_operations"] == 2
    assert stats["thresholds_ms"] == {"recommend": 50, "update": 20}
    assert stats["latency"][RECOMMEND]["count"] == 2
    text = generate_latest(m.registry).decode()
    assert 'banditkit_slow_operations_total{operation="recommend"} 1.0' in text
    assert 'banditkit_slow_operations_total{operation="update"} 1.0' in text
    assert (
        'banditkit_requests_total{endpoint="POST /v1/experiments/{name}/rewards",'
        'method="POST",status="422"} 1.0'
    ) in text


def test_operations_and_experiments() -> None:
    first, second = ServeMetrics(), ServeMetrics()  # two apps in one process never mix
    first.observe("model", "decide", 0.002)
    first.observe("store", "append", 0.004)
    experiments = [{"name": "home", "version": 7, "decisions": 10, "rewards": 6}]
    first.watch_experiments(lambda: experiments)
    text = generate_latest(first.registry).decode()
    assert 'banditkit_operation_seconds_count{kind="model",operation="decide"} 1.0' in text
    assert 'banditkit_state_version{experiment="home"} 7.0' in text
    assert 'banditkit_decisions_total{experiment="home"} 10.0' in text
    assert 'banditkit_rewards_total{experiment="home"} 6.0' in text
    assert set(first.stats()["latency"]) == {"model.decide", "store.append"}
    assert "banditkit_operation_seconds_count{" not in generate_latest(second.registry).decode()


def test_a_failing_engine_does_not_fail_the_scrape() -> None:
    m = ServeMetrics()

    def broken() -> list[dict[str, object]]:
        raise ConnectionError("store away")

    m.watch_experiments(broken)
    text = generate_latest(m.registry).decode()
    assert "banditkit_state_version" in text and 'experiment="' not in text
