"""`banditkit tune POLICY`: search a policy's knobs with Optuna (docs/tune.md)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from banditkit import _argtypes
from banditkit.tune.spaces import SPACES

INSTALL = "pip install 'banditkit[distributed]'"

DESCRIPTION = """\
Search a policy's knobs with Optuna. A trial plays the policy with one setting of its knobs
and measures either its regret on simulated worlds (banditkit simulate's environments, the same
worlds and seeds for every trial) or, with --log, the DR estimate of its value on the last part
of a logged dataset after fitting it on the first part. Trial 0 plays the default knobs, so the
best trial is never worse than them. The study is kept in the store's database (--store) and
continues when run again with the same --study. Prints the best knobs, writes them as a
`banditkit serve` config (--config) and plots the history (--plot).

examples:
  banditkit tune linucb --trials 50 --env linear --rounds 5000 --plot history.png
  banditkit tune lints --trials 50 --log logs.parquet --study lints-logs
  banditkit tune linucb --trials 200 --ray ray://head:10001 --parallel 16"""


def _fail(message: str, code: int = 2) -> int:
    print(f"banditkit tune: error: {message}", file=sys.stderr)
    return code


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `tune` to the `banditkit` command's subparsers."""
    from banditkit.simulate.envs import ENVIRONMENTS
    from banditkit.simulate.policies import BACKENDS

    p = sub.add_parser(
        "tune",
        help="search a policy's knobs with Optuna (simulated regret or off-policy value)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="policies: " + ", ".join(SPACES) + " (the learners when the backend has them)",
    )
    p.add_argument("policy", metavar="POLICY", help="a banditkit simulate policy name")
    p.add_argument(
        "--trials", type=_argtypes.positive_int, default=20, help="trials to run (default: 20)"
    )
    p.add_argument(
        "--study", help="study name; an existing one continues (default: POLICY-OBJECTIVE)"
    )
    p.add_argument(
        "--store",
        default="banditkit.db",
        metavar="PATH|URL",
        help="SQLite file or postgresql:// URL holding the study (default: banditkit.db)",
    )
    p.add_argument("--seed", type=_argtypes.seed, default=0, help="master seed (default: 0)")
    p.add_argument(
        "--backend", choices=BACKENDS, default="auto", help="rust, python or auto (default)"
    )
    sim = p.add_argument_group("objective: simulated regret (the default)")
    sim.add_argument(
        "--env", choices=list(ENVIRONMENTS), default="linear", help="environment (default: linear)"
    )
    sim.add_argument("--arms", type=_argtypes.positive_int, default=5, help="arms (default: 5)")
    sim.add_argument(
        "--rounds", type=_argtypes.positive_int, default=2000, help="rounds (default: 2000)"
    )
    sim.add_argument(
        "--batch", type=_argtypes.positive_int, default=10, help="rounds per update (default: 10)"
    )
    sim.add_argument(
        "--repeats", type=_argtypes.positive_int, default=5, help="worlds per trial (default: 5)"
    )
    sim.add_argument(
        "--features", type=_argtypes.positive_int, default=5, help="linear env's context length"
    )
    sim.add_argument(
        "--window",
        type=_argtypes.positive_int,
        default=1000,
        help="default window of the *-window policies (default: 1000)",
    )
    ope = p.add_argument_group("objective: off-policy value on a log (with --log)")
    ope.add_argument("--log", metavar="FILE|URL", help=".npz/.csv/.parquet log or a store URL")
    ope.add_argument("--name", help="with a store URL as --log: whose event log")
    ope.add_argument(
        "--train-fraction",
        type=_fraction,
        default=0.5,
        help="first part of the log the policy is fitted on (default: 0.5)",
    )
    run = p.add_argument_group("where the trials run")
    run.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run trials as Ray tasks (ADDRESS of the cluster; none: RAY_ADDRESS or a local one)",
    )
    run.add_argument(
        "--parallel",
        type=_argtypes.positive_int,
        default=4,
        help="trials asked at once (run at once on Ray); the same value gives the same trials "
        "locally and on Ray (default: 4)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--config", metavar="FILE.toml", help="serve config (default: STUDY.toml)")
    out.add_argument("--plot", metavar="FILE.png", help="optimisation history")
    out.add_argument("--quiet", action="store_true", help="no line per trial")
    p.set_defaults(func=run_command, subparser=p)
    return p


def _check(args: argparse.Namespace) -> str | None:
    """Why the arguments cannot run (before anything is imported, opened or written)."""
    if args.policy not in SPACES:
        return f"unknown policy {args.policy!r}; tune can search {', '.join(SPACES)}"
    if args.backend != "auto":
        import importlib

        try:
            importlib.import_module(
                "banditkit_rs" if args.backend == "rust" else "banditkit.python"
            )
        except ImportError as exc:
            return f"the {args.backend} backend is not available: {exc}"
    if reason := SPACES[args.policy].available(args.backend):
        return f"cannot tune {args.policy}: {reason}"
    if args.arms < 2:
        return f"--arms must be at least 2, got {args.arms}"
    if args.batch > args.rounds:
        return f"--batch ({args.batch}) cannot exceed --rounds ({args.rounds})"
    if args.name is not None and (args.log is None or "://" not in args.log):
        return "--name goes with a store URL as --log"
    if args.plot and not args.plot.lower().endswith(".png"):
        return f"--plot writes a PNG file: give a name ending in .png, got {args.plot!r}"
    for path in (args.config, args.plot):
        if problem := _argtypes.unwritable(path):
            return problem
    return None


def run_command(args: argparse.Namespace) -> int:
    if problem := _check(args):
        return _fail(problem)
    try:
        import optuna
    except ImportError:
        return _fail(f"banditkit tune needs optuna: {INSTALL}")
    if args.ray is not None:
        try:
            import ray  # noqa: F401
        except ImportError:
            return _fail(f"--ray needs ray: {INSTALL}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    from banditkit.tune import objective, serveconfig, study
    from banditkit.tune.objective import Settings

    settings = Settings(
        policy=args.policy,
        objective="regret" if args.log is None else "ope",
        backend=args.backend,
        seed=args.seed,
        env=args.env,
        arms=args.arms,
        rounds=args.rounds,
        batch=args.batch,
        repeats=args.repeats,
        features=args.features,
        window=args.window,
        log=None if args.log is None else _log_source(args.log),
        name=args.name,
        train_fraction=args.train_fraction,
    )
    name = args.study or f"{args.policy}-{settings.objective}"
    config_path = args.config or serveconfig.experiment_name(name) + ".toml"
    if problem := _argtypes.unwritable(config_path):
        return _fail(problem)
    space = SPACES[args.policy]
    try:
        defaults = space.defaults(args.backend, settings.context())
        data = objective.load_log(settings) if settings.objective == "ope" else None
        if data is not None:  # the study is tied to the log's content, not only its name
            settings = dataclasses.replace(settings, log_digest=data.digest)
        url, storage = study.open_storage(args.store)
        the_study = study.load_or_create(storage, name, settings, defaults)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))

    before = study.finished(the_study)
    so_far = f"{before} trials so far" if before else "a new study"
    print(f"banditkit tune: study {name!r} in {serveconfig.without_password(url)}, {so_far}; "
          f"value: {settings.what()}", file=sys.stderr)  # fmt: skip
    if args.ray is not None:
        runner = study.ray_runner(settings, data, args.ray or None)
    else:
        runner = study.local_runner(settings, data)
    try:
        with runner as run:
            study.run_trials(
                the_study,
                settings,
                defaults,
                args.trials,
                args.parallel,
                run,
                report=(lambda done: None) if args.quiet else _report,
            )
        best, default_trial = study.best_and_defaults(the_study)
        knobs = best.user_attrs[study.KNOBS_ATTR]
        experiment = _experiment(settings, name, knobs, data)
    except study.TuneError as exc:
        return _fail(str(exc), 1)
    total = study.finished(the_study)
    print(_summary(total, settings, best, default_trial, knobs, total - before))
    comments = [
        f"banditkit tune: study {name!r}, best of {total} trials: trial "
        f"{best.number}, value {best.value:.6g} ({settings.what()})",
        f"banditkit serve --config {os.path.basename(config_path)} creates the [experiment] "
        "below in the store (if it is not there yet) and serves it (docs/tune.md)",
    ]
    with open(config_path, "w") as f:
        f.write(serveconfig.render(url, experiment, comments))
    print(f"serve config: {config_path}")
    if args.plot:
        from banditkit.tune.plot import history_plot

        done = the_study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        ylabel = "mean cumulative regret" if settings.objective == "regret" else "DR value"
        title = f"{name}: {args.policy}, {settings.objective} ({len(done)} trials)"
        history_plot(done, settings.direction, title, ylabel, args.plot)
        print(f"plot: {args.plot}")
    return 0


def _log_source(log: str) -> str:
    """A log file made absolute (Ray workers and a resumed study may start elsewhere)."""
    return log if "://" in log else os.path.abspath(log)


def _report(done: Any) -> None:
    knobs = ", ".join(f"{k}={_fmt(v)}" for k, v in done.knobs.items())
    result = f"{done.value:.6g}" if done.error is None else f"failed: {done.error}"
    print(f"trial {done.number}: {result}  ({knobs})", file=sys.stderr, flush=True)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _summary(
    total: int, settings: Any, best: Any, defaults: Any, knobs: dict[str, Any], new: int
) -> str:
    lines = [f"{total} trials ({new} in this run)"]
    if defaults is not None:
        lines.append(f"default knobs (trial {defaults.number}): {defaults.value:.6g}")
    line = f"best (trial {best.number}): {best.value:.6g}"
    if defaults is not None and best.number == defaults.number:
        line += " (the default knobs)"
    elif defaults is not None and defaults.value != 0:
        gain = (defaults.value - best.value) / abs(defaults.value)
        if settings.direction == "maximize":
            gain = -gain
        line += f" ({100 * gain:.1f}% better than the defaults)"
    lines.append(line)
    width = max(len(k) for k in knobs)
    lines += [f"  {k:<{width}}  {_fmt(v)}" for k, v in knobs.items()]
    return "\n".join(lines)


def _experiment(settings: Any, name: str, knobs: dict[str, Any], data: Any) -> dict[str, Any]:
    """The POST /v1/experiments body serving the tuned policy."""
    import numpy as np

    from banditkit.serve.policies import POLICIES as SERVED
    from banditkit.simulate.envs import make_env
    from banditkit.tune.serveconfig import experiment_name

    space = SPACES[settings.policy]
    if data is not None:
        arms, n_features = data.arms, int(data.context.shape[1])
    else:
        env = make_env(settings.env, settings.arms, 1, np.random.default_rng(0), settings.features)
        arms, n_features = list(range(settings.arms)), env.n_features
    params = {"n_features": n_features, **knobs}
    served = SERVED.get(space.serve_policy)
    if served is None:
        print(f"banditkit tune: note: banditkit serve has no {space.serve_policy} policy yet",
              file=sys.stderr)  # fmt: skip
    else:
        from banditkit.serve.errors import InvalidInput
        from banditkit.tune.study import TuneError

        try:
            served.parse_params(params)  # checked as serve will check them
        except InvalidInput as exc:
            raise TuneError(f"banditkit serve refuses the best knobs: {exc}") from None
    return {
        "name": experiment_name(name),
        "policy": space.serve_policy,
        "arms": arms,
        "params": params,
    }
