"""The maths of LogisticBandit (ORTS and Full-TS): the NumPy reference for
`banditkit_core::logistic`. Functions of arrays only; the class in `logistic.py` owns the names.

Coordinates: for K arms in some order (reference last), `w[j]` (j < K-1) is arm j's log-odds
ratio against the reference and `w[K-1]` is the reference's own log-odds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

X_CLIP = 9.0  # L(x) clips its argument to [-9, 9]
P_MIN, P_MAX = 1e-3, 1.0 - 1e-3  # the likelihood clips probabilities to [0.001, 0.999]
PINV_RCOND = 1e-15  # numpy.linalg.pinv's default cut-off
PSD_TOL = 1e-12  # eigenvalues above -PSD_TOL * max|eigenvalue| count as non-negative
PSD_INCREMENT = 0.001  # the contract's diagonal repair of a non-PSD covariance...
PSD_MAX_ITERATIONS = 100  # ...at most this many times
MAX_NEWTON_ITERATIONS = 100
# The largest change of one coordinate in one Newton iteration (log-odds units). L clips its
# argument to [-9, 9], so a longer step only crosses a plateau: without the bound, one step
# from a clipped start (0 of 1000 seen at p = 0.999) lands 1000 units away on the far one.
MAX_STEP = 5.0
EPS = float(np.finfo(float).eps)


def logistic(x: np.ndarray) -> np.ndarray:
    """L(x) = 1 / (1 + exp(-x)) with x clipped to [-9, 9], in the overflow-free form."""
    x = np.clip(np.asarray(x, dtype=float), -X_CLIP, X_CLIP)
    e = np.exp(-np.abs(x))
    return np.where(x > 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


# ----------------------------------------------------------------------------- re-expression


def reexpression_matrix(k_old: int, positions: list[int]) -> np.ndarray:
    """T with `mu' = T mu`: from the current coordinates to those of the arms at `positions`
    (indices into the current order; the last one becomes the reference).

    T = (absolute log-odds -> odds ratios against the new reference, and its level)
        @ (current coordinates -> absolute log-odds eta, eta_a = w_a + w_r, eta_r = w_r).
    """
    ref = positions[-1]
    to_new = np.zeros((len(positions), k_old))
    to_new[:, ref] = -1.0
    to_new[np.arange(len(positions) - 1), positions[:-1]] = 1.0
    to_new[-1, ref] = 1.0
    to_log_odds = np.eye(k_old)
    to_log_odds[:, -1] = 1.0
    return to_new @ to_log_odds


def get_par(
    mu: np.ndarray, sigma_inv: np.ndarray, positions: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The state re-expressed for the arms at `positions` (last = new reference):
    `(T mu, R^T sigma_inv R)` with `R = round(pinv(T))`, as the contract specifies (for a
    reordering R is exactly T^-1; for a subset it is the rounded pseudo-inverse)."""
    t = reexpression_matrix(len(mu), positions)
    r = np.rint(np.linalg.pinv(t))
    return t @ mu, r.T @ sigma_inv @ r


def transform(
    mu: np.ndarray, sigma_inv: np.ndarray, positions: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """`get_par` as a state to keep: the precision symmetrised (the product's two triangles
    are summed in different orders; `get_par` itself returns upstream's product as it is)."""
    mu, product = get_par(mu, sigma_inv, positions)
    return mu, 0.5 * (product + product.T)


# ----------------------------------------------------------------------------- priors


def odds_ratio_precision(p0: np.ndarray) -> np.ndarray:
    """ORTS prior: the marginal precision of the odds ratios, none on the reference level.

    `inv(inv(P0)[:-1, :-1])` equals the Schur complement `P11 - p12 p12^T / p22`, which stays
    defined when P0 is singular (upstream's double inverse raised LinAlgError there). A zero
    level precision `p22` means the level is unconstrained and its column is zero in a PSD
    matrix, so the block is returned as is.
    """
    k = len(p0)
    out = np.zeros((k, k))
    p11, p12, p22 = p0[:-1, :-1], p0[:-1, -1], p0[-1, -1]
    out[:-1, :-1] = p11 - np.outer(p12, p12) / p22 if p22 > 0.0 else p11
    return 0.5 * (out + out.T)


def nearest_psd(a: np.ndarray) -> np.ndarray:
    """`a` if it is positive semidefinite, else its projection on the PSD cone (negative
    eigenvalues set to zero).

    For a user-supplied indefinite `sigma_inv` (as a prior), and for every posterior precision:
    exact arithmetic makes that PSD, but a direction nothing identifies can come out negative
    by rounding relative to the history's largest numbers (say 1e12 trials, long gone), far
    beyond any tolerance relative to the matrix itself; stored so, it would break sampling."""
    if a.size == 0:
        return a
    try:
        np.linalg.cholesky(a)
        return a  # positive definite: the common case, at a fraction of an eigendecomposition
    except np.linalg.LinAlgError:
        pass
    values, vectors = np.linalg.eigh(0.5 * (a + a.T))
    if values[0] >= 0.0:
        return a
    out = (vectors * np.maximum(values, 0.0)) @ vectors.T
    return 0.5 * (out + out.T)


# ----------------------------------------------------------------------------- the MAP problem

X_LOW, X_HIGH = float(np.log(P_MIN / (1.0 - P_MIN))), float(np.log(P_MAX / (1.0 - P_MAX)))


def nll_terms(
    x: np.ndarray, t: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each arm's -log-likelihood with p = clip(L(x), 0.001, 0.999), and its first and second
    derivatives in x.

    Inside (0.001 < p < 0.999): the binomial terms, derivatives t p - s and t p (1 - p).
    Beyond a clip the specified term is constant. Where that plateau lies uphill of the
    interior minimum (the term's slope at the clip points back inside, e.g. a 19% rate seen
    at p = 0.001), the constant is a spurious flat region: a Newton step that lands there
    would stop at a zero gradient far from the optimum. There the term is continued by its
    tangent line instead (the convex envelope of the clipped term: same value at the clip,
    same slope, so the optimum is unchanged), and the Hessian uses the curvature at the
    clip as its model. Plateaus downhill of the interior (a rate of 0 or 1) are kept flat:
    any point on them is optimal.
    """
    p = logistic(x)
    clipped = np.clip(p, P_MIN, P_MAX)
    value = -(s * np.log(clipped) + (t - s) * np.log1p(-clipped))
    dx = t * p - s
    hx = t * p * (1.0 - p)
    for beyond, edge, x_edge, inward in (
        (p <= P_MIN, P_MIN, X_LOW, -1.0),
        (p >= P_MAX, P_MAX, X_HIGH, 1.0),
    ):
        slope = t * edge - s
        tangent = beyond & (inward * slope > 0.0)  # the slope at the clip points back inside
        value = np.where(tangent, value + slope * (x - x_edge), value)
        dx = np.where(beyond, np.where(tangent, slope, 0.0), dx)
        hx = np.where(beyond, np.where(tangent, t * edge * (1.0 - edge), 0.0), hx)
    return value, dx, hx


@dataclass(frozen=True)
class MapProblem:
    """One update's objective, with N the batch's total count:

        f(w) = 0.5 * (w_P - m0)^T P (w_P - m0) / N
               + sum_k -(s_k log p_k + (t_k - s_k) log(1 - p_k)) / N

    `P` is the prior precision already scaled by (1 - decay), over `w[prior_start:]`. Each
    likelihood term is evaluated by `nll_terms` (its clipped region included).
    `obs_index` holds the positions of the observed arms in `w`, the last one is the
    likelihood's reference: p_k = clip(L(w[obs_index[k]] + w[K-1])) for the others and
    p = clip(L(w[K-1])) for it (when no known arm is observed this is the last new arm, whose
    own coordinate then does not enter the likelihood, exactly as upstream).
    """

    k: int
    obs_index: np.ndarray
    totals: np.ndarray
    successes: np.ndarray
    prior_start: int
    prior_mean: np.ndarray | None
    prior_precision: np.ndarray | None

    @property
    def n_total(self) -> float:
        return float(self.totals.sum())

    def log_odds(self, w: np.ndarray) -> np.ndarray:
        """The linear predictor x_k of every observed arm (reference last)."""
        return np.append(w[self.obs_index[:-1]] + w[-1], w[-1])

    def objective(self, w: np.ndarray) -> float:
        value = float(np.sum(nll_terms(self.log_odds(w), self.totals, self.successes)[0]))
        if self.prior_precision is not None:
            d = w[self.prior_start :] - self.prior_mean
            value += 0.5 * float(d @ self.prior_precision @ d)
        return value / self.n_total

    def gradient_hessian(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of `objective` (see `nll_terms` for the clipped region)."""
        _, dx, hx = nll_terms(self.log_odds(w), self.totals, self.successes)
        idx = self.obs_index[:-1]
        g = np.zeros(self.k)
        h = np.zeros((self.k, self.k))
        g[idx] = dx[:-1]
        g[-1] += dx.sum()  # every x_k contains w[K-1]
        h[idx, idx] = hx[:-1]
        h[idx, -1] = hx[:-1]
        h[-1, idx] = hx[:-1]
        h[-1, -1] += hx.sum()
        if self.prior_precision is not None:
            start = self.prior_start
            g[start:] += self.prior_precision @ (w[start:] - self.prior_mean)
            h[start:, start:] += self.prior_precision
        return g / self.n_total, h / self.n_total

    def starting_point(self) -> np.ndarray:
        """Upstream's start: observed log-odds ratios against the likelihood's reference from
        the raw rates (clipped), 0 elsewhere, then the prior mean on the known arms."""
        rates = np.clip(self.successes / self.totals, P_MIN, P_MAX)
        w = np.zeros(self.k)
        w[self.obs_index[:-1]] = logit(rates[:-1]) - logit(rates[-1])
        if self.prior_mean is not None:
            w[self.prior_start :] = self.prior_mean
        return w


def newton_direction(g: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Solve (H + lambda I) d = -g. Coordinates with zero curvature (arms that no term of f
    involves, or whose probability is clipped) have zero gradient too and are left out.
    Levenberg damping: lambda = 1e-12 * max diag, growing tenfold until Cholesky succeeds
    (clipped terms can make f non-convex). The floor is there because curvature below it is
    rounding: a prior precision that should be 0 can come out at 1e-25 beside entries of 1e7,
    and undamped Newton would step 1e18 along it (the objective barely notices, the state
    would). The floor changes the path, never the fixed point (d = 0 exactly where g = 0)."""
    d = np.zeros_like(g)
    active = np.flatnonzero(np.diag(h) > 0.0)
    if active.size == 0:
        return d
    ha = h[np.ix_(active, active)]
    lam = 1e-12 * float(np.diag(ha).max())
    while True:
        try:
            chol = np.linalg.cholesky(ha + lam * np.eye(active.size))
            break
        except np.linalg.LinAlgError:
            lam *= 10.0
            if not np.isfinite(lam):
                return d  # H is not finite: no step (validated input never gets here)
    y = np.linalg.solve(chol, -g[active])
    d[active] = np.linalg.solve(chol.T, y)
    return d


def map_estimate(problem: MapProblem) -> np.ndarray:
    """Minimise f by Newton's method with a backtracking (Armijo) line search, each direction
    first scaled so that no coordinate moves more than MAX_STEP.

    Convergence criterion: stop when the gradient is exactly zero, or when the Newton
    decrement g^T H^-1 g (twice the predicted decrease of f) is below the rounding level of f
    (4 eps |f|) and the step is tiny, after taking that last full step: Newton converges
    quadratically, so the gradient is then at machine precision. Also stop if no step
    decreases f (f is at its rounding floor), or after MAX_NEWTON_ITERATIONS.
    """
    w = problem.starting_point()
    f = problem.objective(w)
    for _ in range(MAX_NEWTON_ITERATIONS):
        g, h = problem.gradient_hessian(w)
        if not np.any(g):
            break
        d = newton_direction(g, h)
        if not np.any(d):
            break  # no usable curvature (a Hessian that overflowed): the caller checks
        decrement = float(-g @ d)
        d_norm = float(np.abs(d).max())
        if decrement <= 4.0 * EPS * abs(f) and d_norm <= 1e-8 * (1.0 + np.abs(w).max()):
            w = w + d
            break
        bound = min(MAX_STEP / d_norm, 1.0)
        alpha = bound
        while True:
            candidate = w + alpha * d
            f_candidate = problem.objective(candidate)
            if f_candidate <= f - 1e-4 * alpha * decrement:
                break
            alpha *= 0.5
            if alpha < 1e-10 * bound:
                return w
        w, f = candidate, f_candidate
    return w


def fisher_information(w: np.ndarray, problem: MapProblem) -> np.ndarray:
    """F at the MAP with unclipped p (L still clips x to [-9, 9]): v_k = t_k p_k (1 - p_k);
    F[k,k] = F[k,r] = F[r,k] = v_k for observed non-reference k; F[r,r] = sum of all v."""
    p = logistic(problem.log_odds(w))
    v = problem.totals * p * (1.0 - p)
    idx = problem.obs_index[:-1]
    f = np.zeros((problem.k, problem.k))
    f[idx, idx] = v[:-1]
    f[idx, -1] = v[:-1]
    f[-1, idx] = v[:-1]
    f[-1, -1] = v.sum()
    return f


# ----------------------------------------------------------------------------- sampling


def is_psd(a: np.ndarray) -> bool:
    if a.size == 0:
        return True
    values = np.linalg.eigvalsh(0.5 * (a + a.T))
    return bool(values[0] >= -PSD_TOL * max(np.abs(values).max(), np.finfo(float).tiny))


def pinv_sym(a: np.ndarray, rcond: float, neg_tol: float) -> np.ndarray:
    """Pseudo-inverse of a symmetric `a` by its eigendecomposition: with s = max|eigenvalue|,
    eigenvalues in [-neg_tol * s, rcond * s] count as zero. `neg_tol = rcond` is NumPy's `pinv`;
    a larger `neg_tol` suits a matrix that is PSD by construction, whose slightly negative
    eigenvalues are rounding of zeros."""
    if a.size == 0:
        return np.zeros_like(a, dtype=float)
    values, vectors = np.linalg.eigh(0.5 * (a + a.T))
    scale = np.abs(values).max()
    keep = (values > rcond * scale) | (values < -neg_tol * scale)
    inverse = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    return 0.5 * (inverse + inverse.T)


def psd_factor_lower(a: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L L^T = a for a symmetric `a` that is PSD up to rounding.

    Cholesky when it succeeds; otherwise (rank-deficient or wildly scaled matrices, where
    rounding makes a pivot fail) the exact factor of the PSD projection V max(L, 0) V^T: the R
    of a QR of max(L, 0)^(1/2) V^T satisfies R^T R = V max(L, 0) V^T, so L = R^T.
    """
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        pass
    values, vectors = np.linalg.eigh((a + a.T) / 2)
    r = np.linalg.qr(np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T, mode="r")
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    return (signs[:, None] * r).T


def odds_ratio_sampler(mu: np.ndarray, sigma_inv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(mean, L)` such that `mean + L z` draws every arm's log-odds ratio against the
    reference (last, fixed at 0) from the posterior N(mu[:-1], pinv(sigma_inv)[:-1, :-1]).

    Two arms: the one ratio's sd is sqrt(C[0,0]). More: if the covariance block is not PSD,
    0.001 is added to its diagonal until it is (a warning says so), at most 100 times, then
    ValueError.

    `pinv` is NumPy's (cut-off PINV_RCOND) except that eigenvalues of `sigma_inv` within
    -PSD_TOL * max|eigenvalue| of zero count as zero: an update's precision is PSD by
    construction, and a direction it leaves unidentified can come out at, say, -2e-15 relative;
    NumPy's rule would invert that into a variance of -1e10 that no diagonal repair can mend.
    """
    k = len(mu)
    cov = pinv_sym(sigma_inv, PINV_RCOND, PSD_TOL)[:-1, :-1]
    low = np.zeros((k, k))
    if k == 2:
        var = cov[0, 0]
        if var < -PSD_TOL * abs(sigma_inv).max():
            raise ValueError(
                f"the odds ratio's variance is negative ({var}): sigma_inv is not positive "
                "semidefinite"
            )
        low[0, 0] = np.sqrt(max(var, 0.0))
    else:
        repairs = 0
        while not is_psd(cov) and repairs < PSD_MAX_ITERATIONS:
            cov = cov + PSD_INCREMENT * np.eye(k - 1)
            repairs += 1
        if not is_psd(cov):
            raise ValueError(
                "Failed to make covariance matrix positive semidefinite after "
                f"{PSD_MAX_ITERATIONS} iterations"
            )
        if repairs:
            warnings.warn(
                f"covariance matrix not positive semidefinite: added {PSD_INCREMENT} to its "
                f"diagonal {repairs} time(s)",
                RuntimeWarning,
                stacklevel=3,
            )
        low[:-1, :-1] = psd_factor_lower(cov)
    mean = np.append(mu[:-1], 0.0)
    return mean, low
