"""LogisticBandit scenarios of docs/benchmarks.md: `update` (Rust, the NumPy reference, and a
SciPy Newton-CG solve of the same objective as upstream does it) and `win_prop` (Rust, NumPy,
and the installed orts library if any)."""

from __future__ import annotations

import numpy as np

from banditkit.bench.thompson import count_obs
from banditkit.bench.timing import Row, backends, row
from banditkit.python import _logistic_math as lm
from banditkit.python.logistic import LogisticBandit as ReferenceLogisticBandit

CASES = [(2, 1_000, 10_000), (5, 10_000, 50_000), (10, 100_000, 100_000)]


def scipy_newton_cg(problem: lm.MapProblem) -> np.ndarray:
    """Upstream's solver: scipy's Newton-CG from the same start, with the exact gradient and a
    Hessian-vector product, stopping at its default-like tolerance (about 1e-5)."""
    from scipy.optimize import minimize

    def hessp(w: np.ndarray, v: np.ndarray) -> np.ndarray:
        return problem.gradient_hessian(w)[1] @ v

    result = minimize(
        problem.objective,
        problem.starting_point(),
        jac=lambda w: problem.gradient_hessian(w)[0],
        hessp=hessp,
        method="Newton-CG",
        tol=1e-5,
    )
    return result.x


class ScipyLogisticBandit(ReferenceLogisticBandit):
    """The reference update with the MAP solved by SciPy Newton-CG instead of our Newton."""

    _solve = staticmethod(scipy_newton_cg)


def _orts():
    try:
        import orts

        return orts
    except ImportError:
        return None


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    impls_by_name = backends()
    orts = _orts()
    for arms, n_obs, draws in CASES:
        obs = count_obs(arms, n_obs)
        update_case = f"{arms} arms x {n_obs:,} obs"
        impls = {name: mod.LogisticBandit for name, mod in impls_by_name.items()}
        impls["scipy-newton-cg"] = ScipyLogisticBandit
        for name, cls in impls.items():
            rows.append(
                row(
                    "logistic.update",
                    update_case,
                    name,
                    lambda c=cls, o=obs: c().update(o),
                    quick=quick,
                )
            )
        case = f"{arms} arms x {draws:,} draws"
        for name, mod in impls_by_name.items():
            bandit = mod.LogisticBandit(seed=1)
            bandit.update(obs)
            rows.append(
                row(
                    "logistic.win_prop",
                    case,
                    name,
                    lambda b=bandit, d=draws: b.win_prop(draw=d),
                    quick=quick,
                    per=draws * arms,
                    unit="draw x arm",
                )
            )
        if orts is not None:
            upstream = orts.LogisticBandit()
            upstream.update(obs)
            rows.append(
                row(
                    "logistic.win_prop",
                    case,
                    f"orts-{orts.__version__}",
                    lambda u=upstream, d=draws: u.win_prop(draw=d),
                    quick=quick,
                    per=draws * arms,
                    unit="draw x arm",
                )
            )
    return rows
