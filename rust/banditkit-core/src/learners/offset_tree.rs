//! The offset tree (Beygelzimer and Langford): K-arm bandit feedback reduced to a tournament of
//! K - 1 binary nodes, each an online logistic regression trained on offset labels with
//! importance weights. The NumPy reference is `python/banditkit/python/learners/offset_tree.py`
//! (same operations in the same order, dot products aside); its docstring has the maths.
//!
//! - Tournament: consecutive arms paired round after round (an odd one out passed up); node j
//!   has children `left[j]`, `right[j]` (ids below K are arms, `K + j` is node j), the root is
//!   the last node, and every node covers a contiguous range of arms.
//! - Greedy policy: node j goes left if `z_j = theta_j . x + b_j > 0`, right if `< 0`, either
//!   side with probability 1/2 if `z_j == 0` (a node with one side unavailable passes the other
//!   on). Propensities: `(1 - epsilon) g + epsilon / K_available`.
//! - Random choices: one uniform per scored context, from `Xoshiro256PlusPlus::stream(seed, t)`
//!   for event `t` (counted over `select` and `predict`), turned into an arm by the cumulative
//!   propensities: `predict(X)` equals `select` on each row in turn, on any number of threads.
//! - Node learner: weighted logistic SGD with per-coordinate AdaGrad steps. Not online Newton,
//!   which needs a (d+1)^2 matrix per node where memory must stay O(K d); AdaGrad's first step
//!   moves a coordinate by at most `learning_rate` whatever the importance weight, so a row of
//!   weight 1/p = 1000 cannot throw a node's weights away.
use rayon::prelude::*;

use crate::bail;
use crate::contextual::policy::{validate_batch, validate_context};
use crate::error::{BanditError, Result};
use crate::rng::Xoshiro256PlusPlus;

/// The running offset before any reward: the paper's 1/2 for rewards in [0, 1].
pub const INITIAL_OFFSET: f64 = 0.5;

/// Rows per rayon task in batch calls (results do not depend on it).
const ROWS_PER_TASK: usize = 256;

/// Settings, fixed at construction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OffsetTreeConfig {
    pub n_features: usize,
    pub learning_rate: f64,
    pub l2: f64,
    pub epsilon: f64,
    /// Cap on the importance weight 1/p (infinity: none).
    pub max_weight: f64,
    /// A fixed offset, or `None` for the mean of the rewards learned so far.
    pub offset: Option<f64>,
}

impl OffsetTreeConfig {
    pub fn validate(&self) -> Result<()> {
        if self.n_features == 0 {
            bail!("n_features must be positive, got 0");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            bail!("learning_rate must be positive, got {}", self.learning_rate);
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            bail!("l2 must be non-negative, got {}", self.l2);
        }
        if !(0.0..=1.0).contains(&self.epsilon) {
            bail!("epsilon must be in [0, 1], got {}", self.epsilon);
        }
        if self.max_weight.is_nan() || self.max_weight <= 0.0 {
            bail!("max_weight must be positive, got {}", self.max_weight);
        }
        if let Some(c) = self.offset {
            if !c.is_finite() {
                bail!("offset must be finite or None, got {c}");
            }
        }
        Ok(())
    }
}

/// Everything learned; a batch works on a copy, committed only if every row passed.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeState {
    /// Node weights, `n_nodes x (d + 1)` row-major, intercept last.
    pub theta: Vec<f64>,
    /// AdaGrad sums of squared gradients, same layout.
    pub accum: Vec<f64>,
    pub node_updates: Vec<u64>,
    pub arm_rows: Vec<u64>,
    /// Per arm: sum of importance weights and of weight x reward.
    pub arm_weight: Vec<f64>,
    pub arm_reward: Vec<f64>,
    pub reward_sum: f64,
    pub rows: u64,
}

impl TreeState {
    fn new(n_arms: usize, d: usize) -> Self {
        let n_nodes = n_arms - 1;
        TreeState {
            theta: vec![0.0; n_nodes * (d + 1)],
            accum: vec![0.0; n_nodes * (d + 1)],
            node_updates: vec![0; n_nodes],
            arm_rows: vec![0; n_arms],
            arm_weight: vec![0.0; n_arms],
            arm_reward: vec![0.0; n_arms],
            reward_sum: 0.0,
            rows: 0,
        }
    }

    fn is_finite(&self) -> bool {
        let all = |v: &[f64]| v.iter().all(|x| x.is_finite());
        all(&self.theta)
            && all(&self.accum)
            && all(&self.arm_weight)
            && all(&self.arm_reward)
            && self.reward_sum.is_finite()
    }

    /// The offset of the next row.
    pub fn offset(&self, fixed: Option<f64>) -> f64 {
        match fixed {
            Some(c) => c,
            None if self.rows > 0 => self.reward_sum / self.rows as f64,
            None => INITIAL_OFFSET,
        }
    }
}

/// The tournament's shape.
#[derive(Debug, Clone)]
struct Topology {
    n_arms: usize,
    left: Vec<usize>,
    right: Vec<usize>,
    parent: Vec<usize>,
    /// `[lo, hi)` arm range of every id.
    ranges: Vec<(usize, usize)>,
}

impl Topology {
    fn new(k: usize) -> Self {
        let (mut left, mut right) = (Vec::new(), Vec::new());
        let mut round: Vec<usize> = (0..k).collect();
        while round.len() > 1 {
            let mut next = Vec::with_capacity(round.len() / 2 + 1);
            for pair in round.chunks_exact(2) {
                left.push(pair[0]);
                right.push(pair[1]);
                next.push(k + left.len() - 1);
            }
            if round.len() % 2 == 1 {
                next.push(round[round.len() - 1]);
            }
            round = next;
        }
        let mut parent = vec![0; 2 * k - 1];
        let mut ranges: Vec<(usize, usize)> = (0..k).map(|a| (a, a + 1)).collect();
        for (j, (&l, &r)) in left.iter().zip(&right).enumerate() {
            parent[l] = k + j;
            parent[r] = k + j;
            ranges.push((ranges[l].0, ranges[r].1));
        }
        Topology {
            n_arms: k,
            left,
            right,
            parent,
            ranges,
        }
    }

    fn n_nodes(&self) -> usize {
        self.left.len()
    }
}

/// `sigma(z)` without overflow for large |z| (the reference's formula).
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Node j's logit for context `x`.
#[inline]
fn logit(theta: &[f64], d: usize, j: usize, x: &[f64]) -> f64 {
    let w = &theta[j * (d + 1)..(j + 1) * (d + 1)];
    let mut s = 0.0;
    for (a, b) in w[..d].iter().zip(x) {
        s += a * b;
    }
    s + w[d]
}

/// The greedy choice at a node: probability of the left side.
#[inline]
fn greedy_split(z: f64) -> f64 {
    if z > 0.0 {
        1.0
    } else if z < 0.0 {
        0.0
    } else {
        0.5
    }
}

/// Leaf masses into `out` (K) from per-node left probabilities `split(j)`; `mass` is scratch
/// of 2K - 1.
fn descend(topo: &Topology, split: impl Fn(usize) -> f64, mass: &mut [f64], out: &mut [f64]) {
    let k = topo.n_arms;
    mass.fill(0.0);
    mass[2 * k - 2] = 1.0;
    for j in (0..topo.n_nodes()).rev() {
        let here = mass[k + j];
        let s = split(j);
        mass[topo.left[j]] = here * s;
        mass[topo.right[j]] = here * (1.0 - s);
    }
    out.copy_from_slice(&mass[..k]);
}

fn greedy_row(
    topo: &Topology,
    cfg: &OffsetTreeConfig,
    theta: &[f64],
    x: &[f64],
    sides: Option<&[(bool, bool)]>,
    mass: &mut [f64],
    out: &mut [f64],
) {
    let d = cfg.n_features;
    descend(
        topo,
        |j| match sides.map(|s| s[j]) {
            Some((true, false)) => 1.0,
            Some((false, true)) => 0.0,
            _ => greedy_split(logit(theta, d, j, x)),
        },
        mass,
        out,
    );
}

/// `(1 - epsilon) g + epsilon / K_available` for one context.
#[allow(clippy::too_many_arguments)]
fn propensity_row(
    topo: &Topology,
    cfg: &OffsetTreeConfig,
    theta: &[f64],
    x: &[f64],
    mask: Option<&[bool]>,
    sides: Option<&[(bool, bool)]>,
    mass: &mut [f64],
    out: &mut [f64],
) {
    greedy_row(topo, cfg, theta, x, sides, mass, out);
    let eps = cfg.epsilon;
    let n_avail = mask.map_or(out.len(), |m| m.iter().filter(|&&a| a).count());
    let uniform = eps / n_avail as f64;
    for (k, o) in out.iter_mut().enumerate() {
        let u = match mask {
            Some(m) if !m[k] => 0.0,
            _ => uniform,
        };
        *o = (1.0 - eps) * *o + u;
    }
}

/// A read-only view for batch work without borrowing the learner (the bindings release the
/// GIL with it).
#[derive(Debug, Clone)]
pub struct TreeView {
    topo: Topology,
    cfg: OffsetTreeConfig,
    theta: Vec<f64>,
    seed: u64,
}

impl TreeView {
    fn n_arms(&self) -> usize {
        self.topo.n_arms
    }

    fn descend(&self, split: impl Fn(usize) -> f64, mass: &mut [f64], out: &mut [f64]) {
        descend(&self.topo, split, mass, out);
    }

    /// For each node, whether each side has an available arm (None: all available).
    fn sides(&self, mask: Option<&[bool]>) -> Option<Vec<(bool, bool)>> {
        let mask = mask?;
        let any = |id: usize| {
            let (lo, hi) = self.topo.ranges[id];
            mask[lo..hi].iter().any(|&m| m)
        };
        Some(
            (0..self.topo.n_nodes())
                .map(|j| (any(self.topo.left[j]), any(self.topo.right[j])))
                .collect(),
        )
    }

    fn greedy_row(
        &self,
        x: &[f64],
        sides: Option<&[(bool, bool)]>,
        mass: &mut [f64],
        out: &mut [f64],
    ) {
        greedy_row(&self.topo, &self.cfg, &self.theta, x, sides, mass, out);
    }

    fn propensity_row(
        &self,
        x: &[f64],
        mask: Option<&[bool]>,
        sides: Option<&[(bool, bool)]>,
        mass: &mut [f64],
        out: &mut [f64],
    ) {
        propensity_row(
            &self.topo,
            &self.cfg,
            &self.theta,
            x,
            mask,
            sides,
            mass,
            out,
        );
    }

    /// Row-major (n, K) results of `row(x_i, out_i, mass)`, parallel over rows.
    fn batch(
        &self,
        x: &[f64],
        row: impl Fn(usize, &[f64], &mut [f64], &mut [f64]) + Sync,
    ) -> Vec<f64> {
        let (k, d) = (self.n_arms(), self.cfg.n_features);
        let n = x.len() / d;
        let mut out = vec![0.0; n * k];
        out.par_chunks_mut(ROWS_PER_TASK * k)
            .enumerate()
            .for_each(|(c, block)| {
                let mut mass = vec![0.0; 2 * k - 1];
                for (r, o) in block.chunks_mut(k).enumerate() {
                    let i = c * ROWS_PER_TASK + r;
                    row(i, &x[i * d..(i + 1) * d], o, &mut mass);
                }
            });
        out
    }

    /// The greedy tournament's distribution over arms (ties shared), `(n, K)`.
    pub fn greedy(&self, x: &[f64]) -> Vec<f64> {
        self.batch(x, |_, xi, o, mass| self.greedy_row(xi, None, mass, o))
    }

    /// Exact selection probabilities `(n, K)`; `mask[k]`: arm k available.
    pub fn propensities(&self, x: &[f64], mask: Option<&[bool]>) -> Vec<f64> {
        let sides = self.sides(mask);
        self.batch(x, |_, xi, o, mass| {
            self.propensity_row(xi, mask, sides.as_deref(), mass, o)
        })
    }

    /// The tree's soft probabilities: products of `sigma(+-z)` along each arm's path.
    pub fn proba(&self, x: &[f64]) -> Vec<f64> {
        let d = self.cfg.n_features;
        self.batch(x, |_, xi, o, mass| {
            self.descend(|j| sigmoid(logit(&self.theta, d, j, xi)), mass, o)
        })
    }

    /// The arm of each row, events `t0..t0 + n` (equals `select` on each row in turn).
    pub fn choose(&self, x: &[f64], mask: Option<&[bool]>, t0: u64) -> Vec<(usize, f64)> {
        let k = self.n_arms();
        let probs = self.propensities(x, mask);
        probs
            .par_chunks(k.max(1))
            .enumerate()
            .map(|(i, row)| {
                let u = Xoshiro256PlusPlus::stream(self.seed, t0 + i as u64).next_f64();
                let a = draw(row, u);
                (a, row[a])
            })
            .collect()
    }
}

/// The arm a uniform `u` in [0, 1) picks from `probs` by cumulative sums (the reference's
/// `searchsorted(..., side="right")`); the last arm of positive probability takes the rest.
pub fn draw(probs: &[f64], u: f64) -> usize {
    let last = probs.iter().rposition(|&p| p > 0.0).unwrap_or(0);
    let mut acc = 0.0;
    for (k, p) in probs.iter().enumerate() {
        acc += p;
        if k >= last || u < acc {
            return k;
        }
    }
    last
}

/// The offset tree learner.
#[derive(Debug, Clone)]
pub struct OffsetTree {
    cfg: OffsetTreeConfig,
    topo: Topology,
    state: TreeState,
    seed: u64,
    events: u64,
}

impl OffsetTree {
    pub fn new(cfg: OffsetTreeConfig, n_arms: usize, seed: u64) -> Result<Self> {
        cfg.validate()?;
        if n_arms == 0 {
            bail!("arms must not be empty");
        }
        Ok(OffsetTree {
            cfg,
            topo: Topology::new(n_arms),
            state: TreeState::new(n_arms, cfg.n_features),
            seed,
            events: 0,
        })
    }

    pub fn config(&self) -> &OffsetTreeConfig {
        &self.cfg
    }
    pub fn n_arms(&self) -> usize {
        self.topo.n_arms
    }
    pub fn n_nodes(&self) -> usize {
        self.topo.n_nodes()
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Contexts scored by `select`/`predict` so far (the next event index).
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn set_events(&mut self, t: u64) {
        self.events = t;
    }
    pub fn state(&self) -> &TreeState {
        &self.state
    }

    /// Replaces the learned state (loading a file), checked against the shapes.
    pub fn set_state(&mut self, state: TreeState) -> Result<()> {
        let (k, n, d1) = (self.n_arms(), self.n_nodes(), self.cfg.n_features + 1);
        let shapes_ok = state.theta.len() == n * d1
            && state.accum.len() == n * d1
            && state.node_updates.len() == n
            && state.arm_rows.len() == k
            && state.arm_weight.len() == k
            && state.arm_reward.len() == k;
        if !shapes_ok {
            bail!("tree state does not match the arms and n_features");
        }
        if !state.is_finite() {
            bail!("tree state must be finite");
        }
        if state
            .accum
            .iter()
            .chain(&state.arm_weight)
            .any(|&v| v < 0.0)
        {
            bail!("accum and arm_weight must be non-negative");
        }
        self.state = state;
        Ok(())
    }

    /// A read-only copy of what scoring needs.
    pub fn view(&self) -> TreeView {
        TreeView {
            topo: self.topo.clone(),
            cfg: self.cfg,
            theta: self.state.theta.clone(),
            seed: self.seed,
        }
    }

    /// `mask[k]` for the available arm indices (None: every arm).
    pub fn mask(&self, available: Option<&[usize]>) -> Result<Option<Vec<bool>>> {
        let Some(av) = available else {
            return Ok(None);
        };
        if av.is_empty() {
            bail!("available_arms must not be empty");
        }
        let mut mask = vec![false; self.n_arms()];
        for &k in av {
            if k >= self.n_arms() {
                bail!("unknown arm index {k}");
            }
            mask[k] = true;
        }
        Ok(Some(mask))
    }

    /// Validates a batch for choosing and reserves its events; returns (view, mask, n, t0).
    pub fn begin_choose(
        &mut self,
        x: &[f64],
        available: Option<&[usize]>,
    ) -> Result<(TreeView, Option<Vec<bool>>, u64)> {
        validate_batch(x, self.cfg.n_features)?;
        let mask = self.mask(available)?;
        let t0 = self.events;
        self.events += (x.len() / self.cfg.n_features) as u64;
        Ok((self.view(), mask, t0))
    }

    /// One event: (arm index, its propensity).
    pub fn select(&mut self, x: &[f64], available: Option<&[usize]>) -> Result<(usize, f64)> {
        validate_context(x, self.cfg.n_features)?;
        let (view, mask, t0) = self.begin_choose(x, available)?;
        Ok(view.choose(x, mask.as_deref(), t0)[0])
    }

    /// Each row's arm index (equals `select` on each row in turn).
    pub fn predict(&mut self, x: &[f64], available: Option<&[usize]>) -> Result<Vec<usize>> {
        let (view, mask, t0) = self.begin_choose(x, available)?;
        Ok(view
            .choose(x, mask.as_deref(), t0)
            .into_iter()
            .map(|c| c.0)
            .collect())
    }

    pub fn propensities(&self, x: &[f64], available: Option<&[usize]>) -> Result<Vec<f64>> {
        validate_batch(x, self.cfg.n_features)?;
        let mask = self.mask(available)?;
        Ok(self.view().propensities(x, mask.as_deref()))
    }

    pub fn decision_function(&self, x: &[f64]) -> Result<Vec<f64>> {
        validate_batch(x, self.cfg.n_features)?;
        Ok(self.view().greedy(x))
    }

    pub fn predict_proba(&self, x: &[f64]) -> Result<Vec<f64>> {
        validate_batch(x, self.cfg.n_features)?;
        Ok(self.view().proba(x))
    }

    /// Per arm, the self-normalised importance-weighted mean reward (0 before any), per row.
    pub fn predict_expectations(&self, x: &[f64]) -> Result<Vec<f64>> {
        let n = validate_batch(x, self.cfg.n_features)?;
        let st = &self.state;
        let means: Vec<f64> = st
            .arm_reward
            .iter()
            .zip(&st.arm_weight)
            .map(|(&r, &w)| if w > 0.0 { r / w } else { 0.0 })
            .collect();
        Ok(means.repeat(n))
    }

    /// Checks a batch of rows without changing anything; returns the row count.
    pub fn validate_rows(
        &self,
        x: &[f64],
        arms: &[usize],
        rewards: &[f64],
        propensities: Option<&[f64]>,
    ) -> Result<usize> {
        let n = validate_batch(x, self.cfg.n_features)?;
        let np = propensities.map_or(n, <[f64]>::len);
        if arms.len() != n || rewards.len() != n || np != n {
            let p = propensities.map_or(String::new(), |p| format!(", {}", p.len()));
            bail!(
                "X, arms, rewards and propensities must have the same length, got {n}, {}, {}{p}",
                arms.len(),
                rewards.len()
            );
        }
        if let Some(&k) = arms.iter().find(|&&k| k >= self.n_arms()) {
            bail!("unknown arm index {k}");
        }
        if let Some(i) = rewards.iter().position(|r| !r.is_finite()) {
            bail!("rewards must be finite, got {} at index {i}", rewards[i]);
        }
        if let Some(p) = propensities {
            if let Some(&bad) = p.iter().find(|&&v| !(v > 0.0 && v <= 1.0)) {
                bail!("propensities must be in (0, 1], got {bad}");
            }
        }
        Ok(n)
    }

    /// Learns the rows in order (a row without a propensity uses this learner's own for its
    /// arm, with the state left by the rows before it). All or nothing: on an error, or if the
    /// state would stop being finite, nothing changes. `fresh`: forget everything first.
    pub fn learn(
        &mut self,
        x: &[f64],
        arms: &[usize],
        rewards: &[f64],
        propensities: Option<&[f64]>,
        fresh: bool,
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        let n = self.validate_rows(x, arms, rewards, propensities)?;
        let d = self.cfg.n_features;
        let mut st = if fresh {
            TreeState::new(self.n_arms(), d)
        } else {
            self.state.clone()
        };
        let mut scratch = Scratch::new(self.n_arms(), d);
        for i in 0..n {
            let p = propensities.map(|p| p[i]);
            self.learn_row(
                &mut st,
                &x[i * d..(i + 1) * d],
                arms[i],
                rewards[i],
                p,
                &mut scratch,
                name,
            )?;
        }
        if !st.is_finite() {
            return Err(BanditError::new(
                "update would make the state of the tree non-finite (overflow)",
            ));
        }
        self.state = st;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn learn_row(
        &self,
        st: &mut TreeState,
        x: &[f64],
        a: usize,
        r: f64,
        p: Option<f64>,
        s: &mut Scratch,
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        let (k, d) = (self.n_arms(), self.cfg.n_features);
        let p = match p {
            Some(p) => p,
            None => {
                let (mass, probs) = (&mut s.mass, &mut s.probs);
                propensity_row(&self.topo, &self.cfg, &st.theta, x, None, None, mass, probs);
                let p = s.probs[a];
                if p <= 0.0 {
                    bail!(
                        "propensity of arm '{}' is 0 for this context (epsilon=0): pass the logging policy's propensity",
                        name(a)
                    );
                }
                p
            }
        };
        let w = (1.0 / p).min(self.cfg.max_weight);
        let c = st.offset(self.cfg.offset);
        st.rows += 1;
        st.reward_sum += r;
        st.arm_rows[a] += 1;
        st.arm_weight[a] += w;
        st.arm_reward[a] += w * r;
        let base = (r - c).abs() * w;
        if base == 0.0 {
            return Ok(());
        }
        // The path with the parameters before this row: (node, a on its left, q, z).
        s.path.clear();
        let (mut child, mut q) = (a, 1.0);
        while child != 2 * k - 2 && q > 0.0 {
            let j = self.topo.parent[child] - k;
            let z = logit(&st.theta, d, j, x);
            let is_left = self.topo.left[j] == child;
            s.path.push((j, is_left, q, z));
            let h = greedy_split(z);
            q *= if is_left { h } else { 1.0 - h };
            child = k + j;
        }
        let (lr, l2) = (self.cfg.learning_rate, self.cfg.l2);
        for &(j, is_left, q_j, z) in &s.path {
            let y = if is_left == (r > c) { 1.0 } else { 0.0 };
            let coef = base * q_j * (sigmoid(z) - y);
            let row = j * (d + 1)..(j + 1) * (d + 1);
            let theta = &mut st.theta[row.clone()];
            let accum = &mut st.accum[row];
            for i in 0..=d {
                let xi = if i < d { x[i] } else { 1.0 };
                let mut g = coef * xi;
                if i < d {
                    g += l2 * theta[i];
                }
                accum[i] += g * g;
                let step = if accum[i] > 0.0 {
                    g / accum[i].sqrt()
                } else {
                    0.0
                };
                theta[i] -= lr * step;
            }
            st.node_updates[j] += 1;
        }
        Ok(())
    }

    /// Forgets everything learned (settings, seed and event counter stay).
    pub fn reset(&mut self) {
        self.state = TreeState::new(self.n_arms(), self.cfg.n_features);
    }
}

/// Per-batch scratch buffers.
struct Scratch {
    mass: Vec<f64>,
    probs: Vec<f64>,
    path: Vec<(usize, bool, f64, f64)>,
}

impl Scratch {
    fn new(k: usize, _d: usize) -> Self {
        Scratch {
            mass: vec![0.0; 2 * k - 1],
            probs: vec![0.0; k],
            path: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(epsilon: f64) -> OffsetTreeConfig {
        OffsetTreeConfig {
            n_features: 2,
            learning_rate: 0.1,
            l2: 0.0,
            epsilon,
            max_weight: f64::INFINITY,
            offset: None,
        }
    }

    #[test]
    fn tournament_pairs_consecutive_arms() {
        let t = Topology::new(5);
        assert_eq!(t.left, vec![0, 2, 5, 7]);
        assert_eq!(t.right, vec![1, 3, 6, 4]);
        assert_eq!(t.ranges[8], (0, 5));
    }

    #[test]
    fn fresh_tree_shares_ties_and_mixes_epsilon() {
        let t = OffsetTree::new(cfg(0.2), 3, 1).unwrap();
        let p = t.propensities(&[0.3, -1.0], None).unwrap();
        // Ties everywhere: arms 0 and 1 share the left half, arm 2 takes the right half.
        let g = [0.25, 0.25, 0.5];
        for k in 0..3 {
            assert_eq!(p[k], 0.8 * g[k] + 0.2 / 3.0);
        }
        let p = t.propensities(&[0.3, -1.0], Some(&[2, 0])).unwrap();
        assert_eq!(p[1], 0.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn learns_the_better_arm_and_rejects_atomically() {
        let mut t = OffsetTree::new(cfg(0.0), 2, 1).unwrap();
        let x = [1.0, 0.0, 1.0, 0.0];
        t.learn(&x, &[0, 1], &[1.0, 0.0], Some(&[0.5, 0.5]), false, &|k| {
            k.to_string()
        })
        .unwrap();
        assert_eq!(t.decision_function(&x[..2]).unwrap(), vec![1.0, 0.0]);
        let before = t.state().clone();
        let err = t.learn(&x, &[0, 1], &[1.0, f64::NAN], None, false, &|k| {
            k.to_string()
        });
        assert!(err.is_err());
        // epsilon = 0: arm 1 is never chosen, so its own propensity is 0.
        let err = t.learn(&x[..2], &[1], &[1.0], None, false, &|k| k.to_string());
        assert!(err.unwrap_err().0.contains("propensity of arm '1' is 0"));
        assert_eq!(t.state(), &before);
    }

    #[test]
    fn draw_never_picks_zero_probability_arms() {
        assert_eq!(draw(&[0.5, 0.5, 0.0], 0.999_999_999_999), 1);
        assert_eq!(draw(&[0.0, 1.0], 0.0), 1);
        assert_eq!(draw(&[0.3, 0.0, 0.7], 0.3), 2);
    }
}
