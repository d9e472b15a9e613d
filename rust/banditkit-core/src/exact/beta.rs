//! Win probabilities of independent Beta arms, integrated over the log-odds s = logit(x).
//!
//! In s the density of Beta(a, b) is x^a (1-x)^b / B(a, b): smooth and bounded for any
//! a, b > 0 (no endpoint singularity), unimodal at s = ln(a/b) with width sqrt(1/a + 1/b).
//! Relative to the mode, its log is `-(a+b) [bd0(x0, x) + bd0(1-x0, 1-x)]` with
//! x0 = a/(a+b): a sum of non-negative terms, free of the cancellation between a ln x and
//! b ln(1-x) that costs ~1e-9 at a, b ~ 1e6 (Loader's saddle-point deviance, as in R's dbeta).
//! Below [`FAST_LIMIT`] that cancellation costs under ~1e-11, and the cheaper
//! `a ln x + b ln(1-x) - const` (logs shared by all arms at a node) is used instead.
use super::quadrature::{prob_best, Family};

/// Arms with `a |ln x0| + b |ln(1-x0)|` below this use the shared-log form (rounding ~1e-11).
const FAST_LIMIT: f64 = 4e4;

/// What every arm needs at a node: x, 1-x and their logs, each with full relative accuracy.
#[derive(Clone, Copy)]
struct Point {
    x: f64,
    y: f64,
    ln_x: f64,
    ln_y: f64,
}

struct Betas {
    /// a + b.
    size: Vec<f64>,
    /// a / (a + b) and b / (a + b).
    x0: Vec<f64>,
    y0: Vec<f64>,
    mode: Vec<f64>,
    scale: Vec<f64>,
    alpha: Vec<f64>,
    beta: Vec<f64>,
    /// Whether the arm uses the shared-log form, and its `a ln x0 + b ln(1-x0)`.
    fast: Vec<bool>,
    peak: Vec<f64>,
}

/// 1/3, 1/5, ...: enough terms of bd0's series for |v| < 0.1 to converge.
const INV_ODD: [f64; 16] = {
    let mut t = [0.0; 16];
    let mut j = 0;
    while j < 16 {
        t[j] = 1.0 / (2 * j + 3) as f64;
        j += 1;
    }
    t
};

/// `p ln(p/q) + q - p >= 0`, accurate when p ~ q (Loader 2000).
fn bd0(p: f64, q: f64) -> f64 {
    let diff = p - q;
    if diff.abs() < 0.1 * (p + q) {
        let v = diff / (p + q);
        let v2 = v * v;
        let mut sum = diff * v;
        let mut term = 2.0 * p * v;
        for inv_odd in INV_ODD {
            term *= v2;
            let next = sum + term * inv_odd;
            if next == sum {
                break;
            }
            sum = next;
        }
        sum
    } else {
        p * (p / q).ln() + q - p
    }
}

/// x = logistic(s) and 1 - x, each with full relative accuracy.
fn logistic_pair(s: f64) -> (f64, f64) {
    let e = (-s.abs()).exp();
    let (small, large) = (e / (1.0 + e), 1.0 / (1.0 + e));
    if s >= 0.0 {
        (large, small)
    } else {
        (small, large)
    }
}

/// ln(logistic(s)) = -ln(1 + e^-s), without overflow or cancellation.
fn ln_logistic(s: f64) -> f64 {
    if s >= 0.0 {
        -(-s).exp().ln_1p()
    } else {
        s - s.exp().ln_1p()
    }
}

impl Family for Betas {
    type Node = Point;
    fn node(&self, s: f64) -> Point {
        let (x, y) = logistic_pair(s);
        Point {
            x,
            y,
            ln_x: ln_logistic(s),
            ln_y: ln_logistic(-s),
        }
    }
    fn len(&self) -> usize {
        self.size.len()
    }
    fn mode(&self, j: usize) -> f64 {
        self.mode[j]
    }
    fn scale(&self, j: usize) -> f64 {
        self.scale[j]
    }
    fn log_density(&self, j: usize, p: &Point) -> f64 {
        if self.fast[j] {
            (self.alpha[j] * p.ln_x + self.beta[j] * p.ln_y - self.peak[j]).min(0.0)
        } else {
            -self.size[j] * (bd0(self.x0[j], p.x) + bd0(self.y0[j], p.y))
        }
    }
    fn slope(&self, j: usize, p: &Point) -> f64 {
        self.alpha[j] - self.size[j] * p.x
    }
}

/// `P[i]` = probability that arm i has the highest draw among independent Beta(alpha_i, beta_i).
///
/// Inputs must be finite and positive with equal lengths (see [`super::check_beta`]).
pub fn prob_best_beta(alpha: &[f64], beta: &[f64]) -> Vec<f64> {
    let k = alpha.len();
    if k <= 1 {
        return vec![1.0; k];
    }
    let size: Vec<f64> = alpha.iter().zip(beta).map(|(a, b)| a + b).collect();
    let x0: Vec<f64> = alpha.iter().zip(&size).map(|(a, n)| a / n).collect();
    let y0: Vec<f64> = beta.iter().zip(&size).map(|(b, n)| b / n).collect();
    let peak: Vec<f64> = (0..k)
        .map(|j| alpha[j] * x0[j].ln() + beta[j] * y0[j].ln())
        .collect();
    let fam = Betas {
        fast: peak.iter().map(|p| p.abs() < FAST_LIMIT).collect(),
        peak,
        x0,
        y0,
        beta: beta.to_vec(),
        mode: alpha
            .iter()
            .zip(beta)
            .map(|(a, b)| a.ln() - b.ln())
            .collect(),
        scale: alpha
            .iter()
            .zip(beta)
            .map(|(a, b)| (1.0 / a + 1.0 / b).sqrt())
            .collect(),
        alpha: alpha.to_vec(),
        size,
    };
    let (mut probs, _) = prob_best(&fam, None);
    super::normalise(&mut probs);
    probs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bd0_matches_direct_formula_away_from_cancellation() {
        for &(p, q) in &[
            (0.3_f64, 0.31_f64),
            (0.5, 0.2),
            (1e-6, 3e-6),
            (0.9, 0.899_999),
        ] {
            let direct = p * (p / q).ln() + q - p;
            let got = bd0(p, q);
            assert!(
                (got - direct).abs() <= 1e-12 * direct.abs().max(1e-300) + 1e-17,
                "{p} {q}"
            );
            assert!(got >= 0.0);
        }
    }

    #[test]
    fn logistic_pair_is_complementary() {
        for &s in &[-700.0, -30.0, -1.0, 0.0, 2.5, 40.0] {
            let (x, y) = logistic_pair(s);
            assert!((x + y - 1.0).abs() < 1e-15);
            assert!(x > 0.0 || s < -700.0);
        }
    }
}
