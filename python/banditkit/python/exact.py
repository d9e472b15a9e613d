"""Exact win probabilities: deterministic integration instead of Monte Carlo (reference backend).

`prob_best_gaussian`, `prob_best_beta`: for independent arms,
`P_i = integral p_i(t) prod_{j != i} F_j(t) dt`, by composite Gauss-Legendre on panels placed
around every arm at its own scale (accurate when standard deviations differ by 1e6), on one
node set shared by all arms (breakpoints of different arms that nearly coincide are merged, so
overlapping arms do not multiply the nodes), in log space where products underflow, a block of
nodes at a time (memory O(arms x block), whatever the number of arms).
The Beta case integrates over the log-odds t = logit(x), where every Beta density is smooth.
`prob_best_mvn`: correlated normal arms, each `P_i` an orthant probability of the differences,
by Genz's separation of variables with a randomised rank-1 lattice (as the Rust kernel).

The Rust kernels (`banditkit_core::exact`) use a faster formulation of the same integrals
(CDFs accumulated on the nodes); the two agree to ~1e-11 on the independent cases.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

__all__ = [
    "MVN_TOLERANCE",
    "prob_best_beta",
    "prob_best_gaussian",
    "prob_best_gaussian_rows",
    "prob_best_mvn",
    "share_point_mass_ties",
]

#: Default target for the error estimate (3.5 standard errors) of each `prob_best_mvn`
#: probability: about the accuracy of 2,500,000 Monte Carlo draws.
MVN_TOLERANCE = 1e-3

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)
# Panel edges in units of an arm's scale; densities are below e^-45 beyond +-9.5.
_GRID = np.concatenate([np.arange(-9.5, 10.0, 1.0), [-7.0, -5.0, 5.0, 7.0]])
_EDGE = 9.5
_TAIL_LOG_DROP = 45.0
# Breakpoints closer than this fraction of their arm's step are merged (single arms keep
# their 0.5-step points); the nodes are processed in blocks of about this many values per array.
_MERGE_FRAC = 0.4
_BLOCK_ELEMENTS = 1 << 19


def _vector(x: ArrayLike, name: str) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


def _same_length(a: NDArray[np.float64], b: NDArray[np.float64], names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same length, got {a.size} and {b.size}")


def _first_bad(values: NDArray[np.float64], ok: NDArray[np.bool_]) -> float:
    return float(values[~ok][0])


def _merge_breaks(
    points: NDArray[np.float64], spacing: NDArray[np.float64], start: float, end: float
) -> NDArray[np.float64]:
    """Panel edges from every arm's breakpoints in [start, end] (`spacing`: the local step of
    the arm each point comes from). A point closer to the last kept one than MERGE_FRAC of the
    finer of their two steps adds nothing: without this, K overlapping arms would give K times
    the panels every arm needs, and the cost would grow with K^2."""
    inside = (points > start) & (points < end)
    order = np.argsort(points[inside], kind="stable")
    kept, last, last_step = [start], start, 0.0
    for point, step in zip(
        points[inside][order].tolist(), spacing[inside][order].tolist(), strict=True
    ):
        if point - last >= _MERGE_FRAC * min(step, last_step):
            kept.append(point)
            last, last_step = point, step
    if end > last:
        kept.append(end)
    return np.array(kept)


def _integrate_shared(
    breaks: NDArray[np.float64], upper: NDArray[np.float64], log_pdf, log_cdf
) -> NDArray[np.float64]:
    """`integral exp(log_pdf_i + sum_{j != i} log_cdf_j)` for every arm i, over the panels
    between `breaks` (which start where every arm's density has begun).

    `log_pdf(t, rows)`, `log_cdf(t, rows)` map nodes (n,) to arrays (len(rows), n). Above
    `upper[j]` arm j's density is negligible and its CDF is 1 to double precision, so it drops
    out. The nodes are taken in blocks, so memory stays O(arms x block) for any arm count.
    """
    lo, hi = breaks[:-1, None], breaks[1:, None]
    t = (0.5 * (lo + hi) + 0.5 * (hi - lo) * _NODES).ravel()  # ascending
    w = (0.5 * (hi - lo) * _WEIGHTS).ravel()
    k = upper.size
    block = max(_NODES.size, _BLOCK_ELEMENTS // k)
    probs = np.zeros(k)
    for first in range(0, t.size, block):
        tb, wb = t[first : first + block], w[first : first + block]
        rows = np.flatnonzero(upper >= tb[0])
        if rows.size == 0:
            break
        log_f = log_cdf(tb, rows)
        # Sum over j != i without subtracting (log F_i may be -inf): prefix + suffix sums.
        zero = np.zeros((1, tb.size))
        prefix = np.cumsum(np.vstack([zero, log_f[:-1]]), axis=0)
        suffix = np.cumsum(np.vstack([log_f[1:], zero])[::-1], axis=0)[::-1]
        probs[rows] += np.exp(log_pdf(tb, rows) + prefix + suffix) @ wb
    return probs


def share_point_mass_ties(
    mu: NDArray[np.float64], sigma: NDArray[np.float64], probs: NDArray[np.float64]
) -> NDArray[np.float64]:
    """`prob_best_gaussian`'s answer as a policy's propensities: the probability of the point
    masses (`sigma == 0`) tied at the top shared evenly among them (a policy breaking ties
    uniformly at random; `prob_best_gaussian` gives it to the first, as argmax does), and the
    quadrature's rounding below zero (~1e-22) set to 0."""
    out = np.maximum(probs, 0.0)
    mass = sigma == 0
    if mass.sum() < 2:
        return out
    tied = mass & (mu == mu[mass].max())
    out[tied] = probs[tied].sum() / tied.sum()
    return out


def prob_best_gaussian_rows(
    mu: ArrayLike, sigma: ArrayLike, share_ties: bool = False
) -> NDArray[np.float64]:
    """`prob_best_gaussian` of every row of (n, k) `mu` and `sigma`; with `share_ties`, as a
    policy's propensities (`share_point_mass_ties`)."""
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 2:
        raise ValueError(f"mu must be 2-D, got shape {mu.shape}")
    if sigma.shape != mu.shape:
        raise ValueError(
            f"mu and sigma must have the same shape, got {list(mu.shape)} and {list(sigma.shape)}"
        )
    out = np.empty(mu.shape)
    for i, (m, s) in enumerate(zip(mu, sigma, strict=True)):
        p = prob_best_gaussian(m, s)
        out[i] = share_point_mass_ties(m, s, p) if share_ties else p
    return out


def prob_best_gaussian(mu: ArrayLike, sigma: ArrayLike) -> NDArray[np.float64]:
    """P[i] = probability that arm i has the highest draw among independent N(mu_i, sigma_i^2).

    `sigma == 0` arms are point masses: only the first of the highest can win (as argmax).
    """
    mu, sigma = _vector(mu, "mu"), _vector(sigma, "sigma")
    _same_length(mu, sigma, "mu and sigma")
    if not np.isfinite(mu).all():
        raise ValueError(f"mu must be finite, got {_first_bad(mu, np.isfinite(mu))}")
    ok = np.isfinite(sigma) & (sigma >= 0)
    if not ok.all():
        raise ValueError(f"sigma must be finite and non-negative, got {_first_bad(sigma, ok)}")
    k = mu.size
    if k <= 1:
        return np.ones(k)
    probs = np.zeros(k)
    mass = np.flatnonzero(sigma == 0)
    cont = np.flatnonzero(sigma > 0)
    top = int(mass[np.argmax(mu[mass])]) if mass.size else -1
    if cont.size == 0:
        probs[top] = 1.0
        return probs
    # Integrate in x - (highest mean): nodes near 1e8 could not resolve sigma = 1e-9.
    origin = mu[cont].max()
    m, s = mu[cont] - origin, sigma[cont]
    cut = mu[top] - origin if mass.size else -np.inf
    start = max(float(np.max(m - _EDGE * s)), cut)
    upper = m + _EDGE * s
    end = float(np.max(upper))
    if end <= start:
        probs[top] = 1.0
        return probs
    points = (m[:, None] + s[:, None] * _GRID).ravel()
    steps = np.repeat(s, _GRID.size)
    breaks = _merge_breaks(points, steps, start, end)
    log_s = np.log(s)
    z = lambda t, rows: (t[None, :] - m[rows, None]) / s[rows, None]  # noqa: E731
    probs[cont] = _integrate_shared(
        breaks,
        upper,
        lambda t, rows: stats.norm.logpdf(z(t, rows)) - log_s[rows, None],
        lambda t, rows: special.log_ndtr(z(t, rows)),
    )
    if mass.size:
        probs[top] = np.exp(np.sum(special.log_ndtr((cut - m) / s)))
    return probs / probs.sum()


def prob_best_beta(alpha: ArrayLike, beta: ArrayLike) -> NDArray[np.float64]:
    """P[i] = probability that arm i has the highest draw of independent Beta(alpha_i, beta_i)."""
    a, b = _vector(alpha, "alpha"), _vector(beta, "beta")
    _same_length(a, b, "alpha and beta")
    for name, v in (("alpha", a), ("beta", b)):
        ok = np.isfinite(v) & (v > 0)
        if not ok.all():
            raise ValueError(f"{name} must be finite and positive, got {_first_bad(v, ok)}")
    k = a.size
    if k <= 1:
        return np.ones(k)
    # In t = logit(x) the density is x^a (1-x)^b / B(a, b): mode ln(a/b), width sqrt(1/a+1/b),
    # exponential tails e^{a t} and e^{-b t} (long when a or b is small).
    mode, width = np.log(a) - np.log(b), np.sqrt(1 / a + 1 / b)
    left = mode - np.maximum(_EDGE * width, _TAIL_LOG_DROP / a)
    right = mode + np.maximum(_EDGE * width, _TAIL_LOG_DROP / b)
    start, end = float(np.max(left)), float(np.max(right))
    tails = np.linspace(0, 1, 13)
    points = np.concatenate(
        [
            (mode[:, None] + width[:, None] * _GRID).ravel(),
            (left[:, None] + (mode - left)[:, None] * tails).ravel(),
            (mode[:, None] + (right - mode)[:, None] * tails).ravel(),
        ]
    )
    steps = np.concatenate(
        [
            np.repeat(width, _GRID.size),
            np.repeat((mode - left) / 12, tails.size),
            np.repeat((right - mode) / 12, tails.size),
        ]
    )
    breaks = _merge_breaks(points, steps, start, end)

    log_beta_all = special.betaln(a, b)
    tiny = 1e-300

    def sides(t: NDArray[np.float64]):
        # x and 1-x each with full relative accuracy, and their logs (x may underflow).
        x, y = special.expit(t)[None, :], special.expit(-t)[None, :]
        return x, y, special.log_expit(t)[None, :], special.log_expit(-t)[None, :]

    def log_pdf(t: NDArray[np.float64], rows: NDArray[np.intp]) -> NDArray[np.float64]:
        aa, bb, log_beta = a[rows, None], b[rows, None], log_beta_all[rows, None]
        x, y, log_x, log_y = sides(t)
        # Each Beta evaluated on its accurate side; x^a (1-x)^b / B(a, b) where x underflows.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            pdf = np.where(t[None, :] < 0, stats.beta.pdf(x, aa, bb), stats.beta.pdf(y, bb, aa))
            direct = np.log(pdf) + log_x + log_y
        fallback = aa * log_x + bb * log_y - log_beta
        usable = (x > tiny) & (y > tiny) & np.isfinite(direct)
        return np.where(usable, direct, fallback)

    def log_cdf(t: NDArray[np.float64], rows: NDArray[np.intp]) -> NDArray[np.float64]:
        aa, bb, log_beta = a[rows, None], b[rows, None], log_beta_all[rows, None]
        x, y, log_x, log_y = sides(t)
        low = t[None, :] < 0
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            cdf = np.log(np.where(low, special.betainc(aa, bb, x), special.betaincc(bb, aa, y)))
            # Below 1e-300: I_x(a, b) = x^a / (a B(a, b)) (1 + O(x)), and likewise near 1.
            lower_tail = aa * log_x - np.log(aa) - log_beta
            upper_tail = np.log1p(-np.exp(bb * log_y - np.log(bb) - log_beta))
        return np.where(
            low & (x <= tiny), lower_tail, np.where(~low & (y <= tiny), upper_tail, cdf)
        )

    probs = _integrate_shared(breaks, right, log_pdf, log_cdf)
    return probs / probs.sum()


def _cholesky_psd(c: NDArray[np.float64], tol: float) -> NDArray[np.float64] | None:
    """Lower Cholesky factor of a PSD matrix, zero columns for pivots <= tol; None if not PSD."""
    m = c.shape[0]
    low = np.zeros_like(c)
    for j in range(m):
        d = c[j, j] - low[j, :j] @ low[j, :j]
        if d < -tol * 1e3:
            return None
        if d <= tol:
            continue
        low[j, j] = np.sqrt(d)
        low[j + 1 :, j] = (c[j + 1 :, j] - low[j + 1 :, :j] @ low[j, :j]) / low[j, j]
    return low


def _generator(dim: int) -> NDArray[np.float64]:
    """Richtmyer rank-1 lattice generator: fractional parts of sqrt of the first primes."""
    primes: list[int] = []
    n = 2
    while len(primes) < dim:
        if all(n % p for p in primes if p * p <= n):
            primes.append(n)
        n += 1
    return np.sqrt(np.array(primes, dtype=np.float64)) % 1.0


_REL_TOL = 1e-10
_REPLICATES = 8
_FIRST_POINTS = 16
_MAX_POINTS = 1 << 17


def _reordered_cholesky(
    c: NDArray[np.float64], upper: NDArray[np.float64], ids: NDArray[np.int64], tol: float
) -> NDArray[np.float64]:
    """Cholesky factor with Genz and Bretz's ordering (in place on c, upper, ids).

    At each step the variable with the smallest conditional probability, given the earlier ones
    at their truncated means, goes next; directions without variance get zero columns, last.
    """
    m = upper.size
    low = np.zeros((m, m))
    means = np.zeros(m)
    for k in range(m):
        rest = np.diag(c)[k:] - np.sum(low[k:, :k] ** 2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = (upper[k:] - low[k:, :k] @ means[:k]) / np.sqrt(rest)
        prob = np.where(rest > tol, special.ndtr(beta), 2.0)
        b = k + int(np.argmin(prob))
        if b != k:
            for arr in (c, c.T, low):
                arr[[k, b]] = arr[[b, k]]
            upper[[k, b]], ids[[k, b]] = upper[[b, k]], ids[[b, k]]
        d = c[k, k] - low[k, :k] @ low[k, :k]
        if d <= tol:
            continue
        low[k, k] = np.sqrt(d)
        low[k + 1 :, k] = (c[k + 1 :, k] - low[k + 1 :, :k] @ low[k, :k]) / low[k, k]
        beta_k = (upper[k] - low[k, :k] @ means[:k]) / low[k, k]
        below = special.ndtr(beta_k)
        # E[z | z < beta] = -phi(beta) / Phi(beta) (-> beta deep in the lower tail).
        means[k] = -stats.norm.pdf(beta_k) / below if below > 1e-300 else beta_k
    return low


def _orthant(
    mean: NDArray, cov: NDArray, i: int, rng: np.random.Generator, tolerance: float
) -> float:
    """P(X_i > X_j for all j != i) by Genz's method (see the module docstring)."""
    k = mean.size
    ids = np.array([j for j in range(k) if j != i])
    c = cov[i, i] - cov[i, ids][:, None] - cov[i, ids][None, :] + cov[np.ix_(ids, ids)]
    upper = mean[i] - mean[ids]
    scale = max(float(np.max(np.abs(np.diag(cov)))), np.finfo(float).tiny)
    low = _reordered_cholesky(c, upper, ids, _REL_TOL * scale)
    wins_tie = ids > i
    tie_tol = 1e-12 * max(1.0, float(np.max(np.abs(mean))))
    m = ids.size

    def integrand(w: NDArray[np.float64]) -> NDArray[np.float64]:
        y = np.zeros((w.shape[0], m))
        prob = np.ones(w.shape[0])
        for r in range(m):
            room = upper[r] - y[:, :r] @ low[r, :r]
            if low[r, r] > 0:
                e = special.ndtr(room / low[r, r])
            else:
                e = ((room > tie_tol) | ((room >= -tie_tol) & wins_tie[r])).astype(float)
            prob *= e
            if r + 1 < m and low[r, r] > 0:
                u = np.clip(w[:, r] * e, np.finfo(float).tiny, 1 - np.finfo(float).eps)
                y[:, r] = special.ndtri(u)
        return prob

    if m == 1:
        return float(integrand(np.zeros((1, 0)))[0])
    dim = m - 1
    gen = _generator(dim)
    shifts = rng.random((_REPLICATES, dim))
    sums = np.zeros(_REPLICATES)
    done, target = 0, _FIRST_POINTS
    while True:
        n = np.arange(done + 1, target + 1, dtype=np.float64)[:, None]
        for r in range(_REPLICATES):
            w = np.abs(2 * ((n * gen + shifts[r]) % 1.0) - 1)
            # Antithetic pair: cancels the integrand's odd part.
            sums[r] += 0.5 * (integrand(w) + integrand(1 - w)).sum()
        means = sums / target
        error = 3.5 * means.std(ddof=1) / np.sqrt(_REPLICATES)
        if error <= tolerance or target >= _MAX_POINTS:
            return float(means.mean())
        done, target = target, 2 * target


def prob_best_mvn(
    mean: ArrayLike, cov: ArrayLike, seed: int | None = None, tolerance: float = MVN_TOLERANCE
) -> NDArray[np.float64]:
    """P[i] = probability that arm i has the highest draw of N(mean, cov).

    `cov` must be symmetric positive semidefinite; a zero row fixes that arm at its mean.
    Ties (perfectly correlated arms) go to the first, as argmax. Points are added until each
    probability's error estimate (3.5 standard errors of the randomised lattice) is below
    `tolerance`; the same seed gives the same answer.
    """
    mean = _vector(mean, "mean")
    cov = np.asarray(cov, dtype=np.float64)
    k = mean.size
    if cov.shape != (k, k):
        raise ValueError(f"cov must be {k} x {k} to match mean, got shape {cov.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise ValueError("mean and cov must be finite")
    scale = float(np.max(np.abs(np.diag(cov)))) if k else 0.0
    tol = _REL_TOL * max(scale, np.finfo(float).tiny)
    asym = np.abs(cov - cov.T) > max(tol, 1e-12 * scale)
    if asym.any():
        r, c = np.argwhere(asym)[0]
        raise ValueError(f"cov must be symmetric, got {cov[r, c]} and {cov[c, r]} at ({r}, {c})")
    if _cholesky_psd(cov, tol) is None:
        raise ValueError("cov must be positive semidefinite")
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be positive, got {tolerance}")
    if k <= 1:
        return np.ones(k)
    rngs = [np.random.default_rng([seed, i] if seed is not None else None) for i in range(k)]
    probs = np.maximum([_orthant(mean, cov, i, rngs[i], tolerance) for i in range(k)], 0.0)
    return probs / probs.sum()
