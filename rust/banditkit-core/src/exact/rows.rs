//! Many independent win-probability problems at once: one row per context, rows in parallel.
use rayon::prelude::*;

use super::prob_best_gaussian;

/// Rows per rayon task (results do not depend on it).
const ROWS_PER_TASK: usize = 32;

/// Turns [`prob_best_gaussian`]'s answer into a policy's propensities: the probability of the
/// winning point mass goes to all point masses (`sigma == 0`) tied at the top, evenly (a policy
/// breaking ties uniformly at random; `prob_best_gaussian` gives it to the first, as `argmax`
/// does), and the quadrature's rounding below zero (~1e-22) becomes 0.
pub fn share_point_mass_ties(mu: &[f64], sigma: &[f64], probs: &mut [f64]) {
    probs.iter_mut().for_each(|p| *p = p.max(0.0));
    let top = (0..mu.len())
        .filter(|&j| sigma[j] == 0.0)
        .map(|j| mu[j])
        .fold(f64::NEG_INFINITY, f64::max);
    let tied: Vec<usize> = (0..mu.len())
        .filter(|&j| sigma[j] == 0.0 && mu[j] == top)
        .collect();
    if tied.len() > 1 {
        let share = tied.iter().map(|&j| probs[j]).sum::<f64>() / tied.len() as f64;
        tied.iter().for_each(|&j| probs[j] = share);
    }
}

/// [`prob_best_gaussian`] of every row of row-major `(n, k)` means and standard deviations
/// (validated by the caller, see [`super::check_gaussian`]), in parallel over rows. With
/// `share_ties`, point masses tied at the top share their probability
/// ([`share_point_mass_ties`]).
pub fn prob_best_gaussian_rows(mu: &[f64], sigma: &[f64], k: usize, share_ties: bool) -> Vec<f64> {
    let mut out = vec![0.0; mu.len()];
    if k == 0 {
        return out;
    }
    out.par_chunks_mut(ROWS_PER_TASK * k)
        .enumerate()
        .for_each(|(c, block)| {
            for (r, row) in block.chunks_mut(k).enumerate() {
                let at = (c * ROWS_PER_TASK + r) * k;
                let (m, s) = (&mu[at..at + k], &sigma[at..at + k]);
                row.copy_from_slice(&prob_best_gaussian(m, s));
                if share_ties {
                    share_point_mass_ties(m, s, row);
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_equal_one_call_per_row() {
        let mu = [0.0, 0.5, -0.2, 1.0, 1.0, 0.0, 3.0, 3.0, 3.0];
        let sigma = [1.0, 0.3, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let rows = prob_best_gaussian_rows(&mu, &sigma, 3, false);
        for r in 0..3 {
            let one = prob_best_gaussian(&mu[3 * r..3 * r + 3], &sigma[3 * r..3 * r + 3]);
            assert_eq!(&rows[3 * r..3 * r + 3], one.as_slice());
        }
        let shared = prob_best_gaussian_rows(&mu, &sigma, 3, true);
        assert_eq!(&shared[..3], &rows[..3]);
        assert!(
            (shared[3] - shared[4]).abs() < 1e-15
                && (shared[3] + shared[4] - rows[3]).abs() < 1e-15
        );
        assert_eq!(&shared[6..], &[1.0 / 3.0; 3]);
    }
}
