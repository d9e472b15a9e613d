//! DoublyRobust: a policy learnt from doubly robust pseudo-rewards (docs/learners.md).
//!
//! Two ridge models per arm, each a [`ArmState`] (Sherman-Morrison, periodic refactor; no
//! window, no forgetting), so memory is O(K d^2) whatever the history:
//! - the reward model `q_a`, fitted on the rewards of the rows where `a` was logged;
//! - the policy model `pi_a`, fitted on the pseudo-reward of EVERY row,
//!   `Gamma_a = q_a(x) + 1[a == a_i] w_i (r_i - q_a(x))`, `w_i = min(1 / p_i, max_weight)`,
//!   with `q` as it was before the row (a row never corrects itself).
//!
//! Scores: `pi_a(x)`, plus `alpha sqrt(x^T A_q_a^{-1} x)` with [`Exploration::Ucb`] (the reward
//! model's width: the policy model sees every row for every arm, so its width is the same for
//! all arms). Propensities: ties share the greedy mass; epsilon mixes in a uniform draw over the
//! available arms; softmax is `exp(score / temperature)` normalised. `select` draws one uniform
//! per event from `Xoshiro256PlusPlus::stream(seed, event)` and picks by the inverse CDF of the
//! propensities, so its frequencies are the propensities by construction.
//!
//! A bounded ring of the last `max_history` rows (context, arm, reward, propensity used) is kept
//! for [`DoublyRobust::refit`]. The NumPy reference is
//! `python/banditkit/python/learners/doubly_robust.py`.
use rayon::prelude::*;

use crate::bail;
use crate::contextual::policy::{validate_batch, validate_context};
use crate::contextual::{ArmConfig, ArmState};
use crate::error::{BanditError, Result};
use crate::rng::Xoshiro256PlusPlus;

/// Rows per rayon task in batch calls (results do not depend on it).
const ROWS_PER_TASK: usize = 64;

/// How the scores become choice probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exploration {
    /// Argmax of `pi_a(x) + alpha * width`, ties shared.
    Ucb,
    /// Argmax of `pi_a(x)` with probability `1 - epsilon`, else uniform over the available arms.
    Epsilon,
    /// `exp(pi_a(x) / temperature)`, normalised over the available arms.
    Softmax,
}

impl Exploration {
    pub fn name(self) -> &'static str {
        match self {
            Exploration::Ucb => "ucb",
            Exploration::Epsilon => "epsilon",
            Exploration::Softmax => "softmax",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "ucb" => Ok(Exploration::Ucb),
            "epsilon" => Ok(Exploration::Epsilon),
            "softmax" => Ok(Exploration::Softmax),
            _ => bail!("exploration must be 'ucb', 'epsilon' or 'softmax', got '{s}'"),
        }
    }
}

/// The learner's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrConfig {
    pub n_features: usize,
    pub alpha: f64,
    pub l2_lambda: f64,
    /// Cap on `1 / propensity`; infinity for none.
    pub max_weight: f64,
    pub max_history: usize,
    pub exploration: Exploration,
    pub epsilon: f64,
    pub temperature: f64,
}

impl DrConfig {
    pub fn validate(&self) -> Result<()> {
        if self.n_features == 0 {
            bail!("n_features must be positive, got 0");
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            bail!("alpha must be non-negative, got {}", self.alpha);
        }
        if !(self.l2_lambda.is_finite() && self.l2_lambda > 0.0) {
            bail!("l2_lambda must be positive, got {}", self.l2_lambda);
        }
        if self.max_weight.is_nan() || self.max_weight <= 0.0 {
            bail!("max_weight must be positive, got {}", self.max_weight);
        }
        if !(0.0..=1.0).contains(&self.epsilon) {
            bail!("epsilon must be in [0, 1], got {}", self.epsilon);
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            bail!("temperature must be positive, got {}", self.temperature);
        }
        Ok(())
    }

    fn arm_config(&self) -> ArmConfig {
        ArmConfig {
            n_features: self.n_features,
            l2_lambda: self.l2_lambda,
            window_size: 0,
            gamma: 1.0,
            refactor_every: ArmConfig::default_refactor_every(self.n_features),
        }
    }

    /// `min(1 / p, max_weight)`; 0 for a propensity of 0 (a row this learner would not pick).
    fn weight(&self, p: f64) -> f64 {
        if p == 0.0 {
            0.0
        } else {
            (1.0 / p).min(self.max_weight)
        }
    }
}

/// The last `cap` rows, in a ring.
#[derive(Debug, Clone, Default)]
struct History {
    x: Vec<f64>,
    arm: Vec<usize>,
    r: Vec<f64>,
    p: Vec<f64>,
    head: usize,
}

impl History {
    fn push(&mut self, cap: usize, x: &[f64], arm: usize, r: f64, p: f64) {
        if cap == 0 {
            return;
        }
        if self.r.len() < cap {
            self.x.extend_from_slice(x);
            self.arm.push(arm);
            self.r.push(r);
            self.p.push(p);
        } else {
            let (h, d) = (self.head, x.len());
            self.x[h * d..(h + 1) * d].copy_from_slice(x);
            self.arm[h] = arm;
            self.r[h] = r;
            self.p[h] = p;
            self.head = (h + 1) % cap;
        }
    }

    /// Ring slot of the `i`-th oldest row.
    fn slot(&self, i: usize) -> usize {
        (self.head + i) % self.r.len()
    }
}

/// The rows kept for refits, oldest first (contexts row-major).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryRows {
    pub x: Vec<f64>,
    pub arm: Vec<usize>,
    pub r: Vec<f64>,
    pub p: Vec<f64>,
}

/// The DoublyRobust learner; see the module documentation.
#[derive(Debug, Clone)]
pub struct DoublyRobust {
    cfg: DrConfig,
    seed: u64,
    events: u64,
    reward: Vec<ArmState>,
    policy: Vec<ArmState>,
    history: History,
}

impl DoublyRobust {
    pub fn new(cfg: DrConfig, n_arms: usize, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let fresh = || vec![ArmState::new(cfg.arm_config()); n_arms];
        Ok(DoublyRobust {
            cfg,
            seed,
            events: 0,
            reward: fresh(),
            policy: fresh(),
            history: History::default(),
        })
    }

    pub fn config(&self) -> &DrConfig {
        &self.cfg
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn n_arms(&self) -> usize {
        self.reward.len()
    }
    pub fn reward_arm(&self, k: usize) -> &ArmState {
        &self.reward[k]
    }
    pub fn policy_arm(&self, k: usize) -> &ArmState {
        &self.policy[k]
    }
    pub fn history_len(&self) -> usize {
        self.history.r.len()
    }

    /// The kept rows, oldest first.
    pub fn history(&self) -> HistoryRows {
        let h = &self.history;
        let d = self.cfg.n_features;
        let mut out = HistoryRows::default();
        for i in 0..h.r.len() {
            let s = h.slot(i);
            out.x.extend_from_slice(&h.x[s * d..(s + 1) * d]);
            out.arm.push(h.arm[s]);
            out.r.push(h.r[s]);
            out.p.push(h.p[s]);
        }
        out
    }

    /// A learner from saved parts (checked against `cfg`).
    pub fn from_parts(
        cfg: DrConfig,
        seed: u64,
        events: u64,
        reward: Vec<ArmState>,
        policy: Vec<ArmState>,
        rows: HistoryRows,
    ) -> Result<Self> {
        cfg.validate()?;
        let (k, d) = (reward.len(), cfg.n_features);
        let n = rows.r.len();
        if policy.len() != k
            || reward
                .iter()
                .chain(&policy)
                .any(|a| a.config() != &cfg.arm_config())
        {
            bail!("arm states do not match the settings");
        }
        if n > cfg.max_history
            || rows.x.len() != n * d
            || rows.arm.len() != n
            || rows.p.len() != n
            || rows.arm.iter().any(|&a| a >= k)
            || rows.p.iter().any(|p| !(0.0..=1.0).contains(p))
            || rows.x.iter().chain(&rows.r).any(|v| !v.is_finite())
        {
            bail!("bad history rows");
        }
        let history = History {
            x: rows.x,
            arm: rows.arm,
            r: rows.r,
            p: rows.p,
            head: 0,
        };
        Ok(DoublyRobust {
            cfg,
            seed,
            events,
            reward,
            policy,
            history,
        })
    }

    /// Applies every arm's queued Gram updates where that is exact (before saving).
    pub fn settle_grams(&mut self) {
        for a in self.reward.iter_mut().chain(self.policy.iter_mut()) {
            a.settle_gram();
        }
    }

    // --- scoring ---

    fn check_available(&self, available: Option<&[usize]>) -> Result<Option<Vec<bool>>> {
        if self.reward.is_empty() {
            bail!("no arms to choose from");
        }
        let Some(av) = available else {
            return Ok(None);
        };
        if av.is_empty() {
            bail!("available_arms must not be empty");
        }
        let mut mask = vec![false; self.reward.len()];
        for &k in av {
            if k >= mask.len() {
                bail!("unknown arm index {k}");
            }
            mask[k] = true;
        }
        Ok(Some(mask))
    }

    /// The scores of context `x` (already validated) into `out`.
    fn scores_into(&self, x: &[f64], out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.policy[k].mean(x);
            if self.cfg.exploration == Exploration::Ucb {
                *o += self.cfg.alpha * self.reward[k].variance(x).max(0.0).sqrt();
            }
        }
    }

    /// The choice probabilities of context `x` into `out` (`scores` is scratch).
    fn probabilities_into(&self, x: &[f64], mask: Option<&[bool]>, out: &mut [f64]) {
        self.scores_into(x, out);
        let avail = |k: usize| match mask {
            Some(m) => m[k],
            None => true,
        };
        let top = (0..out.len())
            .filter(|&k| avail(k))
            .map(|k| out[k])
            .fold(f64::NEG_INFINITY, f64::max);
        if self.cfg.exploration == Exploration::Softmax {
            let mut sum = 0.0;
            for (k, o) in out.iter_mut().enumerate() {
                *o = if avail(k) {
                    ((*o - top) / self.cfg.temperature).exp()
                } else {
                    0.0
                };
                sum += *o;
            }
            out.iter_mut().for_each(|o| *o /= sum);
            return;
        }
        let n_ties = (0..out.len())
            .filter(|&k| avail(k) && out[k] == top)
            .count() as f64;
        let n_avail = (0..out.len()).filter(|&k| avail(k)).count() as f64;
        let eps = self.cfg.epsilon;
        for (k, o) in out.iter_mut().enumerate() {
            let greedy = if avail(k) && *o == top {
                1.0 / n_ties
            } else {
                0.0
            };
            *o = match self.cfg.exploration {
                Exploration::Ucb => greedy,
                _ => {
                    let uniform = if avail(k) { 1.0 / n_avail } else { 0.0 };
                    (1.0 - eps) * greedy + eps * uniform
                }
            };
        }
    }

    /// `f(x_i, row_out)` for every row of a validated batch, `(n, K)`, parallel over rows.
    fn per_row(&self, x: &[f64], f: impl Fn(&[f64], &mut [f64]) + Sync) -> Vec<f64> {
        let (k, d) = (self.reward.len(), self.cfg.n_features);
        let mut out = vec![0.0; x.len() / d * k];
        if k > 0 {
            out.par_chunks_mut(ROWS_PER_TASK * k)
                .enumerate()
                .for_each(|(c, block)| {
                    for (r, row) in block.chunks_mut(k).enumerate() {
                        let i = c * ROWS_PER_TASK + r;
                        f(&x[i * d..(i + 1) * d], row);
                    }
                });
        }
        out
    }

    /// Scores, `(n, K)` row-major.
    pub fn decision_function(&self, x: &[f64]) -> Result<Vec<f64>> {
        validate_batch(x, self.cfg.n_features)?;
        Ok(self.per_row(x, |xi, row| self.scores_into(xi, row)))
    }

    /// The reward model `q_a(x)`, `(n, K)`.
    pub fn predict_expectations(&self, x: &[f64]) -> Result<Vec<f64>> {
        validate_batch(x, self.cfg.n_features)?;
        Ok(self.per_row(x, |xi, row| {
            for (o, q) in row.iter_mut().zip(&self.reward) {
                *o = q.mean(xi);
            }
        }))
    }

    /// The policy model `pi_a(x)`, `(n, K)`.
    pub fn policy_values(&self, x: &[f64]) -> Result<Vec<f64>> {
        validate_batch(x, self.cfg.n_features)?;
        Ok(self.per_row(x, |xi, row| {
            for (o, p) in row.iter_mut().zip(&self.policy) {
                *o = p.mean(xi);
            }
        }))
    }

    /// Exact choice probabilities, `(n, K)`.
    pub fn propensities(&self, x: &[f64], available: Option<&[usize]>) -> Result<Vec<f64>> {
        validate_batch(x, self.cfg.n_features)?;
        let mask = self.check_available(available)?;
        Ok(self.per_row(x, |xi, row| {
            self.probabilities_into(xi, mask.as_deref(), row)
        }))
    }

    /// One event: the chosen arm and its propensity.
    pub fn select(&mut self, x: &[f64], available: Option<&[usize]>) -> Result<(usize, f64)> {
        validate_context(x, self.cfg.n_features)?;
        let mask = self.check_available(available)?;
        let mut p = vec![0.0; self.reward.len()];
        self.probabilities_into(x, mask.as_deref(), &mut p);
        let k = draw(
            &p,
            Xoshiro256PlusPlus::stream(self.seed, self.events).next_f64(),
        );
        self.events += 1;
        Ok((k, p[k]))
    }

    /// One event per row (events `t0..t0+n`): equals `select` on each row in turn.
    pub fn predict(&mut self, x: &[f64], available: Option<&[usize]>) -> Result<Vec<usize>> {
        let probs = self.propensities(x, available)?;
        let k = self.reward.len();
        let t0 = self.events;
        self.events += (probs.len() / k) as u64;
        let seed = self.seed;
        Ok(probs
            .par_chunks(k)
            .enumerate()
            .map(|(i, p)| {
                draw(
                    p,
                    Xoshiro256PlusPlus::stream(seed, t0 + i as u64).next_f64(),
                )
            })
            .collect())
    }

    // --- learning ---

    /// Validates a batch of rows; returns the row count.
    pub fn validate_rows(
        &self,
        x: &[f64],
        arms: &[usize],
        rewards: &[f64],
        propensities: Option<&[f64]>,
    ) -> Result<usize> {
        let n = validate_batch(x, self.cfg.n_features)?;
        if arms.len() != n || rewards.len() != n {
            bail!(
                "X, arms and rewards must have the same length, got {n}, {}, {}",
                arms.len(),
                rewards.len()
            );
        }
        if let Some(&k) = arms.iter().find(|&&k| k >= self.reward.len()) {
            bail!("unknown arm index {k}");
        }
        if let Some(i) = rewards.iter().position(|r| !r.is_finite()) {
            bail!("rewards must be finite, got {} at index {i}", rewards[i]);
        }
        if let Some(p) = propensities {
            if p.len() != n {
                bail!("propensities must have {n} values, got {}", p.len());
            }
            if let Some(i) = p.iter().position(|v| !(*v > 0.0 && *v <= 1.0)) {
                bail!("propensities must be in (0, 1], got {} at index {i}", p[i]);
            }
        }
        Ok(n)
    }

    /// This learner's propensity of each row's arm (rows validated).
    fn own_propensities(&self, x: &[f64], arms: &[usize]) -> Vec<f64> {
        let k = self.reward.len();
        let d = self.cfg.n_features;
        let mut p = vec![0.0; k];
        arms.iter()
            .enumerate()
            .map(|(i, &a)| {
                self.probabilities_into(&x[i * d..(i + 1) * d], None, &mut p);
                p[a]
            })
            .collect()
    }

    /// The pseudo-rewards of one row for every arm, from the reward model as it is.
    fn pseudo_rewards(&self, reward: &[ArmState], x: &[f64], a: usize, r: f64, p: f64) -> Vec<f64> {
        let mut g: Vec<f64> = reward.iter().map(|q| q.mean(x)).collect();
        g[a] += self.cfg.weight(p) * (r - g[a]);
        g
    }

    /// Learns the rows in order, all or nothing; `None` propensities: this learner's own
    /// (state before the call). `name(k)` names arm k in an overflow error.
    pub fn partial_fit(
        &mut self,
        x: &[f64],
        arms: &[usize],
        rewards: &[f64],
        propensities: Option<&[f64]>,
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        self.validate_rows(x, arms, rewards, propensities)?;
        let own;
        let p = match propensities {
            Some(p) => p,
            None => {
                own = self.own_propensities(x, arms);
                &own
            }
        };
        let d = self.cfg.n_features;
        if arms.len() == 1 {
            // One row: in place when no arm can overflow (no copies of 2K matrices).
            let g = self.pseudo_rewards(&self.reward, x, arms[0], rewards[0], p[0]);
            let safe = self.reward[arms[0]].add_is_safe(x, rewards[0])
                && self
                    .policy
                    .iter()
                    .zip(&g)
                    .all(|(a, &v)| a.add_is_safe(x, v));
            if safe {
                for (a, &v) in self.policy.iter_mut().zip(&g) {
                    a.add(x, v);
                }
                self.reward[arms[0]].add(x, rewards[0]);
                self.history
                    .push(self.cfg.max_history, x, arms[0], rewards[0], p[0]);
                return Ok(());
            }
        }
        let mut reward = self.reward.clone();
        let mut policy = self.policy.clone();
        for (i, &a) in arms.iter().enumerate() {
            let xi = &x[i * d..(i + 1) * d];
            let g = self.pseudo_rewards(&reward, xi, a, rewards[i], p[i]);
            for (m, &v) in policy.iter_mut().zip(&g) {
                m.add(xi, v);
            }
            reward[a].add(xi, rewards[i]);
        }
        check_finite(&reward, name)?;
        check_finite(&policy, name)?;
        self.reward = reward;
        self.policy = policy;
        // After the commit (pushing cannot fail): the ring is never copied.
        for (i, &a) in arms.iter().enumerate() {
            let xi = &x[i * d..(i + 1) * d];
            self.history
                .push(self.cfg.max_history, xi, a, rewards[i], p[i]);
        }
        Ok(())
    }

    /// Forgets everything, then learns the rows (on failure nothing changes).
    pub fn fit(
        &mut self,
        x: &[f64],
        arms: &[usize],
        rewards: &[f64],
        propensities: Option<&[f64]>,
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        let mut fresh = DoublyRobust::new(self.cfg, self.n_arms(), self.seed)?;
        fresh.events = self.events;
        fresh.partial_fit(x, arms, rewards, propensities, name)?;
        *self = fresh;
        Ok(())
    }

    /// Refits the policy model on the kept rows with the current reward model.
    pub fn refit(&mut self, name: &dyn Fn(usize) -> String) -> Result<()> {
        let d = self.cfg.n_features;
        let rows = self.history();
        let mut policy = vec![ArmState::new(self.cfg.arm_config()); self.reward.len()];
        for (i, &a) in rows.arm.iter().enumerate() {
            let xi = &rows.x[i * d..(i + 1) * d];
            let g = self.pseudo_rewards(&self.reward, xi, a, rows.r[i], rows.p[i]);
            for (m, &v) in policy.iter_mut().zip(&g) {
                m.add(xi, v);
            }
        }
        check_finite(&policy, name)?;
        self.policy = policy;
        Ok(())
    }

    /// Forgets every observation (settings, seed and event counter stay).
    pub fn reset(&mut self) {
        let fresh = ArmState::new(self.cfg.arm_config());
        self.reward.iter_mut().for_each(|a| *a = fresh.clone());
        self.policy.iter_mut().for_each(|a| *a = fresh.clone());
        self.history = History::default();
    }
}

fn check_finite(arms: &[ArmState], name: &dyn Fn(usize) -> String) -> Result<()> {
    match arms.iter().position(|a| !a.is_finite()) {
        Some(k) => Err(BanditError::overflow(&name(k))),
        None => Ok(()),
    }
}

/// The inverse CDF of `p` at `u` (rounding past the end: the last arm with positive mass).
fn draw(p: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (k, &v) in p.iter().enumerate() {
        acc += v;
        if u < acc {
            return k;
        }
    }
    p.iter().rposition(|&v| v > 0.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(exploration: Exploration) -> DrConfig {
        DrConfig {
            n_features: 2,
            alpha: 1.0,
            l2_lambda: 1.0,
            max_weight: f64::INFINITY,
            max_history: 3,
            exploration,
            epsilon: 0.1,
            temperature: 0.5,
        }
    }

    #[test]
    fn fresh_learner_shares_ties() {
        let dr = DoublyRobust::new(cfg(Exploration::Ucb), 4, 1).unwrap();
        let p = dr.propensities(&[1.0, 2.0], Some(&[1, 3])).unwrap();
        assert_eq!(p, vec![0.0, 0.5, 0.0, 0.5]);
    }

    #[test]
    fn pseudo_reward_corrects_only_the_logged_arm() {
        let mut dr = DoublyRobust::new(cfg(Exploration::Epsilon), 2, 1).unwrap();
        let name = |k: usize| k.to_string();
        dr.partial_fit(&[1.0, 0.0], &[0], &[2.0], Some(&[0.5]), &name)
            .unwrap();
        // q was 0 before the row: Gamma_0 = 0 + 2 * (2 - 0) = 4, Gamma_1 = 0; ridge 1 halves.
        let v = dr.policy_values(&[1.0, 0.0]).unwrap();
        assert!((v[0] - 2.0).abs() < 1e-12 && v[1].abs() < 1e-12, "{v:?}");
        assert_eq!(dr.history_len(), 1);
    }

    #[test]
    fn history_is_a_ring_and_refit_is_deterministic() {
        let mut dr = DoublyRobust::new(cfg(Exploration::Softmax), 2, 1).unwrap();
        let name = |k: usize| k.to_string();
        for i in 0..5 {
            let x = [1.0, i as f64];
            dr.partial_fit(&x, &[i % 2], &[i as f64], None, &name)
                .unwrap();
        }
        let rows = dr.history();
        assert_eq!(rows.r, vec![2.0, 3.0, 4.0]);
        dr.refit(&name).unwrap();
        let once = dr.policy_values(&[0.3, 0.7]).unwrap();
        dr.refit(&name).unwrap();
        assert_eq!(once, dr.policy_values(&[0.3, 0.7]).unwrap());
    }

    #[test]
    fn draw_follows_the_cdf() {
        assert_eq!(draw(&[0.25, 0.0, 0.75], 0.2), 0);
        assert_eq!(draw(&[0.25, 0.0, 0.75], 0.25), 2);
        assert_eq!(draw(&[0.5, 0.5, 0.0], 1.0), 1);
    }

    #[test]
    fn bad_rows_change_nothing() {
        let mut dr = DoublyRobust::new(cfg(Exploration::Ucb), 2, 1).unwrap();
        let name = |k: usize| k.to_string();
        let err = dr.partial_fit(&[1.0, 0.0], &[0], &[1.0], Some(&[0.0]), &name);
        assert!(err
            .unwrap_err()
            .0
            .contains("propensities must be in (0, 1]"));
        assert_eq!(dr.history_len(), 0);
        assert_eq!(dr.reward_arm(0).pulls(), 0);
    }
}
