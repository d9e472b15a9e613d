//! Distribution checks for the normal, gamma and beta samplers: moments within 5 standard
//! errors and Kolmogorov-Smirnov tests on 10^6 draws with fixed seeds.
mod sampling_common;

use banditkit_core::gamma::{beta, gamma, BetaSampler, GammaSampler, GammaScratch};
use banditkit_core::normal::{fill_standard_normal, standard_normal};
use banditkit_core::rng::Xoshiro256PlusPlus;
use sampling_common::*;

const N: usize = 1_000_000;

fn gamma_draws(shape: f64, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let s = GammaSampler::new(shape);
    (0..N).map(|_| s.sample(&mut rng)).collect()
}

fn beta_draws(a: f64, b: f64, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let s = BetaSampler::new(a, b);
    (0..N).map(|_| s.sample(&mut rng)).collect()
}

/// Bulk draws ([`GammaSampler::fill`]) in 1024-long fills, as the win counters make them.
fn gamma_fill_draws(shape: f64, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (s, mut scratch) = (GammaSampler::new(shape), GammaScratch::default());
    let mut out = vec![0.0; N];
    out.chunks_mut(1024)
        .for_each(|c| s.fill(&mut rng, c, &mut scratch));
    out
}

fn beta_fill_draws(a: f64, b: f64, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (s, mut scratch) = (BetaSampler::new(a, b), GammaScratch::default());
    let mut out = vec![0.0; N];
    out.chunks_mut(1024)
        .for_each(|c| s.fill(&mut rng, c, &mut scratch));
    out
}

#[test]
fn normal_moments() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut z = vec![0.0; N];
    fill_standard_normal(&mut rng, &mut z);
    let mut kappa = [0.0; 9];
    kappa[2] = 1.0;
    check_central_moments(&z, 0.0, &central_from_cumulants(&kappa), "normal");
}

#[test]
fn normal_ks_against_phi() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let mut z: Vec<f64> = (0..N).map(|_| standard_normal(&mut rng)).collect();
    let d = ks_statistic(&mut z, normal_cdf);
    assert!(d < ks_critical(N), "KS D = {d}");
}

#[test]
fn normal_tail_mass() {
    // P(|Z| > 3.7) (beyond the ziggurat's base radius R = 3.654): exercises the tail path.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let n = 4_000_000u64;
    let hits = (0..n)
        .filter(|_| standard_normal(&mut rng).abs() > 3.7)
        .count() as u64;
    assert_proportion(hits, n, 2.0 * normal_cdf(-3.7), "P(|Z| > 3.7)");
}

#[test]
fn normal_bulk_ks_against_phi() {
    // The bulk path (fills of 64 or more): four generator lanes and the deferred slow path.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    let mut z = vec![0.0; N];
    fill_standard_normal(&mut rng, &mut z);
    let d = ks_statistic(&mut z, normal_cdf);
    assert!(d < ks_critical(N), "KS D = {d}");
}

#[test]
fn normal_bulk_tail_mass() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
    let n = 4_000_000usize;
    let mut z = vec![0.0; n];
    // In 1024-long fills, as the win counters use it.
    z.chunks_mut(1024)
        .for_each(|c| fill_standard_normal(&mut rng, c));
    let hits = z.iter().filter(|v| v.abs() > 3.7).count() as u64;
    assert_proportion(hits, n as u64, 2.0 * normal_cdf(-3.7), "P(|Z| > 3.7)");
}

#[test]
fn normal_bulk_draws_are_serially_uncorrelated() {
    // Lags 1-8 cover neighbouring lanes and the same lane one step on; each sample
    // correlation has standard error 1/sqrt(N), allowed 5.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut z = vec![0.0; N];
    z.chunks_mut(1024)
        .for_each(|c| fill_standard_normal(&mut rng, c));
    for lag in 1..=8 {
        let r: f64 = z.iter().zip(&z[lag..]).map(|(a, b)| a * b).sum::<f64>() / (N - lag) as f64;
        assert!(r.abs() < 5.0 / (N as f64).sqrt(), "lag {lag}: r = {r}");
        // And of squares (dependence in magnitude): Var(z^2) = 2.
        let r2: f64 = z
            .iter()
            .zip(&z[lag..])
            .map(|(a, b)| (a * a - 1.0) * (b * b - 1.0))
            .sum::<f64>()
            / (N - lag) as f64
            / 2.0;
        assert!(
            r2.abs() < 5.0 / (N as f64).sqrt(),
            "lag {lag}: r(z^2) = {r2}"
        );
    }
}

#[test]
fn gamma_moments() {
    for (i, shape) in [0.01, 0.3, 1.0, 2.5, 100.0, 1e6, 1e7]
        .into_iter()
        .enumerate()
    {
        // Cumulants of Gamma(a, 1): kappa_k = a (k-1)!.
        let mut kappa = [0.0; 9];
        let mut fact = 1.0;
        for (k, kk) in kappa.iter_mut().enumerate().skip(1) {
            *kk = shape * fact;
            fact *= k as f64;
        }
        let central = central_from_cumulants(&kappa);
        let draws = gamma_draws(shape, 10 + i as u64);
        check_central_moments(&draws, shape, &central, &format!("gamma({shape})"));
    }
}

#[test]
fn gamma_ks_small_shapes() {
    // Shape 0.3: the incomplete gamma function; shape 1: the exponential law.
    let mut draws = gamma_draws(0.3, 20);
    let d = ks_statistic(&mut draws, |x| gamma_p(0.3, x));
    assert!(d < ks_critical(N), "gamma(0.3) KS D = {d}");
    let mut draws = gamma_draws(1.0, 21);
    let d = ks_statistic(&mut draws, |x| 1.0 - (-x.max(0.0)).exp());
    assert!(d < ks_critical(N), "gamma(1) KS D = {d}");
}

#[test]
fn gamma_ks_larger_shapes() {
    // A numerically integrated CDF (Simpson on a fine grid, validated below).
    for (i, shape) in [2.5, 100.0, 1e6].into_iter().enumerate() {
        let sd = f64::sqrt(shape);
        let lo = (shape - 15.0 * sd).max(0.0);
        let grid = GridCdf::new(|x| gamma_pdf(shape, x), lo, shape + 25.0 * sd, 200_000);
        let mut draws = gamma_draws(shape, 30 + i as u64);
        let d = ks_statistic(&mut draws, |x| grid.cdf(x));
        assert!(d < ks_critical(N), "gamma({shape}) KS D = {d}");
    }
}

#[test]
fn gamma_bulk_fill_moments_and_ks() {
    for (i, shape) in [1.0, 2.5, 100.0, 1e6, 1e7].into_iter().enumerate() {
        let mut kappa = [0.0; 9];
        let mut fact = 1.0;
        for (k, kk) in kappa.iter_mut().enumerate().skip(1) {
            *kk = shape * fact;
            fact *= k as f64;
        }
        let mut draws = gamma_fill_draws(shape, 80 + i as u64);
        let label = format!("bulk gamma({shape})");
        check_central_moments(&draws, shape, &central_from_cumulants(&kappa), &label);
        let d = if shape == 1.0 {
            ks_statistic(&mut draws, |x| 1.0 - (-x.max(0.0)).exp())
        } else {
            let sd = f64::sqrt(shape);
            let lo = (shape - 15.0 * sd).max(0.0);
            let grid = GridCdf::new(|x| gamma_pdf(shape, x), lo, shape + 25.0 * sd, 200_000);
            ks_statistic(&mut draws, |x| grid.cdf(x))
        };
        assert!(d < ks_critical(N), "{label} KS D = {d}");
    }
}

#[test]
fn gamma_fill_below_shape_one_is_single_draws() {
    // The boosted sampler has no bulk path: fill equals repeated sample.
    let mut a = Xoshiro256PlusPlus::seed_from_u64(90);
    let mut b = a.clone();
    let s = GammaSampler::new(0.3);
    let mut out = vec![0.0; 500];
    s.fill(&mut a, &mut out, &mut GammaScratch::default());
    assert!(out.iter().all(|&v| v == s.sample(&mut b)));
}

#[test]
fn grid_cdf_agrees_with_incomplete_gamma() {
    // Validates the numerically integrated CDF used above against the series/fraction.
    let shape = 20.0;
    let grid = GridCdf::new(|x| gamma_pdf(shape, x), 0.0, 120.0, 200_000);
    for x in [5.0, 12.0, 19.5, 20.0, 27.0, 40.0] {
        assert!((grid.cdf(x) - gamma_p(shape, x)).abs() < 1e-8, "x = {x}");
    }
    assert!((gamma_p(1.0, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-12);
}

/// Raw moments E[X^k], k = 0..=8, of Beta(a, b).
fn beta_raw_moments(a: f64, b: f64) -> [f64; 9] {
    let mut raw = [1.0; 9];
    for k in 1..9 {
        let r = (k - 1) as f64;
        raw[k] = raw[k - 1] * (a + r) / (a + b + r);
    }
    raw
}

#[test]
fn beta_moments() {
    // One draw at a time and in bulk (`fill`: shapes >= 1 in bulk, below 1 in log space).
    let cases = [
        (1.0, 1.0),
        (2.0, 1.0),
        (0.5, 0.5),
        (2.0, 5.0),
        (0.02, 0.05),
        (50.0, 150.0),
        (11.0, 991.0),
    ];
    for (i, (a, b)) in cases.into_iter().enumerate() {
        let central = central_from_raw(&beta_raw_moments(a, b));
        let single = beta_draws(a, b, 40 + i as u64);
        let bulk = beta_fill_draws(a, b, 100 + i as u64);
        for (draws, how) in [(single, "single"), (bulk, "bulk")] {
            assert!(draws.iter().all(|v| (0.0..=1.0).contains(v)));
            let label = format!("{how} beta({a}, {b})");
            check_central_moments(&draws, a / (a + b), &central, &label);
        }
    }
}

type BetaCase = (f64, f64, fn(f64) -> f64);

#[test]
fn beta_ks_closed_forms() {
    let cases: [BetaCase; 3] = [
        (1.0, 1.0, |x| x.clamp(0.0, 1.0)),
        (2.0, 1.0, |x| x.clamp(0.0, 1.0).powi(2)),
        // Arcsine law: exercises the log-space path for shapes below 1.
        (0.5, 0.5, |x| {
            std::f64::consts::FRAC_2_PI * x.clamp(0.0, 1.0).sqrt().asin()
        }),
    ];
    for (i, (a, b, cdf)) in cases.into_iter().enumerate() {
        let mut draws = beta_draws(a, b, 50 + i as u64);
        let d = ks_statistic(&mut draws, cdf);
        assert!(d < ks_critical(N), "beta({a}, {b}) KS D = {d}");
        let mut draws = beta_fill_draws(a, b, 60 + i as u64);
        let d = ks_statistic(&mut draws, cdf);
        assert!(d < ks_critical(N), "bulk beta({a}, {b}) KS D = {d}");
    }
}

#[test]
fn huge_beta_shapes_are_concentrated_and_finite() {
    // Beta(1e7, 3e7): mean 0.25, sd 6.8e-5; 10^5 draws, mean within 5 SE.
    let (a, b) = (1e7, 3e7);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(60);
    let n = 100_000;
    let draws: Vec<f64> = (0..n).map(|_| beta(&mut rng, a, b)).collect();
    let mean = a / (a + b);
    let sd = (a * b / ((a + b) * (a + b) * (a + b + 1.0))).sqrt();
    let got = draws.iter().sum::<f64>() / n as f64;
    assert!((got - mean).abs() < 5.0 * sd / (n as f64).sqrt(), "{got}");
    let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    // Nearly normal: the variance estimate has relative SE sqrt(2/n).
    assert!(
        (var / (sd * sd) - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(),
        "{var}"
    );
}

#[test]
fn convenience_functions_match_samplers() {
    let mut a = Xoshiro256PlusPlus::seed_from_u64(70);
    let mut b = a.clone();
    assert_eq!(gamma(&mut a, 2.5), GammaSampler::new(2.5).sample(&mut b));
    assert_eq!(
        beta(&mut a, 0.4, 3.0),
        BetaSampler::new(0.4, 3.0).sample(&mut b)
    );
}
