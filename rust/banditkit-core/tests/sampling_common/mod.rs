//! Statistical helpers shared by the sampling tests: exact CDFs, the Kolmogorov-Smirnov
//! statistic and moment checks with tolerances of 5 standard errors.
#![allow(dead_code)]

/// Complementary error function (Numerical Recipes `erfcc`, fractional error < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398
                                + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal density.
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// ln Gamma(x) for x > 0: Stirling's series after shifting x above 10 (error ~1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    let mut shift = 0.0;
    let mut x = x;
    while x < 10.0 {
        shift -= x.ln();
        x += 1.0;
    }
    let x2 = x * x;
    let series = 1.0 / (12.0 * x) - 1.0 / (360.0 * x * x2) + 1.0 / (1260.0 * x * x2 * x2)
        - 1.0 / (1680.0 * x * x2 * x2 * x2);
    shift + (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series
}

/// Regularised lower incomplete gamma P(a, x) (series below a+1, Lentz continued fraction
/// above). Needs O(sqrt(a)) iterations: for moderate shapes only.
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let log_prefactor = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..100_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        sum * log_prefactor.exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..100_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - log_prefactor.exp() * h
    }
}

/// A CDF tabulated on a fine grid by integrating a density (Simpson per cell) and read back by
/// linear interpolation; 0 below the grid, 1 above it.
pub struct GridCdf {
    lo: f64,
    step: f64,
    values: Vec<f64>,
}

impl GridCdf {
    /// `lo` must be where the CDF is (numerically) 0 and `hi` where it is 1.
    pub fn new(pdf: impl Fn(f64) -> f64, lo: f64, hi: f64, cells: usize) -> Self {
        let step = (hi - lo) / cells as f64;
        let mut values = Vec::with_capacity(cells + 1);
        let mut acc = 0.0;
        values.push(0.0);
        for i in 0..cells {
            let a = lo + i as f64 * step;
            acc += step / 6.0 * (pdf(a) + 4.0 * pdf(a + 0.5 * step) + pdf(a + step));
            values.push(acc);
        }
        assert!((acc - 1.0).abs() < 1e-7, "density integrates to {acc}");
        GridCdf { lo, step, values }
    }

    pub fn cdf(&self, x: f64) -> f64 {
        let pos = (x - self.lo) / self.step;
        if pos <= 0.0 {
            return 0.0;
        }
        let i = pos.floor() as usize;
        if i + 1 >= self.values.len() {
            return 1.0;
        }
        let frac = pos - i as f64;
        self.values[i] + frac * (self.values[i + 1] - self.values[i])
    }
}

/// Gamma(shape, 1) density, computed in log space (fine for shapes up to 1e7).
pub fn gamma_pdf(shape: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    ((shape - 1.0) * x.ln() - x - ln_gamma(shape)).exp()
}

/// Kolmogorov-Smirnov distance between the sample (sorted in place) and `cdf`.
pub fn ks_statistic(samples: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 {
    samples.sort_unstable_by(f64::total_cmp);
    let n = samples.len() as f64;
    let mut d: f64 = 0.0;
    for (i, &x) in samples.iter().enumerate() {
        let f = cdf(x);
        d = d.max(f - i as f64 / n).max((i + 1) as f64 / n - f);
    }
    d
}

/// The KS critical value used throughout: 1.95/sqrt(n) (alpha ~ 0.001).
pub fn ks_critical(n: usize) -> f64 {
    1.95 / (n as f64).sqrt()
}

/// Checks the sample's central moments about the TRUE mean, orders 1..=4, against `central`
/// (`central[k]` = E[(X - mean)^k] for k = 0..=8, `central[0] = 1`, `central[1] = 0`). Each
/// estimate is a plain average of `(x - mean)^k`, whose standard error is
/// `sqrt((mu_2k - mu_k^2) / n)`; the tolerance is 5 of those.
pub fn check_central_moments(samples: &[f64], mean: f64, central: &[f64; 9], label: &str) {
    let n = samples.len() as f64;
    let mut sums = [0.0f64; 5];
    for &x in samples {
        let d = x - mean;
        let mut p = 1.0;
        for s in sums.iter_mut().skip(1) {
            p *= d;
            *s += p;
        }
    }
    for k in 1..=4 {
        let estimate = sums[k] / n;
        let se = ((central[2 * k] - central[k] * central[k]) / n).sqrt();
        assert!(
            (estimate - central[k]).abs() < 5.0 * se,
            "{label}: central moment {k} = {estimate}, expected {} (se {se})",
            central[k]
        );
    }
}

/// Central moments 0..=8 from cumulants 1..=8 (`kappa[k]`, `kappa[0]` unused).
pub fn central_from_cumulants(kappa: &[f64; 9]) -> [f64; 9] {
    let k = kappa;
    [
        1.0,
        0.0,
        k[2],
        k[3],
        k[4] + 3.0 * k[2] * k[2],
        k[5] + 10.0 * k[3] * k[2],
        k[6] + 15.0 * k[4] * k[2] + 10.0 * k[3] * k[3] + 15.0 * k[2].powi(3),
        k[7] + 21.0 * k[5] * k[2] + 35.0 * k[4] * k[3] + 105.0 * k[3] * k[2] * k[2],
        k[8] + 28.0 * k[6] * k[2]
            + 56.0 * k[5] * k[3]
            + 35.0 * k[4] * k[4]
            + 210.0 * k[4] * k[2] * k[2]
            + 280.0 * k[3] * k[3] * k[2]
            + 105.0 * k[2].powi(4),
    ]
}

/// Central moments 0..=8 from raw moments 0..=8 (binomial expansion; moderate shapes only).
pub fn central_from_raw(raw: &[f64; 9]) -> [f64; 9] {
    let m = raw[1];
    let mut out = [0.0; 9];
    for (k, o) in out.iter_mut().enumerate() {
        let mut binom = 1.0;
        for (j, &r) in raw.iter().enumerate().take(k + 1) {
            *o += binom * r * (-m).powi((k - j) as i32);
            binom = binom * (k - j) as f64 / (j + 1) as f64;
        }
    }
    out[1] = 0.0;
    out
}

/// `Phi(z)`-type binomial check: `hits/n` within 5 standard errors of `p`.
pub fn assert_proportion(hits: u64, n: u64, p: f64, label: &str) {
    let se = (p * (1.0 - p) / n as f64).sqrt();
    let got = hits as f64 / n as f64;
    assert!(
        (got - p).abs() <= 5.0 * se,
        "{label}: {got} vs {p} (se {se})"
    );
}

/// Composite Simpson rule on [a, b] with `cells` cells.
pub fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, cells: usize) -> f64 {
    let h = (b - a) / cells as f64;
    (0..cells)
        .map(|i| {
            let x = a + i as f64 * h;
            h / 6.0 * (f(x) + 4.0 * f(x + 0.5 * h) + f(x + h))
        })
        .sum()
}
