//! Gamma and Beta sampling.
//!
//! Gamma(shape, scale 1) by Marsaglia & Tsang (2000), with the `U^(1/a)` boost for shape < 1.
//! Beta(a, b) as `X / (X + Y)` with independent Gamma draws; when a shape is below 1 the ratio
//! is formed from log-Gamma draws, because `U^(1/a)` underflows to 0 for small `a` (e.g. 1e-2)
//! and `0 / (0 + 0)` would be NaN.
use crate::normal::{fill_standard_normal, standard_normal};
use crate::rng::{fill_uniform, Xoshiro256PlusPlus};

/// Marsaglia-Tsang constants for one shape, computed once per arm rather than per draw.
#[derive(Debug, Clone, Copy)]
pub struct GammaSampler {
    /// `d = a' - 1/3` for the shape `a' = a` (a >= 1) or `a + 1` (a < 1).
    d: f64,
    /// `c = 1 / sqrt(9 d)`.
    c: f64,
    /// `1 / a` when the boost applies (a < 1).
    boost: Option<f64>,
}

impl GammaSampler {
    pub fn new(shape: f64) -> Self {
        debug_assert!(shape.is_finite() && shape > 0.0, "gamma shape {shape}");
        let (base, boost) = if shape < 1.0 {
            (shape + 1.0, Some(1.0 / shape))
        } else {
            (shape, None)
        };
        let d = base - 1.0 / 3.0;
        GammaSampler {
            d,
            c: 1.0 / (9.0 * d).sqrt(),
            boost,
        }
    }

    /// Gamma(base shape) with base shape >= 1.
    #[inline]
    fn base(&self, rng: &mut Xoshiro256PlusPlus) -> f64 {
        loop {
            let x = standard_normal(rng);
            let v = self.cube(x);
            if v <= 0.0 {
                continue;
            }
            let u = rng.next_f64();
            if self.accepts(x, u, v) {
                return self.d * v;
            }
        }
    }

    /// `(1 + c x)^3`; not positive means the candidate is rejected outright.
    #[inline(always)]
    fn cube(&self, x: f64) -> f64 {
        let v = 1.0 + self.c * x;
        v * v * v
    }

    /// The cheap squeeze, which accepts about 98% of candidates without a logarithm.
    #[inline(always)]
    fn squeeze(x: f64, u: f64) -> bool {
        let x2 = x * x;
        u < 1.0 - 0.0331 * x2 * x2
    }

    /// The exact acceptance test for a candidate `v = cube(x) > 0` with uniform `u`.
    #[inline(always)]
    fn accepts(&self, x: f64, u: f64, v: f64) -> bool {
        Self::squeeze(x, u) || u.ln() < 0.5 * x * x + self.d * (1.0 - v + v.ln())
    }

    /// Fills `out` with draws (shape >= 1) from bulk normals and uniforms: one branch-free
    /// pass takes every first candidate the squeeze accepts; the others are finished by the
    /// exact test and, if that rejects too, by fresh tries from `rng`, so each position is an
    /// exact Marsaglia-Tsang draw. Shapes below 1 (the `U^(1/a)` boost) draw one at a time.
    pub fn fill(&self, rng: &mut Xoshiro256PlusPlus, out: &mut [f64], scratch: &mut GammaScratch) {
        if self.boost.is_some() {
            out.iter_mut().for_each(|v| *v = self.sample(rng));
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports the feature the function is compiled for.
                unsafe { self.fill_bulk_avx2(rng, out, scratch) };
                return;
            }
        }
        self.fill_bulk(rng, out, scratch);
    }

    /// [`Self::fill_bulk`] compiled for AVX2: the same operations, four lanes wide.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_bulk_avx2(
        &self,
        rng: &mut Xoshiro256PlusPlus,
        out: &mut [f64],
        scratch: &mut GammaScratch,
    ) {
        self.fill_bulk(rng, out, scratch);
    }

    #[inline(always)]
    fn fill_bulk(&self, rng: &mut Xoshiro256PlusPlus, out: &mut [f64], scratch: &mut GammaScratch) {
        let n = out.len();
        scratch.z.resize(n, 0.0);
        scratch.u.resize(n, 0.0);
        fill_standard_normal(rng, &mut scratch.z[..n]);
        fill_uniform(rng, &mut scratch.u[..n]);
        let blocks = scratch.z[..n].chunks(64).zip(scratch.u[..n].chunks(64));
        for (outs, (zs, us)) in out.chunks_mut(64).zip(blocks) {
            let mut pending = self.squeeze_pass(zs, us, outs);
            while pending != 0 {
                let j = pending.trailing_zeros() as usize;
                pending &= pending - 1;
                let v = self.cube(zs[j]);
                outs[j] = if v > 0.0 && self.accepts(zs[j], us[j], v) {
                    self.d * v
                } else {
                    self.base(rng)
                };
            }
        }
    }

    /// Writes `d (1 + c z)^3` for every position (up to 64) and returns, as bits, those the
    /// squeeze did not accept.
    #[inline(always)]
    fn squeeze_pass(&self, z: &[f64], u: &[f64], out: &mut [f64]) -> u64 {
        let mut pending = 0u64;
        for (j, ((o, &x), &u)) in out.iter_mut().zip(z).zip(u).enumerate() {
            let v = self.cube(x);
            *o = self.d * v;
            let accepted = (v > 0.0) & Self::squeeze(x, u);
            pending |= ((!accepted) as u64) << j;
        }
        pending
    }

    #[inline]
    pub fn sample(&self, rng: &mut Xoshiro256PlusPlus) -> f64 {
        let g = self.base(rng);
        match self.boost {
            None => g,
            Some(inv_a) => g * rng.next_f64_open0().powf(inv_a),
        }
    }

    /// `(lowest, highest)` value [`Self::sample`] can return: the candidate is `d (1 + c x)^3`
    /// with `|x| <= z_max` (the normal sampler's bound), and the boost multiplies by
    /// `U^(1/a)` with `2^-53 <= U <= 1`.
    pub fn range(&self, z_max: f64) -> (f64, f64) {
        let cube = |v: f64| v * v * v;
        let hi = self.d * cube(1.0 + self.c * z_max);
        let lo = self.d * cube((1.0 - self.c * z_max).max(0.0));
        match self.boost {
            None => (lo, hi),
            Some(inv_a) => (lo * (2f64).powf(-53.0 * inv_a), hi),
        }
    }

    /// The logarithm of one Gamma draw, finite even when the draw itself underflows.
    #[inline]
    pub fn sample_ln(&self, rng: &mut Xoshiro256PlusPlus) -> f64 {
        let g = self.base(rng).ln();
        match self.boost {
            None => g,
            Some(inv_a) => g + rng.next_f64_open0().ln() * inv_a,
        }
    }
}

/// Buffers of [`GammaSampler::fill`] and [`BetaSampler::fill`], reused across calls.
#[derive(Debug, Clone, Default)]
pub struct GammaScratch {
    z: Vec<f64>,
    u: Vec<f64>,
    y: Vec<f64>,
}

/// One Gamma(shape, 1) draw; `shape > 0`.
pub fn gamma(rng: &mut Xoshiro256PlusPlus, shape: f64) -> f64 {
    GammaSampler::new(shape).sample(rng)
}

/// Beta(a, b) from two Gamma samplers.
#[derive(Debug, Clone, Copy)]
pub struct BetaSampler {
    x: GammaSampler,
    y: GammaSampler,
    log_space: bool,
}

impl BetaSampler {
    pub fn new(a: f64, b: f64) -> Self {
        BetaSampler {
            x: GammaSampler::new(a),
            y: GammaSampler::new(b),
            log_space: a < 1.0 || b < 1.0,
        }
    }

    /// No draw of [`Self::sample`] exceeds this: `X / (X + Y)` grows with X and falls with Y.
    pub fn upper_bound(&self, z_max: f64) -> f64 {
        let (_, x_hi) = self.x.range(z_max);
        let (y_lo, _) = self.y.range(z_max);
        let bound = x_hi / (x_hi + y_lo);
        // Slack for the rounding of the sampled ratio (or its log-space form).
        (bound * (1.0 + 1e-12)).min(1.0)
    }

    /// One Beta draw in [0, 1] (never NaN).
    #[inline]
    pub fn sample(&self, rng: &mut Xoshiro256PlusPlus) -> f64 {
        if self.log_space {
            let lx = self.x.sample_ln(rng);
            let ly = self.y.sample_ln(rng);
            // X / (X + Y) = 1 / (1 + exp(ln Y - ln X)); exp overflow gives 0, not NaN.
            1.0 / (1.0 + (ly - lx).exp())
        } else {
            let x = self.x.sample(rng);
            let y = self.y.sample(rng);
            x / (x + y)
        }
    }

    /// Fills `out` with draws: both Gamma parts in bulk ([`GammaSampler::fill`]) when both
    /// shapes are at least 1, otherwise one [`BetaSampler::sample`] at a time.
    pub fn fill(&self, rng: &mut Xoshiro256PlusPlus, out: &mut [f64], scratch: &mut GammaScratch) {
        if self.log_space {
            out.iter_mut().for_each(|v| *v = self.sample(rng));
            return;
        }
        let mut y = std::mem::take(&mut scratch.y);
        y.resize(out.len(), 0.0);
        self.x.fill(rng, out, scratch);
        self.y.fill(rng, &mut y, scratch);
        for (x, y) in out.iter_mut().zip(&y) {
            *x /= *x + y;
        }
        scratch.y = y;
    }
}

/// One Beta(a, b) draw; `a, b > 0`.
pub fn beta(rng: &mut Xoshiro256PlusPlus, a: f64, b: f64) -> f64 {
    BetaSampler::new(a, b).sample(rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_shapes_give_valid_betas() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let s = BetaSampler::new(1e-2, 1e-2);
        let mut extremes = 0;
        for _ in 0..10_000 {
            let v = s.sample(&mut rng);
            assert!((0.0..=1.0).contains(&v), "{v}");
            if !(1e-6..=1.0 - 1e-6).contains(&v) {
                extremes += 1;
            }
        }
        // Beta(0.01, 0.01) puts almost all its mass within 1e-6 of 0 or 1.
        assert!(extremes > 8_000, "{extremes}");
    }

    #[test]
    fn sample_ln_matches_sample() {
        let mut a = Xoshiro256PlusPlus::seed_from_u64(6);
        let mut b = a.clone();
        for shape in [0.3, 1.0, 7.5] {
            let s = GammaSampler::new(shape);
            for _ in 0..100 {
                let x = s.sample(&mut a);
                let lx = s.sample_ln(&mut b);
                assert!((x.ln() - lx).abs() < 1e-12 * (1.0 + lx.abs()));
            }
        }
    }

    #[test]
    fn bulk_fill_is_the_same_with_and_without_simd() {
        for shape in [1.0, 2.5, 1e6] {
            let s = GammaSampler::new(shape);
            let mut a = Xoshiro256PlusPlus::seed_from_u64(7);
            let mut b = a.clone();
            let (mut x, mut y) = (vec![0.0; 1000], vec![0.0; 1000]);
            s.fill(&mut a, &mut x, &mut GammaScratch::default());
            s.fill_bulk(&mut b, &mut y, &mut GammaScratch::default());
            assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()));
            assert_eq!(a, b);
            assert!(x.iter().all(|v| v.is_finite() && *v > 0.0));
        }
    }
}
