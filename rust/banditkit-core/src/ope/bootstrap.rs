//! Deterministic, parallel nonparametric bootstrap of per-event terms.
//!
//! A resample draws `n` event indices uniformly with replacement and reduces the terms at those
//! indices: the mean (`bootstrap_means`, for IPS, DM, DR, ...) or `mean(base) + sum(numer) /
//! sum(denom)` with the three columns of an event drawn together (`bootstrap_self_normalised`,
//! for SNIPS and SNDR, whose weights and weighted rewards must come from the same events).
//!
//! Resamples are cut into chunks of [`CHUNK_RESAMPLES`] (fixed, independent of the thread
//! count); chunk `c` draws from a four-lane generator seeded by
//! [`Xoshiro256PlusPlus::stream`]`(seed, c)` and writes its own
//! slots of the output, so a seed gives the same bootstrap means on any number of threads.
use crate::bail;
use crate::error::Result;
use crate::rng::{Xoshiro256PlusPlus, Xoshiro256PlusPlusX4};
use rayon::prelude::*;

/// Resamples per chunk (one RNG stream each). Small, so that 1,000 resamples still spread over
/// many threads; a resample of a large log is long enough to amortise the chunk's setup.
pub const CHUNK_RESAMPLES: usize = 4;

/// Indices drawn ahead of their use, so that the loops that consume them have independent
/// loads to keep in flight. 2,048 u32 indices are 8 KiB, well inside L1.
const INDEX_BLOCK: usize = 2048;

/// Events per bucket (a power of two): a bucket of f64 terms is 16 KiB, of packed
/// self-normalised rows 64 KiB, so its gathers hit L1 or L2 instead of L3 and main memory.
const BUCKET_BITS: u32 = 11;
const BUCKET: usize = 1 << BUCKET_BITS;

/// Fills `out` with uniform indices in `[0, n)` from the 32-bit halves of `words` (refilled
/// here from the four-lane generator, which vectorises). Lemire's multiply-shift with
/// rejection (2019) keeps every index exactly equally likely; a rejection happens with
/// probability below n / 2^32 (never when n is a power of two), so the branch-free first pass
/// almost always stands and rejected slots are redrawn one by one, in order.
#[inline]
fn fill_indices(rng: &mut Xoshiro256PlusPlusX4, n: u32, words: &mut [u64], out: &mut [u32]) {
    let threshold = n.wrapping_neg() % n; // 2^32 mod n
    let used = out.len().div_ceil(2).next_multiple_of(4);
    rng.fill_u64(&mut words[..used]);
    let draw = |half: u32| {
        let m = u64::from(half) * u64::from(n);
        ((m >> 32) as u32, (m as u32) < threshold)
    };
    let mut any_rejected = false;
    let last_word = out.len() / 2;
    let mut pairs = out.chunks_exact_mut(2);
    for (pair, &word) in (&mut pairs).zip(words.iter()) {
        let (low, low_rejected) = draw(word as u32);
        let (high, high_rejected) = draw((word >> 32) as u32);
        pair[0] = low;
        pair[1] = high;
        any_rejected |= low_rejected | high_rejected;
    }
    if let [last] = pairs.into_remainder() {
        let (index, rejected) = draw(words[last_word] as u32);
        *last = index;
        any_rejected |= rejected;
    }
    if any_rejected {
        for (k, slot) in out.iter_mut().enumerate() {
            if draw((words[k / 2] >> (32 * (k & 1))) as u32).1 {
                *slot = loop {
                    let (index, rejected) = draw(rng.next_u64x4()[0] as u32);
                    if !rejected {
                        break index;
                    }
                };
            }
        }
    }
}

/// Per-chunk state: its generator, an index block with its random words, and the per-bucket
/// draw counts.
struct Scratch {
    rng: Xoshiro256PlusPlusX4,
    words: Vec<u64>,
    indices: Vec<u32>,
    counts: Vec<u32>,
}

impl Scratch {
    fn new(n: usize, seed: u64, chunk: u64) -> Self {
        Scratch {
            rng: Xoshiro256PlusPlusX4::from_rng(&mut Xoshiro256PlusPlus::stream(seed, chunk)),
            words: vec![0; INDEX_BLOCK / 2],
            indices: vec![0; INDEX_BLOCK],
            counts: vec![0; n.div_ceil(BUCKET)],
        }
    }
}

/// Asks for the cache lines of `rows` ahead of their random reads (x86-64 only; elsewhere the
/// hardware prefetchers are left to it).
#[inline]
fn prefetch<T>(rows: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(rows);
        let base = rows.as_ptr() as *const i8;
        for offset in (0..bytes).step_by(64) {
            // SAFETY: prefetching is a hint with no architectural effect; the address is
            // inside `rows`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = rows;
}

/// One resample of `n` events drawn with replacement: calls `visit(bucket, positions)` with
/// blocks of draws, each a position in that bucket (a slice of `rows`).
///
/// Drawing n indices over the whole log and gathering them is bound by cache and TLB misses
/// once the log outgrows L2 (measured 3-8x slower per draw at a million events than at ten
/// thousand). So the draws are made in two exact steps: first how many land in each bucket of
/// [`BUCKET`] consecutive events (n uniform indices, counted by bucket: a multinomial with the
/// buckets' sizes), then, bucket by bucket, that many uniform positions inside the bucket.
/// Given the counts, the positions of a bucket's draws are independent and uniform, so the
/// multiset of drawn events has the law of n independent uniform indices; every gather now
/// hits a bucket that was prefetched while the one before it was read.
#[inline]
fn resample<T>(rows: &[T], scratch: &mut Scratch, mut visit: impl FnMut(&[T], &[u32])) {
    let n = rows.len();
    let Scratch {
        rng,
        words,
        indices,
        counts,
    } = scratch;
    counts.fill(0);
    let mut left = n;
    while left > 0 {
        let len = left.min(INDEX_BLOCK);
        fill_indices(rng, n as u32, words, &mut indices[..len]);
        for &i in &indices[..len] {
            counts[(i >> BUCKET_BITS) as usize] += 1;
        }
        left -= len;
    }
    let buckets: Vec<&[T]> = rows.chunks(BUCKET).collect();
    prefetch(buckets[0]);
    for (b, (&count, bucket)) in counts.iter().zip(&buckets).enumerate() {
        if let Some(next) = buckets.get(b + 1) {
            prefetch(next);
        }
        let mut left = count as usize;
        while left > 0 {
            let len = left.min(INDEX_BLOCK);
            fill_indices(rng, bucket.len() as u32, words, &mut indices[..len]);
            visit(bucket, &indices[..len]);
            left -= len;
        }
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

/// Runs `one(rng, scratch)` for every output slot, chunk by chunk, in parallel.
fn run_chunks<F>(n: usize, n_bootstrap: usize, seed: u64, one: F) -> Vec<f64>
where
    F: Fn(&mut Scratch) -> f64 + Sync,
{
    let mut out = vec![0.0; n_bootstrap];
    out.par_chunks_mut(CHUNK_RESAMPLES)
        .enumerate()
        .for_each(|(chunk, slots)| {
            let mut scratch = Scratch::new(n, seed, chunk as u64);
            for slot in slots {
                *slot = one(&mut scratch);
            }
        });
    out
}

/// The means of `terms` over `n_bootstrap` resamples (with replacement, of size `len`).
pub fn bootstrap_means(terms: &[f64], n_bootstrap: usize, seed: u64) -> Result<Vec<f64>> {
    let n = terms.len();
    check(n)?;
    Ok(run_chunks(n, n_bootstrap, seed, |scratch| {
        // Four partial sums: one chain of dependent additions would cost an add's latency
        // (3-4 cycles) per draw.
        let mut acc = [0.0f64; 4];
        resample(terms, scratch, |bucket, positions| {
            let mut quads = positions.chunks_exact(4);
            for q in &mut quads {
                for lane in 0..4 {
                    acc[lane] += bucket[q[lane] as usize];
                }
            }
            for &i in quads.remainder() {
                acc[0] += bucket[i as usize];
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
    Ok(run_chunks(n, n_bootstrap, seed, |scratch| {
        // Two partial sums per column (see bootstrap_means).
        let mut acc = [[0.0f64; 4]; 2];
        resample(&rows, scratch, |bucket, positions| {
            let mut pairs = positions.chunks_exact(2);
            for p in &mut pairs {
                for lane in 0..2 {
                    let row = &bucket[p[lane] as usize];
                    for col in 0..3 {
                        acc[lane][col] += row[col];
                    }
                }
            }
            for &i in pairs.remainder() {
                let row = &bucket[i as usize];
                for col in 0..3 {
                    acc[0][col] += row[col];
                }
            }
        });
        let acc: [f64; 3] = std::array::from_fn(|col| acc[0][col] + acc[1][col]);
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
        let mut rng = Xoshiro256PlusPlusX4::from_rng(&mut Xoshiro256PlusPlus::stream(3, 0));
        let mut words = vec![0u64; 35_000];
        let mut idx = vec![0u32; 70_000];
        fill_indices(&mut rng, 7, &mut words, &mut idx);
        let mut counts = [0usize; 7];
        idx.iter().for_each(|&i| counts[i as usize] += 1);
        // Each count is Binomial(70000, 1/7): mean 10000, sd about 93.
        assert!(
            counts.iter().all(|&c| c.abs_diff(10_000) < 500),
            "{counts:?}"
        );
    }

    #[test]
    fn rejected_draws_are_redrawn() {
        // n = 2^31 + 1 rejects almost half of the 32-bit draws: every index must still be in
        // range, and the top half of the range as likely as the bottom half.
        let n = (1u32 << 31) + 1;
        let mut rng = Xoshiro256PlusPlusX4::from_rng(&mut Xoshiro256PlusPlus::stream(4, 0));
        let mut words = vec![0u64; 5000];
        let mut idx = vec![0u32; 10_000];
        fill_indices(&mut rng, n, &mut words, &mut idx);
        assert!(idx.iter().all(|&i| i < n));
        let high = idx.iter().filter(|&&i| i >= n / 2).count();
        assert!(high.abs_diff(5000) < 250, "{high}"); // sd 50
    }

    #[test]
    fn rejects_empty_and_mismatched_input() {
        assert!(bootstrap_means(&[], 10, 0).is_err());
        assert!(bootstrap_self_normalised(&[1.0], &[1.0, 2.0], &[1.0], 10, 0).is_err());
    }
}
