"""The `banditkit` command: `banditkit bench` (speed), `banditkit simulate` (learning),
`banditkit store` (look into a model store, move models between stores), `banditkit serve`
(experiments over HTTP), `banditkit loadtest` (load a running `banditkit serve`), `banditkit
evaluate` (off-policy evaluation) and `banditkit tune` (search a policy's knobs)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from banditkit import _argtypes

if TYPE_CHECKING:
    from banditkit.simulate.runner import Config, TaskResult

BENCH_TOPICS = (
    "thompson",
    "threads",
    "logistic",
    "exact",
    "contextual",
    "store",
    "ensemble",
    "ope",
    "serve",
    "learners",
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `banditkit simulate: error: ...`, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fail(command: str, message: str) -> int:
    print(f"banditkit {command}: error: {message}", file=sys.stderr)
    return 2


def _bench(args: argparse.Namespace) -> int:
    from banditkit.bench import report

    topics = args.only.split(",") if args.only else list(BENCH_TOPICS)
    unknown = [t for t in topics if t not in BENCH_TOPICS]
    if unknown:
        return _fail(
            "bench", f"unknown topic(s) {', '.join(unknown)}; choose from {', '.join(BENCH_TOPICS)}"
        )
    for path in (args.json, args.markdown, args.plot):
        if problem := _argtypes.unwritable(path):
            return _fail("bench", problem)
    info = report.machine()
    print("banditkit bench: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    rows = []
    for topic in topics:
        try:
            mod = importlib.import_module(f"banditkit.bench.{topic}")
        except ImportError as exc:
            print(f"[{topic}] skipped: {exc}", file=sys.stderr)
            continue
        print(
            f"[{topic}] running{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True
        )
        rows.extend(mod.run(args.quick))
    print(report.table(rows))
    print()
    print(report.targets_table(rows))
    print(f"\n{report.SCENARIOS_NOTE}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "rows": rows}, f, indent=1)
    if args.markdown:
        command = "banditkit bench" + (" --quick" if args.quick else "")
        with open(args.markdown, "w") as f:
            f.write(report.markdown(rows, command))
    if args.plot:
        from banditkit.bench.plot import speedup_plot

        speedup_plot(rows, args.plot, info)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from banditkit.simulate import report
    from banditkit.simulate.envs import ENVIRONMENTS
    from banditkit.simulate.policies import POLICIES, unavailable_reason
    from banditkit.simulate.runner import Config

    if args.arms < 2:
        return _fail("simulate", f"--arms must be at least 2, got {args.arms}")
    if args.batch > args.rounds:
        return _fail("simulate", f"--batch ({args.batch}) cannot exceed --rounds ({args.rounds})")
    if args.plot and not args.plot.lower().endswith(".png"):
        return _fail(
            "simulate", f"--plot writes a PNG file: give a name ending in .png, got {args.plot!r}"
        )
    for path in (args.json, args.plot):
        if problem := _argtypes.unwritable(path):
            return _fail("simulate", problem)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        return _fail("simulate", "--plot needs matplotlib: pip install matplotlib")
    if args.ray is not None and importlib.util.find_spec("ray") is None:
        from banditkit.simulate.on_ray import INSTALL_HINT

        return _fail("simulate", f"--ray needs Ray: {INSTALL_HINT}")
    if args.backend != "auto":
        try:
            importlib.import_module(
                "banditkit_rs" if args.backend == "rust" else "banditkit.python"
            )
        except ImportError as exc:
            return _fail("simulate", f"the {args.backend} backend is not available: {exc}")

    requested: list[str] | None = None
    if args.policies is not None:
        requested = [p.strip() for p in args.policies.split(",") if p.strip()]
        if not requested:
            return _fail("simulate", "--policies is empty")
        unknown = [p for p in requested if p not in POLICIES]
        if unknown:
            return _fail(
                "simulate",
                f"unknown policy {', '.join(unknown)}; choose from {', '.join(POLICIES)}",
            )
        if len(set(requested)) != len(requested):
            return _fail("simulate", f"a policy is listed twice in {args.policies!r}")

    # One Config per environment (a sweep when --env lists several).
    cfgs: list[Config] = []
    all_skipped: list[dict[str, str]] = []
    for env in args.env:
        binary = ENVIRONMENTS[env].binary_rewards
        wanted = requested or [
            p for p in POLICIES if unavailable_reason(p, binary, args.backend) is None
        ]
        skipped = {p: r for p in wanted if (r := unavailable_reason(p, binary, args.backend))}
        where = f" on {env}" if len(args.env) > 1 else ""
        for name, reason in skipped.items():
            print(f"banditkit simulate: skipping {name}{where}: {reason}", file=sys.stderr)
        chosen = tuple(p for p in wanted if p not in skipped)
        if not chosen:
            return _fail("simulate", f"no policy can run on the {env} environment")
        cfgs.append(
            Config(
                env=env,
                policies=chosen,
                arms=args.arms,
                rounds=args.rounds,
                batch=args.batch,
                repeats=args.repeats,
                seed=args.seed,
                features=args.features,
                window=args.window,
                backend=args.backend,
                jobs=args.jobs,
            )
        )
        all_skipped.append(skipped)
    try:
        results = _run_with_progress(cfgs, quiet=args.quiet, ray_address=args.ray)
    except ConnectionError as exc:  # ray.init could not reach the cluster
        return _fail("simulate", f"cannot connect to the Ray cluster: {exc}")
    docs = [
        report.summarise(cfg, res, skipped)
        for cfg, res, skipped in zip(cfgs, results, all_skipped, strict=True)
    ]
    print("\n\n".join(report.table(doc) for doc in docs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(docs[0] if len(docs) == 1 else {"environments": docs}, f, indent=1)
    if args.plot:
        from banditkit.simulate.plot import regret_plot

        for doc, path in zip(docs, sweep_plot_paths(args.plot, args.env), strict=True):
            regret_plot(doc, path)
    failed = [
        name + (f" on {doc['environment']['name']}" if len(docs) > 1 else "")
        for doc in docs
        for name in doc["failures"]
    ]
    if failed:
        print(
            f"banditkit simulate: policies raised errors: {', '.join(failed)} (see the table)",
            file=sys.stderr,
        )
        return 1
    return 0


def sweep_plot_paths(path: str, envs: list[str]) -> list[str]:
    """The plot's path for one environment; `regret-<env>.png` for each of a sweep's."""
    if len(envs) == 1:
        return [path]
    stem = path[: -len(".png")]
    return [f"{stem}-{env}.png" for env in envs]


def _environments(text: str) -> list[str]:
    """--env: one environment or a comma-separated list of distinct ones."""
    from banditkit.simulate.envs import ENVIRONMENTS

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ENVIRONMENTS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown environment {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(ENVIRONMENTS)}"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"an environment is listed twice in {text!r}")
    return names


def _run_with_progress(
    cfgs: list[Config], quiet: bool, ray_address: str | None = None
) -> list[list[TaskResult]]:
    """`run_all` of each config (or all of them as one `run_sweep_on_ray` when `ray_address`
    is not None) with a progress bar on a terminal (none when piped or with --quiet)."""
    from banditkit.simulate.runner import run_all

    def run(progress: Callable[[int], None] | None) -> list[list[TaskResult]]:
        if ray_address is None:
            return [run_all(cfg, progress) for cfg in cfgs]
        from banditkit.simulate.on_ray import run_sweep_on_ray

        return run_sweep_on_ray(cfgs, ray_address, progress)

    show = not quiet and sys.stderr.isatty()
    total = sum(cfg.rounds * cfg.repeats * len(cfg.policies) for cfg in cfgs)
    if not show:
        return run(None)
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a convenience: run without it
        return run(None)

    with tqdm(total=total, unit="round", unit_scale=True, desc="simulate", file=sys.stderr) as bar:
        return run(bar.update)


SIMULATE_DESCRIPTION = """\
Run policies against a simulated environment and report how well they learn: cumulative
regret (mean and 95% interval over repeats), optimal-arm rate, decisions per second, and
memory (peak RSS and its growth over the rounds, which exposes state that grows without bound).

example:
  banditkit simulate --env bernoulli --policies ts,logistic,linear,random --rounds 5000 \\
      --plot regret.png"""


def _listing(title: str, items: dict[str, str]) -> str:
    """An aligned, wrapped `name  description` list for --help."""
    import textwrap

    width = max(len(name) for name in items) + 4
    lines = [f"{title}:"]
    for name, text in items.items():
        wrapped = textwrap.wrap(text, 96 - width)
        lines.append(f"  {name:<{width - 2}}{wrapped[0]}")
        lines += [" " * width + more for more in wrapped[1:]]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from banditkit.simulate.envs import ENVIRONMENTS
    from banditkit.simulate.policies import BACKENDS, POLICIES

    parser = _Parser(prog="banditkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser(
        "bench",
        help="time the benchmark scenarios, Rust vs Python vs peers",
        description="Time the benchmark scenarios of docs/benchmarks.md (what is measured, "
        "against which baselines, and the targets) and report same-run ratios.",
    )
    bench.add_argument("--quick", action="store_true", help="fewer repeats, for a short run")
    bench.add_argument("--json", metavar="FILE", help="save the rows and machine facts as JSON")
    bench.add_argument("--markdown", metavar="FILE", help="write the BENCHMARKS.md body")
    bench.add_argument("--plot", metavar="FILE.png", help="speedup bars of the Rust backend")
    bench.add_argument(
        "--only", metavar="TOPICS", help=f"comma-separated subset of {','.join(BENCH_TOPICS)}"
    )
    bench.set_defaults(func=_bench, subparser=bench)

    sim = sub.add_parser(
        "simulate",
        help="run policies against simulated environments and report how well they learn",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=SIMULATE_DESCRIPTION,
        epilog=_listing("policies", {n: p.description for n, p in POLICIES.items()})
        + "\n\n"
        + _listing("environments", {n: e.description for n, e in ENVIRONMENTS.items()}),
    )
    sim.add_argument(
        "--env",
        type=_environments,
        metavar="ENV[,ENV...]",
        default=["bernoulli"],
        help="the simulated world, or a comma-separated list for a sweep: one report (and "
        "plot, suffixed -ENV) per environment (default: bernoulli)",
    )
    sim.add_argument(
        "--policies",
        metavar="LIST",
        help="comma-separated policies (default: every one the environment allows)",
    )
    sim.add_argument(
        "--arms", type=_argtypes.positive_int, default=5, help="number of arms (default: 5)"
    )
    sim.add_argument(
        "--rounds",
        type=_argtypes.positive_int,
        default=10_000,
        help="rounds per repeat (default: 10000)",
    )
    sim.add_argument(
        "--batch",
        type=_argtypes.positive_int,
        default=10,
        help="rounds between posterior updates, as an A/B test updates its split "
        "(default: 10; ORTS needs batches that observe several arms)",
    )
    sim.add_argument(
        "--repeats",
        type=_argtypes.positive_int,
        default=10,
        help="independent repeats, for the intervals (default: 10)",
    )
    sim.add_argument("--seed", type=_argtypes.seed, default=0, help="master seed (default: 0)")
    sim.add_argument(
        "--features",
        type=_argtypes.positive_int,
        default=5,
        help="context length of the linear environment (default: 5)",
    )
    sim.add_argument(
        "--window",
        type=_argtypes.positive_int,
        default=1000,
        help="window of the *-window policies, per arm (default: 1000)",
    )
    sim.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="rust, python, or auto (banditkit's choice; the default)",
    )
    sim.add_argument(
        "--jobs",
        type=_argtypes.positive_int,
        default=os.cpu_count() or 1,
        help="worker processes for the repeats (default: all cores; ignored with --ray)",
    )
    sim.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run the repeats as tasks on a Ray cluster (host:port; without ADDRESS: "
        "RAY_ADDRESS, the cluster started on this machine, or a new local one); same results "
        "as a local run. Needs pip install 'banditkit[distributed]'",
    )
    sim.add_argument("--json", metavar="FILE", help="write the full results as JSON")
    sim.add_argument("--plot", metavar="FILE.png", help="cumulative regret curves with bands")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=_simulate, subparser=sim)

    from banditkit.store.cli import add_parser as add_store_parser

    add_store_parser(sub, _Parser)

    from banditkit.serve.cli import add_parser as add_serve_parser

    add_serve_parser(sub)
    from banditkit.serve.loadtest import add_parser as add_loadtest_parser

    add_loadtest_parser(sub, _Parser)
    from banditkit.ope.cli import add_parser as add_evaluate_parser

    add_evaluate_parser(sub)
    from banditkit.tune.cli import add_parser as add_tune_parser

    add_tune_parser(sub, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if extra:  # reported by the subcommand, so the message names it
        args.subparser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
