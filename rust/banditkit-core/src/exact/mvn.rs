//! Win probabilities of correlated normal arms (LogisticBandit's posterior).
//!
//! `P_i = P(X_i - X_j > 0 for all j != i)`, a (K-1)-dimensional orthant probability of the
//! differences D ~ N(delta, C). With Y = delta - D ~ N(0, C) it is P(Y < delta), computed by
//! Genz's separation of variables: after a Cholesky factor C = L L^T (variables reordered as in
//! Genz and Bretz), `P = E_w[ e_1 e_2(w_1) ... e_m(w_1..w_{m-1}) ]` over the unit cube, with
//! `e_k = Phi((delta_k - sum_{l<k} L_kl y_l) / L_kk)` and `y_l = Phi^-1(w_l e_l)`. The
//! expectation is a randomised rank-1 lattice (Richtmyer generator, tent-periodised, antithetic,
//! random shifts from (seed, arm)): the spread of the shifted replicates gives the error
//! estimate, and the point count doubles until 3.5 standard errors are below the tolerance.
//! Arms are independent problems, run in parallel; one difference (two arms) is closed-form.
use super::special::{norm_cdf, norm_quantile};
use crate::bail;
use crate::error::Result;
use crate::rng::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// Default target for the error estimate (3.5 standard errors) of each probability: about the
/// accuracy of 2,500,000 Monte Carlo draws. The cost grows roughly as 1/tolerance^1.5.
pub const MVN_TOLERANCE: f64 = 1e-3;
const REPLICATES: usize = 8;
const FIRST_POINTS: usize = 8;
/// Per replicate; caps the work on hard problems (the error estimate then says so).
const MAX_POINTS: usize = 1 << 17;
const ERROR_FACTOR: f64 = 3.5;
/// Relative tolerance for symmetry, positive semidefiniteness and degenerate directions.
const REL_TOL: f64 = 1e-10;

/// `(P, error estimate)`: P[i] = probability that arm i has the highest draw of N(mean, cov)
/// (ties, possible only between perfectly correlated arms, go to the first, as `argmax`).
/// `cov` is row-major K x K, symmetric positive semidefinite (zero rows fix an arm at its mean).
/// Stops when every probability's error estimate (3.5 standard errors, returned as the
/// largest over the arms; 0 when exact) is below `tolerance` ([`MVN_TOLERANCE`] by default in
/// the bindings). The same seed gives the same answer whatever the number of threads.
pub fn prob_best_mvn(
    mean: &[f64],
    cov: &[f64],
    seed: u64,
    tolerance: f64,
) -> Result<(Vec<f64>, f64)> {
    check_mvn(mean, cov)?;
    if !(tolerance > 0.0 && tolerance.is_finite()) {
        bail!("tolerance must be positive, got {tolerance}");
    }
    let k = mean.len();
    if k <= 1 {
        return Ok((vec![1.0; k], 0.0));
    }
    let per_arm: Vec<(f64, f64)> = (0..k)
        .into_par_iter()
        .map(|i| orthant(mean, cov, i, seed, tolerance))
        .collect();
    let mut probs: Vec<f64> = per_arm.iter().map(|r| r.0.max(0.0)).collect();
    let error = per_arm.iter().map(|r| r.1).fold(0.0, f64::max);
    super::normalise(&mut probs);
    Ok((probs, error))
}

/// Inputs of [`prob_best_mvn`]: finite, `cov` K x K, symmetric and positive semidefinite
/// (to a relative tolerance).
pub fn check_mvn(mean: &[f64], cov: &[f64]) -> Result<()> {
    let k = mean.len();
    if cov.len() != k * k {
        bail!(
            "cov must be {k} x {k} to match mean, got {} entries",
            cov.len()
        );
    }
    if mean.iter().chain(cov).any(|x| !x.is_finite()) {
        bail!("mean and cov must be finite");
    }
    let tol = zero_tolerance(cov, k);
    for i in 0..k {
        for j in 0..i {
            if (cov[i * k + j] - cov[j * k + i]).abs() > tol {
                let (a, b) = (cov[i * k + j], cov[j * k + i]);
                bail!("cov must be symmetric, got {a} and {b} at ({i}, {j})");
            }
        }
    }
    if pivoted_cholesky(cov, k).is_none() {
        bail!("cov must be positive semidefinite");
    }
    Ok(())
}

fn zero_tolerance(cov: &[f64], k: usize) -> f64 {
    let scale = (0..k).map(|i| cov[i * k + i].abs()).fold(0.0, f64::max);
    REL_TOL * scale.max(f64::MIN_POSITIVE)
}

/// Columns (each of length k) of L with `cov = L L^T`, largest remaining variance first,
/// stopping when none is above the tolerance. None if `cov` is not PSD.
fn pivoted_cholesky(cov: &[f64], k: usize) -> Option<Vec<Vec<f64>>> {
    let tol = zero_tolerance(cov, k);
    let mut rest: Vec<f64> = (0..k).map(|i| cov[i * k + i]).collect();
    let mut cols: Vec<Vec<f64>> = Vec::new();
    loop {
        let top = rest.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1));
        let Some((p, &d)) = top.filter(|(_, &d)| d > tol) else {
            break;
        };
        let root = d.sqrt();
        let col: Vec<f64> = (0..k)
            .map(|i| (cov[i * k + p] - cols.iter().map(|c| c[i] * c[p]).sum::<f64>()) / root)
            .collect();
        for (r, c) in rest.iter_mut().zip(&col) {
            *r -= c * c;
        }
        rest[p] = 0.0;
        cols.push(col);
    }
    if rest.iter().any(|&r| r < -1e3 * tol) {
        return None;
    }
    Some(cols)
}

/// The orthant problem of arm i: upper limits, Cholesky factor, and for each row whether arm i
/// wins a tie with that row's arm.
struct Orthant {
    m: usize,
    upper: Vec<f64>,
    chol: Vec<f64>,
    wins_tie: Vec<bool>,
    tie_tol: f64,
    /// A point whose running product falls below this stops early: the remaining factors
    /// (each <= 1) can change it by less than `NEGLIGIBLE` times the tolerance.
    cutoff: f64,
}

/// Early-stop level relative to the tolerance (see `Orthant::cutoff`).
const NEGLIGIBLE: f64 = 1e-6;

impl Orthant {
    fn new(mean: &[f64], cov: &[f64], i: usize, tolerance: f64) -> Orthant {
        let k = mean.len();
        let mut ids: Vec<usize> = (0..k).filter(|&j| j != i).collect();
        let m = ids.len();
        let mut c = vec![0.0; m * m];
        for (p, &a) in ids.iter().enumerate() {
            for (q, &b) in ids.iter().enumerate() {
                c[p * m + q] = cov[i * k + i] - cov[i * k + a] - cov[i * k + b] + cov[a * k + b];
            }
        }
        let mut upper: Vec<f64> = ids.iter().map(|&j| mean[i] - mean[j]).collect();
        let chol = reordered_cholesky(&mut c, &mut upper, &mut ids, zero_tolerance(cov, k));
        Orthant {
            m,
            upper,
            chol,
            wins_tie: ids.iter().map(|&j| j > i).collect(),
            tie_tol: 1e-12 * mean.iter().fold(1.0_f64, |a, x| a.max(x.abs())),
            cutoff: NEGLIGIBLE * tolerance,
        }
    }

    /// `e_k` for row k given `partial = sum_{l<k} L_kl y_l`.
    fn factor(&self, k: usize, partial: f64) -> f64 {
        let diag = self.chol[k * self.m + k];
        let room = self.upper[k] - partial;
        if diag > 0.0 {
            norm_cdf(room / diag)
        } else if room > self.tie_tol || (room >= -self.tie_tol && self.wins_tie[k]) {
            1.0
        } else {
            0.0
        }
    }

    /// The separated integrand at a point w of the unit cube (dimension m - 1).
    fn integrand(&self, w: &[f64], y: &mut [f64]) -> f64 {
        let m = self.m;
        let mut prob = 1.0;
        for k in 0..m {
            let row = &self.chol[k * m..k * m + k];
            let partial: f64 = row.iter().zip(&y[..k]).map(|(l, y)| l * y).sum();
            let e = self.factor(k, partial);
            prob *= e;
            if prob < self.cutoff {
                return prob;
            }
            if k + 1 < m {
                let u = (w[k] * e).clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON);
                y[k] = if self.chol[k * m + k] > 0.0 {
                    norm_quantile(u)
                } else {
                    0.0
                };
            }
        }
        prob
    }
}

/// Cholesky factor (row-major) with Genz and Bretz's variable ordering: at each step, the
/// variable with the smallest conditional probability given the earlier ones at their truncated
/// means goes next, which concentrates the integrand's variation in the first dimensions.
/// Directions without variance (pivot <= tol) get zero columns and go last. Reorders `c`,
/// `upper` and `ids` in place.
fn reordered_cholesky(c: &mut [f64], upper: &mut [f64], ids: &mut [usize], tol: f64) -> Vec<f64> {
    let m = upper.len();
    let mut l: Vec<f64> = vec![0.0; m * m];
    let mut means: Vec<f64> = vec![0.0; m];
    let dot =
        |l: &[f64], r: usize, v: &[f64], k: usize| (0..k).map(|p| l[r * m + p] * v[p]).sum::<f64>();
    for k in 0..m {
        let mut best = (k, f64::INFINITY);
        for j in k..m {
            let rest = c[j * m + j] - dot(&l, j, &l[j * m..j * m + m], k);
            let prob = if rest > tol {
                norm_cdf((upper[j] - dot(&l, j, &means, k)) / rest.sqrt())
            } else {
                2.0
            };
            if prob < best.1 {
                best = (j, prob);
            }
        }
        let b = best.0;
        if b != k {
            for q in 0..m {
                c.swap(k * m + q, b * m + q);
            }
            for q in 0..m {
                c.swap(q * m + k, q * m + b);
            }
            for p in 0..k {
                l.swap(k * m + p, b * m + p);
            }
            upper.swap(k, b);
            ids.swap(k, b);
        }
        let d = c[k * m + k] - dot(&l, k, &l[k * m..k * m + m], k);
        if d <= tol {
            continue;
        }
        let root = d.sqrt();
        l[k * m + k] = root;
        for r in k + 1..m {
            l[r * m + k] = (c[r * m + k] - dot(&l, r, &l[k * m..k * m + m], k)) / root;
        }
        // E[z | z < beta] = -phi(beta) / Phi(beta) (-> beta deep in the lower tail).
        let beta = (upper[k] - dot(&l, k, &means, k)) / root;
        let below = norm_cdf(beta);
        means[k] = if below > 1e-300 {
            -(-0.5 * beta * beta).exp() / (2.0 * std::f64::consts::PI).sqrt() / below
        } else {
            beta
        };
    }
    l
}

/// Richtmyer lattice generator: fractional parts of square roots of the first primes.
fn generator(dim: usize) -> Vec<f64> {
    let mut primes: Vec<u64> = Vec::with_capacity(dim);
    let mut n = 2u64;
    while primes.len() < dim {
        if primes
            .iter()
            .take_while(|&&p| p * p <= n)
            .all(|&p| n % p >= 1)
        {
            primes.push(n);
        }
        n += 1;
    }
    primes.iter().map(|&p| (p as f64).sqrt().fract()).collect()
}

/// (P_i, 3.5 standard errors) for arm i.
fn orthant(mean: &[f64], cov: &[f64], i: usize, seed: u64, tolerance: f64) -> (f64, f64) {
    let problem = Orthant::new(mean, cov, i, tolerance);
    let m = problem.m;
    let mut y = vec![0.0; m];
    if m == 1 {
        return (problem.integrand(&[], &mut y), 0.0);
    }
    let dim = m - 1;
    let gen = generator(dim);
    let mut rng = Xoshiro256PlusPlus::stream(seed, i as u64);
    let shifts: Vec<Vec<f64>> = (0..REPLICATES)
        .map(|_| (0..dim).map(|_| rng.next_f64()).collect())
        .collect();
    let mut sums = [0.0; REPLICATES];
    let mut w = vec![0.0; dim];
    let (mut done, mut target) = (0, FIRST_POINTS);
    loop {
        for (sum, shift) in sums.iter_mut().zip(&shifts) {
            for n in done + 1..=target {
                for d in 0..dim {
                    let u = (n as f64 * gen[d] + shift[d]).fract();
                    w[d] = (2.0 * u - 1.0).abs();
                }
                let direct = problem.integrand(&w, &mut y);
                w.iter_mut().for_each(|x| *x = 1.0 - *x);
                // Antithetic pair: cancels the integrand's odd part.
                *sum += 0.5 * (direct + problem.integrand(&w, &mut y));
            }
        }
        let means: Vec<f64> = sums.iter().map(|s| s / target as f64).collect();
        let est = means.iter().sum::<f64>() / REPLICATES as f64;
        let var = means.iter().map(|x| (x - est).powi(2)).sum::<f64>()
            / ((REPLICATES - 1) * REPLICATES) as f64;
        let error = ERROR_FACTOR * var.sqrt();
        if error <= tolerance || target >= MAX_POINTS {
            return (est, error);
        }
        done = target;
        target *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::special::norm_cdf;

    #[test]
    fn independent_case_matches_quadrature() {
        let mean = [0.1, 0.0, -0.2, 0.3];
        let sd = [1.0, 0.5, 2.0, 0.8];
        let mut cov = vec![0.0; 16];
        for j in 0..4 {
            cov[j * 4 + j] = sd[j] * sd[j];
        }
        let (p, err) = prob_best_mvn(&mean, &cov, 7, 1e-5).unwrap();
        let q = super::super::prob_best_gaussian(&mean, &sd);
        assert!(err <= 1e-5);
        for j in 0..4 {
            assert!((p[j] - q[j]).abs() < 2e-5, "{p:?} vs {q:?}");
        }
    }

    #[test]
    fn one_direction_of_variance_is_exact() {
        // Arm 1 fixed at 0 (zero row): P_0 = Phi(mean_0 / sd_0).
        let (p, err) = prob_best_mvn(&[0.5, 0.0], &[4.0, 0.0, 0.0, 0.0], 1, MVN_TOLERANCE).unwrap();
        assert_eq!(err, 0.0);
        assert!((p[0] - norm_cdf(0.25)).abs() < 1e-15);
        assert!((p[1] - norm_cdf(-0.25)).abs() < 1e-15);
    }

    #[test]
    fn perfectly_correlated_twins_tie_to_the_first() {
        let cov = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let (p, _) = prob_best_mvn(&[0.0, 0.0, 0.0], &cov, 3, MVN_TOLERANCE).unwrap();
        assert_eq!(p[1], 0.0);
        assert!(
            (p[0] - 0.5).abs() < 1e-12 && (p[2] - 0.5).abs() < 1e-12,
            "{p:?}"
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert!(prob_best_mvn(&[0.0, 1.0], &[1.0, 0.0, 0.0], 0, MVN_TOLERANCE).is_err());
        assert!(prob_best_mvn(&[0.0, f64::NAN], &[1.0, 0.0, 0.0, 1.0], 0, MVN_TOLERANCE).is_err());
        assert!(prob_best_mvn(&[0.0, 1.0], &[1.0, 0.5, 0.4, 1.0], 0, MVN_TOLERANCE).is_err());
        assert!(prob_best_mvn(&[0.0, 1.0], &[1.0, 2.0, 2.0, 1.0], 0, MVN_TOLERANCE).is_err());
        assert!(prob_best_mvn(&[0.0, 1.0], &[1.0, 0.0, 0.0, 1.0], 0, 0.0).is_err());
    }

    #[test]
    fn same_seed_same_answer() {
        let cov = [1.0, 0.3, 0.1, 0.3, 2.0, -0.2, 0.1, -0.2, 0.5];
        let a = prob_best_mvn(&[0.0, 0.2, 0.1], &cov, 11, MVN_TOLERANCE).unwrap();
        let b = prob_best_mvn(&[0.0, 0.2, 0.1], &cov, 11, MVN_TOLERANCE).unwrap();
        assert_eq!(a, b);
    }
}
