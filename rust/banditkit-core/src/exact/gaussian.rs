//! Win probabilities of independent Gaussian arms, point masses (sigma = 0) included.
use super::quadrature::{prob_best, Family};

/// Continuous arms N(mu, sigma^2) in the variable x itself.
struct Gaussians {
    mu: Vec<f64>,
    sigma: Vec<f64>,
}

impl Family for Gaussians {
    type Node = f64;
    fn node(&self, t: f64) -> f64 {
        t
    }
    fn len(&self) -> usize {
        self.mu.len()
    }
    fn mode(&self, j: usize) -> f64 {
        self.mu[j]
    }
    fn scale(&self, j: usize) -> f64 {
        self.sigma[j]
    }
    fn log_density(&self, j: usize, x: &f64) -> f64 {
        let z = (x - self.mu[j]) / self.sigma[j];
        -0.5 * z * z
    }
    fn slope(&self, j: usize, x: &f64) -> f64 {
        -(x - self.mu[j]) / (self.sigma[j] * self.sigma[j])
    }
}

/// `P[i]` = probability that arm i has the highest draw among independent N(mu_i, sigma_i^2).
///
/// Inputs must be finite with `sigma >= 0` and equal lengths (see [`super::check_gaussian`]).
/// Arms with `sigma == 0` are point masses: only the first of the highest ones can win (as
/// `argmax`), and it wins exactly when every continuous arm falls below it.
pub fn prob_best_gaussian(mu: &[f64], sigma: &[f64]) -> Vec<f64> {
    let k = mu.len();
    if k <= 1 {
        return vec![1.0; k];
    }
    let mut top_mass: Option<usize> = None;
    for j in (0..k).filter(|&j| sigma[j] == 0.0) {
        match top_mass {
            Some(t) if mu[j] <= mu[t] => {}
            _ => top_mass = Some(j),
        }
    }
    let continuous: Vec<usize> = (0..k).filter(|&j| sigma[j] > 0.0).collect();
    let mut probs = vec![0.0; k];
    if continuous.is_empty() {
        probs[top_mass.expect("some arm")] = 1.0;
        return probs;
    }
    // Integrate in x - (highest mean): nodes near 1e8 could not resolve sigma = 1e-9.
    let origin = continuous
        .iter()
        .map(|&j| mu[j])
        .fold(f64::NEG_INFINITY, f64::max);
    let fam = Gaussians {
        mu: continuous.iter().map(|&j| mu[j] - origin).collect(),
        sigma: continuous.iter().map(|&j| sigma[j]).collect(),
    };
    let (cont_probs, mass) = prob_best(&fam, top_mass.map(|t| mu[t] - origin));
    for (&j, p) in continuous.iter().zip(cont_probs) {
        probs[j] = p;
    }
    if let Some(t) = top_mass {
        probs[t] = mass;
    }
    super::normalise(&mut probs);
    probs
}
