"""Thompson-sampling scenarios of docs/benchmarks.md: LinearBandit and TSPar, update and win_prop,
and draw scaling, for the Rust and Python backends and the upstream baselines (thread scaling is
in `threads.py`)."""

from __future__ import annotations

import numpy as np

from banditkit.bench.timing import Row, backends, row

LINEAR_CASES = [(2, 100, 10_000), (5, 1_000, 50_000), (10, 10_000, 100_000)]
TSPAR_CASES = [(2, 1_000), (5, 10_000), (10, 100_000)]
TSPAR_DRAWS = 10_000


def linear_obs(arms: int, n_obs: int) -> dict[str, np.ndarray]:
    """n_obs rewards per arm from N(1.0 + 0.1 i, 0.5), seed 42 (docs/benchmarks.md)."""
    rng = np.random.default_rng(42)
    return {f"arm_{i}": rng.normal(1.0 + 0.1 * i, 0.5, n_obs) for i in range(arms)}


def count_obs(arms: int, n_obs: int) -> dict[str, list[int]]:
    """[n_obs, int(n_obs * (0.01 + 0.001 i))] per arm (docs/benchmarks.md)."""
    return {f"arm_{i}": [n_obs, int(n_obs * (0.01 + 0.001 * i))] for i in range(arms)}


def upstream_linear_win_prop(mu: list[float], sigma: list[float], draw: int) -> np.ndarray:
    """The upstream LinearBandit.win_prop kernel, re-created (orts' LinearBandit is
    not on PyPI): one legacy `np.random.normal` call per arm, stacked, argmax, counted."""
    legacy = np.random.normal  # noqa: NPY002 (upstream's generator, on purpose)
    samples = np.column_stack([legacy(m, s, draw) for m, s in zip(mu, sigma, strict=True)])
    winners = np.argmax(samples, axis=1)
    counts = np.zeros(len(mu))
    np.add.at(counts, winners, 1)
    return counts / draw


def _linear(quick: bool) -> list[Row]:
    rows: list[Row] = []
    for arms, n_obs, draws in LINEAR_CASES:
        case = f"{arms} arms x {draws:,} draws"
        obs = linear_obs(arms, n_obs)
        for name, mod in backends().items():
            bandit = mod.LinearBandit(seed=1)
            rows.append(
                row(
                    "linear.update",
                    f"{arms} arms x {n_obs:,} obs",
                    name,
                    lambda b=bandit, o=obs: b.update(o),
                    quick=quick,
                )
            )
            rows.append(
                row(
                    "linear.win_prop",
                    case,
                    name,
                    lambda b=bandit, d=draws: b.win_prop(draw=d),
                    quick=quick,
                    per=draws * arms,
                    unit="draw x arm",
                )
            )
        ref = backends()["python"].LinearBandit()
        ref.update(obs)
        mu, sigma = list(ref.mu.values()), list(ref.sigma.values())
        rows.append(
            row(
                "linear.win_prop",
                case,
                "upstream",
                lambda m=mu, s=sigma, d=draws: upstream_linear_win_prop(m, s, d),
                quick=quick,
                per=draws * arms,
                unit="draw x arm",
                note="orts LinearBandit kernel, re-created",
            )
        )
    rows.extend(_linear_tied(quick))
    return rows


def _linear_tied(quick: bool) -> list[Row]:
    """10 identical posteriors: every arm contends in every draw, so the Rust kernel cannot
    skip dominated arms (the worst case for it; the benchmark scenario separates the arms)."""
    rows: list[Row] = []
    arms, draws = 10, 100_000
    case = f"{arms} tied arms x {draws:,} draws"
    obs = {f"arm_{i}": [1.0] for i in range(arms)}
    for name, mod in backends().items():
        bandit = mod.LinearBandit(seed=1)
        bandit.update(obs)
        rows.append(
            row(
                "linear.win_prop",
                case,
                name,
                lambda b=bandit: b.win_prop(draw=draws),
                quick=quick,
                per=draws * arms,
                unit="draw x arm",
            )
        )
    mu, sigma = [0.5] * arms, [0.5**0.5] * arms
    rows.append(
        row(
            "linear.win_prop",
            case,
            "upstream",
            lambda: upstream_linear_win_prop(mu, sigma, draws),
            quick=quick,
            per=draws * arms,
            unit="draw x arm",
            note="orts LinearBandit kernel, re-created",
        )
    )
    return rows


def _tspar(quick: bool) -> list[Row]:
    rows: list[Row] = []
    impls = dict(backends())
    try:
        import orts

        impls["upstream"] = orts
    except ImportError:
        pass
    for arms, n_obs in TSPAR_CASES:
        obs = count_obs(arms, n_obs)
        for name, mod in impls.items():
            bandit = mod.TSPar() if name == "upstream" else mod.TSPar(seed=1)
            bandit.update(obs)
            rows.append(
                row(
                    "tspar.win_prop",
                    f"{arms} arms x {TSPAR_DRAWS:,} draws",
                    name,
                    lambda b=bandit: b.win_prop(draw=TSPAR_DRAWS),
                    quick=quick,
                    per=TSPAR_DRAWS * arms,
                    unit="draw x arm",
                    note="orts 2.5.0 TSPar" if name == "upstream" else "",
                )
            )
    return rows


def _draw_scaling(quick: bool) -> list[Row]:
    rows: list[Row] = []
    obs = linear_obs(5, 1_000)
    scales = [1_000, 10_000, 100_000, 1_000_000]
    for name, mod in backends().items():
        bandit = mod.LinearBandit(seed=1)
        bandit.update(obs)
        for draws in scales:
            rows.append(
                row(
                    "linear.draw_scaling",
                    f"5 arms x {draws:,} draws",
                    name,
                    lambda b=bandit, d=draws: b.win_prop(draw=d),
                    quick=quick,
                    per=draws * 5,
                    unit="draw x arm",
                )
            )
    return rows


def run(quick: bool) -> list[Row]:
    return _linear(quick) + _tspar(quick) + _draw_scaling(quick)
