//! The MAP of one update by Newton's method, and the Fisher information at it.
//!
//! With N the batch's total count, the objective is
//! `f(w) = 0.5 (w_P - m0)^T P (w_P - m0) / N + sum_k -(s_k log p_k + (t_k - s_k) log(1 - p_k)) / N`
//! (`P` already scaled by `1 - decay`), `p_k = clip(L(x_k), 0.001, 0.999)`. See
//! [`nll_term`] for the clipped region.
use crate::linalg::{cholesky_lower, solve_cholesky};

/// `L(x)` clips its argument to [-X_CLIP, X_CLIP].
pub const X_CLIP: f64 = 9.0;
/// The likelihood clips probabilities to [P_MIN, P_MAX].
pub const P_MIN: f64 = 1e-3;
pub const P_MAX: f64 = 1.0 - 1e-3;
pub const MAX_NEWTON_ITERATIONS: usize = 100;
/// The largest change of one coordinate in one Newton iteration (log-odds units). L clips its
/// argument to [-9, 9], so a longer step only crosses a plateau: without the bound, one step
/// from a clipped start (0 of 1000 seen at p = 0.999) lands 1000 units away on the far one.
pub const MAX_STEP: f64 = 5.0;

/// `1 / (1 + exp(-x))` with x clipped to [-9, 9], in the overflow-free form.
#[inline]
pub fn logistic(x: f64) -> f64 {
    let x = x.clamp(-X_CLIP, X_CLIP);
    let e = (-x.abs()).exp();
    if x > 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

#[inline]
fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// One arm's -log-likelihood at log-odds `x`, with its first and second derivatives in x.
///
/// Inside (0.001 < p < 0.999): the binomial term, derivatives `t p - s` and `t p (1 - p)`.
/// Beyond a clip the specified term is constant. Where that plateau lies uphill of the
/// interior minimum (the slope at the clip points back inside, e.g. a 19% rate seen at
/// p = 0.001) it is a spurious flat region on which Newton would stop at a zero gradient far
/// from the optimum, so there the term is continued by its tangent line (the convex envelope
/// of the clipped term: same value and slope at the clip, same optimum), with the curvature
/// at the clip as the Hessian model. Plateaus downhill of the interior (rates of 0 or 1) stay
/// flat: every point on them is optimal.
#[inline]
pub fn nll_term(x: f64, t: f64, s: f64) -> (f64, f64, f64) {
    let p = logistic(x);
    let edge = if p <= P_MIN {
        Some((P_MIN, -1.0))
    } else if p >= P_MAX {
        Some((P_MAX, 1.0))
    } else {
        None
    };
    match edge {
        None => (
            -(s * p.ln() + (t - s) * (-p).ln_1p()),
            t * p - s,
            t * p * (1.0 - p),
        ),
        Some((e, inward)) => {
            let value = -(s * e.ln() + (t - s) * (-e).ln_1p());
            let slope = t * e - s;
            if inward * slope > 0.0 {
                (value + slope * (x - logit(e)), slope, t * e * (1.0 - e))
            } else {
                (value, 0.0, 0.0)
            }
        }
    }
}

/// One update's MAP problem over `k` coordinates (reference last).
#[derive(Debug, Clone)]
pub struct MapProblem {
    pub k: usize,
    /// Positions in `w` of the observed arms; the last is the likelihood's reference, whose
    /// probability is `L(w[k-1])` (when no known arm is observed it is the last new arm, and its
    /// own coordinate does not enter the likelihood, exactly as upstream).
    pub obs_index: Vec<usize>,
    pub totals: Vec<f64>,
    pub successes: Vec<f64>,
    /// The prior covers `w[prior_start..]`.
    pub prior_start: usize,
    /// `(m0, P)`, P row-major, already scaled by `1 - decay`.
    pub prior: Option<(Vec<f64>, Vec<f64>)>,
}

impl MapProblem {
    fn n_total(&self) -> f64 {
        self.totals.iter().sum()
    }

    /// The linear predictor of each observed arm (reference last).
    pub fn log_odds(&self, w: &[f64]) -> Vec<f64> {
        let r = w[self.k - 1];
        let n = self.obs_index.len();
        let mut x: Vec<f64> = self.obs_index[..n - 1].iter().map(|&j| w[j] + r).collect();
        x.push(r);
        x
    }

    fn prior_delta(&self, w: &[f64]) -> Option<(Vec<f64>, &[f64])> {
        self.prior.as_ref().map(|(m0, p)| {
            let d = w[self.prior_start..]
                .iter()
                .zip(m0)
                .map(|(a, b)| a - b)
                .collect();
            (d, p.as_slice())
        })
    }

    pub fn objective(&self, w: &[f64]) -> f64 {
        let x = self.log_odds(w);
        let mut value: f64 = (0..x.len())
            .map(|i| nll_term(x[i], self.totals[i], self.successes[i]).0)
            .sum();
        if let Some((d, p)) = self.prior_delta(w) {
            let m = d.len();
            let mut quad = 0.0;
            for i in 0..m {
                let row: f64 = (0..m).map(|j| p[i * m + j] * d[j]).sum();
                quad += d[i] * row;
            }
            value += 0.5 * quad;
        }
        value / self.n_total()
    }

    /// Gradient and Hessian (row-major) of [`Self::objective`].
    pub fn gradient_hessian(&self, w: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let k = self.k;
        let x = self.log_odds(w);
        let mut g = vec![0.0; k];
        let mut h = vec![0.0; k * k];
        let last = x.len() - 1;
        for (i, &xi) in x.iter().enumerate() {
            let (_, dx, hx) = nll_term(xi, self.totals[i], self.successes[i]);
            // Every x_i contains w[k-1]; the others also their own coordinate.
            g[k - 1] += dx;
            h[k * k - 1] += hx;
            if i < last {
                let j = self.obs_index[i];
                g[j] = dx;
                h[j * k + j] = hx;
                h[j * k + k - 1] = hx;
                h[(k - 1) * k + j] = hx;
            }
        }
        if let Some((d, p)) = self.prior_delta(w) {
            let (s, m) = (self.prior_start, d.len());
            for i in 0..m {
                g[s + i] += (0..m).map(|j| p[i * m + j] * d[j]).sum::<f64>();
                for j in 0..m {
                    h[(s + i) * k + s + j] += p[i * m + j];
                }
            }
        }
        let n = self.n_total();
        g.iter_mut().for_each(|v| *v /= n);
        h.iter_mut().for_each(|v| *v /= n);
        (g, h)
    }

    /// Upstream's start: observed log-odds ratios against the likelihood's reference from the
    /// raw rates (clipped), 0 elsewhere, then the prior mean on the known arms.
    pub fn starting_point(&self) -> Vec<f64> {
        let n = self.obs_index.len();
        let rate = |i: usize| (self.successes[i] / self.totals[i]).clamp(P_MIN, P_MAX);
        let ref_logit = logit(rate(n - 1));
        let mut w = vec![0.0; self.k];
        for i in 0..n - 1 {
            w[self.obs_index[i]] = logit(rate(i)) - ref_logit;
        }
        if let Some((m0, _)) = &self.prior {
            w[self.prior_start..].copy_from_slice(m0);
        }
        w
    }

    /// Fisher information at `w` with unclipped p (L still clips x to [-9, 9]):
    /// `v_i = t_i p_i (1 - p_i)`; `F[j,j] = F[j,r] = F[r,j] = v_i` for each observed
    /// non-reference arm at position j; `F[r,r]` = the sum of all v.
    pub fn fisher_information(&self, w: &[f64]) -> Vec<f64> {
        let k = self.k;
        let x = self.log_odds(w);
        let mut f = vec![0.0; k * k];
        let last = x.len() - 1;
        for (i, &xi) in x.iter().enumerate() {
            let p = logistic(xi);
            let v = self.totals[i] * p * (1.0 - p);
            f[k * k - 1] += v;
            if i < last {
                let j = self.obs_index[i];
                f[j * k + j] = v;
                f[j * k + k - 1] = v;
                f[(k - 1) * k + j] = v;
            }
        }
        f
    }
}

/// Solves `(H + lambda I) d = -g`. Coordinates with zero curvature (no term involves them, or
/// their probability sits on a flat plateau) have zero gradient too and are left out.
/// Levenberg damping: `lambda = 1e-12 * max diag`, growing tenfold until Cholesky succeeds
/// (clipped terms can make f non-convex). The floor is there because curvature below it is
/// rounding: a prior precision that should be 0 can come out at 1e-25 beside entries of 1e7,
/// and undamped Newton would step 1e18 along it (the objective barely notices, the state
/// would). The floor changes the path, never the fixed point (d = 0 exactly where g = 0).
pub fn newton_direction(g: &[f64], h: &[f64], k: usize) -> Vec<f64> {
    let mut d = vec![0.0; k];
    let active: Vec<usize> = (0..k).filter(|&i| h[i * k + i] > 0.0).collect();
    let n = active.len();
    if n == 0 {
        return d;
    }
    let mut ha = vec![0.0; n * n];
    for (a, &i) in active.iter().enumerate() {
        for (b, &j) in active.iter().enumerate() {
            ha[a * n + b] = h[i * k + j];
        }
    }
    let mut lam = 1e-12 * (0..n).map(|i| ha[i * n + i]).fold(0.0, f64::max);
    let chol = loop {
        let mut damped = ha.clone();
        for i in 0..n {
            damped[i * n + i] += lam;
        }
        if let Some(l) = cholesky_lower(&damped, n) {
            break l;
        }
        lam *= 10.0;
        if !lam.is_finite() {
            return d; // H is not finite: no step (validated input never gets here)
        }
    };
    let rhs: Vec<f64> = active.iter().map(|&i| -g[i]).collect();
    let da = solve_cholesky(&chol, n, &rhs);
    for (a, &i) in active.iter().enumerate() {
        d[i] = da[a];
    }
    d
}

/// Minimises the objective by Newton's method with a backtracking (Armijo) line search, each
/// direction first scaled so that no coordinate moves more than [`MAX_STEP`].
///
/// Convergence criterion: stop when the gradient is exactly zero, or when the Newton
/// decrement `g^T H^-1 g` (twice the predicted decrease of f) is below the rounding level of f
/// (`4 eps |f|`) and the step is tiny (`<= 1e-8 (1 + |w|)`), after taking that last full step:
/// Newton converges quadratically, so the gradient is then at machine precision. Also stop if
/// no step decreases f (it is at its rounding floor), or after [`MAX_NEWTON_ITERATIONS`].
pub fn map_estimate(problem: &MapProblem) -> Vec<f64> {
    let k = problem.k;
    let mut w = problem.starting_point();
    let mut f = problem.objective(&w);
    for _ in 0..MAX_NEWTON_ITERATIONS {
        let (g, h) = problem.gradient_hessian(&w);
        if g.iter().all(|&v| v == 0.0) {
            break;
        }
        let d = newton_direction(&g, &h, k);
        let decrement: f64 = -g.iter().zip(&d).map(|(a, b)| a * b).sum::<f64>();
        let w_norm = w.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let d_norm = d.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        if decrement <= 4.0 * f64::EPSILON * f.abs() && d_norm <= 1e-8 * (1.0 + w_norm) {
            w.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
            break;
        }
        let bound = (MAX_STEP / d_norm).min(1.0);
        let mut alpha = bound;
        loop {
            let candidate: Vec<f64> = w.iter().zip(&d).map(|(a, b)| a + alpha * b).collect();
            let f_candidate = problem.objective(&candidate);
            if f_candidate <= f - 1e-4 * alpha * decrement {
                w = candidate;
                f = f_candidate;
                break;
            }
            alpha *= 0.5;
            if alpha < 1e-10 * bound {
                return w;
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem() -> MapProblem {
        // Two new arms and a reference, no prior.
        MapProblem {
            k: 3,
            obs_index: vec![0, 1, 2],
            totals: vec![1000.0, 500.0, 2000.0],
            successes: vec![120.0, 40.0, 200.0],
            prior_start: 3,
            prior: None,
        }
    }

    #[test]
    fn map_without_prior_is_the_mle() {
        let pb = problem();
        let w = map_estimate(&pb);
        let lg = |p: f64| (p / (1.0 - p)).ln();
        assert!((w[2] - lg(0.1)).abs() < 1e-12);
        assert!((w[0] - (lg(0.12) - lg(0.1))).abs() < 1e-12);
        assert!((w[1] - (lg(0.08) - lg(0.1))).abs() < 1e-12);
        let (g, _) = pb.gradient_hessian(&w);
        assert!(g.iter().all(|v| v.abs() < 1e-15));
    }

    #[test]
    fn gradient_and_hessian_match_finite_differences() {
        let mut pb = problem();
        pb.prior_start = 1;
        pb.prior = Some((vec![0.2, -1.0], vec![30.0, 5.0, 5.0, 10.0]));
        let w = [0.3, -0.4, -2.0];
        let (g, h) = pb.gradient_hessian(&w);
        let eps = 1e-6;
        for i in 0..3 {
            let mut a = w;
            let mut b = w;
            a[i] += eps;
            b[i] -= eps;
            let fd = (pb.objective(&a) - pb.objective(&b)) / (2.0 * eps);
            assert!((fd - g[i]).abs() < 1e-8, "g[{i}] {fd} vs {}", g[i]);
            let (ga, _) = pb.gradient_hessian(&a);
            let (gb, _) = pb.gradient_hessian(&b);
            for j in 0..3 {
                let fd = (ga[j] - gb[j]) / (2.0 * eps);
                assert!((fd - h[j * 3 + i]).abs() < 1e-7);
            }
        }
    }

    #[test]
    fn uphill_plateau_is_a_tangent_and_downhill_one_is_flat() {
        // 190 of 1000 seen at p = 0.001: the slope points back inside.
        let (v0, d0, _) = nll_term(-8.0, 1000.0, 190.0);
        let (v1, d1, h1) = nll_term(-9.5, 1000.0, 190.0);
        assert!(d0 < 0.0 && d0 == d1 && h1 > 0.0 && v1 > v0);
        // 0 of 1000: flat beyond the clip.
        assert_eq!(nll_term(-8.0, 1000.0, 0.0).1, 0.0);
        assert_eq!(
            nll_term(-8.0, 1000.0, 0.0).0,
            nll_term(-12.0, 1000.0, 0.0).0
        );
        // Same at the top.
        assert_eq!(nll_term(8.0, 1000.0, 1000.0).1, 0.0);
        assert!(nll_term(8.0, 1000.0, 500.0).1 > 0.0);
    }

    #[test]
    fn step_bound_keeps_the_map_at_the_edge_of_a_plateau() {
        // 9 of 10 on arm 0, 0 of 1000 on the reference, which starts at its prior mean 7.1 (p
        // on the upper clip) with zero prior precision. A full Newton step crossed the
        // interior and landed 1000 units down the lower plateau.
        let pb = MapProblem {
            k: 2,
            obs_index: vec![0, 1],
            totals: vec![10.0, 1000.0],
            successes: vec![9.0, 0.0],
            prior_start: 0,
            prior: Some((vec![0.935, 7.108], vec![0.0; 4])),
        };
        let w = map_estimate(&pb);
        assert!(w.iter().all(|v| v.abs() < 30.0), "{w:?}");
        assert!((w[0] + w[1] - 9.0_f64.ln()).abs() < 1e-9);
        assert!(logistic(w[1]) <= P_MIN);
    }

    #[test]
    fn rounding_level_curvature_does_not_move_the_map() {
        // A carried ORTS prior after 10^9 trials: the first arm's precision is 1e-23 (rounding
        // of 0), tied by rounding-level entries to precisions of 2.5e7. Undamped, the first
        // Newton step along it was 1e18 and the MAP ended at 3.5e16.
        #[rustfmt::skip]
        let p: Vec<f64> = [
            1.1779619986003206e-23, 1.726749709912095e-08, -1.7300093467621664e-08, 3.120016723892963e-11, 1.3962012622483153e-12, 0.0,
            1.726749709912095e-08, 25662785.65088364, -25312450.710197266, -346807.9465849174, -3526.9939301325835, 0.0,
            -1.7300093467621664e-08, -25312450.710197266, 25414820.792737316, -101339.47258547475, -1030.609904444158, 0.0,
            3.120016723892963e-11, -346807.9465849174, -101339.47258547475, 448161.5396412357, -14.12047014793771, 0.0,
            1.3962012622483153e-12, -3526.9939301325835, -1030.609904444158, -14.12047014793771, 4571.724304740864, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ]
        .iter()
        .map(|v| 0.9 * v)
        .collect();
        #[rustfmt::skip]
        let m0 = vec![-13.813509557297106, -11.446888293692664, -13.813509557297106, -4.453269714293418, -18.944065749547434, 11.360024492941971];
        let pb = MapProblem {
            k: 6,
            obs_index: vec![3, 4, 5],
            totals: vec![1.0, 1e9, 1.0],
            successes: vec![1.0, 335_344_178.0, 0.0],
            prior_start: 0,
            prior: Some((m0, p)),
        };
        let w = map_estimate(&pb);
        assert!(w.iter().all(|v| v.abs() < 30.0), "{w:?}");
        let (g, _) = pb.gradient_hessian(&w);
        assert!(g.iter().all(|v| v.abs() < 1e-12), "{g:?}");
    }
}
