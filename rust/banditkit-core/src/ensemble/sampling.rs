//! Bootstrap counts: how many times each row is drawn for one member.
//!
//! - [`Sampling::Sklearn`]: scikit-learn's `BaggingRegressor` rows. Each member's rows come from
//!   a legacy NumPy `RandomState(seed)` (MT19937 seeded by `init_genrand`): `randint(0, n,
//!   n_draws)` (masked rejection on 32-bit outputs), or with sample weights `choice(n, n_draws,
//!   p=w)` (legacy doubles searched in the normalised CDF). The seeds are drawn by the caller.
//! - [`Sampling::Fast`]: our own counter-based stream, one 64-bit word per (seed, member, draw)
//!   through the SplitMix64 mixer: any member can be drawn alone, so results never depend on
//!   the thread count, and NumPy reproduces the words with vectorised uint64 arithmetic.
use crate::rng::splitmix64_mix;

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Where the bootstrap rows of member `m` come from.
#[derive(Debug, Clone, Copy)]
pub enum Sampling<'a> {
    /// `seeds[m]` seeds member m's MT19937, as scikit-learn does.
    Sklearn { seeds: &'a [u32] },
    /// Member m's words are `mix(mix(seed + G (m + 1)) + G (t + 1))`, t = 0, 1, ...
    Fast { seed: u64 },
}

/// How rows are drawn: uniformly, or by a cumulative weight table (rows with zero weight are
/// never drawn). For `Sklearn` the table must be NumPy's `cumsum(p) / cumsum(p)[-1]`.
#[derive(Debug, Clone, Copy)]
pub struct Draws<'a> {
    pub n_rows: usize,
    pub n_draws: usize,
    pub cdf: Option<&'a [f64]>,
}

/// MT19937 as NumPy's legacy `RandomState(int)` seeds and runs it.
pub struct Mt19937 {
    mt: [u32; 624],
    idx: usize,
}

impl Mt19937 {
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { mt, idx: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % 624] & 0x7fff_ffff);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.mt[i] = self.mt[(i + 397) % 624] ^ (y >> 1) ^ mag;
        }
        self.idx = 0;
    }

    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.idx >= 624 {
            self.twist();
        }
        let mut y = self.mt[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random_sample()`: 53 bits from two outputs.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `randint(0, n)`: the output masked to the next power of two, rejected while too big.
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        let range = n - 1;
        if range == 0 {
            return 0; // NumPy draws nothing for an empty range
        }
        let mut mask = range;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        loop {
            let v = self.next_u32() & mask;
            if v <= range {
                return v;
            }
        }
    }
}

/// Word t of member m's fast stream.
#[inline]
pub fn fast_word(seed: u64, member: u64, t: u64) -> u64 {
    let key = splitmix64_mix(seed.wrapping_add(GOLDEN_GAMMA.wrapping_mul(member + 1)));
    splitmix64_mix(key.wrapping_add(GOLDEN_GAMMA.wrapping_mul(t + 1)))
}

/// `floor(word * n / 2^64)` (Lemire's multiply-high, computed in two 32-bit halves as NumPy can).
#[inline]
fn fast_below(word: u64, n: u64) -> usize {
    let (hi, lo) = (word >> 32, word & 0xffff_ffff);
    ((hi * n + ((lo * n) >> 32)) >> 32) as usize
}

/// The row whose CDF interval holds `u`: the number of entries `<= u` (NumPy's
/// `searchsorted(cdf, u, side="right")`), clamped to the last row.
#[inline]
fn from_cdf(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
}

impl Sampling<'_> {
    /// Member `m`'s bootstrap counts, written into `counts` (length `draws.n_rows`).
    pub fn counts(&self, m: usize, draws: &Draws<'_>, counts: &mut [f64]) {
        counts.fill(0.0);
        let n = draws.n_rows;
        match *self {
            Sampling::Sklearn { seeds } => {
                let mut rng = Mt19937::new(seeds[m]);
                for _ in 0..draws.n_draws {
                    let row = match draws.cdf {
                        None => rng.below(n as u32) as usize,
                        Some(cdf) => from_cdf(cdf, rng.next_f64()),
                    };
                    counts[row] += 1.0;
                }
            }
            Sampling::Fast { seed } => {
                for t in 0..draws.n_draws {
                    let word = fast_word(seed, m as u64, t as u64);
                    let row = match draws.cdf {
                        None => fast_below(word, n as u64),
                        Some(cdf) => {
                            let total = cdf[cdf.len() - 1];
                            from_cdf(
                                cdf,
                                (word >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0) * total,
                            )
                        }
                    };
                    counts[row] += 1.0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_sequence() {
        // The first outputs of init_genrand(5489), the reference implementation's default seed.
        let mut rng = Mt19937::new(5489);
        let first: Vec<u32> = (0..3).map(|_| rng.next_u32()).collect();
        assert_eq!(first, vec![3_499_211_612, 581_869_302, 3_890_346_734]);
    }

    #[test]
    fn fast_counts_sum_to_the_draws() {
        let draws = Draws {
            n_rows: 7,
            n_draws: 20,
            cdf: None,
        };
        let mut c = vec![0.0; 7];
        Sampling::Fast { seed: 3 }.counts(5, &draws, &mut c);
        assert_eq!(c.iter().sum::<f64>(), 20.0);
    }
}
