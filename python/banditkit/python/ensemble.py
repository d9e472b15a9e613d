"""Bootstrap ridge ensembles, NumPy reference of `rust/banditkit-core/src/ensemble/`: the same
counts (scikit-learn's legacy `RandomState` rows, or the fast counter stream) and the same
maths (dual form from one shared Gram matrix when p > n, primal otherwise), member by member.
`ridge_ensemble_fit` and `ridge_bootstrap_counts` have the Rust functions' signatures.
"""

from __future__ import annotations

import numpy as np

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
MASK32 = np.uint64(0xFFFFFFFF)
# Members per partial sum of the mean (rust/banditkit-core/src/ensemble/mod.rs BLOCK).
MEAN_BLOCK = 64


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def fast_words(seed: int, member: int, n_draws: int) -> np.ndarray:
    """Words t = 0..n_draws-1 of member `member`'s fast stream."""
    with np.errstate(over="ignore"):
        g = GOLDEN_GAMMA
        key = _mix(np.uint64(seed) + g * np.uint64(member + 1))
        t = np.arange(1, n_draws + 1, dtype=np.uint64)
        return _mix(key + g * t)


def _fast_rows(words: np.ndarray, n: int, cdf: np.ndarray | None) -> np.ndarray:
    if cdf is None:
        # floor(word * n / 2^64) in two 32-bit halves
        nn = np.uint64(n)
        hi, lo = words >> np.uint64(32), words & MASK32
        return ((hi * nn + ((lo * nn) >> np.uint64(32))) >> np.uint64(32)).astype(np.intp)
    u = (words >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0) * cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), n - 1)


def member_counts(
    member: int,
    n_rows: int,
    sampling: str,
    seed: int,
    seeds: np.ndarray | None,
    n_draws: int,
    cdf: np.ndarray | None,
) -> np.ndarray:
    """How many times each row is drawn for `member` (float64, length n_rows)."""
    if sampling == "sklearn":
        assert seeds is not None
        rs = np.random.RandomState(int(seeds[member]))
        if cdf is None:
            rows = rs.randint(0, n_rows, n_draws)
        else:  # legacy choice(p=...): uniform doubles searched in the normalised CDF
            rows = np.searchsorted(cdf, rs.random_sample(n_draws), side="right")
    elif sampling == "fast":
        rows = _fast_rows(fast_words(seed, member, n_draws), n_rows, cdf)
    else:
        raise ValueError(f"sampling must be 'sklearn' or 'fast', got {sampling!r}")
    return np.bincount(rows, minlength=n_rows).astype(np.float64)


def ridge_bootstrap_counts(
    n_rows: int,
    n_estimators: int,
    sampling: str,
    seed: int,
    seeds: np.ndarray | None,
    n_draws: int,
    cdf: np.ndarray | None = None,
) -> np.ndarray:
    """The members' bootstrap counts, (n_estimators, n_rows) float64."""
    return np.stack(
        [member_counts(m, n_rows, sampling, seed, seeds, n_draws, cdf) for m in range(n_estimators)]
    )


def _dual(
    xs: np.ndarray,
    ys: np.ndarray,
    gram: np.ndarray,
    w: np.ndarray,
    alpha: float,
    fit_intercept: bool,
) -> tuple[np.ndarray, float, float]:
    """(coef, ybar, xbar . coef) of one member, dual form on its drawn rows."""
    act = np.flatnonzero(w > 0)
    wa, total = w[act], w[act].sum()
    g_aa = gram[np.ix_(act, act)]
    ybar = float(wa @ ys[act]) / total if fit_intercept else 0.0
    if fit_intercept:
        g = g_aa @ wa / total
        c = float(wa @ g) / total
        centred = g_aa - g[:, None] - g[None, :] + c
    else:
        centred = g_aa
    s = np.sqrt(wa)
    k = s[:, None] * centred * s[None, :] + alpha * np.eye(len(act))
    lower = np.linalg.cholesky(k)
    z = np.linalg.solve(lower.T, np.linalg.solve(lower, s * (ys[act] - ybar)))
    u = s * z
    if fit_intercept:
        u = u - wa * u.sum() / total
    coef = u @ xs[act]
    xc = float(wa @ (g_aa @ u)) / total if fit_intercept else 0.0
    return coef, ybar, xc


def _primal(
    xs: np.ndarray, ys: np.ndarray, w: np.ndarray, alpha: float, fit_intercept: bool
) -> tuple[np.ndarray, float, float]:
    act = np.flatnonzero(w > 0)
    wa, total = w[act], w[act].sum()
    xa = xs[act]
    xbar = wa @ xa / total if fit_intercept else np.zeros(xs.shape[1])
    ybar = float(wa @ ys[act]) / total if fit_intercept else 0.0
    r = xa - xbar
    a = (r * wa[:, None]).T @ r + alpha * np.eye(xs.shape[1])
    lower = np.linalg.cholesky(a)
    coef = np.linalg.solve(lower.T, np.linalg.solve(lower, r.T @ (wa * (ys[act] - ybar))))
    return coef, ybar, float(xbar @ coef)


def ridge_ensemble_fit(
    x: np.ndarray,
    y: np.ndarray,
    alpha: float,
    fit_intercept: bool,
    n_estimators: int,
    sampling: str,
    seed: int,
    seeds: np.ndarray | None,
    n_draws: int,
    cdf: np.ndarray | None = None,
    dtype: str = "float32",
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(coef (n_estimators, p) in `dtype`, intercept, coef_mean, intercept_mean); `n_threads`
    is accepted for the Rust signature and ignored (one thread, same result)."""
    del n_threads
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, p = x.shape
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be positive and finite, got {alpha}")
    if n_estimators < 1:
        raise ValueError("n_estimators must be at least 1")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite")
    # Shift by the unweighted means: no coefficient changes, the centred Gram keeps its digits.
    x_shift = x.mean(axis=0) if fit_intercept else np.zeros(p)
    y_shift = float(y.mean()) if fit_intercept else 0.0
    xs, ys = x - x_shift, y - y_shift
    dual = p > n
    gram = xs @ xs.T if dual else None
    coef = np.empty((n_estimators, p), dtype=dtype)
    intercept = np.empty(n_estimators)
    # The mean is summed as the Rust kernel sums it: per MEAN_BLOCK members, then the partial
    # sums in order (so that a fit in blocks of members gives the same bits: ensemble/_blocks).
    total, itotal = np.zeros(p), 0.0
    part, ipart = np.zeros(p), 0.0
    for m in range(n_estimators):
        w = member_counts(m, n, sampling, seed, seeds, n_draws, cdf)
        if dual:
            b, ybar, xc = _dual(xs, ys, gram, w, alpha, fit_intercept)
        else:
            b, ybar, xc = _primal(xs, ys, w, alpha, fit_intercept)
        intercept[m] = ybar + y_shift - xc - float(x_shift @ b) if fit_intercept else 0.0
        coef[m] = b
        part += b
        ipart += float(intercept[m])
        if (m + 1) % MEAN_BLOCK == 0 or m + 1 == n_estimators:
            total += part
            itotal += ipart
            part, ipart = np.zeros(p), 0.0
    return coef, intercept, total / n_estimators, itotal / n_estimators
