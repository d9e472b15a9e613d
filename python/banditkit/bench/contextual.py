"""Linear contextual scenario of docs/benchmarks.md (a published benchmark's loop, made fair).

3 arms; d = 387 and d = 67; contexts generated before timing; 100 warm-up rounds; then one
event per Python call: `select` (QPS = 1 / median_s) and `select` + `update` (UPS), plus the
batch path `predict` on 10,000 contexts. Implementations: the Rust and Python backends, a tight
NumPy Sherman-Morrison loop (the published design without its per-update bookkeeping), and
MABWiser / contextualbandits LinUCB when they are importable (never installed by this module).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from banditkit.bench.timing import Row, row

CASES = [387, 67]
N_ARMS = 3
N_CONTEXTS = 2000
WARMUP = 100
BATCH = 10_000


class NumpyShermanMorrison:
    """The tightest NumPy LinUCB we could write: cached inverse, O(d) theta update."""

    def __init__(self, n_arms: int, d: int, alpha: float = 1.0):
        self.alpha = alpha
        self.a_inv = [np.eye(d) for _ in range(n_arms)]
        self.theta = [np.zeros(d) for _ in range(n_arms)]

    def select(self, x: np.ndarray) -> int:
        scores = [
            t @ x + self.alpha * np.sqrt(x @ a @ x)
            for t, a in zip(self.theta, self.a_inv, strict=True)
        ]
        return int(np.argmax(scores))

    def update(self, k: int, x: np.ndarray, r: float) -> None:
        u = self.a_inv[k] @ x
        denom = 1.0 + x @ u
        self.theta[k] += u * ((r - x @ self.theta[k]) / denom)
        self.a_inv[k] -= np.outer(u, u / denom)

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = np.stack(
            [
                X @ t + self.alpha * np.sqrt(((X @ a) * X).sum(axis=1))
                for t, a in zip(self.theta, self.a_inv, strict=True)
            ],
            axis=1,
        )
        return np.argmax(scores, axis=1)


class Adapter:
    """select(x) -> arm and update(arm, x, r) over any implementation."""

    def __init__(self, select: Callable, update: Callable, predict: Callable):
        self.select, self.update, self.predict = select, update, predict


def implementations(d: int) -> dict[str, Adapter]:
    import banditkit.python as py_backend

    out: dict[str, Adapter] = {}
    modules = {"python": py_backend}
    try:
        import banditkit_rs

        modules = {"rust": banditkit_rs, **modules}
    except ImportError:
        pass
    for name, mod in modules.items():
        b = mod.LinUCB(list(range(N_ARMS)), d, alpha=1.0, seed=0)
        out[name] = Adapter(b.select, b.update, b.predict)
    sm = NumpyShermanMorrison(N_ARMS, d)
    out["numpy-sherman-morrison"] = Adapter(sm.select, sm.update, sm.predict)
    try:  # optional peers: only if already installed
        from mabwiser.mab import MAB, LearningPolicy

        mab = MAB(list(range(N_ARMS)), LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0))
        rng = np.random.default_rng(1)
        mab.fit(rng.integers(0, N_ARMS, 10).tolist(), rng.random(10), rng.standard_normal((10, d)))
        out["mabwiser"] = Adapter(
            lambda x: mab.predict(x[None, :]),
            lambda k, x, r: mab.partial_fit([k], [r], x[None, :]),
            mab.predict,
        )
    except ImportError:
        pass
    try:
        from contextualbandits.online import LinUCB as CBLinUCB

        cb = CBLinUCB(nchoices=N_ARMS, alpha=1.0)
        rng = np.random.default_rng(1)
        cb.fit(rng.standard_normal((10, d)), rng.integers(0, N_ARMS, 10), rng.random(10))
        out["contextualbandits"] = Adapter(
            lambda x: cb.predict(x[None, :]),
            lambda k, x, r: cb.partial_fit(x[None, :], np.array([k]), np.array([r])),
            cb.predict,
        )
    except ImportError:
        pass
    return out


def _select(a: Adapter, X: np.ndarray, ctx: itertools.cycle) -> Callable[[], object]:
    """One `select` on the next pre-generated context."""
    return lambda: a.select(X[next(ctx)])


def _round_trip(
    a: Adapter, X: np.ndarray, R: np.ndarray, ctx: itertools.cycle
) -> Callable[[], None]:
    """One `select` then `update` of the chosen arm on the next context."""

    def step() -> None:
        i = next(ctx)
        k = a.select(X[i])
        a.update(k if np.isscalar(k) else k[0], X[i], R[i])

    return step


def _predict(a: Adapter, Xb: np.ndarray) -> Callable[[], object]:
    return lambda: a.predict(Xb)


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    for d in CASES:
        case = f"d={d}"
        rng = np.random.default_rng(d)
        X = rng.standard_normal((N_CONTEXTS, d))
        R = rng.standard_normal(N_CONTEXTS)
        Xb = rng.standard_normal((BATCH // 10 if quick else BATCH, d))
        for impl, a in implementations(d).items():
            for i in range(WARMUP):
                a.update(a.select(X[i]), X[i], R[i])
            ctx = itertools.cycle(range(N_CONTEXTS))
            rows.append(
                row(
                    "contextual.select",
                    case,
                    impl,
                    _select(a, X, ctx),
                    quick=quick,
                    per=1,
                    unit="event",
                )
            )
            rows.append(
                row(
                    "contextual.update",
                    case,
                    impl,
                    _round_trip(a, X, R, ctx),
                    quick=quick,
                    per=1,
                    unit="event",
                )
            )
            rows.append(
                row(
                    "contextual.predict",
                    case,
                    impl,
                    _predict(a, Xb),
                    quick=quick,
                    per=len(Xb),
                    unit="context",
                )
            )
    return rows


def main() -> None:
    """Print QPS / UPS and same-run ratios (``python -m banditkit.bench.contextual``)."""
    import sys

    rows = run(quick="--quick" in sys.argv)
    for r in rows:
        rate = 1.0 / r["median_s"] * r.get("per", 1)
        print(
            f"{r['group']:20s} {r['case']:6s} {r['impl']:24s} {r['median_s'] * 1e6:10.2f} us  "
            f"{rate:12,.0f} /s"
        )
    by = {(r["group"], r["case"], r["impl"]): r["median_s"] for r in rows}
    for g in ("contextual.select", "contextual.update", "contextual.predict"):
        for d in CASES:
            c = f"d={d}"
            if (g, c, "rust") in by:
                for other in ("python", "numpy-sherman-morrison", "mabwiser", "contextualbandits"):
                    if (g, c, other) in by:
                        print(
                            f"{g} {c}: rust {by[(g, c, other)] / by[(g, c, 'rust')]:.1f}x "
                            f"faster than {other}"
                        )


if __name__ == "__main__":
    main()
