"""`banditkit loadtest` against a real `banditkit serve` process, and the `serve` bench topic's
rows and targets. Runs are bounded to about a second and a few requests; nothing here is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from banditkit.bench import (
    report,  # noqa: E402
    serve_wrk,  # noqa: E402
)
from banditkit.bench import serve as bench_serve  # noqa: E402
from banditkit.cli import main  # noqa: E402
from banditkit.serve import loadtest  # noqa: E402
from serve_server import PACKAGE_ROOT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bench_serve.Server]:
    with bench_serve.server(str(tmp_path_factory.mktemp("serve"))) as srv:
        yield srv


def experiment(url: str, name: str) -> dict:
    with urllib.request.urlopen(f"{url}/v1/experiments/{name}", timeout=10) as resp:
        return json.load(resp)


def banditkit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
    return subprocess.run(
        [sys.executable, "-m", "banditkit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_run_reports_counts_the_server_agrees_with(server, tmp_path):
    out = tmp_path / "load.json"
    proc = banditkit(
        "loadtest", server.url, "--experiment", "lt-tspar", "--create", "tspar", "--arms", "3",
        "--duration", "1", "--concurrency", "4", "--batch", "5", "--reward-rate", "0.5",
        "--max-requests", "30", "--json", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(out.read_text())
    fields = ("decisions", "decisions_per_s", "requests", "requests_per_s", "errors",
              "client_cpu_cores", "wall_s", "endpoints", "thresholds", "server_stats")  # fmt: skip
    assert set(fields) <= set(rep)
    for name in ("recommend", "rewards"):
        for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "ok", "errors"):
            assert key in rep["endpoints"][name]
    rec, rew = rep["endpoints"]["recommend"], rep["endpoints"]["rewards"]
    assert rep["errors"] == 0 and rec["ok"] > 0
    assert rep["requests"] == rec["ok"] + rew["ok"] <= 30
    assert rep["decisions"] == 5 * rec["ok"]
    assert rep["rewards_accepted"] == rep["rewards_sent"] > 0
    state = experiment(server.url, "lt-tspar")
    assert state["decisions"] == rep["decisions"]
    assert state["rewards"] == rep["rewards_accepted"]
    assert sum(arm["count"] for arm in state["arms"]) == rep["rewards_accepted"]
    assert rep["server_experiment"]["decisions"] == rep["decisions"]
    assert [c["what"] for c in rep["thresholds"]] == ["recommend", "update"]
    assert rep["thresholds"][0]["p99_ms"] is not None
    for text in ("decisions", "p50", "p99", "client CPU", "seed threshold: recommend p99"):
        assert text in proc.stdout


def test_contextual_runs_add_up_on_an_existing_experiment(server):
    cfg = loadtest.LoadConfig(
        url=server.url, experiment="lt-linucb", create="linucb", arms=3, n_features=4,
        duration=1.0, concurrency=3, batch=4, reward_rate=0.5, max_requests=8,
    )  # fmt: skip
    first = loadtest.run(cfg)
    # The second run loads the experiment the first created (its policy and n_features).
    second = loadtest.run(loadtest.LoadConfig(url=server.url, experiment="lt-linucb",
                                              duration=1.0, batch=2, max_requests=5))  # fmt: skip
    assert first["errors"] == second["errors"] == 0
    assert first["policy"] == second["policy"] == "linucb" and second["n_features"] == 4
    assert second["decisions"] == 2 * second["endpoints"]["recommend"]["ok"] == 10
    state = experiment(server.url, "lt-linucb")
    assert state["decisions"] == first["decisions"] + second["decisions"]
    assert state["rewards"] == first["rewards_accepted"] + second["rewards_accepted"]
    assert second["rewards_sent"] == 0 and second["endpoints"]["rewards"]["ok"] == 0


def test_paced_run_sends_at_most_what_falls_due(server):
    rate, duration, clients = 20.0, 1.0, 4
    rep = loadtest.run(loadtest.LoadConfig(url=server.url, experiment="lt-paced", create="tspar",
                                           arms=2, duration=duration, concurrency=clients,
                                           rate=rate))  # fmt: skip
    rec = rep["endpoints"]["recommend"]
    assert rep["rate"] == rate and rep["errors"] == 0 and rec["ok"] > 0
    # Worker i's requests fall due at (i / clients + k) * clients / rate, before the deadline:
    # rate x duration in all (+1: a due time that rounds to just under the deadline).
    assert rec["ok"] + rep["unsent"] <= rate * duration + 1
    assert experiment(server.url, "lt-paced")["decisions"] == rep["decisions"] == rec["ok"]


def test_create_of_an_existing_experiment_fails_cleanly(server, capsys):
    args = ["loadtest", server.url, "--experiment", "lt-dup", "--create", "tspar",
            "--duration", "1", "--max-requests", "1"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("banditkit loadtest: error:") and "already exists" in err
    assert experiment(server.url, "lt-dup")["decisions"] == 1


def test_rejected_requests_are_counted_with_the_servers_message(server, capsys):
    # A batch over the server's limit (max_batch, 1000 by default): every recommend is a 422.
    args = ["loadtest", server.url, "--experiment", "lt-big", "--create", "tspar", "--batch",
            "1001", "--duration", "1", "--max-requests", "3"]  # fmt: skip
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "error recommend HTTP 422: 3 (first: HTTP 422:" in out
    assert experiment(server.url, "lt-big")["decisions"] == 0


def test_missing_experiment_and_unreachable_server(server, capsys):
    assert main(["loadtest", server.url, "--experiment", "nope", "--duration", "1"]) == 1
    assert "no experiment 'nope'" in capsys.readouterr().err
    port = bench_serve.free_port()  # nothing listens there
    assert main(["loadtest", f"http://127.0.0.1:{port}", "--experiment", "x"]) == 1
    assert "cannot reach" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.9.8.7", "http://localhost:1/", "http://[::1]:80"]
)
def test_loopback_urls_are_accepted(url):
    assert loadtest.loopback_problem(url) is None


@pytest.mark.parametrize(
    "url",
    ["http://192.0.2.1:8000", "http://example.com", "http://10.0.0.1", "http://[::2]:80",
     "http://127.0.0.1.example.com", "http://0.0.0.0:8000", "ftp://127.0.0.1", "127.0.0.1:8000"],
)  # fmt: skip
def test_other_urls_are_refused(url):
    assert loadtest.loopback_problem(url) is not None


def test_non_loopback_url_exits_2_before_sending_anything():
    proc = banditkit("loadtest", "http://192.0.2.1:8000", "--experiment", "x", "--duration", "1")
    assert proc.returncode == 2
    assert proc.stderr.startswith("banditkit loadtest: error: refusing to load-test")
    assert "loopback" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    "extra",
    [
        ["--concurrency", "0"],
        ["--duration", "-1"],
        ["--duration", "nan"],
        ["--batch", "x"],
        ["--reward-rate", "1.5"],
        ["--max-requests", "0"],
        ["--seed", "-1"],
        ["--create", "nope"],
        ["--arms", "3"],  # without --create
        ["--create", "linucb"],  # without --n-features
        ["--create", "tspar", "--n-features", "3"],
        ["--create", "tspar", "--arms", "1"],
        ["--json", "/no/such/folder/x.json"],
        ["--unknown"],
    ],
)
def test_bad_arguments_exit_2(extra, capsys):
    argv = ["loadtest", "http://127.0.0.1:9", "--experiment", "x", *extra]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    assert "banditkit loadtest: error:" in capsys.readouterr().err


def test_missing_experiment_argument_exits_2():
    proc = banditkit("loadtest", "http://127.0.0.1:9")
    assert proc.returncode == 2 and "--experiment" in proc.stderr


# --- the bench topic ---


def test_bench_rows_and_targets(monkeypatch, capsys):
    """Every row and target the `serve` topic promises, from very short runs."""
    monkeypatch.setattr(bench_serve, "_runs", lambda quick: (1, 0.3, 0.2))
    monkeypatch.setattr(bench_serve, "D", 8)
    monkeypatch.setattr(bench_serve, "CLIENTS", 4)
    rows = bench_serve.run(quick=True)
    got = {(r["group"], r["case"], r["impl"]) for r in rows}
    single, batch, linucb = (
        bench_serve.TSPAR_SINGLE,
        bench_serve.TSPAR_BATCH,
        bench_serve.LINUCB_CASE,
    )
    for case in (single, batch, linucb):
        assert ("serve.latency", case, "recommend p99") in got
        assert ("serve.thresholds", case, "recommend p99 (server)") in got
        assert ("serve.thresholds", case, "rewards p99 (server)") in got
    for case in (single, batch):
        assert {("serve.tspar", case, i) for i in ("http", "server CPU", "client CPU")} <= got
    for impl in ("http", "server CPU", "client CPU", "in-process select", "in-process predict"):
        assert ("serve.linucb", linucb, impl) in got
    assert {r["impl"] for r in rows if r["group"] == "serve.fsync"} == {"p50", "p99"}
    breakdown = {r["impl"] for r in rows if r["group"] == "serve.breakdown"}
    assert {"client round trip", "server endpoint", "model.decide", "store.append"} <= breakdown
    assert all(r["median_s"] > 0 for r in rows if r["group"] != "serve.breakdown")
    shared = [r for r in rows if r["group"] == "serve.latency" or r["impl"] == "http"]
    assert all("cores used (median): client" in r["note"] for r in shared)
    # The wrk rows exist when Debian's wrk is installed (a C client; see bench/serve_wrk.py).
    with_wrk = serve_wrk.available() is not None
    wanted = [t for t in report.LATENCY_TARGETS if with_wrk or "wrk" not in t.impl]
    measured = {t.label for t, v in report.latency_results(rows) if v is not None}
    assert measured == {t.label for t in wanted}
    rates = {t.impl: v for t, v in report.rate_results(rows) if t.group == "serve.tspar"}
    assert rates["http"] is not None and rates["http"] > 0
    assert (rates["http (wrk client)"] is not None) == with_wrk
    if with_wrk:
        assert rates["http (wrk client)"] > 0
        assert ("serve.tspar", batch, "server CPU (wrk client)") in got
    assert "[serve] " in capsys.readouterr().err


def test_serve_rows_stay_out_of_the_rust_speedup_plot():
    from banditkit.bench.plot import speedups

    case = "d=67, 10 arms, 100 contexts/request"
    rows = [
        {"group": "serve.linucb", "case": case, "impl": "http", "median_s": 0.05, "per": 100.0},
        {"group": "serve.linucb", "case": case, "impl": "in-process select", "median_s": 0.003},
        {"group": "g", "case": "c", "impl": "python", "median_s": 0.02},
        {"group": "g", "case": "c", "impl": "rust", "median_s": 0.001},
    ]  # fmt: skip
    assert [(label, name) for label, name, *_ in speedups(rows)] == [("g | c", "python")]
    assert "16.7x (in-process select)" in report.table(rows)


def test_report_checks_rates_per_unit_and_latency_targets():
    case = "10 arms, 32 clients, 100 decisions/request"
    rows = [
        {"group": "serve.tspar", "case": case, "impl": "http", "median_s": 0.0005, "per": 100.0},
        {"group": "serve.latency", "case": "10 arms, 32 clients, 1 decision/request",
         "impl": "recommend p99", "median_s": 0.012},
    ]  # fmt: skip
    table = report.targets_table(rows)
    (line,) = [
        x for x in table.splitlines() if "32 clients, batches of 100 >= 100,000 decisions/s" in x
    ]
    assert line.endswith("200,000/s  met")
    (line,) = [
        x for x in table.splitlines() if "32 clients, single decisions: recommend p99 < 10 ms" in x
    ]
    assert line.endswith("12.00 ms  MISSED")


WRK_OUTPUT = """Running 6s test @ http://127.0.0.1:8765/v1/experiments/t/recommend
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    59.23ms   15.16ms 171.10ms   81.80%
  Latency Distribution
     50%   56.94ms
     75%   63.12ms
     90%   80.02ms
     99%    1.37s
  4350 requests in 8.03s, 0.97MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:    541.87
Transfer/sec:    123.50KB
"""


def test_wrk_report_parsed():
    got = serve_wrk.parse(WRK_OUTPUT)
    assert got["requests"] == 4350 and got["wall_s"] == pytest.approx(8.03)
    assert got["requests_per_s"] == pytest.approx(541.87)
    assert got["p50_s"] == pytest.approx(0.05694) and got["p99_s"] == pytest.approx(1.37)
    assert got["non_2xx"] == 5 and got["socket_errors"] == 3
    with pytest.raises(ValueError, match="latency"):
        serve_wrk._seconds("12 parsecs")
