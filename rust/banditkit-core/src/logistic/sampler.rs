//! Posterior draws of the odds ratios for `win_prop` and `select`.
use super::LogisticState;
use crate::bail;
use crate::error::Result;
use crate::linalg::{pinv_sym, psd_factor_lower, sym_eigen};

/// numpy.linalg.pinv's default cut-off.
pub const PINV_RCOND: f64 = 1e-15;
/// Eigenvalues above `-PSD_TOL * max|eigenvalue|` count as non-negative.
pub const PSD_TOL: f64 = 1e-12;
/// The contract's diagonal repair of a non-PSD covariance, at most `PSD_MAX_ITERATIONS` times.
pub const PSD_INCREMENT: f64 = 0.001;
pub const PSD_MAX_ITERATIONS: usize = 100;

/// Positive semidefinite to rounding.
pub fn is_psd(a: &[f64], n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let (values, _) = sym_eigen(a, n);
    let scale = values.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
    values[0] >= -PSD_TOL * scale
}

/// `mean + L z` draws every arm's log-odds ratio against the reference (last, fixed at 0).
#[derive(Debug, Clone)]
pub struct OddsRatioSampler {
    pub mean: Vec<f64>,
    /// Lower-triangular, row-major, k x k; its last row is zero.
    pub chol_lower: Vec<f64>,
    /// How many times 0.001 was added to the covariance's diagonal (callers warn if > 0).
    pub repairs: usize,
}

/// The posterior of the odds ratios: N(mu[:-1], pinv(sigma_inv)[:-1, :-1]). Two arms: the
/// one ratio's sd is sqrt(C[0,0]). More: if the covariance block is not PSD, 0.001 is added to
/// its diagonal until it is, at most 100 times, then an error.
///
/// `pinv` is NumPy's (cut-off `PINV_RCOND`) except that eigenvalues of `sigma_inv` within
/// `-PSD_TOL * max|eigenvalue|` of zero count as zero: an update's precision is PSD by
/// construction, and a direction it leaves unidentified can come out at, say, -2e-15 relative;
/// NumPy's rule would invert that into a variance of -1e10 that no diagonal repair can mend.
pub fn odds_ratio_sampler(state: &LogisticState) -> Result<OddsRatioSampler> {
    let k = state.k();
    debug_assert!(k >= 2);
    let full = pinv_sym(&state.sigma_inv, k, PINV_RCOND, PSD_TOL);
    let n = k - 1;
    let mut cov = vec![0.0; n * n];
    for i in 0..n {
        cov[i * n..(i + 1) * n].copy_from_slice(&full[i * k..i * k + n]);
    }
    let mut chol_lower = vec![0.0; k * k];
    let mut repairs = 0;
    if k == 2 {
        let scale = state.sigma_inv.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        if cov[0] < -PSD_TOL * scale {
            bail!(
                "the odds ratio's variance is negative ({}): sigma_inv is not positive semidefinite",
                cov[0]
            );
        }
        chol_lower[0] = cov[0].max(0.0).sqrt();
    } else {
        while !is_psd(&cov, n) && repairs < PSD_MAX_ITERATIONS {
            for i in 0..n {
                cov[i * n + i] += PSD_INCREMENT;
            }
            repairs += 1;
        }
        if !is_psd(&cov, n) {
            bail!("Failed to make covariance matrix positive semidefinite after {PSD_MAX_ITERATIONS} iterations");
        }
        let low = psd_factor_lower(&cov, n);
        for i in 0..n {
            chol_lower[i * k..i * k + n].copy_from_slice(&low[i * n..(i + 1) * n]);
        }
    }
    let mut mean = state.mu[..n].to_vec();
    mean.push(0.0);
    Ok(OddsRatioSampler {
        mean,
        chol_lower,
        repairs,
    })
}
