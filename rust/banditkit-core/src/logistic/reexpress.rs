//! `get_par`: the state re-expressed for another ordered list of known arms (last = reference).
use crate::bail;
use crate::error::Result;
use crate::linalg::{inverse_spd, matmul, transpose};

/// `T` (m x k, row-major) with `mu' = T mu`, for the arms at `positions` (indices into the
/// current order; the last becomes the reference):
/// T = (absolute log-odds -> ratios against the new reference, and its level)
///   * (current coordinates -> absolute log-odds, eta_a = w_a + w_r, eta_r = w_r).
pub fn reexpression_matrix(k: usize, positions: &[usize]) -> Vec<f64> {
    let m = positions.len();
    let r = positions[m - 1];
    let mut to_new = vec![0.0; m * k];
    for i in 0..m {
        to_new[i * k + r] = -1.0;
    }
    for (i, &a) in positions[..m - 1].iter().enumerate() {
        to_new[i * k + a] = 1.0;
    }
    to_new[(m - 1) * k + r] = 1.0;
    let mut to_log_odds = crate::linalg::identity(k);
    for i in 0..k {
        to_log_odds[i * k + k - 1] = 1.0;
    }
    matmul(&to_new, &to_log_odds, m, k, k)
}

/// `round(pinv(T))` (k x m). T has full row rank (its rows are independent functionals of the
/// log-odds), so `pinv(T) = T^T (T T^T)^-1`. Its entries are 0, +-1 for a reordering and
/// simple fractions (1/2 only for a single non-reference arm) for a subset; rounding is half to
/// even, as `numpy.rint`.
pub fn rounded_pinv(t: &[f64], m: usize, k: usize) -> Vec<f64> {
    let tt = transpose(t, m, k);
    let gram = matmul(t, &tt, m, k, m);
    let inv = inverse_spd(&gram, m).expect("T has full row rank");
    let mut p = matmul(&tt, &inv, k, m, m);
    for v in p.iter_mut() {
        *v = v.round_ties_even();
    }
    p
}

/// Checks that `positions` are distinct indices below `k`, and at least one.
pub fn check_positions(k: usize, positions: &[usize]) -> Result<()> {
    if positions.is_empty() {
        bail!("action_list cannot be empty");
    }
    let mut seen = vec![false; k];
    for &p in positions {
        if p >= k {
            bail!("arm index {p} out of range for {k} arms");
        }
        if seen[p] {
            bail!("action_list must not contain duplicate names");
        }
        seen[p] = true;
    }
    Ok(())
}

/// `(T mu, R^T sigma_inv R)` with `R = round(pinv(T))`, as the contract specifies.
pub fn get_par(mu: &[f64], sigma_inv: &[f64], positions: &[usize]) -> Result<(Vec<f64>, Vec<f64>)> {
    let k = mu.len();
    check_positions(k, positions)?;
    let m = positions.len();
    let t = reexpression_matrix(k, positions);
    let new_mu = matmul(&t, mu, m, k, 1);
    let r = rounded_pinv(&t, m, k);
    let s_r = matmul(sigma_inv, &r, k, k, m);
    let new_sigma = matmul(&transpose(&r, k, m), &s_r, m, k, m);
    Ok((new_mu, new_sigma))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reordering_round_trips() {
        let mu = [0.3, -0.2, 1.5];
        let s = [4.0, 1.0, 2.0, 1.0, 3.0, 1.5, 2.0, 1.5, 9.0];
        // New order [2, 0, 1]: arm 1 becomes the reference.
        let (m2, s2) = get_par(&mu, &s, &[2, 0, 1]).unwrap();
        // eta = [1.8, 1.3, 1.5]; against eta_1 = 1.3: [0.2, 0.5], level 1.3.
        for (a, b) in m2.iter().zip([0.2, 0.5, 1.3]) {
            assert!((a - b).abs() < 1e-14);
        }
        // Back: in the new order, the old arms [0, 1, 2] sit at positions [1, 2, 0].
        let (m4, s4) = get_par(&m2, &s2, &[1, 2, 0]).unwrap();
        for i in 0..3 {
            assert!((m4[i] - mu[i]).abs() < 1e-14);
        }
        for i in 0..9 {
            assert!((s4[i] - s[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn single_arm_subset_rounds_half_to_zero() {
        let t = reexpression_matrix(2, &[0]);
        assert_eq!(t, vec![1.0, 1.0]);
        assert_eq!(rounded_pinv(&t, 1, 2), vec![0.0, 0.0]);
    }

    #[test]
    fn rejects_bad_positions() {
        assert!(get_par(&[0.0, 0.0], &[0.0; 4], &[]).is_err());
        assert!(get_par(&[0.0, 0.0], &[0.0; 4], &[0, 0]).is_err());
        assert!(get_par(&[0.0, 0.0], &[0.0; 4], &[2]).is_err());
    }
}
