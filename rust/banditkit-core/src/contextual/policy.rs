//! LinUCB / LinTS over a list of arms: scoring, choice, batch prediction in parallel.
//!
//! Arms are `Arc<ArmState>` so a caller (the Python bindings) can score a snapshot without
//! holding a borrow of the policy, e.g. with the GIL released; an update mutates in place
//! (`Arc::make_mut` copies only if such a snapshot is still alive).
//!
//! Random draws (LinTS): every scored context is an *event* with index `t`, counted across
//! all `select`, `predict` and `decision_function` calls (a batch of n contexts uses n
//! consecutive indices). Event `t` draws one standard normal per arm, in arm order, from
//! `Xoshiro256PlusPlus::stream(seed, t)`. So `predict(X)` equals `select` on each row in turn,
//! for any number of threads. Tied maxima (LinUCB's untrained arms, LinTS at `x = 0`) are
//! broken uniformly at random by one draw from `stream(seed ^ TIE_SALT, t)`, so that the
//! propensity of a tied arm is exactly 1 / (number tied) ([`ScoringView::propensities`]).
//!
//! LinTS score: `theta_tilde^T x` with `theta_tilde ~ N(theta, v^2 A^{-1})`. For one context
//! that scalar is exactly `N(theta^T x, v^2 x^T A^{-1} x)`, so it is drawn as
//! `theta^T x + v sqrt(x^T A^{-1} x) z`: the same law as going through a Cholesky factor
//! `theta + v L^{-T} z`, from the one pass over `A^{-1}` that LinUCB makes anyway.
use std::sync::Arc;

use rayon::prelude::*;

use super::arm::{ArmConfig, ArmState};
use crate::bail;
use crate::error::{BanditError, Result};
use crate::normal::standard_normal;
use crate::rng::Xoshiro256PlusPlus;

/// How an arm is scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scoring {
    /// `theta^T x + alpha sqrt(x^T A^{-1} x)`.
    Ucb { alpha: f64 },
    /// A Thompson draw of `theta^T x` with scale `v`.
    Ts { v: f64 },
}

impl Scoring {
    /// True for LinTS (random scores; exact propensities integrate).
    pub fn is_thompson(self) -> bool {
        matches!(self, Scoring::Ts { .. })
    }

    /// The policy's one parameter: LinUCB's `alpha` or LinTS's `v`.
    pub fn parameter(self) -> f64 {
        match self {
            Scoring::Ucb { alpha } => alpha,
            Scoring::Ts { v } => v,
        }
    }
}

/// Rows per rayon task in batch calls (results do not depend on it).
const ROWS_PER_TASK: usize = 64;

/// Salt of the tie-breaking stream of an event (apart from LinTS's normal draws).
const TIE_SALT: u64 = 0x7469_6573_2d62_726b;

/// Validates the hyper-parameters shared by LinUCB and LinTS.
pub fn validate_config(cfg: &ArmConfig) -> Result<()> {
    if cfg.n_features == 0 {
        bail!("n_features must be positive, got 0");
    }
    if !(cfg.l2_lambda.is_finite() && cfg.l2_lambda > 0.0) {
        bail!("l2_lambda must be positive, got {}", cfg.l2_lambda);
    }
    if !(cfg.gamma > 0.0 && cfg.gamma <= 1.0) {
        bail!("gamma must be in (0, 1], got {}", cfg.gamma);
    }
    if cfg.refactor_every == 0 {
        bail!("refactor_every must be positive, got 0");
    }
    Ok(())
}

fn validate_scoring(s: Scoring) -> Result<()> {
    match s {
        Scoring::Ucb { alpha } if !(alpha.is_finite() && alpha > 0.0) => {
            bail!("alpha must be positive, got {alpha}")
        }
        Scoring::Ts { v } if !(v.is_finite() && v > 0.0) => bail!("v must be positive, got {v}"),
        _ => Ok(()),
    }
}

/// Checks one context: length and finiteness.
pub fn validate_context(x: &[f64], d: usize) -> Result<()> {
    if x.len() != d {
        bail!("context must have {d} features, got {}", x.len());
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        bail!("context must be finite, got {} at index {i}", x[i]);
    }
    Ok(())
}

/// Checks a row-major batch of contexts.
pub fn validate_batch(x: &[f64], d: usize) -> Result<usize> {
    if x.len() % d != 0 {
        bail!("contexts must have {d} features per row");
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        bail!(
            "contexts must be finite, got {} at row {}, column {}",
            x[i],
            i / d,
            i % d
        );
    }
    Ok(x.len() / d)
}

/// A read-only view for scoring without borrowing the policy.
#[derive(Debug, Clone)]
pub struct ScoringView {
    pub arms: Vec<Arc<ArmState>>,
    pub scoring: Scoring,
    pub seed: u64,
}

impl ScoringView {
    /// Scores every arm for context `x` at event `t`.
    pub fn scores_into(&self, x: &[f64], t: u64, out: &mut [f64]) {
        for (o, arm) in out.iter_mut().zip(&self.arms) {
            *o = arm.variance(x);
        }
        self.finish_scores(x, t, out);
    }

    /// Turns `out[k] = x^T A_k^{-1} x` into the scores of event `t`.
    fn finish_scores(&self, x: &[f64], t: u64, out: &mut [f64]) {
        match self.scoring {
            Scoring::Ucb { alpha } => {
                for (o, arm) in out.iter_mut().zip(&self.arms) {
                    *o = arm.mean(x) + alpha * o.max(0.0).sqrt();
                }
            }
            Scoring::Ts { v } => {
                let mut rng = Xoshiro256PlusPlus::stream(self.seed, t);
                for (o, arm) in out.iter_mut().zip(&self.arms) {
                    *o = arm.mean(x) + v * o.max(0.0).sqrt() * standard_normal(&mut rng);
                }
            }
        }
    }

    /// Scores of a row-major batch, `(n, n_arms)`, events `t0..t0+n`, parallel over rows.
    pub fn batch_scores(&self, x: &[f64], t0: u64) -> Vec<f64> {
        let k = self.arms.len();
        let d = self.arms.first().map_or(1, |a| a.n_features());
        let n = x.len() / d;
        let mut out = vec![0.0; n * k];
        if k == 0 {
            return out;
        }
        out.par_chunks_mut(ROWS_PER_TASK * k)
            .enumerate()
            .for_each(|(c, block)| {
                let rows = block.len() / k;
                let xs = &x[c * ROWS_PER_TASK * d..(c * ROWS_PER_TASK + rows) * d];
                // Variances arm by arm over the whole block: each matrix is read once per
                // block (bitwise equal to the one-context `variance` of `select`).
                let mut var = vec![0.0; rows];
                for (j, arm) in self.arms.iter().enumerate() {
                    arm.variances(xs, &mut var);
                    for (r, v) in var.iter().enumerate() {
                        block[r * k + j] = *v;
                    }
                }
                for (r, row_out) in block.chunks_mut(k).enumerate() {
                    let i = c * ROWS_PER_TASK + r;
                    self.finish_scores(&x[i * d..(i + 1) * d], t0 + i as u64, row_out);
                }
            });
        out
    }
}

impl ScoringView {
    /// The probability that the choice for each row of `x` (validated) is each arm,
    /// `(n, n_arms)` row-major, unavailable arms 0. LinUCB: the tied maxima share 1 evenly.
    /// LinTS: given x the arms' scores are independent N(theta^T x, v^2 x^T A^{-1} x), so
    /// this is their exact win probability (point masses tied at the top sharing theirs).
    pub fn propensities(&self, x: &[f64], available: Option<&[usize]>) -> Vec<f64> {
        let k = self.arms.len();
        let d = self.arms.first().map_or(1, |a| a.n_features());
        let mut out = vec![0.0; x.len() / d * k];
        if k == 0 {
            return out;
        }
        let open: Vec<usize> = match available {
            Some(av) => sorted_unique(av),
            None => (0..k).collect(),
        };
        if let Scoring::Ucb { .. } = self.scoring {
            // The blocked batch scores (bitwise those `select` computes; no draw for UCB).
            let scores = self.batch_scores(x, 0);
            out.par_chunks_mut(k)
                .zip(scores.par_chunks(k))
                .for_each(|(row, s)| share_top(s, &open, row));
            return out;
        }
        out.par_chunks_mut(ROWS_PER_TASK * k)
            .enumerate()
            .for_each(|(c, block)| {
                let mut scores = vec![0.0; k];
                for (r, row) in block.chunks_mut(k).enumerate() {
                    let i = c * ROWS_PER_TASK + r;
                    self.row_propensities(&x[i * d..(i + 1) * d], &open, &mut scores, row);
                }
            });
        out
    }

    fn row_propensities(&self, x: &[f64], open: &[usize], scores: &mut [f64], row: &mut [f64]) {
        match self.scoring {
            Scoring::Ucb { .. } => {
                self.scores_into(x, 0, scores);
                share_top(scores, open, row);
            }
            Scoring::Ts { v } => {
                let mu: Vec<f64> = open.iter().map(|&j| self.arms[j].mean(x)).collect();
                let sd: Vec<f64> = open
                    .iter()
                    .map(|&j| v * self.arms[j].variance(x).max(0.0).sqrt())
                    .collect();
                let mut p = crate::exact::prob_best_gaussian(&mu, &sd);
                crate::exact::share_point_mass_ties(&mu, &sd, &mut p);
                for (&j, p) in open.iter().zip(p) {
                    row[j] = p;
                }
            }
        }
    }

    /// `theta^T x` for every row (already validated) and arm, `(n, n_arms)`, parallel over rows.
    pub fn expectations(&self, x: &[f64]) -> Vec<f64> {
        let k = self.arms.len();
        let d = self.arms.first().map_or(1, |a| a.n_features());
        let mut out = vec![0.0; x.len() / d * k];
        if k > 0 {
            out.par_chunks_mut(k).enumerate().for_each(|(i, row)| {
                for (o, arm) in row.iter_mut().zip(&self.arms) {
                    *o = arm.mean(&x[i * d..(i + 1) * d]);
                }
            });
        }
        out
    }
}

/// First index of the maximum score among `available` (all arms if `None`).
pub fn argmax(scores: &[f64], available: Option<&[usize]>) -> usize {
    let mut best = usize::MAX;
    let mut best_score = f64::NEG_INFINITY;
    let mut consider = |k: usize| {
        if best == usize::MAX || scores[k] > best_score {
            best = k;
            best_score = scores[k];
        }
    };
    match available {
        // Ties go to the first arm in arm order, whatever order `available` lists them in.
        Some(av) => {
            let mut sorted = av.to_vec();
            sorted.sort_unstable();
            sorted.into_iter().for_each(&mut consider)
        }
        None => (0..scores.len()).for_each(&mut consider),
    }
    best
}

/// 1 shared evenly by the open arms with the top score; 0 elsewhere.
fn share_top(scores: &[f64], open: &[usize], row: &mut [f64]) {
    let top = open
        .iter()
        .map(|&j| scores[j])
        .fold(f64::NEG_INFINITY, f64::max);
    let tied = open.iter().filter(|&&j| scores[j] == top).count();
    for &j in open.iter().filter(|&&j| scores[j] == top) {
        row[j] = 1.0 / tied as f64;
    }
}

fn sorted_unique(av: &[usize]) -> Vec<usize> {
    let mut v = av.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// The maximum score among `available` (all arms if `None`); among tied maxima, one
/// uniformly at random from the tie stream of event `t` under `seed` (drawn only on a tie).
pub fn pick(scores: &[f64], available: Option<&[usize]>, seed: u64, t: u64) -> usize {
    let best = argmax(scores, available);
    let top = scores[best];
    let open = match available {
        Some(av) => sorted_unique(av),
        None => (0..scores.len()).collect(),
    };
    let tied: Vec<usize> = open.into_iter().filter(|&j| scores[j] == top).collect();
    if tied.len() <= 1 {
        return best;
    }
    let mut rng = Xoshiro256PlusPlus::stream(seed ^ TIE_SALT, t);
    let j = (rng.next_f64() * tied.len() as f64) as usize;
    tied[j.min(tied.len() - 1)]
}

/// [`pick`] for each row of a row-major score matrix, row i being event `t0 + i`.
pub fn picks(
    scores: &[f64],
    k: usize,
    available: Option<&[usize]>,
    seed: u64,
    t0: u64,
) -> Vec<usize> {
    if k == 0 {
        return Vec::new();
    }
    scores
        .chunks(k)
        .enumerate()
        .map(|(i, row)| pick(row, available, seed, t0 + i as u64))
        .collect()
}

/// LinUCB or LinTS: one disjoint ridge model per arm.
#[derive(Debug, Clone)]
pub struct LinearPolicy {
    cfg: ArmConfig,
    scoring: Scoring,
    seed: u64,
    events: u64,
    arms: Vec<Arc<ArmState>>,
    scores: Vec<f64>,
}

impl LinearPolicy {
    pub fn new(cfg: ArmConfig, scoring: Scoring, n_arms: usize, seed: u64) -> Result<Self> {
        validate_config(&cfg)?;
        validate_scoring(scoring)?;
        Ok(LinearPolicy {
            cfg,
            scoring,
            seed,
            events: 0,
            arms: (0..n_arms).map(|_| Arc::new(ArmState::new(cfg))).collect(),
            scores: vec![0.0; n_arms],
        })
    }

    pub fn config(&self) -> &ArmConfig {
        &self.cfg
    }
    pub fn scoring(&self) -> Scoring {
        self.scoring
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Events scored so far (the next event index).
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn set_events(&mut self, t: u64) {
        self.events = t;
    }
    pub fn n_arms(&self) -> usize {
        self.arms.len()
    }
    /// Applies the Gram updates each arm has queued where that is exact
    /// ([`ArmState::settle_gram`]): saving then writes `A` without a flushed copy, and the
    /// arm continues bit for bit as it would have.
    pub fn settle_grams(&mut self) {
        for a in self.arms.iter_mut() {
            if a.gram_settles() {
                Arc::make_mut(a).settle_gram();
            }
        }
    }

    pub fn arm(&self, k: usize) -> &ArmState {
        &self.arms[k]
    }

    fn check_available(&self, available: Option<&[usize]>) -> Result<()> {
        if self.arms.is_empty() {
            bail!("no arms to choose from");
        }
        if let Some(av) = available {
            if av.is_empty() {
                bail!("available_arms must not be empty");
            }
            if let Some(&k) = av.iter().find(|&&k| k >= self.arms.len()) {
                bail!("unknown arm index {k}");
            }
        }
        Ok(())
    }

    /// Validates a one-event choice and returns what scoring needs: the view and the event.
    /// The event counter advances here, so a rejected call leaves the policy unchanged.
    pub fn begin_select(
        &mut self,
        x: &[f64],
        available: Option<&[usize]>,
    ) -> Result<(ScoringView, u64)> {
        validate_context(x, self.cfg.n_features)?;
        self.check_available(available)?;
        let t = self.events;
        self.events += 1;
        Ok((self.view(), t))
    }

    /// A cheap read-only view of the arms (Arc clones).
    pub fn view(&self) -> ScoringView {
        ScoringView {
            arms: self.arms.clone(),
            scoring: self.scoring,
            seed: self.seed,
        }
    }

    /// One event: the chosen arm index for context `x`.
    pub fn select(&mut self, x: &[f64], available: Option<&[usize]>) -> Result<usize> {
        let (view, t) = self.begin_select(x, available)?;
        let mut scores = std::mem::take(&mut self.scores);
        scores.resize(self.arms.len(), 0.0);
        view.scores_into(x, t, &mut scores);
        let choice = pick(&scores, available, self.seed, t);
        self.scores = scores;
        Ok(choice)
    }

    /// [`Self::select`] and the probability that it picks the arm it picked.
    pub fn select_with_propensity(
        &mut self,
        x: &[f64],
        available: Option<&[usize]>,
    ) -> Result<(usize, f64)> {
        let choice = self.select(x, available)?;
        let p = self.view().propensities(x, available)[choice];
        Ok((choice, p))
    }

    /// [`ScoringView::propensities`] of a row-major batch; no random draw, no event used.
    pub fn propensities(&self, x: &[f64], available: Option<&[usize]>) -> Result<Vec<f64>> {
        validate_batch(x, self.cfg.n_features)?;
        self.check_available(available)?;
        Ok(self.view().propensities(x, available))
    }

    /// Validates an observation without changing anything.
    pub fn validate_update(&self, arm: usize, x: &[f64], reward: f64) -> Result<()> {
        if arm >= self.arms.len() {
            bail!("unknown arm index {arm}");
        }
        validate_context(x, self.cfg.n_features)?;
        if !reward.is_finite() {
            bail!("reward must be finite, got {reward}");
        }
        Ok(())
    }

    /// One observation for one arm. Rejected, with nothing changed, if the arm's new state
    /// would not be finite (the message names the arm by `name(arm)`).
    pub fn update(
        &mut self,
        arm: usize,
        x: &[f64],
        reward: f64,
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        self.validate_update(arm, x, reward)?;
        if !Arc::make_mut(&mut self.arms[arm]).try_add(x, reward) {
            return Err(BanditError::overflow(&name(arm)));
        }
        Ok(())
    }

    /// Sequential updates from a row-major batch; all validated before any is applied, and
    /// all-or-nothing: if one would make an arm's state non-finite, nothing changes.
    pub fn partial_fit(
        &mut self,
        x: &[f64],
        arms: &[usize],
        rewards: &[f64],
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        let d = self.cfg.n_features;
        let n = validate_batch(x, d)?;
        if arms.len() != n || rewards.len() != n {
            bail!(
                "X, arms and rewards must have the same length, got {n}, {}, {}",
                arms.len(),
                rewards.len()
            );
        }
        if let Some(&k) = arms.iter().find(|&&k| k >= self.arms.len()) {
            bail!("unknown arm index {k}");
        }
        if let Some(i) = rewards.iter().position(|r| !r.is_finite()) {
            bail!("rewards must be finite, got {} at index {i}", rewards[i]);
        }
        // Copy-on-write: each arm the batch touches is copied once, the originals kept until
        // every row has gone in.
        let mut updated = self.arms.clone();
        for i in 0..n {
            let k = arms[i];
            if !Arc::make_mut(&mut updated[k]).try_add(&x[i * d..(i + 1) * d], rewards[i]) {
                return Err(BanditError::overflow(&name(k)));
            }
        }
        self.arms = updated;
        Ok(())
    }

    /// Validates a batch for scoring and reserves its event indices; returns (view, n, t0).
    pub fn begin_batch(
        &mut self,
        x: &[f64],
        available: Option<&[usize]>,
    ) -> Result<(ScoringView, usize, u64)> {
        let n = validate_batch(x, self.cfg.n_features)?;
        self.check_available(available)?;
        let t0 = self.events;
        self.events += n as u64;
        Ok((self.view(), n, t0))
    }

    /// Scores `(n, n_arms)` row-major (UCB values or Thompson draws).
    pub fn decision_function(&mut self, x: &[f64]) -> Result<Vec<f64>> {
        let (view, _, t0) = self.begin_batch(x, None)?;
        Ok(view.batch_scores(x, t0))
    }

    /// `theta^T x` for every row and arm, `(n, n_arms)` row-major.
    pub fn predict_expectations(&self, x: &[f64]) -> Result<Vec<f64>> {
        validate_batch(x, self.cfg.n_features)?;
        Ok(self.view().expectations(x))
    }

    /// Chosen arm index per row; equals calling `select` on each row in turn.
    pub fn predict(&mut self, x: &[f64], available: Option<&[usize]>) -> Result<Vec<usize>> {
        let (view, _, t0) = self.begin_batch(x, available)?;
        Ok(picks(
            &view.batch_scores(x, t0),
            view.arms.len(),
            available,
            self.seed,
            t0,
        ))
    }

    pub fn add_arm(&mut self) {
        self.arms.push(Arc::new(ArmState::new(self.cfg)));
    }

    pub fn remove_arm(&mut self, k: usize) -> Result<()> {
        if k >= self.arms.len() {
            bail!("unknown arm index {k}");
        }
        self.arms.remove(k);
        Ok(())
    }

    /// Forgets all observations; keeps the arms, the seed and the event counter.
    pub fn reset(&mut self) {
        for a in self.arms.iter_mut() {
            *a = Arc::new(ArmState::new(self.cfg));
        }
    }

    /// Replaces the arms (restoring a pickled state); `n_features` must match.
    pub fn set_arms(&mut self, arms: Vec<ArmState>) -> Result<()> {
        if arms.iter().any(|a| a.n_features() != self.cfg.n_features) {
            bail!("arm state does not match n_features");
        }
        self.arms = arms.into_iter().map(Arc::new).collect();
        Ok(())
    }
}

/// Argmax of each row of a row-major score matrix.
pub fn choices(scores: &[f64], k: usize, available: Option<&[usize]>) -> Vec<usize> {
    if k == 0 {
        return Vec::new();
    }
    scores.chunks(k).map(|row| argmax(row, available)).collect()
}
