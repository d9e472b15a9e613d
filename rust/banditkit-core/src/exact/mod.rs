//! Exact win probabilities: deterministic integration instead of Monte Carlo.
//!
//! - [`prob_best_gaussian`], [`prob_best_beta`]: independent arms, by Gauss-Legendre panels
//!   placed around every arm at its own scale, on one node set shared by all arms (cost
//!   O(arms x nodes)); ~1e-12 absolute, any spread of scales, Beta parameters from 1e-6 to 1e6+.
//! - [`prob_best_mvn`]: correlated normal arms, each probability a (K-1)-dimensional orthant
//!   probability computed by Genz's separation of variables with randomised lattice QMC, to a
//!   requested error bound (returned as an estimate), deterministic for a given seed.
//! - [`prob_best_gaussian_rows`]: one Gaussian problem per row (per context), rows in parallel.
//!
//! Every result sums to 1. The `check_*` functions hold the input rules the bindings enforce.
mod beta;
mod gaussian;
mod mvn;
mod quadrature;
mod rows;
pub mod special;

pub use beta::prob_best_beta;
pub use gaussian::prob_best_gaussian;
pub use mvn::{check_mvn, prob_best_mvn, MVN_TOLERANCE};
pub use rows::{prob_best_gaussian_rows, share_point_mass_ties};

use crate::bail;
use crate::error::Result;

/// Scale to sum 1 (removes the last ~1e-13 of quadrature error from the total).
fn normalise(probs: &mut [f64]) {
    let total: f64 = probs.iter().sum();
    if total > 0.0 {
        probs.iter_mut().for_each(|p| *p /= total);
    }
}

fn check_lengths(a: &[f64], b: &[f64], names: &str) -> Result<()> {
    if a.len() != b.len() {
        bail!(
            "{names} must have the same length, got {} and {}",
            a.len(),
            b.len()
        );
    }
    Ok(())
}

/// Inputs of [`prob_best_gaussian`]: equal lengths, finite, `sigma >= 0`.
pub fn check_gaussian(mu: &[f64], sigma: &[f64]) -> Result<()> {
    check_lengths(mu, sigma, "mu and sigma")?;
    if let Some(m) = mu.iter().find(|m| !m.is_finite()) {
        bail!("mu must be finite, got {m}");
    }
    if let Some(s) = sigma.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
        bail!("sigma must be finite and non-negative, got {s}");
    }
    Ok(())
}

/// Inputs of [`prob_best_beta`]: equal lengths, finite and positive.
pub fn check_beta(alpha: &[f64], beta: &[f64]) -> Result<()> {
    check_lengths(alpha, beta, "alpha and beta")?;
    for (name, v) in [("alpha", alpha), ("beta", beta)] {
        if let Some(x) = v.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
            bail!("{name} must be finite and positive, got {x}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::special::norm_cdf;
    use super::*;

    #[test]
    fn two_gaussians_match_the_closed_form() {
        // P(X_0 > X_1) = Phi((mu_0 - mu_1) / sqrt(s_0^2 + s_1^2)), sd ratios up to 1e6.
        for &(m0, m1, s0, s1) in &[
            (0.0, 0.1, 1.0, 1.0),
            (0.3, 0.0, 0.01, 1.0),
            (1e-4, 0.0, 1e-6, 1.0),
            (5.0, -2.0, 3.0, 0.001),
        ] {
            let p = prob_best_gaussian(&[m0, m1], &[s0, s1]);
            let want = norm_cdf((m0 - m1) / (s0 * s0 + s1 * s1).sqrt());
            assert!((p[0] - want).abs() < 1e-13, "{p:?} vs {want}");
            assert!((p[0] + p[1] - 1.0).abs() < 1e-15);
        }
    }

    #[test]
    fn betas_with_unit_beta_match_the_closed_form() {
        // Beta(a, 1) has CDF x^a, so P_i = a_i / sum_j a_j exactly.
        let alpha = [1.0, 2.5, 40.0, 1e3, 2e5, 1e6];
        let p = prob_best_beta(&alpha, &[1.0; 6]);
        let total: f64 = alpha.iter().sum();
        for (pi, a) in p.iter().zip(alpha) {
            assert!((pi - a / total).abs() < 1e-12, "{pi} vs {}", a / total);
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert!(prob_best_gaussian(&[], &[]).is_empty());
        assert_eq!(prob_best_gaussian(&[3.0], &[0.0]), vec![1.0]);
        assert_eq!(prob_best_beta(&[3.0], &[2.0]), vec![1.0]);
        assert_eq!(
            prob_best_gaussian(&[1.0, 2.0, 2.0], &[0.0; 3]),
            vec![0.0, 1.0, 0.0]
        );
        let p = prob_best_gaussian(&[0.5, 0.0], &[0.0, 2.0]);
        assert!((p[0] - norm_cdf(0.25)).abs() < 1e-13, "{p:?}");
        let p = prob_best_gaussian(&[0.0, 100.0, 0.1], &[1.0, 0.0, 2.0]);
        assert_eq!(p, vec![0.0, 1.0, 0.0]);
        for p in prob_best_gaussian(&[0.2; 4], &[0.5; 4]) {
            assert!((p - 0.25).abs() < 1e-15);
        }
        // Tiny spread around a large mean: the integration is relative to the top mean.
        let (low, high) = (1e8, 1e8 + 1e-8);
        let p = prob_best_gaussian(&[low, high], &[1e-8, 1e-8]);
        let want = norm_cdf((high - low) / (2e-16f64).sqrt());
        assert!((p[1] - want).abs() < 1e-12, "{p:?} vs {want}");
    }

    #[test]
    fn checks_reject_bad_input() {
        assert!(check_gaussian(&[0.0], &[1.0, 1.0]).is_err());
        assert!(check_gaussian(&[f64::NAN], &[1.0]).is_err());
        assert!(check_gaussian(&[0.0], &[-1.0]).is_err());
        assert!(check_gaussian(&[0.0], &[f64::INFINITY]).is_err());
        assert!(check_gaussian(&[0.0, 1.0], &[0.0, 1.0]).is_ok());
        assert!(check_beta(&[1.0], &[0.0]).is_err());
        assert!(check_beta(&[f64::NAN], &[1.0]).is_err());
        assert!(check_beta(&[1.0, 2.0], &[1.0]).is_err());
        assert!(check_beta(&[1e6], &[0.5]).is_ok());
    }

    #[test]
    fn mvn_is_the_same_for_any_thread_count() {
        let cov = [
            1.0, 0.3, 0.1, 0.0, 0.3, 2.0, -0.2, 0.0, 0.1, -0.2, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        let mean = [0.0, 0.2, 0.1, 0.3];
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| prob_best_mvn(&mean, &cov, 5, 1e-4).unwrap())
        };
        assert_eq!(run(1), run(2));
    }
}
