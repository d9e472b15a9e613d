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

/// Four independent xoshiro256++ generators stepped together, for bulk random words. The state
/// is stored word-major (`s[word][lane]`) so that one step is four-lane integer arithmetic the
/// compiler vectorises (with AVX2 a single register per state word). Each lane is the reference
/// algorithm; only the interleaving of their outputs is this type's own.
#[derive(Debug, Clone)]
pub struct Xoshiro256PlusPlusX4 {
    s: [[u64; 4]; 4],
}

impl Xoshiro256PlusPlusX4 {
    /// Lanes seeded from 16 words of `rng` (a lane that came out all zero gets a fixed state).
    pub fn from_rng(rng: &mut Xoshiro256PlusPlus) -> Self {
        let lanes: [[u64; 4]; 4] = std::array::from_fn(|_| {
            let words = [
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
            ];
            Xoshiro256PlusPlus::from_state(words).state()
        });
        let s = std::array::from_fn(|word| std::array::from_fn(|lane| lanes[lane][word]));
        Xoshiro256PlusPlusX4 { s }
    }

    /// The next word of every lane.
    #[inline(always)]
    pub fn next_u64x4(&mut self) -> [u64; 4] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0u64; 4];
        for l in 0..4 {
            out[l] = s0[l]
                .wrapping_add(s3[l])
                .rotate_left(23)
                .wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
        out
    }

    /// Fills `out` with words, four at a time in lane order (a partial last group is dropped).
    pub fn fill_u64(&mut self, out: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports the feature the function is compiled for.
                unsafe { self.fill_u64_avx2(out) };
                return;
            }
        }
        for group in out.chunks_mut(4) {
            let words = self.next_u64x4();
            group.copy_from_slice(&words[..group.len()]);
        }
    }

    /// The same steps on four-lane registers, the state kept in registers throughout.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_u64_avx2(&mut self, out: &mut [u64]) {
        use std::arch::x86_64::*;
        #[inline(always)]
        unsafe fn rotl<const L: i32, const R: i32>(x: __m256i) -> __m256i {
            _mm256_or_si256(_mm256_slli_epi64::<L>(x), _mm256_srli_epi64::<R>(x))
        }
        let load = |w: &[u64; 4]| _mm256_loadu_si256(w.as_ptr() as *const __m256i);
        let (mut s0, mut s1, mut s2, mut s3) = (
            load(&self.s[0]),
            load(&self.s[1]),
            load(&self.s[2]),
            load(&self.s[3]),
        );
        let mut groups = out.chunks_exact_mut(4);
        let mut step = || {
            let result = _mm256_add_epi64(rotl::<23, 41>(_mm256_add_epi64(s0, s3)), s0);
            let t = _mm256_slli_epi64::<17>(s1);
            s2 = _mm256_xor_si256(s2, s0);
            s3 = _mm256_xor_si256(s3, s1);
            s1 = _mm256_xor_si256(s1, s2);
            s0 = _mm256_xor_si256(s0, s3);
            s2 = _mm256_xor_si256(s2, t);
            s3 = rotl::<45, 19>(s3);
            result
        };
        for group in &mut groups {
            _mm256_storeu_si256(group.as_mut_ptr() as *mut __m256i, step());
        }
        let rest = groups.into_remainder();
        if !rest.is_empty() {
            let mut words = [0u64; 4];
            _mm256_storeu_si256(words.as_mut_ptr() as *mut __m256i, step());
            let n = rest.len();
            rest.copy_from_slice(&words[..n]);
        }
        let store = |w: &mut [u64; 4], v| _mm256_storeu_si256(w.as_mut_ptr() as *mut __m256i, v);
        store(&mut self.s[0], s0);
        store(&mut self.s[1], s1);
        store(&mut self.s[2], s2);
        store(&mut self.s[3], s3);
    }
}

/// Fills `out` with uniforms on [0, 1) (53 bits, as [`Xoshiro256PlusPlus::next_f64`]) from
/// four lanes seeded from `rng`: several times faster than one generator for long fills.
pub fn fill_uniform(rng: &mut Xoshiro256PlusPlus, out: &mut [f64]) {
    let mut lanes = Xoshiro256PlusPlusX4::from_rng(rng);
    // SAFETY: f64 and u64 have the same size and alignment and every bit pattern is valid for
    // both; the words are turned into uniforms in place.
    let words: &mut [u64] =
        unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u64, out.len()) };
    lanes.fill_u64(words);
    for v in out.iter_mut() {
        *v = (v.to_bits() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
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
    fn four_lanes_are_four_reference_generators() {
        let mut seeder = Xoshiro256PlusPlus::seed_from_u64(77);
        let mut copy = seeder.clone();
        let mut lanes = Xoshiro256PlusPlusX4::from_rng(&mut seeder);
        let mut refs: Vec<Xoshiro256PlusPlus> = (0..4)
            .map(|_| {
                let s = [
                    copy.next_u64(),
                    copy.next_u64(),
                    copy.next_u64(),
                    copy.next_u64(),
                ];
                Xoshiro256PlusPlus::from_state(s)
            })
            .collect();
        assert_eq!(seeder, copy, "seeding takes 16 words");
        let mut scalar = lanes.clone();
        // 103 words: the last group is partial; fill_u64 (AVX2 where available) and the
        // portable step agree, and lane l gives reference generator l's sequence.
        let mut words = vec![0u64; 103];
        lanes.fill_u64(&mut words);
        for (g, group) in words.chunks(4).enumerate() {
            let step = scalar.next_u64x4();
            assert_eq!(group, &step[..group.len()], "group {g}");
            for (l, &w) in step.iter().enumerate() {
                assert_eq!(w, refs[l].next_u64());
            }
        }
        assert_eq!(lanes.next_u64x4(), scalar.next_u64x4());
    }

    #[test]
    fn fill_uniform_converts_the_lane_words() {
        let mut a = Xoshiro256PlusPlus::seed_from_u64(78);
        let mut b = a.clone();
        let mut u = vec![0.0; 37];
        fill_uniform(&mut a, &mut u);
        let mut words = vec![0u64; 37];
        Xoshiro256PlusPlusX4::from_rng(&mut b).fill_u64(&mut words);
        for (v, w) in u.iter().zip(&words) {
            assert_eq!(*v, (w >> 11) as f64 / (1u64 << 53) as f64);
            assert!((0.0..1.0).contains(v));
        }
        assert_eq!(a, b);
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
