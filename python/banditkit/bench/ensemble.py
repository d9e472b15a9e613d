"""Bootstrap ridge ensembles (issue 15, docs/ensemble.md): the seed's problem, 150 rows x 598
features, alpha 1.0.

- fit of 1,000 members: `BootstrapRidge` (Rust kernel; sklearn and fast sampling) against
  scikit-learn's `BaggingRegressor(Ridge(1.0), n_estimators=1000, n_jobs=-1)` (timed once:
  it takes tens of seconds; `--quick`: 100 members, scaled to 1,000);
- fit of 10,000 members: time, peak RSS during that fit in a fresh process (Linux: VmHWM
  after resetting it through /proc/self/clear_refs), coefficient
  memory, and the kernel's rate in GFLOP/s against the dual form's flop count (see `flops`)
  and against this machine's NumPy matrix product on all cores (an attainable peak);
- prediction of 52 rows with a 95% interval from 10,000 members against scikit-learn's loop
  `np.percentile([e.predict(X) for e in estimators_], [2.5, 97.5], axis=0)` (the estimators are
  Ridge objects holding our coefficients: the same work as a fitted BaggingRegressor's, without
  fitting 10,000 members in scikit-learn for minutes first).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from banditkit.bench.timing import Row, median_time

N, P, ALPHA = 150, 598, 1.0
CASE_FIT = f"{N} x {P}, 1,000 members"
CASE_BIG = f"{N} x {P}, 10,000 members"
CASE_PRED = "52 rows, 95% interval, 10,000 members"


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, P))
    y = X[:, :20] @ rng.normal(size=20) + rng.normal(size=N)
    return X, y


def flops(counts: np.ndarray, p: int) -> float:
    """Floating-point operations of the dual form for members with these bootstrap counts
    (one row per member): on m drawn rows, the centring (3 m^2), the system (m^2), Cholesky
    (m^3 / 3), two triangular solves (2 m^2), coefficients (2 m p) and intercept (2 m^2)."""
    m = (counts > 0).sum(axis=1).astype(float)
    return float(np.sum(m**3 / 3 + 8 * m**2 + 2 * m * p))


def matmul_gflops() -> float:
    """NumPy's (BLAS) float64 matrix product on this machine, all cores: an attainable peak."""
    a = np.random.default_rng(1).normal(size=(1024, 1024))
    t, _ = median_time(lambda: a @ a, repeats=5, min_time=0.05)
    return 2 * 1024**3 / t / 1e9


_RSS_CHILD = """
import json, sys, time
import numpy as np
from banditkit.bench.ensemble import data
from banditkit.ensemble import BootstrapRidge

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ":"))

X, y = data()
BootstrapRidge(n_estimators=10, random_state=0).fit(X, y)  # imports, thread pool
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
t = time.perf_counter()
est = BootstrapRidge(n_estimators=10_000, random_state=42).fit(X, y)
took = time.perf_counter() - t
print(json.dumps({"before_kb": before, "peak_kb": status("VmHWM"), "s": took,
                  "coef": est.coef_.nbytes}))
"""


def peak_rss() -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _row(case: str, impl: str, seconds: float, repeats: int, note: str = "") -> Row:
    r: Row = {"group": "ensemble", "case": case, "impl": impl, "median_s": seconds}
    r["repeats"] = repeats
    if note:
        r["note"] = note
    return r


def run(quick: bool) -> list[Row]:
    try:
        import sklearn  # noqa: F401 - BootstrapRidge is a scikit-learn estimator
    except ModuleNotFoundError:
        print(
            "[ensemble] skipped: BootstrapRidge needs scikit-learn "
            "(pip install 'banditkit[ensemble]' or '.[bench]')",
            file=sys.stderr,
        )
        return []
    from sklearn.ensemble import BaggingRegressor
    from sklearn.linear_model import Ridge

    from banditkit.ensemble import BootstrapRidge

    X, y = data()
    rows: list[Row] = []
    reps = 3 if quick else 7
    for impl, sampling in (("rust", "sklearn"), ("rust-fast", "fast")):
        est = BootstrapRidge(n_estimators=1000, random_state=42, sampling=sampling)
        t, n = median_time(lambda e=est: e.fit(X, y), repeats=reps, min_time=0.0, warmup=1)
        rows.append(_row(CASE_FIT, impl, t, n))
    members = 100 if quick else 1000
    bag = BaggingRegressor(Ridge(ALPHA), n_estimators=members, n_jobs=-1, random_state=42)
    bag.fit(X[:20], y[:20])  # start joblib's worker processes before timing
    t0 = time.perf_counter()
    bag.fit(X, y)
    sk = (time.perf_counter() - t0) * 1000 / members
    note = "timed once" + (f"; {members} members scaled to 1,000" if quick else "")
    rows.append(_row(CASE_FIT, "sklearn", sk, 1, note))

    # 10,000 members: time in this process, memory in a fresh one
    big = BootstrapRidge(n_estimators=10_000, random_state=42)
    t, n = median_time(lambda: big.fit(X, y), repeats=1 if quick else 3, min_time=0.0, warmup=0)
    mem = peak_rss()
    counts = np.asarray(
        __import__("banditkit")._backend.MODULE.ridge_bootstrap_counts(
            N, 10_000, "sklearn", 0, big.seeds_, N
        )
    )
    gflop = flops(counts, P) / 1e9
    peak = matmul_gflops()
    rate = gflop / t
    rows.append(_row(CASE_BIG, "rust", t, n, (
        f"peak RSS during the fit {mem['peak_kb'] / 1024:.0f} MB, "
        f"{(mem['peak_kb'] - mem['before_kb']) / 1024:.0f} MB above the process before it "
        f"(Python, NumPy, scikit-learn, data: {mem['before_kb'] / 1024:.0f} MB); "
        f"coef_ {mem['coef'] / 1e6:.1f} MB float32; "
        f"{gflop:.2f} GFLOP (dual form) at {rate:.2f} GFLOP/s = {100 * rate / peak:.0f}% of "
        f"NumPy's matmul on this machine ({peak:.1f} GFLOP/s); fresh-process fit {mem['s']:.2f} s"
    )))  # fmt: skip

    # prediction with a 95% interval
    Xp = X[:52]
    t, n = median_time(lambda: big.predict_interval(Xp), repeats=reps, min_time=0.0, warmup=1)
    rows.append(_row(CASE_PRED, "rust", t, n))
    estimators = []
    for c, b in zip(big.coef_.astype(np.float64), big.intercept_, strict=True):
        r = Ridge(ALPHA)
        r.coef_, r.intercept_, r.n_features_in_ = c, b, P
        estimators.append(r)

    def sk_interval() -> object:
        preds = np.array([e.predict(Xp) for e in estimators])
        return preds.mean(axis=0), np.percentile(preds, [2.5, 97.5], axis=0)

    t, n = median_time(sk_interval, repeats=3, min_time=0.0, warmup=1)
    rows.append(_row(CASE_PRED, "sklearn", t, n, "predict loop over 10,000 Ridge estimators_"))
    return rows
