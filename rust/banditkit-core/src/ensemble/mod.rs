//! Bootstrap ridge ensembles: thousands of weighted ridge fits sharing one data set.
//!
//! Member m draws bootstrap counts ([`sampling`]) and solves ridge with the counts as sample
//! weights ([`solve`]): in the dual form from one shared `X X^T` when features outnumber rows
//! (an m x m Cholesky on the rows drawn, then the coefficients as one combination of rows),
//! otherwise in the primal form. Members run in parallel (rayon) in fixed blocks, each thread
//! reusing one workspace; every member is computed alone in a fixed order of operations, so
//! the result does not depend on the thread count.
pub mod sampling;
pub mod solve;

use crate::bail;
use crate::error::Result;
use rayon::prelude::*;
pub use sampling::{Draws, Sampling};
use solve::{combine_rows, fit_member, Shared, Workspace};

/// Members per parallel task: the mean is summed per block, then over blocks in order.
const BLOCK: usize = 64;

/// Coefficient storage (f32 halves the memory of 10,000 members; arithmetic is f64).
pub trait Store: Copy + Send + Sync + Default {
    fn from_f64(v: f64) -> Self;
}
impl Store for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}
impl Store for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// A fitted ensemble: `coef` (members x p, row-major), `intercept` (members), and the mean
/// member (`coef_mean`, `intercept_mean`) summed in f64.
pub struct Fitted<T> {
    pub coef: Vec<T>,
    pub intercept: Vec<f64>,
    pub coef_mean: Vec<f64>,
    pub intercept_mean: f64,
}

/// The problem: `x` (n x p, row-major) and `y` (n), ridge penalty `alpha`.
pub struct Problem<'a> {
    pub x: &'a [f64],
    pub y: &'a [f64],
    pub n: usize,
    pub p: usize,
    pub alpha: f64,
    pub fit_intercept: bool,
}

fn validate(
    pb: &Problem<'_>,
    sampling: &Sampling<'_>,
    draws: &Draws<'_>,
    members: usize,
) -> Result<()> {
    if pb.n == 0 || pb.p == 0 {
        bail!(
            "X must have at least one row and one column, got {} x {}",
            pb.n,
            pb.p
        );
    }
    if pb.x.len() != pb.n * pb.p || pb.y.len() != pb.n {
        bail!("X must be {} x {} and y of length {}", pb.n, pb.p, pb.n);
    }
    if pb.x.iter().chain(pb.y).any(|v| !v.is_finite()) {
        bail!("X and y must be finite");
    }
    if !(pb.alpha.is_finite() && pb.alpha > 0.0) {
        bail!("alpha must be positive and finite, got {}", pb.alpha);
    }
    if members == 0 {
        bail!("n_estimators must be at least 1");
    }
    if draws.n_rows != pb.n || draws.n_draws == 0 {
        bail!("the bootstrap must draw at least one of the {} rows", pb.n);
    }
    if let Some(cdf) = draws.cdf {
        let increasing = cdf.windows(2).all(|w| w[0] <= w[1]);
        let finite = cdf.iter().all(|v| v.is_finite());
        if cdf.len() != pb.n || !finite || !increasing || cdf[0] < 0.0 || cdf[pb.n - 1] <= 0.0 {
            bail!(
                "the cumulative weights must be {} finite non-decreasing values",
                pb.n
            );
        }
    }
    if let Sampling::Sklearn { seeds } = sampling {
        if seeds.len() != members {
            bail!(
                "need one seed per member: {} seeds for {members} members",
                seeds.len()
            );
        }
        if pb.n > u32::MAX as usize {
            bail!("too many rows for scikit-learn's sampling");
        }
    }
    Ok(())
}

/// Fits `members` bootstrap ridge models. Errors: invalid input, or a member whose system is
/// not positive definite (only through overflow: alpha > 0 makes every system definite).
pub fn fit<T: Store>(
    pb: &Problem<'_>,
    sampling: Sampling<'_>,
    draws: Draws<'_>,
    members: usize,
) -> Result<Fitted<T>> {
    validate(pb, &sampling, &draws, members)?;
    let (p, n_blocks) = (pb.p, members.div_ceil(BLOCK));
    let shared = Shared::new(pb.x, pb.y, pb.n, pb.p, pb.alpha, pb.fit_intercept);
    let mut coef = vec![T::default(); members * p];
    let mut intercept = vec![0.0; members];
    let partial: Vec<Option<(Vec<f64>, f64)>> = coef
        .par_chunks_mut(BLOCK * p)
        .zip(intercept.par_chunks_mut(BLOCK))
        .enumerate()
        .map_init(
            || Workspace::new(&shared, BLOCK),
            |ws, (block, (coefs, intercepts))| {
                let (n, members) = (shared.n, intercepts.len());
                for (k, b0) in intercepts.iter_mut().enumerate() {
                    sampling.counts(block * BLOCK + k, &draws, &mut ws.counts);
                    *b0 = fit_member(&shared, ws)?;
                    if shared.dual {
                        ws.u_block[k * n..(k + 1) * n].copy_from_slice(&ws.u);
                    } else {
                        ws.coef_block[k * p..(k + 1) * p].copy_from_slice(&ws.coef);
                    }
                }
                if shared.dual {
                    combine_rows(
                        &shared,
                        &ws.u_block[..members * n],
                        &mut ws.coef_block[..members * p],
                    );
                }
                let mut sum = vec![0.0; p];
                let mut isum = 0.0;
                for ((row, b0), c) in coefs
                    .chunks_mut(p)
                    .zip(intercepts.iter_mut())
                    .zip(ws.coef_block.chunks(p))
                {
                    if shared.fit_intercept {
                        *b0 -= solve::dot(&shared.x_shift, c);
                    } else {
                        *b0 = 0.0;
                    }
                    if !(b0.is_finite() && c.iter().all(|v| v.is_finite())) {
                        return None;
                    }
                    for ((out, s), &v) in row.iter_mut().zip(sum.iter_mut()).zip(c) {
                        *out = T::from_f64(v);
                        *s += v;
                    }
                    isum += *b0;
                }
                Some((sum, isum))
            },
        )
        .collect();
    debug_assert_eq!(partial.len(), n_blocks);
    let mut coef_mean = vec![0.0; p];
    let mut intercept_mean = 0.0;
    for part in partial {
        let Some((sum, isum)) = part else {
            bail!("the ridge systems overflowed (values too large); rescale X and y");
        };
        coef_mean.iter_mut().zip(&sum).for_each(|(m, s)| *m += s);
        intercept_mean += isum;
    }
    coef_mean.iter_mut().for_each(|m| *m /= members as f64);
    Ok(Fitted {
        coef,
        intercept,
        coef_mean,
        intercept_mean: intercept_mean / members as f64,
    })
}

/// Member `m`'s bootstrap counts alone (for tests and the NumPy reference's comparisons).
pub fn counts(sampling: Sampling<'_>, draws: Draws<'_>, members: usize) -> Vec<f64> {
    let mut out = vec![0.0; members * draws.n_rows];
    out.par_chunks_mut(draws.n_rows.max(1))
        .enumerate()
        .for_each(|(m, c)| sampling.counts(m, &draws, c));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(n: usize, p: usize) -> (Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..n * p)
            .map(|i| ((i * 7919 % 113) as f64) / 50.0 - 1.0)
            .collect();
        let y: Vec<f64> = (0..n).map(|i| (i as f64).sin() + 3.0).collect();
        (x, y)
    }

    fn fit_with(n: usize, p: usize, threads: usize) -> Fitted<f64> {
        let (x, y) = problem(n, p);
        let pb = Problem {
            x: &x,
            y: &y,
            n,
            p,
            alpha: 1.0,
            fit_intercept: true,
        };
        let draws = Draws {
            n_rows: n,
            n_draws: n,
            cdf: None,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| fit::<f64>(&pb, Sampling::Fast { seed: 9 }, draws, 150).unwrap())
    }

    #[test]
    fn thread_count_does_not_change_the_result() {
        for (n, p) in [(12, 30), (30, 5)] {
            let (a, b) = (fit_with(n, p, 1), fit_with(n, p, 3));
            assert_eq!(a.coef, b.coef);
            assert_eq!(a.intercept, b.intercept);
            assert_eq!(a.coef_mean, b.coef_mean);
        }
    }

    #[test]
    fn dual_and_primal_forms_agree() {
        // The same member in both forms: n = 10 rows, p = 10 is primal; p = 11 dual. Compare a
        // dual fit with the primal fit of the same data padded by a zero column.
        let (n, p) = (10, 11);
        let (x, y) = problem(n, p);
        let draws = Draws {
            n_rows: n,
            n_draws: n,
            cdf: None,
        };
        let pb = Problem {
            x: &x,
            y: &y,
            n,
            p,
            alpha: 0.5,
            fit_intercept: true,
        };
        let dual = fit::<f64>(&pb, Sampling::Fast { seed: 1 }, draws, 5).unwrap();
        let mut xs = Vec::new();
        for row in x.chunks(p) {
            xs.extend_from_slice(row);
        }
        let mut shared = Shared::new(&xs, &y, n, p, 0.5, true);
        shared.dual = false;
        let mut ws = Workspace::new(&shared, 1);
        for m in 0..5 {
            Sampling::Fast { seed: 1 }.counts(m, &draws, &mut ws.counts);
            let b = fit_member(&shared, &mut ws).unwrap() - solve::dot(&shared.x_shift, &ws.coef);
            assert!((b - dual.intercept[m]).abs() < 1e-10);
            for j in 0..p {
                assert!((ws.coef[j] - dual.coef[m * p + j]).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let (x, y) = problem(4, 3);
        let draws = Draws {
            n_rows: 4,
            n_draws: 4,
            cdf: None,
        };
        let pb = Problem {
            x: &x,
            y: &y,
            n: 4,
            p: 3,
            alpha: 0.0,
            fit_intercept: true,
        };
        assert!(fit::<f32>(&pb, Sampling::Fast { seed: 1 }, draws, 3).is_err());
        let pb = Problem { alpha: 1.0, ..pb };
        assert!(fit::<f32>(&pb, Sampling::Fast { seed: 1 }, draws, 0).is_err());
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    /// `cargo test --profile dev-release -p banditkit-core --lib ensemble::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn phases_of_the_seed_problem() {
        let (n, p, members) = (150, 598, 2000);
        let x: Vec<f64> = (0..n * p)
            .map(|i| ((i * 7919 % 113) as f64) / 50.0 - 1.0)
            .collect();
        let y: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let shared = Shared::new(&x, &y, n, p, 1.0, true);
        let draws = Draws {
            n_rows: n,
            n_draws: n,
            cdf: None,
        };
        let seeds: Vec<u32> = (0..members as u32).collect();
        let mut ws = Workspace::new(&shared, BLOCK);
        let t = Instant::now();
        for m in 0..members {
            Sampling::Sklearn { seeds: &seeds }.counts(m, &draws, &mut ws.counts);
        }
        let counts = t.elapsed().as_secs_f64() / members as f64;
        let t = Instant::now();
        for m in 0..members {
            Sampling::Sklearn { seeds: &seeds }.counts(m, &draws, &mut ws.counts);
            fit_member(&shared, &mut ws).unwrap();
        }
        let solve = t.elapsed().as_secs_f64() / members as f64 - counts;
        let u = vec![0.5; BLOCK * n];
        let mut c = vec![0.0; BLOCK * p];
        let t = Instant::now();
        for _ in 0..members / BLOCK {
            combine_rows(&shared, &u, &mut c);
        }
        let comb = t.elapsed().as_secs_f64() / (members / BLOCK * BLOCK) as f64;
        println!(
            "per member: counts {:.1} us, solve {:.1} us, combine (all rows) {:.1} us",
            counts * 1e6,
            solve * 1e6,
            comb * 1e6
        );
    }
}
