"""`banditkit evaluate`: off-policy evaluation of a policy on a log, from the command line.

    banditkit evaluate LOG --policy uniform            # LOG: .npz, .csv, .parquet
    banditkit evaluate sqlite:///store.db --name home --policy greedy
    banditkit evaluate --simulate --repeats 100        # bias and RMSE against a known truth

Policies: uniform, logged (on-policy check), greedy / linucb / lints fitted on the log's own
per-arm ridge reward model, or a .npz file holding action_dist (n, K). Estimators that need a
reward model get a cross-fitted per-arm ridge (`--folds`). See docs/ope.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from banditkit import _argtypes
from banditkit.ope.estimators import ESTIMATORS


def _fail(message: str) -> int:
    print(f"banditkit evaluate: error: {message}", file=sys.stderr)
    return 2


def _estimators(text: str | None, lambda_: float) -> list[Any]:
    names = list(ESTIMATORS) if text is None else [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in ESTIMATORS]
    if unknown:
        raise ValueError(
            f"unknown estimator(s) {', '.join(unknown)}; choose from {', '.join(ESTIMATORS)}"
        )
    return [ESTIMATORS[n]() if n == "DM" else ESTIMATORS[n](lambda_) for n in names]


def _load(args: argparse.Namespace) -> dict[str, Any]:
    from banditkit.ope.loaders import from_store, load_logged

    if "://" in args.log:
        if not args.name:
            raise ValueError("a store URL needs --name (whose event log to evaluate on)")
        return from_store(args.log, args.name)
    if not os.path.exists(args.log):
        raise ValueError(f"no such file: {args.log}")
    return load_logged(args.log)


def plot(rows: list[dict[str, Any]], path: str, title: str, simulated: bool) -> None:
    """Estimates with their intervals (or, simulated, bias +- 1.96 se and RMSE) as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = [r["estimator"] for r in rows]
    y = list(range(len(rows)))
    if simulated:
        bias = [r["bias"] for r in rows]
        half = [1.96 * r["bias_se"] for r in rows]
        ax.errorbar(bias, y, xerr=half, fmt="o", capsize=4, label="bias (95% interval)")
        ax.plot([r["rmse"] for r in rows], y, "x", label="RMSE")
        ax.axvline(0.0, color="0.5", lw=0.8)
        ax.legend()
        ax.set_xlabel("estimate - true value")
    else:
        values = [r["value"] for r in rows]
        lo = [r["boot_lower"] if r["boot_lower"] is not None else r["lower"] for r in rows]
        hi = [r["boot_upper"] if r["boot_upper"] is not None else r["upper"] for r in rows]
        err = [
            [v - a for v, a in zip(values, lo, strict=True)],
            [b - v for v, b in zip(values, hi, strict=True)],
        ]
        ax.errorbar(values, y, xerr=err, fmt="o", capsize=4)
        ax.set_xlabel("estimated policy value (95% interval)")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_title(title)
    fig.savefig(path)


def run(args: argparse.Namespace) -> int:
    from banditkit.ope import policies
    from banditkit.ope.evaluate import evaluate
    from banditkit.ope.reward_model import RewardModel
    from banditkit.ope.synthetic import SyntheticBandit, simulate

    if args.simulate == (args.log is not None):
        return _fail("give either a LOG to evaluate on or --simulate (not both)")
    if args.plot and not args.plot.lower().endswith(".png"):
        return _fail(f"--plot writes a PNG file: give a name ending in .png, got {args.plot!r}")
    for path in (args.json, args.plot):
        if problem := _argtypes.unwritable(path):
            return _fail(problem)
    if not 0 < args.alpha < 1:
        return _fail(f"--alpha must be in (0, 1), got {args.alpha}")
    try:
        ests = _estimators(args.estimators, args.clip)
        if args.simulate:
            if args.arms < 2:
                raise ValueError(f"--arms must be at least 2, got {args.arms}")
            world = SyntheticBandit(args.arms, args.features, seed=args.seed)
            rows = simulate(
                world, args.events, args.repeats, ests, seed=args.seed, alpha=args.alpha
            )
            title = (
                f"{args.repeats} synthetic logs of {args.events} events, {args.arms} arms: "
                f"true value {rows[0]['true_value']:.4g}"
            )
            settings = {k: v for k, v in vars(args).items() if k not in ("func", "subparser")}
            doc: dict[str, Any] = {"simulate": settings, "rows": list(rows)}
        else:
            log = _load(args)
            if policies.logged_weights_only(args.policy, log):
                if args.estimators is None:
                    ests = [e for e in ests if not e.needs_model]
                elif any(e.needs_model for e in ests):
                    raise ValueError(
                        "the log keeps only the logged arm's probability, so the logged policy's "
                        "full distribution is unknown: use IPS or SNIPS (or add behaviour_dist)"
                    )
            pi = policies.action_dist(args.policy, log, alpha=args.exploration)
            model = RewardModel(log["n_actions"], n_folds=args.folds, seed=args.seed)
            n_boot = None if args.n_bootstrap == 0 else args.n_bootstrap
            rows = evaluate(
                log,
                pi,
                ests,
                alpha=args.alpha,
                n_bootstrap=n_boot,
                seed=args.seed,
                reward_model=model,
            )
            n, k = log["reward"].size, log["n_actions"]
            title = f"policy {args.policy} on {os.path.basename(args.log)} ({n} events, {k} arms)"
            doc = {
                "log": args.log,
                "policy": args.policy,
                "events": n,
                "arms": k,
                "rows": list(rows),
            }
    except (ValueError, ImportError, OSError) as exc:
        return _fail(str(exc))
    print(title)
    print(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, default=lambda v: None if v is None else str(v))
    if args.plot:
        plot(list(rows), args.plot, title, args.simulate)
    return 0


def _non_negative(text: str) -> int:
    return 0 if text.strip() == "0" else _argtypes.positive_int(text)


def _clip(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or inf, got {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or inf, got {text!r}")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add `evaluate` to the `banditkit` command's subparsers."""
    p = sub.add_parser(
        "evaluate",
        help="off-policy evaluation: estimate a policy's value from a log",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("log", nargs="?", metavar="LOG", help=".npz/.csv/.parquet log or a store URL")
    p.add_argument("--name", help="with a store URL: whose event log")
    p.add_argument(
        "--policy",
        default="uniform",
        help=f"{', '.join(['uniform', 'logged', 'greedy', 'linucb', 'lints'])} or FILE.npz "
        "(default: uniform)",
    )
    p.add_argument("--estimators", metavar="LIST", help=f"subset of {','.join(ESTIMATORS)}")
    p.add_argument("--clip", type=_clip, default=math.inf, help="weight cap lambda (default: inf)")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - interval level (default: 0.05)")
    p.add_argument(
        "--n-bootstrap",
        type=_non_negative,
        default=1000,
        help="resamples, 0 for none (default: 1000)",
    )
    p.add_argument("--seed", type=_non_negative, default=0, help="seed (default: 0)")
    p.add_argument(
        "--folds", type=_argtypes.positive_int, default=5, help="cross-fitting folds (default: 5)"
    )
    p.add_argument(
        "--exploration",
        type=float,
        default=1.0,
        help="linucb bonus / lints posterior scale of the fitted policies (default: 1.0)",
    )
    p.add_argument("--json", metavar="FILE", help="write the table as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="estimates with their intervals")
    p.add_argument("--simulate", action="store_true", help="bias and RMSE on synthetic logs")
    p.add_argument(
        "--repeats",
        type=_argtypes.positive_int,
        default=100,
        help="--simulate: logs (default: 100)",
    )
    p.add_argument(
        "--events", type=_argtypes.positive_int, default=1000, help="--simulate: events per log"
    )
    p.add_argument(
        "--arms", type=_argtypes.positive_int, default=10, help="--simulate: arms (default: 10)"
    )
    p.add_argument(
        "--features", type=_argtypes.positive_int, default=5, help="--simulate: context length"
    )
    p.set_defaults(func=run, subparser=p)
    return p
