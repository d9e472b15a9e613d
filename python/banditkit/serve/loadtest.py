"""`banditkit loadtest`: drive a running `banditkit serve` with concurrent batch requests.

C workers share one httpx connection pool and loop: one `recommend` request of B decisions,
then (with `--reward-rate F`) one `rewards` request for about F x B of those decisions, by
event id. The run stops at the deadline (`--duration`) or after `--max-requests` HTTP requests,
whichever comes first; requests in flight then finish. Latencies are measured by the client
(send to last byte of the response). By default each worker sends its next request as soon
as the last one is answered (closed loop: the figures are the server's saturation throughput,
and with C clients the latency is about C / throughput, queueing included); `--rate R` paces
the recommend requests at R per second in all and counts latency from when each request was
due, which is the latency a service sees at that load. At the end the server's own view,
`GET /v1/stats`, is printed against the seed's thresholds (p99 of 50 ms per recommendation,
20 ms per update).

Only loopback URLs are accepted (127.0.0.0/8, ::1, localhost): this is a tool to measure a
service on one's own machine, never to flood someone else's.

The load generator is a Python process: on a small machine it competes with the server for
CPU, so the report says how many cores the client itself used.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from banditkit import _argtypes

if TYPE_CHECKING:
    import httpx

POLICIES = ("tspar", "linear", "logistic", "linucb", "lints")
CONTEXTUAL = ("linucb", "lints")
# Rewards in [0, 1] for these policies (clicks); the others take any real reward.
BINARY_REWARD = ("tspar", "logistic")
# Distinct request bodies each run cycles through: encoded once before the clock starts, so
# that the client spends its CPU on HTTP rather than on JSON encoding.
BODY_POOL = 32
BODY_POOL_BYTES = 64 << 20
REQUEST_TIMEOUT_S = 30.0


class LoadTestError(Exception):
    """The run could not start (server unreachable, experiment missing, ...)."""


def loopback_problem(url: str) -> str | None:
    """Why `url` may not be load-tested (not http(s), not a loopback host), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"bad URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https") or not host:
        return f"bad URL {url!r}: expected http://HOST:PORT"
    if host == "localhost":
        return None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        # Another name could resolve anywhere: only the literal addresses are trusted.
        loopback = False
    if not loopback:
        return (
            f"refusing to load-test {url}: only loopback hosts are allowed "
            "(127.0.0.0/8, ::1, localhost)"
        )
    return None


@dataclass
class LoadConfig:
    url: str
    experiment: str
    duration: float = 10.0
    concurrency: int = 8
    batch: int = 1
    reward_rate: float = 0.0
    token: str | None = None
    max_requests: int | None = None
    create: str | None = None
    arms: int = 10
    n_features: int | None = None
    seed: int = 0
    rate: float | None = None  # recommend requests per second in all; None: as fast as possible


@dataclass
class Endpoint:
    """Client-side outcomes of one endpoint: latencies of successful calls, errors by kind."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)  # kind -> its first message

    def error(self, kind: str, message: str) -> None:
        self.errors[kind] += 1
        self.first_error.setdefault(kind, message)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": len(self.latencies) + sum(self.errors.values()),
            "ok": len(self.latencies),
            "errors": sum(self.errors.values()),
        }
        out.update(latency_summary(self.latencies))
        return out


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max/mean in milliseconds (None without samples)."""
    keys = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")
    if not seconds:
        return dict.fromkeys(keys)
    import numpy as np

    a = np.asarray(seconds) * 1e3
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return dict(zip(keys, map(float, (p50, p95, p99, a.max(), a.mean())), strict=True))


class _Run:
    """The state the workers share (one event loop, so no locks)."""

    def __init__(self, cfg: LoadConfig, client: httpx.AsyncClient, info: dict[str, Any]) -> None:
        self.cfg = cfg
        self.client = client
        name = quote(cfg.experiment, safe="")
        self.recommend_path = f"/v1/experiments/{name}/recommend"
        self.rewards_path = f"/v1/experiments/{name}/rewards"
        self.policy = str(info.get("policy", ""))
        self.arms = [a["arm"] for a in info.get("arms", [])]
        self.arm_index = {arm: i for i, arm in enumerate(self.arms)}
        self.bodies = request_bodies(cfg, self.policy, n_features(info, cfg))
        self.budget = cfg.max_requests if cfg.max_requests is not None else math.inf
        self.recommend = Endpoint()
        self.rewards = Endpoint()
        self.decisions = 0
        self.rewards_sent = 0
        self.rewards_accepted = 0
        self.start = 0.0
        self.unsent = 0  # paced requests still due at the deadline
        self.deadline = math.inf

    def take(self) -> bool:
        """Claim one request of the count bound, if any is left."""
        if self.budget <= 0:
            return False
        self.budget -= 1
        return True

    def reward_value(self, arm: Any, rng: random.Random) -> float:
        # Arms differ a little so that a learning policy has something to learn.
        i = self.arm_index.get(arm, 0)
        if self.policy in BINARY_REWARD:
            return 1.0 if rng.random() < 0.02 + 0.01 * i else 0.0
        return round(rng.gauss(1.0 + 0.1 * i, 0.5), 4)

    async def post(
        self, endpoint: Endpoint, path: str, body: bytes, start: float | None = None
    ) -> Any | None:
        """POST a JSON body; record the latency (from `start`, the time the request was due,
        if given) or the error; the decoded reply or None."""
        import httpx

        t0 = time.perf_counter() if start is None else start
        try:
            resp = await self.client.post(path, content=body)
        except httpx.TimeoutException:
            endpoint.error("timeout", f"no answer in {REQUEST_TIMEOUT_S:g} s")
            return None
        except httpx.HTTPError as exc:
            endpoint.error(type(exc).__name__, str(exc))
            await asyncio.sleep(0.01)  # e.g. connection refused: no hot loop
            return None
        elapsed = time.perf_counter() - t0
        if resp.status_code != 200:
            endpoint.error(f"HTTP {resp.status_code}", _error_message(resp))
            return None
        try:
            reply = resp.json()
        except ValueError:
            endpoint.error("bad JSON", resp.text[:200])
            return None
        endpoint.latencies.append(elapsed)
        return reply

    async def worker(self, index: int) -> None:
        rng = random.Random(self.cfg.seed * 100_003 + index)
        turn = index
        # Paced (--rate): this worker's requests are due every `interval` seconds, the workers
        # staggered. Latency counts from when a request was due, not from when it went out,
        # so that a server (or client) falling behind shows in the figures instead of
        # silently lowering the rate (coordinated omission).
        interval = self.cfg.concurrency / self.cfg.rate if self.cfg.rate else 0.0
        due = self.start + interval * index / self.cfg.concurrency
        while True:
            now = time.perf_counter()
            if interval and due < self.deadline <= now:
                # Still behind schedule at the deadline: say how many requests never went.
                self.unsent += math.ceil((self.deadline - due) / interval)
            if now >= self.deadline or due >= self.deadline:
                return
            if due > now:
                await asyncio.sleep(due - now)
            if not self.take():
                return
            body = self.bodies[turn % len(self.bodies)]
            turn += self.cfg.concurrency
            reply = await self.post(
                self.recommend, self.recommend_path, body, due if interval else None
            )
            due += interval
            if reply is None:
                continue
            results = reply["results"]
            self.decisions += len(results)
            if self.cfg.reward_rate <= 0:
                continue
            rewards = [
                {"event_id": r["event_id"], "reward": self.reward_value(r["arm"], rng)}
                for r in results
                if rng.random() < self.cfg.reward_rate
            ]
            # The reward follows its decision even past the deadline (a real client would
            # send it), but never past the count bound.
            if rewards and self.take():
                self.rewards_sent += len(rewards)
                reply = await self.post(
                    self.rewards, self.rewards_path, json.dumps({"rewards": rewards}).encode()
                )
                if reply is not None:
                    self.rewards_accepted += int(reply["accepted"])


def n_features(info: dict[str, Any], cfg: LoadConfig) -> int | None:
    params = info.get("params") or {}
    value = params.get("n_features", cfg.n_features)
    return None if value is None else int(value)


def request_bodies(cfg: LoadConfig, policy: str, d: int | None) -> list[bytes]:
    """Encoded `recommend` bodies of `cfg.batch` requests each (random contexts if needed)."""
    import numpy as np

    contextual = policy in CONTEXTUAL
    if contextual and not d:
        raise LoadTestError(
            f"experiment {cfg.experiment!r} is {policy} but its n_features is unknown: "
            "pass --n-features"
        )
    per_body = cfg.batch * ((d or 0) * 8 + 16)
    count = max(1, min(BODY_POOL, BODY_POOL_BYTES // per_body))
    rng = np.random.default_rng(cfg.seed)
    bodies = []
    for _ in range(count):
        if contextual:
            # 4 decimals: realistic feature values and bodies a third of full float64 repr.
            contexts = np.round(rng.standard_normal((cfg.batch, d)), 4).tolist()
            reqs = [{"id": str(i), "context": x} for i, x in enumerate(contexts)]
        else:
            reqs = [{"id": str(i)} for i in range(cfg.batch)]
        bodies.append(json.dumps({"requests": reqs}).encode())
    return bodies


def _error_message(resp: httpx.Response) -> str:
    try:
        err = resp.json()["error"]
        where = f" ({err['field']})" if err.get("field") else ""
        return f"HTTP {resp.status_code}: {err['message']}{where}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status_code}: {resp.text[:200]}"


async def _prepare(client: httpx.AsyncClient, cfg: LoadConfig) -> dict[str, Any]:
    """Create the experiment if asked, then read its description (policy, arms, params)."""
    import httpx

    name = quote(cfg.experiment, safe="")
    try:
        if cfg.create:
            params = {"n_features": cfg.n_features} if cfg.create in CONTEXTUAL else {}
            body = {
                "name": cfg.experiment,
                "policy": cfg.create,
                "arms": [f"arm{i}" for i in range(cfg.arms)],
                "params": params,
            }
            resp = await client.post("/v1/experiments", json=body)
            if resp.status_code == 409:
                raise LoadTestError(
                    f"experiment {cfg.experiment!r} already exists: drop --create to load it"
                )
            if resp.status_code not in (200, 201):
                raise LoadTestError(f"cannot create {cfg.experiment!r}: {_error_message(resp)}")
        resp = await client.get(f"/v1/experiments/{name}")
    except httpx.HTTPError as exc:
        raise LoadTestError(f"cannot reach {cfg.url}: {exc or type(exc).__name__}") from None
    if resp.status_code == 404:
        raise LoadTestError(
            f"no experiment {cfg.experiment!r} at {cfg.url}: create it, or pass --create POLICY"
        )
    if resp.status_code != 200:
        raise LoadTestError(f"cannot read {cfg.experiment!r}: {_error_message(resp)}")
    return dict(resp.json())


async def _get_json(client: httpx.AsyncClient, path: str) -> dict[str, Any] | str:
    """The decoded reply, or why there is none (the run's figures are kept either way)."""
    import httpx

    try:
        resp = await client.get(path)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if resp.status_code != 200:
        return _error_message(resp)
    return dict(resp.json())


def threshold_checks(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Server-side p99 of the recommend and rewards endpoints against the seed's thresholds."""
    thresholds = stats.get("thresholds_ms") or {"recommend": 50, "update": 20}
    latency = stats.get("latency") or {}
    out = []
    for what, suffix in (("recommend", "/recommend"), ("update", "/rewards")):
        key = next((k for k in latency if k.startswith("POST") and k.endswith(suffix)), None)
        p99 = None if key is None else latency[key].get("p99_ms")
        limit = float(thresholds.get(what, 50 if what == "recommend" else 20))
        out.append(
            {
                "what": what,
                "key": key,
                "p99_ms": p99,
                "threshold_ms": limit,
                "met": None if p99 is None else bool(p99 <= limit),
            }
        )
    return out


async def run_load(cfg: LoadConfig) -> dict[str, Any]:
    """Run the load and return the report (see `format_report`)."""
    import httpx

    headers = {"content-type": "application/json"}
    if cfg.token:
        headers["authorization"] = f"Bearer {cfg.token}"
    limits = httpx.Limits(
        max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency
    )
    async with httpx.AsyncClient(
        base_url=cfg.url.rstrip("/"),
        headers=headers,
        limits=limits,
        timeout=REQUEST_TIMEOUT_S,
        trust_env=False,  # never through a proxy: the target is this machine
    ) as client:
        info = await _prepare(client, cfg)
        run = _Run(cfg, client, info)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        run.start, run.deadline = t0, t0 + cfg.duration
        await asyncio.gather(*(run.worker(i) for i in range(cfg.concurrency)))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stats = await _get_json(client, "/v1/stats")
        state = await _get_json(client, f"/v1/experiments/{quote(cfg.experiment, safe='')}")
    requests = len(run.recommend.latencies) + len(run.rewards.latencies)
    errors = sum(run.recommend.errors.values()) + sum(run.rewards.errors.values())
    report: dict[str, Any] = {
        "url": cfg.url,
        "experiment": cfg.experiment,
        "policy": run.policy,
        "arms": len(run.arms),
        "n_features": n_features(info, cfg) if run.policy in CONTEXTUAL else None,
        "concurrency": cfg.concurrency,
        "batch": cfg.batch,
        "reward_rate": cfg.reward_rate,
        "rate": cfg.rate,
        "duration_s": cfg.duration,
        "max_requests": cfg.max_requests,
        "wall_s": wall,
        "decisions": run.decisions,
        "decisions_per_s": run.decisions / wall if wall > 0 else 0.0,
        "requests": requests,
        "requests_per_s": requests / wall if wall > 0 else 0.0,
        "errors": errors,
        "unsent": run.unsent,
        "rewards_sent": run.rewards_sent,
        "rewards_accepted": run.rewards_accepted,
        "endpoints": {"recommend": run.recommend.summary(), "rewards": run.rewards.summary()},
        "error_kinds": {
            f"{name} {kind}": n
            for name, ep in (("recommend", run.recommend), ("rewards", run.rewards))
            for kind, n in sorted(ep.errors.items())
        },
        "first_errors": {
            f"{name} {kind}": message
            for name, ep in (("recommend", run.recommend), ("rewards", run.rewards))
            for kind, message in sorted(ep.first_error.items())
        },
        "client_cpu_cores": cpu / wall if wall > 0 else 0.0,
        "machine_cores": os.cpu_count(),
    }
    if isinstance(stats, dict):
        report["server_stats"] = stats
        report["thresholds"] = threshold_checks(stats)
    else:
        report["server_stats_error"] = stats
    if isinstance(state, dict):
        report["server_experiment"] = {
            k: state.get(k) for k in ("version", "decisions", "rewards") if k in state
        }
    return report


def run(cfg: LoadConfig) -> dict[str, Any]:
    """`run_load` from synchronous code (a fresh event loop)."""
    return asyncio.run(run_load(cfg))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=True)]
    fmt = "  ".join(f"{{:>{w}}}" if i else f"{{:<{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header)] + [fmt.format(*line) for line in lines]


def format_report(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    kind = report["policy"] + (f", d={report['n_features']}" if report.get("n_features") else "")
    out = [
        f"banditkit loadtest {report['url']} experiment {report['experiment']!r} ({kind}, "
        f"{report['arms']} arms): {report['concurrency']} clients, batches of "
        f"{report['batch']}, reward rate {report['reward_rate']:g}, "
        + (f"paced at {report['rate']:g} requests/s, " if report.get("rate") else "")
        + f"{report['wall_s']:.2f} s",
        f"decisions  {report['decisions']:>12,}  {report['decisions_per_s']:>12,.0f}/s",
        f"requests   {report['requests']:>12,}  {report['requests_per_s']:>12,.1f}/s"
        f"   errors {report['errors']:,}"
        + (
            f", {report['unsent']:,} due but not sent (behind schedule)" if report["unsent"] else ""
        ),
        f"rewards    {report['rewards_accepted']:>12,}  accepted"
        f" of {report['rewards_sent']:,} sent",
        "",
        "client-side latency (ms), successful requests:",
    ]
    lines = []
    for name, ep in report["endpoints"].items():
        lines.append(
            [name, f"{ep['ok']:,}", f"{ep['errors']:,}"]
            + [_ms(ep[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        )
    out += _table(["endpoint", "ok", "errors", "p50", "p95", "p99", "max"], lines)
    for kind, n in report["error_kinds"].items():
        first = report["first_errors"].get(kind, "")
        out.append(f"  error {kind}: {n:,}" + (f" (first: {first})" if first else ""))
    out.append(
        f"client CPU: {report['client_cpu_cores']:.2f} cores of {report['machine_cores']} "
        "(the load generator shares this machine with the server)"
    )
    if "server_experiment" in report:
        s = report["server_experiment"]
        out.append(
            "server's experiment: " + ", ".join(f"{k} {v:,}" for k, v in s.items() if v is not None)
        )
    if "server_stats_error" in report:
        out.append(f"server stats unavailable: {report['server_stats_error']}")
        return "\n".join(out)
    out += ["", "server-side latency (ms), GET /v1/stats (rolling window of recent calls):"]
    latency = report["server_stats"].get("latency") or {}
    lines = [
        [
            key,
            f"{v.get('count', 0):,}",
            _ms(v.get("p50_ms")),
            _ms(v.get("p95_ms")),
            _ms(v.get("p99_ms")),
            _ms(v.get("max_ms")),
        ]
        for key, v in sorted(latency.items())
    ]
    if lines:
        out += _table(["operation", "count", "p50", "p95", "p99", "max"], lines)
    for check in report["thresholds"]:
        status = {None: "not measured", True: "met", False: "MISSED"}[check["met"]]
        out.append(
            f"seed threshold: {check['what']} p99 {_ms(check['p99_ms'])} ms "
            f"<= {check['threshold_ms']:g} ms: {status}"
        )
    return "\n".join(out)


# --- the `banditkit loadtest` subcommand ---


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


DESCRIPTION = """\
Drive a running `banditkit serve` (loopback only) with C concurrent clients sending batches of
B decisions, optionally rewarding a fraction of them, for S seconds or N requests; report
decisions/s, requests/s and p50/p95/p99/max latency per endpoint, then the server's own
latencies (GET /v1/stats) against the thresholds of 50 ms per recommendation and 20 ms per
update. Exit status: 0 without errors, 1 if any request failed, 2 for bad arguments.

example:
  banditkit serve --store sqlite:///demo.db &
  banditkit loadtest http://127.0.0.1:8000 --experiment demo --create tspar --arms 10 \\
      --duration 10 --concurrency 32 --batch 100 --reward-rate 0.1"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `loadtest` to the `banditkit` command's subparsers."""
    p = sub.add_parser(
        "loadtest",
        help="load-test a running banditkit serve (loopback only)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="URL", help="the server, e.g. http://127.0.0.1:8000")
    p.add_argument("--experiment", required=True, metavar="NAME", help="the experiment to load")
    p.add_argument(
        "--duration",
        type=_argtypes.positive_float,
        default=10.0,
        metavar="S",
        help="seconds to send requests for (default: 10)",
    )
    p.add_argument(
        "--concurrency",
        type=_argtypes.positive_int,
        default=8,
        metavar="C",
        help="concurrent clients (default: 8)",
    )
    p.add_argument(
        "--batch",
        type=_argtypes.positive_int,
        default=1,
        metavar="B",
        help="decisions per recommend request (default: 1)",
    )
    p.add_argument(
        "--max-requests",
        type=_argtypes.positive_int,
        metavar="N",
        help="stop after N HTTP requests in all (default: no bound)",
    )
    p.add_argument(
        "--rate",
        type=_argtypes.positive_float,
        metavar="R",
        help="send R recommend requests per second in all, paced; latency counts from when "
        "each was due (default: as fast as the server answers)",
    )
    p.add_argument(
        "--reward-rate",
        type=_rate,
        default=0.0,
        metavar="F",
        help="reward this share of the decisions, by event id (default: 0)",
    )
    p.add_argument(
        "--create",
        choices=POLICIES,
        metavar="POLICY",
        help="create the experiment first with this policy",
    )
    p.add_argument(
        "--arms",
        type=_argtypes.positive_int,
        metavar="K",
        help="with --create: number of arms (default: 10)",
    )
    p.add_argument(
        "--n-features",
        type=_argtypes.positive_int,
        metavar="D",
        help="with --create linucb/lints: context length",
    )
    p.add_argument(
        "--token", metavar="T", help="bearer token for writes (default: $BANDITKIT_TOKEN)"
    )
    p.add_argument(
        "--seed",
        type=_argtypes.seed,
        default=0,
        help="seed of the contexts and rewards (default: 0)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=main, subparser=p)


def config_from_args(args: argparse.Namespace) -> LoadConfig | str:
    """The run's configuration, or why the arguments do not make one."""
    if problem := loopback_problem(args.url):
        return problem
    if args.create is None and (args.arms is not None or args.n_features is not None):
        return "--arms and --n-features only apply with --create"
    if args.create is not None:
        if args.arms is not None and args.arms < 2:
            return f"--arms must be at least 2, got {args.arms}"
        if args.create in CONTEXTUAL and args.n_features is None:
            return f"--create {args.create} needs --n-features"
        if args.create not in CONTEXTUAL and args.n_features is not None:
            return f"--n-features only applies to {' and '.join(CONTEXTUAL)}"
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder) or os.path.isdir(args.json):
            return f"cannot write {args.json}"
    return LoadConfig(
        url=args.url,
        experiment=args.experiment,
        duration=args.duration,
        concurrency=args.concurrency,
        batch=args.batch,
        reward_rate=args.reward_rate,
        token=args.token if args.token is not None else os.environ.get("BANDITKIT_TOKEN"),
        max_requests=args.max_requests,
        create=args.create,
        arms=args.arms if args.arms is not None else 10,
        n_features=args.n_features,
        seed=args.seed,
        rate=args.rate,
    )


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if isinstance(cfg, str):
        print(f"banditkit loadtest: error: {cfg}", file=sys.stderr)
        return 2
    try:
        report = run(cfg)
    except LoadTestError as exc:
        print(f"banditkit loadtest: error: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if report["errors"] else 0
