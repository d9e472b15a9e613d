//! LogisticBandit (ORTS and Full-TS, arXiv:2003.01905): the whole update, re-expression and
//! the posterior sampler. Arms are indices here; the bindings own the names.
//!
//! Coordinates: for K arms (reference last), `w[j]` (j < K-1) is arm j's log-odds ratio
//! against the reference and `w[K-1]` the reference's own log-odds.
//!
//! Robustness (upstream raised LinAlgError on some valid sequences): the ORTS prior uses the
//! Schur complement instead of a double inverse, so a singular prior precision is fine; the
//! MAP solve leaves coordinates nothing identifies where they start and damps a singular
//! Hessian; covariances are pseudo-inverses. The state stays finite, `sigma_inv` symmetric PSD.
//! Where a rate of 0 or 1 puts a probability on its clip, every point of that plateau is a MAP;
//! the solver keeps the first one it reaches.
pub mod newton;
pub mod reexpress;
pub mod sampler;

use crate::bail;
use crate::error::Result;
use crate::linalg::{cholesky_lower, sym_eigen, symmetrize};
pub use newton::{map_estimate, MapProblem};
pub use reexpress::get_par;
pub use sampler::{odds_ratio_sampler, OddsRatioSampler};

/// Relative asymmetry accepted in a user-supplied `sigma_inv`.
pub const SYMMETRY_TOL: f64 = 1e-9;
/// Negative eigenvalue, relative to the largest entry, accepted in a user-supplied `sigma_inv`
/// (rounding in a saved or re-expressed precision; an indefinite matrix is far beyond it).
pub const PSD_TOL: f64 = 1e-9;

/// `(mu, sigma_inv)` over K arms, `sigma_inv` row-major K x K.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogisticState {
    pub mu: Vec<f64>,
    pub sigma_inv: Vec<f64>,
}

/// One entry of `obs`: the arm's index if it is known, and its counts (already validated).
#[derive(Debug, Clone, Copy)]
pub struct ArmCounts {
    pub known: Option<usize>,
    pub total: f64,
    pub success: f64,
}

/// Where an arm of the updated order comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A known arm, by its current index.
    Known(usize),
    /// A new arm, by its position in the batch.
    New(usize),
}

#[derive(Debug, Clone, Copy)]
pub struct UpdateOptions {
    pub odds_ratios_only: bool,
    pub remove_not_observed: bool,
    pub decay: f64,
}

impl LogisticState {
    /// A state from user input: `sigma_inv` must be K x K, everything finite, `sigma_inv`
    /// symmetric to `SYMMETRY_TOL` relative to its largest entry and positive semidefinite up
    /// to rounding (no eigenvalue below `-PSD_TOL` times the largest entry).
    pub fn new(mu: Vec<f64>, sigma_inv: Vec<f64>) -> Result<Self> {
        let k = mu.len();
        if sigma_inv.len() != k * k {
            bail!("sigma_inv must have shape ({k}, {k})");
        }
        if !mu.iter().chain(&sigma_inv).all(|v| v.is_finite()) {
            bail!("mu and sigma_inv must be finite");
        }
        let scale = sigma_inv.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for i in 0..k {
            for j in 0..i {
                if (sigma_inv[i * k + j] - sigma_inv[j * k + i]).abs() > SYMMETRY_TOL * scale {
                    bail!("sigma_inv must be symmetric");
                }
            }
        }
        if k > 0 && cholesky_lower(&sigma_inv, k).is_none() {
            let (values, _) = sym_eigen(&sigma_inv, k);
            if values[0] < -PSD_TOL * scale {
                bail!(
                    "sigma_inv must be positive semidefinite, got an eigenvalue of {}",
                    values[0]
                );
            }
        }
        Ok(LogisticState { mu, sigma_inv })
    }

    pub fn k(&self) -> usize {
        self.mu.len()
    }

    /// The state re-expressed for the arms at `positions` (last = reference).
    pub fn get_par(&self, positions: &[usize]) -> Result<LogisticState> {
        let (mu, sigma_inv) = get_par(&self.mu, &self.sigma_inv, positions)?;
        Ok(LogisticState { mu, sigma_inv })
    }

    /// `get_par` as a state to keep: the precision symmetrised (the product's two triangles
    /// are summed in different orders; `get_par` itself returns upstream's product as it is).
    pub fn transform(&self, positions: &[usize]) -> Result<LogisticState> {
        let mut s = self.get_par(positions)?;
        symmetrize(&mut s.sigma_inv, positions.len());
        Ok(s)
    }

    /// One update. Arms with total 0 are ignored; if none remain, `None` (nothing changes).
    /// An update whose new state would not be finite is rejected, naming the first observed
    /// arm by `name(position in batch)`.
    /// Otherwise the new state and where each of its arms comes from: new arms (in batch
    /// order), known arms not observed (current order; dropped with `remove_not_observed`),
    /// observed known arms (batch order), the last being the new reference.
    pub fn update(
        &self,
        batch: &[ArmCounts],
        opts: UpdateOptions,
        name: &dyn Fn(usize) -> String,
    ) -> Result<Option<(LogisticState, Vec<Slot>)>> {
        crate::gaussian::check_decay(opts.decay)?;
        let k_old = self.k();
        let mut observed_known = vec![false; k_old];
        let mut new = Vec::new();
        let mut on = Vec::new();
        for (b, c) in batch.iter().enumerate() {
            if c.total <= 0.0 || c.total.is_nan() {
                continue;
            }
            match c.known {
                Some(i) if i < k_old => {
                    observed_known[i] = true;
                    on.push(b);
                }
                Some(i) => bail!("arm index {i} out of range for {k_old} arms"),
                None => new.push(b),
            }
        }
        if new.is_empty() && on.is_empty() {
            return Ok(None);
        }
        let off: Vec<usize> = if opts.remove_not_observed {
            Vec::new()
        } else {
            (0..k_old).filter(|&i| !observed_known[i]).collect()
        };
        let known_of = |b: usize| batch[b].known.expect("observed known arm");
        let carried: Vec<usize> = off
            .iter()
            .copied()
            .chain(on.iter().map(|&b| known_of(b)))
            .collect();
        let (n_new, k) = (new.len(), new.len() + carried.len());

        let prior = if carried.is_empty() {
            None
        } else {
            let p = self.get_par(&carried)?;
            let mut p0 = p.sigma_inv;
            if opts.odds_ratios_only && carried.len() > 1 {
                p0 = odds_ratio_precision(&p0, carried.len());
            }
            let mut p0 = nearest_psd(&p0, carried.len());
            p0.iter_mut().for_each(|v| *v *= 1.0 - opts.decay);
            Some((p.mu, p0))
        };

        let rows: Vec<usize> = new.iter().chain(&on).copied().collect();
        let obs_index: Vec<usize> = (0..n_new).chain(k - on.len()..k).collect();
        let problem = MapProblem {
            k,
            obs_index,
            totals: rows.iter().map(|&b| batch[b].total).collect(),
            successes: rows.iter().map(|&b| batch[b].success).collect(),
            prior_start: n_new,
            prior,
        };
        // The objective is scaled by the total count: beyond f64 it would be zero everywhere
        // and the solve would stop at its start, a finite state that is not the update's.
        let overflow = || crate::BanditError::overflow(&name(rows[0]));
        if !problem.totals.iter().sum::<f64>().is_finite() {
            return Err(overflow());
        }
        let w = map_estimate(&problem);
        let mut sigma_inv = problem.fisher_information(&w);
        if let Some((_, p)) = &problem.prior {
            let m = k - n_new;
            for i in 0..m {
                for j in 0..m {
                    sigma_inv[(n_new + i) * k + n_new + j] += p[i * m + j];
                }
            }
        }
        symmetrize(&mut sigma_inv, k);
        let sigma_inv = nearest_psd(&sigma_inv, k);
        if !w.iter().chain(&sigma_inv).all(|v| v.is_finite()) {
            return Err(overflow());
        }
        let slots = new
            .iter()
            .map(|&b| Slot::New(b))
            .chain(carried.iter().map(|&i| Slot::Known(i)))
            .collect();
        Ok(Some((LogisticState { mu: w, sigma_inv }, slots)))
    }

    /// The state without the arm at `index`: a subset re-expression keeping the reference
    /// (or, if it is the one dropped, making the last remaining arm the reference).
    pub fn delete(&self, index: usize) -> Result<LogisticState> {
        let k = self.k();
        if index >= k {
            bail!("arm index {index} out of range for {k} arms");
        }
        if k == 1 {
            return Ok(LogisticState::default());
        }
        let kept: Vec<usize> = (0..k).filter(|&i| i != index).collect();
        self.transform(&kept)
    }
}

/// ORTS prior: the marginal precision of the odds ratios, none on the reference level.
/// `inv(inv(P0)[:-1, :-1])` equals the Schur complement `P11 - p12 p12^T / p22`, which stays
/// defined when P0 is singular (upstream's double inverse raised there). With `p22 = 0` the
/// level is unconstrained and, P0 being PSD, its column is zero: the block is kept as is.
pub fn odds_ratio_precision(p0: &[f64], k: usize) -> Vec<f64> {
    let mut out = vec![0.0; k * k];
    let p22 = p0[k * k - 1];
    for i in 0..k - 1 {
        for j in 0..k - 1 {
            let mut v = p0[i * k + j];
            if p22 > 0.0 {
                v -= p0[i * k + k - 1] * p0[j * k + k - 1] / p22;
            }
            out[i * k + j] = v;
        }
    }
    symmetrize(&mut out, k);
    out
}

/// `a` if it is positive semidefinite, else its projection on the PSD cone (negative
/// eigenvalues set to zero).
///
/// For a user-supplied indefinite `sigma_inv` (as a prior), and for every posterior precision:
/// exact arithmetic makes that PSD, but a direction nothing identifies can come out negative
/// by rounding relative to the history's largest numbers (say 1e12 trials, long gone), far
/// beyond any tolerance relative to the matrix itself; stored so, it would break sampling.
pub fn nearest_psd(a: &[f64], n: usize) -> Vec<f64> {
    // Positive definite: the common case, at a fraction of an eigendecomposition.
    if n == 0 || cholesky_lower(a, n).is_some() {
        return a.to_vec();
    }
    let (values, vectors) = sym_eigen(a, n);
    if values[0] >= 0.0 {
        return a.to_vec();
    }
    let mut out = vec![0.0; n * n];
    for (c, &lam) in values.iter().enumerate() {
        if lam <= 0.0 {
            continue;
        }
        for i in 0..n {
            let vi = vectors[i * n + c] * lam;
            for j in 0..n {
                out[i * n + j] += vi * vectors[j * n + c];
            }
        }
    }
    symmetrize(&mut out, n);
    out
}

#[cfg(test)]
mod tests;
