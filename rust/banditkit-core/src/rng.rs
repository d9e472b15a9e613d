//! Portable random numbers: xoshiro256++ seeded through SplitMix64.
//!
//! Every Monte Carlo kernel splits its draws into fixed-size chunks and gives chunk `c` its own
//! generator, [`Xoshiro256PlusPlus::stream`]`(seed, c)`, so the result depends on the seed only,
//! never on the number of threads. Only integer arithmetic is involved, so the same seed gives
//! the same numbers on every platform.
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
#[inline]
pub fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 (the reference `splitmix64.c`): used to expand seeds into generator states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        splitmix64_mix(self.state)
    }
}

/// xoshiro256++ 1.0 (Blackman & Vigna), the reference algorithm bit for bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xoshiro256PlusPlus {
    s: [u64; 4],
}

impl Xoshiro256PlusPlus {
    /// A generator with this exact state. The all-zero state (a fixed point) is replaced by
    /// a fixed non-zero one.
    pub fn from_state(s: [u64; 4]) -> Self {
        if s == [0; 4] {
            return Self::seed_from_u64(0);
        }
        Xoshiro256PlusPlus { s }
    }

    /// The current state (for reproducing or persisting a generator).
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// The state is four consecutive SplitMix64 outputs from `seed`, as the xoshiro authors
    /// recommend.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Self::from_state(s)
    }

    /// The generator of chunk `index` under `seed`: both are mixed through SplitMix64, so
    /// nearby seeds and nearby indices give unrelated states.
    pub fn stream(seed: u64, index: u64) -> Self {
        let mut by_seed = SplitMix64::new(seed);
        // A different increment pattern for the index so (seed, index) and (index, seed)
        // do not coincide.
        let mut by_index = SplitMix64::new(splitmix64_mix(index ^ 0xD1B5_4A32_D192_ED03));
        let mut s = [0u64; 4];
        for word in s.iter_mut() {
            *word = by_seed.next_u64() ^ by_index.next_u64().rotate_left(17);
        }
        Self::from_state(s)
    }

    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on [0, 1) with 53 random bits: `(x >> 11) * 2^-53`.
    #[inline(always)]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on (0, 1]: safe to take the logarithm of.
    #[inline(always)]
    pub fn next_f64_open0(&mut self) -> f64 {
        1.0 - self.next_f64()
    }
}

/// A fresh, unpredictable seed from std only: a randomly keyed SipHash (`RandomState`) of the
/// time, a process-wide counter and the thread id.
pub fn os_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    std::hash::Hash::hash(&std::thread::current().id(), &mut h);
    splitmix64_mix(h.finish())
}

/// The per-call seeds of an object constructed with a seed: call `i` gets the `i`-th output of
/// SplitMix64 started at that seed, so a seeded bandit replays the same sequence of results.
/// The state is one `u64`; `SeedStream::new(s.state())` resumes exactly where `s` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedStream {
    inner: SplitMix64,
}

impl SeedStream {
    pub fn new(seed: u64) -> Self {
        SeedStream {
            inner: SplitMix64::new(seed),
        }
    }

    /// A stream seeded from [`os_seed`] (for objects constructed without a seed).
    pub fn from_os() -> Self {
        Self::new(os_seed())
    }

    pub fn next_seed(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// The state to persist (e.g. for pickling); `SeedStream::new(state)` continues from here.
    pub fn state(&self) -> u64 {
        self.inner.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_reference_for_state_1_2_3_4() {
        // Outputs of the reference xoshiro256plusplus.c from state {1, 2, 3, 4}.
        let expected: [u64; 10] = [
            41943041,
            58720359,
            3588806011781223,
            3591011842654386,
            9228616714210784205,
            9973669472204895162,
            14011001112246962877,
            12406186145184390807,
            15849039046786891736,
            10450023813501588000,
        ];
        let mut rng = Xoshiro256PlusPlus::from_state([1, 2, 3, 4]);
        for e in expected {
            assert_eq!(rng.next_u64(), e);
        }
    }

    #[test]
    fn xoshiro_matches_reference_for_state_0_0_0_1() {
        let expected: [u64; 10] = [
            0x0000000000800000,
            0x0000000000800011,
            0x0002200000800011,
            0x0002200044000020,
            0x00022000448008A1,
            0x01102100802208A0,
            0x0114002284200880,
            0x0402896644A64095,
            0x8A14A0A244ACC891,
            0x8C88BA4680B20495,
        ];
        let mut rng = Xoshiro256PlusPlus::from_state([0, 0, 0, 1]);
        for e in expected {
            assert_eq!(rng.next_u64(), e);
        }
    }

    #[test]
    fn splitmix_matches_reference_for_seed_1234567() {
        let expected: [u64; 5] = [
            6457827717110365317,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ];
        let mut sm = SplitMix64::new(1234567);
        for e in expected {
            assert_eq!(sm.next_u64(), e);
        }
    }

    #[test]
    fn seed_from_u64_is_splitmix_expansion() {
        let mut sm = SplitMix64::new(42);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        assert_eq!(Xoshiro256PlusPlus::seed_from_u64(42).state(), s);
    }

    #[test]
    fn all_zero_state_is_replaced() {
        let rng = Xoshiro256PlusPlus::from_state([0; 4]);
        assert_ne!(rng.state(), [0; 4]);
    }

    #[test]
    fn next_f64_uses_top_53_bits() {
        let mut a = Xoshiro256PlusPlus::from_state([1, 2, 3, 4]);
        let mut b = a.clone();
        for _ in 0..100 {
            let x = a.next_u64();
            let u = b.next_f64();
            assert_eq!(u, (x >> 11) as f64 / 9007199254740992.0);
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn streams_are_distinct_and_reproducible() {
        let mut firsts = std::collections::HashSet::new();
        for seed in 0..50u64 {
            for index in 0..50u64 {
                let mut r = Xoshiro256PlusPlus::stream(seed, index);
                assert_eq!(
                    r.clone().next_u64(),
                    Xoshiro256PlusPlus::stream(seed, index).next_u64()
                );
                assert!(
                    firsts.insert(r.next_u64()),
                    "stream ({seed}, {index}) collides"
                );
            }
        }
        // Swapping seed and index gives a different stream.
        assert_ne!(
            Xoshiro256PlusPlus::stream(1, 2).state(),
            Xoshiro256PlusPlus::stream(2, 1).state()
        );
    }

    #[test]
    fn streams_are_uncorrelated() {
        // Mean of products of centred uniforms from neighbouring streams: sd = 1/12/sqrt(n).
        let n = 200_000;
        let mut a = Xoshiro256PlusPlus::stream(7, 0);
        let mut b = Xoshiro256PlusPlus::stream(7, 1);
        let mut c = Xoshiro256PlusPlus::stream(8, 0);
        let (mut ab, mut ac) = (0.0, 0.0);
        for _ in 0..n {
            let (x, y, z) = (a.next_f64() - 0.5, b.next_f64() - 0.5, c.next_f64() - 0.5);
            ab += x * y;
            ac += x * z;
        }
        let se = 1.0 / 12.0 / (n as f64).sqrt();
        assert!((ab / n as f64).abs() < 5.0 * se);
        assert!((ac / n as f64).abs() < 5.0 * se);
    }

    #[test]
    fn seed_stream_is_reproducible_and_resumable() {
        let mut s = SeedStream::new(123);
        let first: Vec<u64> = (0..5).map(|_| s.next_seed()).collect();
        let mut t = SeedStream::new(123);
        assert_eq!(first, (0..5).map(|_| t.next_seed()).collect::<Vec<_>>());
        let mut resumed = SeedStream::new(s.state());
        assert_eq!(resumed.next_seed(), s.next_seed());
        assert_ne!(first[0], first[1]);
    }

    #[test]
    fn os_seeds_differ() {
        let seeds: std::collections::HashSet<u64> = (0..100).map(|_| os_seed()).collect();
        assert_eq!(seeds.len(), 100);
    }
}
