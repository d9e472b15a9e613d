//! Deterministic, parallel nonparametric bootstrap of per-event terms.
//!
//! A resample draws `n` event indices uniformly with replacement and reduces the terms at those
//! indices: the mean (`bootstrap_means`, for IPS, DM, DR, ...) or `mean(base) + sum(numer) /
//! sum(denom)` with the three columns of an event drawn together (`bootstrap_self_normalised`,
//! for SNIPS and SNDR, whose weights and weighted rewards must come from the same events).
//!
//! Resamples are cut into chunks of [`CHUNK_RESAMPLES`] (fixed, independent of the thread
//! count); chunk `c` draws from [`Xoshiro256PlusPlus::stream`]`(seed, c)` and writes its own
//! slots of the output, so a seed gives the same bootstrap means on any number of threads.
use crate::bail;
use crate::error::Result;
use crate::rng::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// Resamples per chunk (one RNG stream each). Small, so that 1,000 resamples still spread over
/// many threads; a resample of a large log is long enough to amortise the chunk's setup.
pub const CHUNK_RESAMPLES: usize = 4;

/// Indices drawn ahead of the gather: the gather loop then has independent loads to keep in
/// flight (the terms of a large log live in L3 or memory, so latency, not arithmetic, is the
/// cost). 2,048 u32 indices are 8 KiB, well inside L1.
const INDEX_BLOCK: usize = 2048;

/// Fills `out` with uniform indices in `[0, n)`, two per 64-bit word. Lemire's multiply-shift
/// with rejection (2019) keeps every index exactly equally likely; a rejection happens with
/// probability below n / 2^32, so almost never for real logs.
#[inline]
fn fill_indices(rng: &mut Xoshiro256PlusPlus, n: u32, out: &mut [u32]) {
    let threshold = n.wrapping_neg() % n; // 2^32 mod n
    let mut filled = 0;
    while filled < out.len() {
        let word = rng.next_u64();
        for half in [word as u32, (word >> 32) as u32] {
            let m = u64::from(half) * u64::from(n);
            if (m as u32) >= threshold && filled < out.len() {
                out[filled] = (m >> 32) as u32;
                filled += 1;
            }
        }
    }
}

/// Calls `visit(block)` with successive blocks of indices that together make one resample of
/// `n` indices.
#[inline]
fn for_index_blocks(
    rng: &mut Xoshiro256PlusPlus,
    n: usize,
    indices: &mut [u32; INDEX_BLOCK],
    mut visit: impl FnMut(&[u32]),
) {
    let mut left = n;
    while left > 0 {
        let len = left.min(INDEX_BLOCK);
        fill_indices(rng, n as u32, &mut indices[..len]);
        visit(&indices[..len]);
        left -= len;
    }
}

fn check(n: usize) -> Result<()> {
    if n == 0 {
        bail!("cannot bootstrap an empty log");
    }
    if n > u32::MAX as usize {
        bail!("the bootstrap takes at most {} events, got {n}", u32::MAX);
    }
    Ok(())
}

/// Runs `resample(rng, slot)` for every output slot, chunk by chunk, in parallel.
fn run_chunks<F>(n_bootstrap: usize, seed: u64, resample: F) -> Vec<f64>
where
    F: Fn(&mut Xoshiro256PlusPlus, &mut [u32; INDEX_BLOCK]) -> f64 + Sync,
{
    let mut out = vec![0.0; n_bootstrap];
    out.par_chunks_mut(CHUNK_RESAMPLES)
        .enumerate()
        .for_each(|(chunk, slots)| {
            let mut rng = Xoshiro256PlusPlus::stream(seed, chunk as u64);
            let mut indices = [0u32; INDEX_BLOCK];
            for slot in slots {
                *slot = resample(&mut rng, &mut indices);
            }
        });
    out
}

/// The means of `terms` over `n_bootstrap` resamples (with replacement, of size `len`).
pub fn bootstrap_means(terms: &[f64], n_bootstrap: usize, seed: u64) -> Result<Vec<f64>> {
    let n = terms.len();
    check(n)?;
    Ok(run_chunks(n_bootstrap, seed, |rng, indices| {
        // Four partial sums break the dependency chain of the additions.
        let mut acc = [0.0f64; 4];
        for_index_blocks(rng, n, indices, |block| {
            let mut quads = block.chunks_exact(4);
            for q in &mut quads {
                for lane in 0..4 {
                    acc[lane] += terms[q[lane] as usize];
                }
            }
            for &i in quads.remainder() {
                acc[0] += terms[i as usize];
            }
        });
        (acc[0] + acc[1] + acc[2] + acc[3]) / n as f64
    }))
}

/// `mean(base) + sum(numer) / sum(denom)` over `n_bootstrap` resamples, the three columns of a
/// drawn event taken together. A resample whose `denom` sums to zero gives NaN.
pub fn bootstrap_self_normalised(
    base: &[f64],
    numer: &[f64],
    denom: &[f64],
    n_bootstrap: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let n = base.len();
    if numer.len() != n || denom.len() != n {
        bail!(
            "base, numer and denom must have the same length, got {}, {} and {}",
            n,
            numer.len(),
            denom.len()
        );
    }
    check(n)?;
    // One 32-byte row per event, so that a draw costs one cache line, not three.
    let rows: Vec<[f64; 4]> = (0..n).map(|i| [base[i], numer[i], denom[i], 0.0]).collect();
    Ok(run_chunks(n_bootstrap, seed, |rng, indices| {
        let mut acc = [0.0f64; 4];
        for_index_blocks(rng, n, indices, |block| {
            for &i in block {
                let row = &rows[i as usize];
                acc[0] += row[0];
                acc[1] += row[1];
                acc[2] += row[2];
            }
        });
        let ratio = if acc[2] == 0.0 {
            f64::NAN
        } else {
            acc[1] / acc[2]
        };
        acc[0] / n as f64 + ratio
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    #[test]
    fn same_seed_same_means_on_any_thread_count() {
        let terms: Vec<f64> = (0..5000).map(|i| ((i * 37) % 101) as f64).collect();
        let one = with_threads(1, || bootstrap_means(&terms, 50, 7).unwrap());
        let three = with_threads(3, || bootstrap_means(&terms, 50, 7).unwrap());
        assert_eq!(one, three);
        assert_ne!(one, bootstrap_means(&terms, 50, 8).unwrap());
    }

    #[test]
    fn constant_terms_give_the_constant() {
        let means = bootstrap_means(&[2.5; 333], 9, 1).unwrap();
        assert!(means.iter().all(|&m| (m - 2.5).abs() < 1e-12));
        let sn = bootstrap_self_normalised(&[1.0; 10], &[3.0; 10], &[2.0; 10], 5, 1).unwrap();
        assert!(sn.iter().all(|&m| (m - 2.5).abs() < 1e-12));
    }

    #[test]
    fn indices_are_uniform() {
        let mut rng = Xoshiro256PlusPlus::stream(3, 0);
        let mut idx = vec![0u32; 70_000];
        fill_indices(&mut rng, 7, &mut idx);
        let mut counts = [0usize; 7];
        idx.iter().for_each(|&i| counts[i as usize] += 1);
        // Each count is Binomial(70000, 1/7): mean 10000, sd about 93.
        assert!(
            counts.iter().all(|&c| c.abs_diff(10_000) < 500),
            "{counts:?}"
        );
    }

    #[test]
    fn rejects_empty_and_mismatched_input() {
        assert!(bootstrap_means(&[], 10, 0).is_err());
        assert!(bootstrap_self_normalised(&[1.0], &[1.0, 2.0], &[1.0], 10, 0).is_err());
    }
}
