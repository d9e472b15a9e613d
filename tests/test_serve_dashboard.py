"""The dashboard (`GET /`) in a real headless Chromium against a real `banditkit serve` process.

What the page renders is read back from Chromium's DOM and compared with the JSON API: the
experiments' arm rows and counts, one win-probability bar per arm (or, for a contextual policy,
the decision shares and a note saying so), the timeline, the latency table with its thresholds,
the empty and unreachable messages, and the page under a URL prefix. A screenshot is saved too.

Run as a script to remake the README's screenshot with livelier data:
`PYTHONPATH=python python tests/test_serve_dashboard.py docs/dashboard.png`.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bs4
import numpy as np
import pytest

from serve_server import Server, server_env

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "python" / "banditkit" / "serve" / "static"
WINDOW = (1280, 900)

# (name, policy, arms, params): a Thompson policy with exact win probabilities and a contextual
# one without them.
TSPAR = ("homepage", "tspar", ["control", "blue-button", "big-banner"], {})
LINUCB = ("llm-router", "linucb", ["small", "medium", "large"], {"n_features": 3})
# Success rates of the simulated traffic, so that the bars differ visibly.
RATES = {"control": 0.2, "blue-button": 0.5, "big-banner": 0.35}
REWARDED = 0.75


def chromium_binary() -> str:
    """Debian's `chromium`; required under CI (which installs it), else the test is skipped."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed (Debian package `chromium`)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)
    return path


def run_chromium(binary: str, url: str, scratch: Path, *args: str) -> str:
    """Load `url` headless; 8 s of virtual time pass (the page polls every 2 s)."""
    command = [
        binary,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={scratch / 'chromium-profile'}",
        "--virtual-time-budget=8000",
        *args,
        url,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def dump_dom(binary: str, url: str, scratch: Path) -> bs4.BeautifulSoup:
    return bs4.BeautifulSoup(run_chromium(binary, url, scratch, "--dump-dom"), "html.parser")


def screenshot(binary: str, url: str, scratch: Path, path: Path) -> None:
    width, height = WINDOW
    run_chromium(binary, url, scratch, f"--screenshot={path}", f"--window-size={width},{height}")


# ---- real server processes (tests/serve_server.py) ----

# The app mounted under a prefix in a user's own FastAPI app (whose lifespan runs the mounted
# app's, which starts and closes its engine): argv = store URL, port, prefix.
MOUNTED = """
import contextlib, sys
import uvicorn
from fastapi import FastAPI
from banditkit.serve import ServeSettings, create_app

bandits = create_app(ServeSettings(store=sys.argv[1]))

@contextlib.asynccontextmanager
async def lifespan(app):
    async with bandits.router.lifespan_context(bandits):
        yield

app = FastAPI(lifespan=lifespan)
app.mount(sys.argv[3], bandits)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


class MountedServer(Server):
    """`create_app(...)` mounted at `prefix` in another app, served by uvicorn."""

    def __init__(self, store: str, log_dir: Path, prefix: str) -> None:
        super().__init__(store, log_dir, token=None)
        self.prefix = prefix
        self.url += prefix
        self.client.base_url = self.url

    def spawn(self) -> MountedServer:
        command = [sys.executable, "-c", MOUNTED, self.store, str(self.port), self.prefix]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, env=server_env(), stdout=log, stderr=log)
        return self


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.close()


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'serve.db'}"


# ---- traffic ----


def simulate(server: Server, rounds: int = 1, pause: float = 0.0, batch: int = 60) -> None:
    """Create both experiments and send `rounds` batches of decisions; like real feedback,
    only some decisions (about 3 in 4) get a reward."""
    rng = np.random.default_rng(13)
    for name, policy, arms, params in (TSPAR, LINUCB):
        server.create(name, policy, arms, **params)
    theta = {"small": [0.6, 0.1, 0.0], "medium": [0.2, 0.5, 0.1], "large": [0.1, 0.2, 0.7]}
    for r in range(rounds):
        results = server.recommend(TSPAR[0], [{"id": f"{r}-{i}"} for i in range(batch)])
        rewards = [
            {"event_id": d["event_id"], "reward": float(rng.random() < RATES[d["arm"]])}
            for d in results
            if rng.random() < REWARDED
        ]
        server.reward(TSPAR[0], rewards)

        contexts = rng.random((batch // 2, 3)).round(3).tolist()
        requests = [{"id": f"{r}-{i}", "context": x} for i, x in enumerate(contexts)]
        results = server.recommend(LINUCB[0], requests)
        rewards = [
            {"event_id": d["event_id"], "reward": float(np.dot(theta[d["arm"]], x))}
            for d, x in zip(results, contexts, strict=True)
            if rng.random() < REWARDED
        ]
        server.reward(LINUCB[0], rewards)
        if pause:
            time.sleep(pause)


# ---- the page, rendered once per module ----


@dataclass
class Rendered:
    empty: bs4.BeautifulSoup
    page: bs4.BeautifulSoup
    api: dict[str, dict[str, Any]]
    stats: dict[str, Any]
    screenshot: Path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Iterator[Rendered]:
    binary = chromium_binary()
    folder = tmp_path_factory.mktemp("dashboard")
    with running(Server(sqlite_url(folder), folder)) as server:
        url = server.url + "/"
        empty = dump_dom(binary, url, folder)
        simulate(server)
        api = {name: server.describe(name) for name in (TSPAR[0], LINUCB[0])}
        page = dump_dom(binary, url, folder)
        # Read after the page so that the page's own requests are in the latency windows too.
        stats = server.call("GET", "/v1/stats")
        shot = folder / "dashboard.png"
        screenshot(binary, url, folder, shot)
        yield Rendered(empty, page, api, stats, shot)


def card(page: bs4.BeautifulSoup, name: str) -> bs4.Tag:
    cards = page.select(f'article[data-experiment="{name}"]')
    assert len(cards) == 1, f"one card for {name}, got {len(cards)}"
    return cards[0]


def percent_shown(text: str) -> float:
    assert text.endswith("%"), text
    return float(text[:-1]) / 100


# ---- tests ----


def test_empty_server_says_there_are_no_experiments(rendered):
    status = rendered.empty.select_one("#status")
    assert status["data-state"] == "empty"
    assert rendered.empty.select_one('[data-role="no-experiments"]') is not None
    assert rendered.empty.select("article[data-experiment]") == []


def test_page_lists_every_experiment(rendered):
    assert rendered.page.select_one("#status")["data-state"] == "ok"
    shown = [a["data-experiment"] for a in rendered.page.select("article[data-experiment]")]
    assert shown == [TSPAR[0], LINUCB[0]]
    for name, info in rendered.api.items():
        article = card(rendered.page, name)
        assert article["data-policy"] == info["policy"]
        assert int(article["data-version"]) == info["version"]


@pytest.mark.parametrize("experiment", [TSPAR, LINUCB], ids=["tspar", "linucb"])
def test_arm_rows_show_the_api_counts(rendered, experiment):
    name, _, arms, _ = experiment
    info = rendered.api[name]
    rows = card(rendered.page, name).select("table[data-role=arms] tbody tr[data-arm]")
    assert [r["data-arm"] for r in rows] == arms
    assert sum(a["count"] for a in info["arms"]) > 0
    for row, arm in zip(rows, info["arms"], strict=True):
        assert int(row["data-count"]) == arm["count"]
        shown = row.select_one('[data-field="count"]').get_text()
        assert shown.replace(",", "") == str(arm["count"])
        assert float(row["data-reward-sum"]) == pytest.approx(arm["reward_sum"], rel=1e-12)
        rate = row.select_one('[data-field="reward_rate"]').get_text()
        if arm["count"]:
            assert float(rate) == pytest.approx(arm["reward_sum"] / arm["count"], abs=5e-4)


def test_win_probability_bars_match_the_api(rendered):
    name = TSPAR[0]
    info = rendered.api[name]
    chart = card(rendered.page, name).select_one('svg[data-chart="win-probability"]')
    assert chart is not None and chart.get("role") == "img" and chart.get("aria-label")
    bars = chart.select("rect[data-arm]")
    assert [b["data-arm"] for b in bars] == TSPAR[2]
    expected = {a["arm"]: a["win_probability"] for a in info["arms"]}
    assert sum(expected.values()) == pytest.approx(1.0, abs=1e-9)
    labels = {t["data-arm"]: t.get_text() for t in chart.select("text[data-arm]")}
    widths = []
    for bar in bars:
        arm = bar["data-arm"]
        assert float(bar["data-value"]) == pytest.approx(expected[arm], abs=5e-4)
        assert percent_shown(labels[arm]) == pytest.approx(expected[arm], abs=5e-4 + 1e-12)
        widths.append(float(bar["width"]))
    # Bar lengths are proportional to the probabilities.
    scale = max(widths) / max(expected.values())
    for bar, width in zip(bars, widths, strict=True):
        assert width == pytest.approx(scale * expected[bar["data-arm"]], abs=0.5)


def test_contextual_policy_shows_decision_shares_and_says_so(rendered):
    name = LINUCB[0]
    info = rendered.api[name]
    assert all(a["win_probability"] is None for a in info["arms"])
    article = card(rendered.page, name)
    assert article.select_one('svg[data-chart="win-probability"]') is None
    chart = article.select_one('svg[data-chart="decision-share"]')
    assert chart is not None
    # Per-arm decisions when the API reports them, else the rewarded decisions.
    key = "decisions" if all("decisions" in a for a in info["arms"]) else "count"
    total = sum(a[key] for a in info["arms"])
    bars = {b["data-arm"]: float(b["data-value"]) for b in chart.select("rect[data-arm]")}
    assert bars == pytest.approx({a["arm"]: a[key] / total for a in info["arms"]}, abs=1e-9)
    note = article.select_one('[data-role="share-note"]')
    assert note is not None and "contextual" in note.get_text()


@pytest.mark.parametrize("experiment", [TSPAR, LINUCB], ids=["tspar", "linucb"])
def test_timeline_chart_counts_the_decisions(rendered, experiment):
    name = experiment[0]
    chart = card(rendered.page, name).select_one('svg[data-chart="timeline"]')
    assert chart is not None and chart.get("aria-label")
    bars = chart.select("rect[data-t]")
    assert len(bars) >= 2
    # Every decision of the test was made within the last minute, so inside the window.
    assert sum(int(b["data-value"]) for b in bars) == rendered.api[name]["decisions"]
    assert chart.select_one('polyline[data-series="rewards"]') is not None


def test_latency_table_marks_the_thresholds(rendered):
    stats = rendered.stats
    thresholds = stats["thresholds_ms"]
    table = rendered.page.select_one("table[data-role=latency]")
    rows = {r["data-endpoint"]: r for r in table.select("tr[data-endpoint]")}
    recommend = [k for k in rows if k.endswith("/recommend")]
    rewards = [k for k in rows if k.endswith("/rewards")]
    assert recommend and rewards, sorted(rows)
    for key in recommend:
        assert float(rows[key]["data-threshold"]) == thresholds["recommend"]
    for key in rewards:
        assert float(rows[key]["data-threshold"]) == thresholds["update"]
    for key in recommend + rewards:
        line = rows[key].select_one("line[data-threshold]")
        assert line is not None
        assert {r["data-percentile"] for r in rows[key].select("rect[data-percentile]")} == {
            "p50",
            "p95",
            "p99",
        }
    # The API's endpoints the test used are all measured.
    assert set(recommend) | set(rewards) <= set(stats["latency"])


def test_screenshot_is_saved(rendered):
    data = rendered.screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == WINDOW
    assert len(data) > 20_000  # a blank page compresses to a few kB


def test_unreachable_server_is_reported(tmp_path):
    # The same page opened from files: its API requests fail like those to a stopped server.
    binary = chromium_binary()
    shutil.copytree(STATIC, tmp_path / "static")
    shutil.copy(STATIC / "index.html", tmp_path / "index.html")
    page = dump_dom(binary, (tmp_path / "index.html").as_uri(), tmp_path)
    status = page.select_one("#status")
    assert status["data-state"] == "unreachable"
    assert "Cannot reach the server" in status.get_text()


def test_page_works_under_a_prefix(tmp_path):
    # Also: arms named like markup, or by numbers, show as the text the client sent.
    binary = chromium_binary()
    arms = ["<b>bold</b>", 7, "a & b"]
    with running(MountedServer(sqlite_url(tmp_path), tmp_path, "/tools/bandits")) as server:
        server.create("odd-arms", "tspar", arms)
        server.reward("odd-arms", [{"arm": 7, "reward": 1}])
        page = dump_dom(binary, server.url + "/", tmp_path)
    assert page.select_one("#status")["data-state"] == "ok"
    article = card(page, "odd-arms")
    rows = article.select("table[data-role=arms] tbody tr[data-arm]")
    assert [(r["data-arm"], r.th.get_text(), r["data-count"]) for r in rows] == [
        ("<b>bold</b>", "<b>bold</b>", "0"),
        ("7", "7", "1"),
        ("a & b", "a & b", "0"),
    ]
    assert article.select("b") == []
    bars = article.select('svg[data-chart="win-probability"] rect[data-arm]')
    assert [b["data-arm"] for b in bars] == ["<b>bold</b>", "7", "a & b"]
    assert page.select_one("table[data-role=latency]") is not None


def test_page_uses_relative_urls_only():
    # Absolute paths ("/v1/...", "/static/...") would break the page when the app is mounted
    # under a prefix; and nothing may come from another host (no CDN, no web fonts).
    for path in STATIC.iterdir():
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # a namespace, not a URL
        for absolute in ('"/v1', "'/v1", "`/v1", '"/static', "'/static", "http://", "https://"):
            assert absolute not in text, (path.name, absolute)


def test_page_never_parses_names_as_html():
    # Experiment and arm names come from clients: the page sets them as text, never as markup.
    script = (STATIC / "dashboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def main(out: Path) -> None:
    """Remake the README's screenshot: a server with a few minutes of traffic."""
    import tempfile

    binary = shutil.which("chromium")
    if binary is None:
        sys.exit("chromium is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        with running(Server(sqlite_url(Path(tmp)), Path(tmp))) as server:
            simulate(server, rounds=30, pause=4.0, batch=40)
            screenshot(binary, server.url + "/", Path(tmp), out.resolve())
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard.png"))
