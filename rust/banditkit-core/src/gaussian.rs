//! LinearBandit's state: independent Gaussian posteriors with known observation noise.
//!
//! Arms are addressed by index; the bindings keep the names. Every update is validated in full
//! before anything changes, so a rejected call leaves the state exactly as it was.
use crate::bail;
use crate::error::{BanditError, Result};

/// The rewards one update brings to one arm, summarised (the update only needs n and the sum).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardSummary {
    pub arm: usize,
    pub n: u64,
    pub sum: f64,
}

/// Per-arm Gaussian posteriors N(mu, sigma^2) and the running reward statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianPosterior {
    pub mu: Vec<f64>,
    pub sigma: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum_rewards: Vec<f64>,
    pub default_sigma: f64,
    pub obs_noise: f64,
}

pub fn check_positive(name: &str, value: f64) -> Result<()> {
    if !(value.is_finite() && value > 0.0) {
        bail!("{name} must be positive, got {}", fmt_num(value));
    }
    Ok(())
}

pub fn check_decay(decay: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&decay) {
        bail!("decay must be between 0.0 and 1.0, got {}", fmt_num(decay));
    }
    Ok(())
}

/// Formats like Python's `str(float)` for the values that appear in messages.
pub fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else if x == x.trunc() && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

impl GaussianPosterior {
    pub fn new(default_sigma: f64, obs_noise: f64) -> Result<Self> {
        check_positive("default_sigma", default_sigma)?;
        check_positive("obs_noise", obs_noise)?;
        Ok(GaussianPosterior {
            mu: Vec::new(),
            sigma: Vec::new(),
            counts: Vec::new(),
            sum_rewards: Vec::new(),
            default_sigma,
            obs_noise,
        })
    }

    pub fn len(&self) -> usize {
        self.mu.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mu.is_empty()
    }

    /// Appends an arm with the given prior (already validated by [`check_prior`]); returns its index.
    pub fn push_arm(&mut self, mu: f64, sigma: f64) -> usize {
        self.mu.push(mu);
        self.sigma.push(sigma);
        self.counts.push(0);
        self.sum_rewards.push(0.0);
        self.mu.len() - 1
    }

    /// Conjugate update of the arms in `batch` (indices must exist; call [`Self::push_arm`] for
    /// new arms first, after validating with [`check_rewards`]). Per observed arm: optional decay
    /// towards the prior N(0, default_sigma^2), then the normal-normal update. All-or-nothing:
    /// an update that would make an arm's state non-finite (overflow) is rejected, naming the
    /// arm by `name(index)`, and nothing changes.
    pub fn update(
        &mut self,
        batch: &[RewardSummary],
        decay: f64,
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        check_decay(decay)?;
        for r in batch {
            if r.arm >= self.len() {
                bail!("unknown arm index {}", r.arm);
            }
        }
        let noise_var = self.obs_noise * self.obs_noise;
        // (arm, mu, sigma, count, sum) after the update, staged until every arm has passed.
        let mut staged: Vec<(usize, f64, f64, u64, f64)> = Vec::with_capacity(batch.len());
        for r in batch.iter().filter(|r| r.n > 0) {
            let i = r.arm;
            let at = staged.iter().position(|s| s.0 == i);
            let (_, mut mu, mut sigma, count, sum) = match at {
                Some(j) => staged[j],
                None => (
                    i,
                    self.mu[i],
                    self.sigma[i],
                    self.counts[i],
                    self.sum_rewards[i],
                ),
            };
            if decay > 0.0 {
                let var =
                    (1.0 - decay) * sigma * sigma + decay * self.default_sigma * self.default_sigma;
                sigma = var.sqrt();
                mu *= 1.0 - decay;
            }
            let prec0 = 1.0 / (sigma * sigma);
            let prec_obs = r.n as f64 / noise_var;
            let mean = r.sum / r.n as f64;
            mu = (prec0 * mu + prec_obs * mean) / (prec0 + prec_obs);
            sigma = 1.0 / (prec0 + prec_obs).sqrt();
            let sum = sum + r.sum;
            let count = count.checked_add(r.n);
            let finite = mu.is_finite() && sigma.is_finite() && sigma > 0.0 && sum.is_finite();
            let Some(count) = count.filter(|_| finite) else {
                return Err(BanditError::overflow(&name(i)));
            };
            let entry = (i, mu, sigma, count, sum);
            match at {
                Some(j) => staged[j] = entry,
                None => staged.push(entry),
            }
        }
        for (i, mu, sigma, count, sum) in staged {
            self.mu[i] = mu;
            self.sigma[i] = sigma;
            self.counts[i] = count;
            self.sum_rewards[i] = sum;
        }
        Ok(())
    }
}

/// A prior given to the constructor: finite mean, finite positive standard deviation.
pub fn check_prior(name: &str, mu: f64, sigma: f64) -> Result<()> {
    if !mu.is_finite() {
        bail!(
            "prior mean must be finite, got {} for action '{name}'",
            fmt_num(mu)
        );
    }
    if !(sigma.is_finite() && sigma > 0.0) {
        bail!(
            "prior sigma must be positive and finite, got {} for action '{name}'",
            fmt_num(sigma)
        );
    }
    Ok(())
}

/// Rewards must all be finite; returns (n, sum).
pub fn check_rewards(name: &str, rewards: &[f64]) -> Result<(u64, f64)> {
    let sum = lane_sum(rewards);
    // A NaN or infinite reward makes the sum non-finite, so one test covers the common case.
    if !sum.is_finite() {
        if let Some(bad) = rewards.iter().find(|r| !r.is_finite()) {
            bail!(
                "Rewards must be finite, got {} for action '{name}'",
                fmt_num(*bad)
            );
        }
        bail!("Rewards are too large: their sum overflows for action '{name}'");
    }
    Ok((rewards.len() as u64, sum))
}

/// Sum with eight independent accumulators: a plain `f64` sum is bound by the latency of one
/// add per element (4 cycles), this one vectorises.
fn lane_sum(x: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm_name(i: usize) -> String {
        format!("arm{i}")
    }

    fn one(arm: usize, n: u64, sum: f64) -> [RewardSummary; 1] {
        [RewardSummary { arm, n, sum }]
    }

    #[test]
    fn overflow_is_rejected_without_change() {
        let mut g = GaussianPosterior::new(1.0, 0.1).unwrap();
        g.push_arm(0.0, 1.0);
        g.push_arm(0.0, 1.0);
        let before = g.clone();
        // A finite reward whose posterior mean would be infinite, after a good arm.
        let batch = [one(1, 1, 1.0)[0], one(0, 1, 1e308)[0]];
        let e = g.update(&batch, 0.0, &arm_name).unwrap_err();
        assert_eq!(
            e.0,
            "update would make the state of arm 'arm0' non-finite (overflow)"
        );
        assert_eq!(g, before);
        // Sums that overflow across updates.
        let mut g = GaussianPosterior::new(1.0, 1.0).unwrap();
        g.push_arm(0.0, 1.0);
        g.update(&one(0, 1, 1e308), 0.0, &arm_name).unwrap();
        let before = g.clone();
        assert!(g.update(&one(0, 1, 1e308), 0.0, &arm_name).is_err());
        assert_eq!(g, before);
    }

    #[test]
    fn conjugate_update_matches_closed_form() {
        let mut g = GaussianPosterior::new(1.0, 0.5).unwrap();
        let a = g.push_arm(0.0, 1.0);
        let rewards = [1.0, 2.0, 3.0];
        let (n, sum) = check_rewards("a", &rewards).unwrap();
        g.update(&[RewardSummary { arm: a, n, sum }], 0.0, &arm_name)
            .unwrap();
        let prec = 1.0 + 3.0 / 0.25;
        assert!((g.mu[0] - (12.0 * 2.0) / prec).abs() < 1e-15);
        assert!((g.sigma[0] - 1.0 / prec.sqrt()).abs() < 1e-15);
        assert_eq!(g.counts[0], 3);
        assert_eq!(g.sum_rewards[0], 6.0);
    }

    #[test]
    fn decay_pulls_towards_prior_before_update() {
        let mut g = GaussianPosterior::new(2.0, 1.0).unwrap();
        g.push_arm(4.0, 0.5);
        g.update(&one(0, 1, 4.0), 0.5, &arm_name).unwrap();
        let var = 0.5 * 0.25 + 0.5 * 4.0;
        let prec = 1.0 / var + 1.0;
        assert!((g.mu[0] - (2.0 / var + 4.0) / prec).abs() < 1e-14);
    }

    #[test]
    fn rejects_bad_input_without_change() {
        assert!(GaussianPosterior::new(0.0, 1.0).is_err());
        assert!(GaussianPosterior::new(1.0, f64::NAN).is_err());
        let mut g = GaussianPosterior::new(1.0, 1.0).unwrap();
        g.push_arm(0.0, 1.0);
        let before = g.clone();
        assert!(g.update(&one(0, 1, 1.0), 1.5, &arm_name).is_err());
        assert!(g.update(&one(0, 1, 1.0), f64::NAN, &arm_name).is_err());
        assert!(g.update(&one(3, 1, 1.0), 0.0, &arm_name).is_err());
        assert_eq!(g, before);
        assert!(check_rewards("a", &[1.0, f64::INFINITY]).is_err());
        assert!(check_rewards("a", &[f64::MAX, f64::MAX]).is_err());
        let many: Vec<f64> = (0..1001).map(|i| i as f64 * 0.5).collect();
        assert_eq!(
            check_rewards("a", &many).unwrap(),
            (1001, 0.5 * 1000.0 * 1001.0 / 2.0)
        );
        assert!(check_prior("a", 0.0, -1.0).is_err());
    }
}
