//! Standard normal sampling: a 256-layer ziggurat (Marsaglia & Tsang 2000) over xoshiro256++.
//!
//! One `u64` gives everything the fast path needs: the low 8 bits pick the layer, the top 53
//! bits (as a signed integer) give a symmetric uniform, i.e. sign and position together. About
//! 99% of draws take the fast path: one multiply and one compare. The tables are constants
//! (see `normal/tables.rs`), derived with the base radius `R` solved so that the layers close
//! exactly at the mode.
use crate::rng::{Xoshiro256PlusPlus, Xoshiro256PlusPlusX4};

mod tables;

const LAYERS: usize = 256;

/// Layer `i` spans `|x| <= x(i)` horizontally and `f(i) <= y <= f(i+1)` vertically, where the
/// density is `exp(-x^2/2)` (unnormalised); `x(1) = R` is the base radius and the base layer's
/// `x(0) = V/f(R)` covers rectangle plus tail. Reading the bit-pattern constants is a plain
/// load.
#[inline(always)]
fn x(i: usize) -> f64 {
    f64::from_bits(tables::X_BITS[i])
}

/// `x(i) * 2^-52`: turns the signed 53-bit integer taken from a word straight into `u * x(i)`.
#[inline(always)]
fn x_scaled(i: usize) -> f64 {
    f64::from_bits(tables::X_SCALED_BITS[i])
}

#[inline(always)]
fn f(i: usize) -> f64 {
    f64::from_bits(tables::F_BITS[i])
}

#[inline]
fn density(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

/// The fast path: one word gives the layer (low 8 bits) and a signed uniform (top 53 bits,
/// arithmetic shift), i.e. `x = u * x[i]` with `u` in [-1, 1). Accepted when inside the
/// layer's inner rectangle.
#[inline(always)]
fn try_fast(bits: u64) -> (f64, usize, bool) {
    let i = (bits & 0xff) as usize;
    let v = ((bits as i64) >> 11) as f64 * x_scaled(i);
    (v, i, v.abs() < x(i + 1))
}

#[inline(always)]
fn sample(rng: &mut Xoshiro256PlusPlus) -> f64 {
    loop {
        let (v, i, accepted) = try_fast(rng.next_u64());
        if accepted {
            return v;
        }
        // The generator goes to the slow path by value: taking its address here would keep
        // its state in memory on the fast path too.
        let (accepted, state) = slow_path(rng.clone(), i, v);
        *rng = state;
        if let Some(v) = accepted {
            return v;
        }
    }
}

/// The ~1% of draws outside the layer's inner rectangle: the tail (base layer) or a wedge.
#[cold]
#[inline(never)]
fn slow_path(mut rng: Xoshiro256PlusPlus, i: usize, v: f64) -> (Option<f64>, Xoshiro256PlusPlus) {
    if i == 0 {
        // Marsaglia (1964): exact sampling of the tail beyond R.
        let r = x(1);
        loop {
            let a = -rng.next_f64_open0().ln() / r;
            let b = -rng.next_f64_open0().ln();
            if 2.0 * b > a * a {
                return (Some(if v < 0.0 { -(r + a) } else { r + a }), rng);
            }
        }
    }
    let y = f(i) + (f(i + 1) - f(i)) * rng.next_f64();
    ((y < density(v)).then_some(v), rng)
}

/// No draw of this sampler exceeds this in absolute value: the fast path and wedges stay within
/// the base layer's edge `R`, and the tail returns `R - ln(u) / R` with `u >= 2^-53` (the
/// smallest value of `next_f64_open0`), so at most `R + 53 ln 2 / R` (about 13.7).
pub fn max_abs_standard_normal() -> f64 {
    let r = x(1);
    r + 53.0 * std::f64::consts::LN_2 / r
}

/// One standard normal draw.
#[inline]
pub fn standard_normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    sample(rng)
}

/// Fills shorter than this draw one at a time: seeding the four bulk generators costs 16 words.
const BULK_MIN: usize = 64;

/// Fills `out` with standard normal draws, consuming `rng`. Short fills give the same values as
/// repeated [`standard_normal`]; longer ones take the bulk path (see [`fill_bulk`]), which
/// gives other, equally distributed values and the same ones on every CPU.
pub fn fill_standard_normal(rng: &mut Xoshiro256PlusPlus, out: &mut [f64]) {
    if out.len() < BULK_MIN {
        let mut local = rng.clone();
        for v in out.iter_mut() {
            *v = sample(&mut local);
        }
        *rng = local;
        return;
    }
    fill_bulk(rng, out);
}

/// The bulk path: four xoshiro256++ lanes seeded from `rng` (AVX2 where available) fill a
/// block of 64 words, one branch-free pass applies the ziggurat's fast path to every word, and
/// the ~1% of positions it rejects are finished by the exact slow path, with any further tries
/// drawn from `rng`. Each position still gets an exact ziggurat draw from independent uniforms.
fn fill_bulk(rng: &mut Xoshiro256PlusPlus, out: &mut [f64]) {
    let mut lanes = Xoshiro256PlusPlusX4::from_rng(rng);
    let mut words = [0u64; 64];
    let mut local = rng.clone();
    for block in out.chunks_mut(64) {
        let words = &mut words[..block.len()];
        lanes.fill_u64(words);
        // Bit j set: the fast path rejected position j.
        let mut rejected = fast_pass(words, block);
        while rejected != 0 {
            let j = rejected.trailing_zeros() as usize;
            rejected &= rejected - 1;
            let (v, i, _) = try_fast_bulk(words[j]);
            let (accepted, state) = slow_path(local.clone(), i, v);
            local = state;
            block[j] = match accepted {
                Some(v) => v,
                None => sample(&mut local),
            };
        }
    }
    *rng = local;
}

/// The bulk path's fast try: the low 8 bits pick the layer and the top 52 bits, as the
/// mantissa of a number in [2, 4), give `u` uniform on [-1, 1) in steps of 2^-51 (no
/// integer-to-float conversion). Same acceptance test as [`try_fast`].
#[inline(always)]
fn try_fast_bulk(w: u64) -> (f64, usize, bool) {
    let i = (w & 0xff) as usize;
    let u = f64::from_bits((w >> 12) | 0x4000_0000_0000_0000) - 3.0;
    let v = u * x(i);
    (v, i, v.abs() < x(i + 1))
}

/// `[x(i), x(i + 1)]` side by side (as bit patterns, like the tables): the AVX2 pass fetches
/// both with one 16-byte load.
#[cfg(target_arch = "x86_64")]
static X_PAIRS: [[u64; 2]; LAYERS] = {
    let mut pairs = [[0; 2]; LAYERS];
    let mut i = 0;
    while i < LAYERS {
        pairs[i] = [tables::X_BITS[i], tables::X_BITS[i + 1]];
        i += 1;
    }
    pairs
};

/// Writes every word's fast-path value to `out` and returns the rejected positions as bits.
/// With AVX2, four words at a time (the same operations, so the same values).
#[inline(always)]
fn fast_pass(words: &[u64], out: &mut [f64]) -> u64 {
    debug_assert!(words.len() == out.len() && out.len() <= 64);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature the function is compiled for.
            return unsafe { fast_pass_avx2(words, out) };
        }
    }
    fast_pass_scalar(words, out, 0)
}

#[inline(always)]
fn fast_pass_scalar(words: &[u64], out: &mut [f64], first: usize) -> u64 {
    let mut rejected = 0u64;
    for (j, (&w, o)) in words.iter().zip(out.iter_mut()).enumerate().skip(first) {
        let (v, _, accepted) = try_fast_bulk(w);
        *o = v;
        rejected |= ((!accepted) as u64) << j;
    }
    rejected
}

/// [`fast_pass_scalar`] four words at a time. The table lookups are four 16-byte loads of
/// [`X_PAIRS`] regrouped by two unpacks (hardware gathers measured slower on Zen 3).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fast_pass_avx2(words: &[u64], out: &mut [f64]) -> u64 {
    use std::arch::x86_64::*;
    let pairs = X_PAIRS.as_ptr() as *const f64;
    let exponent = _mm256_set1_epi64x(0x4000_0000_0000_0000);
    let three = _mm256_set1_pd(3.0);
    let magnitude = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
    let full = words.len() / 4 * 4;
    let mut rejected = 0u64;
    for j in (0..full).step_by(4) {
        let pw = words.as_ptr().add(j);
        let pair = |t: usize| _mm_loadu_pd(pairs.add(2 * (*pw.add(t) & 0xff) as usize));
        // a = [x(i0), x(i0+1), x(i2), x(i2+1)], b = the same for words 1 and 3.
        let a = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(0)), pair(2));
        let b = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(1)), pair(3));
        let (x_i, x_next) = (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b));
        let w = _mm256_loadu_si256(pw as *const __m256i);
        let mantissa = _mm256_or_si256(_mm256_srli_epi64::<12>(w), exponent);
        let u = _mm256_sub_pd(_mm256_castsi256_pd(mantissa), three);
        let v = _mm256_mul_pd(u, x_i);
        _mm256_storeu_pd(out.as_mut_ptr().add(j), v);
        let accepted = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_and_pd(v, magnitude), x_next);
        rejected |= ((!_mm256_movemask_pd(accepted) & 0xf) as u64) << j;
    }
    rejected | fast_pass_scalar(words, out, full)
}

/// Fills `out` with `mu + sigma * z` (`z` as [`fill_standard_normal`] draws them); `sigma == 0`
/// gives the point mass without drawing.
pub fn fill_normal(rng: &mut Xoshiro256PlusPlus, mu: f64, sigma: f64, out: &mut [f64]) {
    if sigma == 0.0 {
        out.fill(mu);
        return;
    }
    fill_standard_normal(rng, out);
    for v in out.iter_mut() {
        *v = mu + sigma * *v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `integral_x^inf exp(-t^2/2) dt` by the Laplace continued fraction (fast for x > 2).
    fn upper_tail_integral(x: f64) -> f64 {
        let mut cf = x;
        for k in (1..=300).rev() {
            cf = x + k as f64 / cf;
        }
        density(x) / cf
    }

    /// The ladder from base radius `r`: half-widths x[0..=256] and how far the top layer
    /// overshoots the mode (`f(x[255]) + V/x[255] - 1`, positive when `r` is too small).
    fn ladder(r: f64) -> ([f64; LAYERS + 1], f64) {
        let v = r * density(r) + upper_tail_integral(r);
        let mut xs = [0.0; LAYERS + 1];
        xs[0] = v / density(r);
        xs[1] = r;
        for i in 1..LAYERS {
            let y = density(xs[i]) + v / xs[i];
            if i == LAYERS - 1 {
                return (xs, y - 1.0);
            }
            if y >= 1.0 {
                return (xs, 1.0);
            }
            xs[i + 1] = (-2.0 * y.ln()).sqrt();
        }
        unreachable!("the loop returns at its last iteration")
    }

    /// How `tables.rs` was made: bisection on R (about 3.6542) until the ladder closes at 0.
    fn derive_tables() -> [[f64; LAYERS + 1]; 3] {
        let (mut lo, mut hi) = (3.0_f64, 4.5_f64);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if ladder(mid).1 > 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let xs = ladder(hi).0;
        let mut fs = xs.map(density);
        fs[LAYERS] = 1.0;
        [xs, xs.map(|v| v * f64::powi(2.0, -52)), fs]
    }

    #[test]
    fn tables_match_their_derivation() {
        let [xs, xs_scaled, fs] = derive_tables();
        for i in 0..=LAYERS {
            // Not bit-exact: the platform's exp/ln may differ from the generating one by an ulp.
            assert!((x(i) - xs[i]).abs() <= 1e-13 * xs[i], "x[{i}]");
            assert!((x_scaled(i) - xs_scaled[i]).abs() <= 1e-13 * xs_scaled[i]);
            assert!((f(i) - fs[i]).abs() <= 1e-13 * fs[i], "f[{i}]");
        }
    }

    #[test]
    fn tables_close_at_the_mode() {
        // Known value of R for 256 layers.
        assert!((x(1) - 3.654_152_885_361_009).abs() < 1e-9, "R = {}", x(1));
        assert_eq!((x(LAYERS), f(LAYERS)), (0.0, 1.0));
        // Every layer has the same area V.
        let v = x(1) * f(1) + upper_tail_integral(x(1));
        assert!((x(0) * f(1) - v).abs() < 1e-15);
        for i in 1..LAYERS {
            let area = x(i) * (f(i + 1) - f(i));
            assert!((area - v).abs() < 1e-9 * v, "layer {i}: {area} vs {v}");
        }
        assert!((0..LAYERS).all(|i| x(i) > x(i + 1)));
        assert!((0..=LAYERS).all(|i| x_scaled(i) == x(i) * f64::powi(2.0, -52)));
    }

    #[test]
    fn short_fills_match_single_draws() {
        let mut a = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut b = a.clone();
        let mut buf = [0.0; BULK_MIN - 1];
        fill_standard_normal(&mut a, &mut buf);
        for v in buf {
            assert_eq!(v, standard_normal(&mut b));
        }
        assert_eq!(a, b, "the generator advances as for single draws");
    }

    #[test]
    fn long_fills_take_the_bulk_path_and_are_reproducible() {
        for len in [BULK_MIN, 100, 1024, 4099] {
            let mut a = Xoshiro256PlusPlus::seed_from_u64(len as u64);
            let mut b = a.clone();
            let (mut x, mut y) = (vec![0.0; len], vec![0.0; len]);
            fill_bulk(&mut a, &mut x);
            fill_standard_normal(&mut b, &mut y);
            assert_eq!(x, y);
            assert_eq!(a, b);
            // Not the one-generator sequence.
            let mut c = Xoshiro256PlusPlus::seed_from_u64(len as u64);
            assert_ne!(x[0], standard_normal(&mut c));
        }
    }

    #[test]
    fn fast_pass_is_the_same_with_and_without_simd() {
        let mut lanes = Xoshiro256PlusPlusX4::from_rng(&mut Xoshiro256PlusPlus::seed_from_u64(8));
        for len in [64, 63, 5, 1] {
            for _ in 0..2000 {
                let mut words = [0u64; 64];
                lanes.fill_u64(&mut words[..len]);
                let (mut a, mut b) = ([0.0; 64], [0.0; 64]);
                let ra = fast_pass_scalar(&words[..len], &mut a[..len], 0);
                let rb = fast_pass(&words[..len], &mut b[..len]);
                assert_eq!(ra, rb);
                assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
            }
        }
    }

    #[test]
    fn bulk_rejections_are_finished_exactly() {
        // Every position the fast pass rejects gets a slow-path value: none keeps its fast
        // value, which lies outside the layer's rectangle; the bound still holds.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut z = vec![0.0; 1 << 16];
        fill_standard_normal(&mut rng, &mut z);
        let bound = max_abs_standard_normal();
        assert!(z.iter().all(|v| v.is_finite() && v.abs() <= bound));
        let beyond_r = z.iter().filter(|v| v.abs() > x(1)).count();
        assert!(beyond_r > 0, "the tail path was taken");
    }

    #[test]
    fn fill_normal_scales_the_standard_fill_and_point_mass() {
        let mut a = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut b = a.clone();
        let (mut buf, mut z) = ([0.0; 300], [0.0; 300]);
        fill_normal(&mut a, 2.0, 3.0, &mut buf);
        fill_standard_normal(&mut b, &mut z);
        for (v, z) in buf.iter().zip(z) {
            assert_eq!(*v, 2.0 + 3.0 * z);
        }
        fill_normal(&mut a, -1.5, 0.0, &mut buf);
        assert!(buf.iter().all(|&v| v == -1.5));
    }
}
