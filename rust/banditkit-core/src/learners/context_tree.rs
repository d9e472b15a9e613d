//! ContextTree: a regression tree over the context with Thompson sampling per arm at each leaf
//! (the NumPy reference is `python/banditkit/python/learners/context_tree.py`, whose docstring
//! gives the model; the arithmetic here is scalar and in the same order, so both backends
//! build the same tree with bit-identical statistics from the same rows).
//!
//! Memory is bounded: a leaf keeps per-arm count/sum/sum of squares; a leaf that may still
//! split keeps its first `sketch_size` rows only until it has taken quantile thresholds from
//! them, then per-(feature, bin, arm) statistics (O(d n_quantiles K)); nodes never exceed
//! `max_nodes`.
use crate::bail;
use crate::error::{BanditError, Result};
use crate::exact::{prob_best_beta, prob_best_gaussian};
use crate::gamma::BetaSampler;
use crate::normal::standard_normal;
use crate::rng::Xoshiro256PlusPlus;

/// Bounds of the number of rows a leaf buffers to choose its split candidates.
pub const SKETCH_MIN: u64 = 64;
pub const SKETCH_MAX: u64 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    Gaussian,
    Beta,
}

impl Prior {
    pub fn name(self) -> &'static str {
        match self {
            Prior::Gaussian => "gaussian",
            Prior::Beta => "beta",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "gaussian" => Ok(Prior::Gaussian),
            "beta" => Ok(Prior::Beta),
            _ => bail!("prior must be 'gaussian' or 'beta', got '{s}'"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeConfig {
    pub n_features: usize,
    pub max_depth: u64,
    pub min_samples_split: u64,
    pub split_threshold: f64,
    pub max_nodes: u64,
    pub n_quantiles: u64,
    pub prior: Prior,
}

impl TreeConfig {
    pub fn validate(&self) -> Result<()> {
        if self.n_features == 0 {
            bail!("n_features must be positive, got 0");
        }
        if self.min_samples_split < 2 {
            bail!(
                "min_samples_split must be at least 2, got {}",
                self.min_samples_split
            );
        }
        if !(self.split_threshold.is_finite() && self.split_threshold >= 0.0) {
            bail!(
                "split_threshold must be finite and >= 0, got {}",
                self.split_threshold
            );
        }
        if self.max_nodes < 1 {
            bail!("max_nodes must be positive, got 0");
        }
        if self.n_quantiles < 1 {
            bail!("n_quantiles must be positive, got 0");
        }
        Ok(())
    }

    pub fn sketch_size(&self) -> u64 {
        self.min_samples_split.clamp(SKETCH_MIN, SKETCH_MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Internal = 0,
    /// A leaf buffering its first rows (for its split candidates).
    Sketch = 1,
    /// A leaf with split candidates and per-bin statistics.
    Binned = 2,
    /// A leaf at `max_depth`: it never splits.
    Frozen = 3,
}

impl Phase {
    pub fn from_code(c: u64) -> Option<Self> {
        Some(match c {
            0 => Phase::Internal,
            1 => Phase::Sketch,
            2 => Phase::Binned,
            3 => Phase::Frozen,
            _ => return None,
        })
    }
}

/// Count, sum and sum of squares of rewards, per (bin, arm), row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub n: Vec<u64>,
    pub s: Vec<f64>,
    pub q: Vec<f64>,
}

impl Stats {
    pub fn zeros(len: usize) -> Self {
        Stats {
            n: vec![0; len],
            s: vec![0.0; len],
            q: vec![0.0; len],
        }
    }

    #[inline]
    fn add(&mut self, i: usize, r: f64) {
        self.n[i] += 1;
        self.s[i] += r;
        self.q[i] += r * r;
    }

    /// Rows of `k` arms: a new zero column at the end.
    fn push_column(&mut self, k: usize) {
        let rows = self.n.len().checked_div(k).unwrap_or(0);
        let widen = |v: &mut Vec<f64>| {
            let mut out = Vec::with_capacity(rows * (k + 1));
            for r in 0..rows {
                out.extend_from_slice(&v[r * k..(r + 1) * k]);
                out.push(0.0);
            }
            *v = out;
        };
        let mut n = Vec::with_capacity(rows * (k + 1));
        for r in 0..rows {
            n.extend_from_slice(&self.n[r * k..(r + 1) * k]);
            n.push(0);
        }
        self.n = n;
        widen(&mut self.s);
        widen(&mut self.q);
    }

    /// Rows of `k` arms: column `c` removed.
    fn remove_column(&mut self, k: usize, c: usize) {
        let keep = |i: &usize| i % k != c;
        self.n = (0..self.n.len()).filter(keep).map(|i| self.n[i]).collect();
        self.s = (0..self.s.len()).filter(keep).map(|i| self.s[i]).collect();
        self.q = (0..self.q.len()).filter(keep).map(|i| self.q[i]).collect();
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub phase: Phase,
    pub depth: u64,
    /// Internal nodes: rows with `x[feature] <= threshold` go to `left`, others to `left + 1`.
    pub feature: usize,
    pub threshold: f64,
    pub left: usize,
    /// Leaves: per-arm reward statistics (the posterior's).
    pub stats: Stats,
    /// Leaves: rows seen since the leaf was made.
    pub since: u64,
    /// Sketch leaves: the buffered rows.
    pub sketch_x: Vec<f64>,
    pub sketch_arm: Vec<usize>,
    pub sketch_r: Vec<f64>,
    /// Binned leaves: per feature, the increasing thresholds and (thresholds + 1, K) stats.
    pub thresholds: Vec<Vec<f64>>,
    pub bins: Vec<Stats>,
}

impl Node {
    pub fn leaf(depth: u64, k: usize, cfg: &TreeConfig) -> Self {
        Node {
            phase: if depth < cfg.max_depth {
                Phase::Sketch
            } else {
                Phase::Frozen
            },
            depth,
            feature: 0,
            threshold: 0.0,
            left: 0,
            stats: Stats::zeros(k),
            since: 0,
            sketch_x: Vec::new(),
            sketch_arm: Vec::new(),
            sketch_r: Vec::new(),
            thresholds: Vec::new(),
            bins: Vec::new(),
        }
    }

    fn add_to_bins(&mut self, x: &[f64], arm: usize, r: f64, k: usize) {
        for (j, thr) in self.thresholds.iter().enumerate() {
            let b = thr.partition_point(|&t| t < x[j]); // first bin with x <= threshold
            self.bins[j].add(b * k + arm, r);
        }
    }
}

/// Sum of squared deviations from the mean, from count, sum and sum of squares.
#[inline]
fn sse(n: u64, s: f64, q: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    (q - s * (s / n as f64)).max(0.0)
}

#[derive(Debug, Clone)]
pub struct ContextTree {
    cfg: TreeConfig,
    n_arms: usize,
    nodes: Vec<Node>,
    pulls: Vec<u64>,
    /// At least every leaf's sum of squares: the overflow guard.
    sq_total: f64,
    seed: u64,
    events: u64,
}

impl ContextTree {
    pub fn new(cfg: TreeConfig, n_arms: usize, seed: u64) -> Result<Self> {
        cfg.validate()?;
        Ok(ContextTree {
            cfg,
            n_arms,
            nodes: vec![Node::leaf(0, n_arms, &cfg)],
            pulls: vec![0; n_arms],
            sq_total: 0.0,
            seed,
            events: 0,
        })
    }

    pub fn config(&self) -> &TreeConfig {
        &self.cfg
    }
    pub fn n_arms(&self) -> usize {
        self.n_arms
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn pulls(&self) -> &[u64] {
        &self.pulls
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn reset(&mut self) {
        self.nodes = vec![Node::leaf(0, self.n_arms, &self.cfg)];
        self.pulls = vec![0; self.n_arms];
        self.sq_total = 0.0;
    }

    /// The index of the leaf `x` falls in.
    pub fn leaf_of(&self, x: &[f64]) -> usize {
        let mut i = 0;
        while self.nodes[i].phase == Phase::Internal {
            let node = &self.nodes[i];
            i = if x[node.feature] <= node.threshold {
                node.left
            } else {
                node.left + 1
            };
        }
        i
    }

    // --- validation ---

    fn check_rewards(&self, rewards: &[f64], sq_total: f64) -> Result<()> {
        let mut total = sq_total;
        for &r in rewards {
            if !r.is_finite() {
                bail!("rewards must be finite");
            }
            if self.cfg.prior == Prior::Beta && !(0.0..=1.0).contains(&r) {
                bail!("rewards must be in [0, 1] with prior='beta', got {r}");
            }
            total += r * r;
        }
        if !total.is_finite() {
            bail!("update would make the tree's reward statistics non-finite (overflow)");
        }
        Ok(())
    }

    /// Checks a batch (row-major `x`, arm indices, rewards) against the current state, or
    /// against a fresh one (`fresh`, for `fit`).
    pub fn validate_batch(
        &self,
        x: &[f64],
        arms: &[usize],
        rewards: &[f64],
        fresh: bool,
    ) -> Result<()> {
        let d = self.cfg.n_features;
        let n = x.len() / d;
        if x.len() % d != 0 || n != arms.len() || n != rewards.len() {
            bail!(
                "X, arms and rewards must have the same length, got {n}, {}, {}",
                arms.len(),
                rewards.len()
            );
        }
        if x.iter().any(|v| !v.is_finite()) {
            bail!("contexts must be finite");
        }
        if let Some(a) = arms.iter().find(|&&a| a >= self.n_arms) {
            bail!("unknown arm index {a}");
        }
        self.check_rewards(rewards, if fresh { 0.0 } else { self.sq_total })
    }

    // --- learning ---

    /// Learns a validated batch (see [`Self::validate_batch`]), in order.
    pub fn learn(&mut self, x: &[f64], arms: &[usize], rewards: &[f64]) {
        let d = self.cfg.n_features;
        for (i, (&a, &r)) in arms.iter().zip(rewards).enumerate() {
            self.observe(a, &x[i * d..(i + 1) * d], r);
        }
    }

    /// Validates, then learns (all or nothing).
    pub fn partial_fit(&mut self, x: &[f64], arms: &[usize], rewards: &[f64]) -> Result<()> {
        self.validate_batch(x, arms, rewards, false)?;
        self.learn(x, arms, rewards);
        Ok(())
    }

    /// Forgets everything, then learns the batch; on bad input nothing changes.
    pub fn fit(&mut self, x: &[f64], arms: &[usize], rewards: &[f64]) -> Result<()> {
        self.validate_batch(x, arms, rewards, true)?;
        self.reset();
        self.learn(x, arms, rewards);
        Ok(())
    }

    fn observe(&mut self, arm: usize, x: &[f64], r: f64) {
        let k = self.n_arms;
        let i = self.leaf_of(x);
        let sketch_size = self.cfg.sketch_size();
        let mss = self.cfg.min_samples_split;
        self.pulls[arm] += 1;
        self.sq_total += r * r;
        let leaf = &mut self.nodes[i];
        leaf.stats.add(arm, r);
        leaf.since += 1;
        match leaf.phase {
            Phase::Sketch => {
                leaf.sketch_x.extend_from_slice(x);
                leaf.sketch_arm.push(arm);
                leaf.sketch_r.push(r);
                if leaf.sketch_r.len() as u64 >= sketch_size {
                    build_bins(leaf, k, self.cfg.n_features, self.cfg.n_quantiles);
                }
            }
            Phase::Binned => leaf.add_to_bins(x, arm, r, k),
            _ => {}
        }
        if leaf.phase == Phase::Binned && leaf.since % mss == 0 {
            self.try_split(i);
        }
    }

    fn try_split(&mut self, i: usize) {
        if self.nodes.len() as u64 + 2 > self.cfg.max_nodes {
            return;
        }
        let k = self.n_arms;
        let min_side = (self.cfg.min_samples_split / 4).max(1);
        let Some((gain, j, b)) = best_split(&self.nodes[i], k, min_side) else {
            return;
        };
        if gain.partial_cmp(&self.cfg.split_threshold) != Some(std::cmp::Ordering::Greater) {
            return;
        }
        let depth = self.nodes[i].depth + 1;
        let mut left = Node::leaf(depth, k, &self.cfg);
        let mut right = Node::leaf(depth, k, &self.cfg);
        let parent = &self.nodes[i];
        let (cn, cs, cq) = cumulative(&parent.bins[j], k);
        let last = parent.thresholds[j].len();
        for a in 0..k {
            let (l, t) = (b * k + a, last * k + a);
            left.stats.n[a] = cn[l];
            left.stats.s[a] = cs[l];
            left.stats.q[a] = cq[l];
            right.stats.n[a] = cn[t] - cn[l];
            right.stats.s[a] = cs[t] - cs[l];
            right.stats.q[a] = (cq[t] - cq[l]).max(0.0);
        }
        let threshold = parent.thresholds[j][b];
        let mut internal = Node::leaf(parent.depth, 0, &self.cfg);
        internal.phase = Phase::Internal;
        internal.feature = j;
        internal.threshold = threshold;
        internal.left = self.nodes.len();
        self.nodes[i] = internal;
        self.nodes.push(left);
        self.nodes.push(right);
    }

    // --- the posterior at a leaf ---

    /// Gaussian (means, sds) or Beta (alpha, beta) of every arm at leaf `i`.
    pub fn posterior(&self, i: usize) -> (Vec<f64>, Vec<f64>) {
        let st = &self.nodes[i].stats;
        let k = self.n_arms;
        if self.cfg.prior == Prior::Beta {
            let alpha = (0..k).map(|a| 1.0 + st.s[a]).collect();
            let beta = (0..k).map(|a| 1.0 + (st.n[a] as f64 - st.s[a])).collect();
            return (alpha, beta);
        }
        let (mut big_n, mut t, mut u) = (0u64, 0.0f64, 0.0f64);
        for a in 0..k {
            big_n += st.n[a];
            t += st.s[a];
            u += st.q[a];
        }
        let m0 = if big_n > 0 { t / big_n as f64 } else { 0.0 };
        let v0 = (1.0 + (u - t * m0).max(0.0)) / (big_n + 1) as f64;
        let mut means = Vec::with_capacity(k);
        let mut sds = Vec::with_capacity(k);
        for a in 0..k {
            let n1 = (st.n[a] + 1) as f64;
            means.push((st.s[a] + m0) / n1);
            sds.push(((v0 + sse(st.n[a], st.s[a], st.q[a])) / n1 / n1).sqrt());
        }
        (means, sds)
    }

    /// Posterior means of every arm at leaf `i`.
    pub fn leaf_means(&self, i: usize) -> Vec<f64> {
        let (first, second) = self.posterior(i);
        match self.cfg.prior {
            Prior::Gaussian => first,
            Prior::Beta => first
                .iter()
                .zip(&second)
                .map(|(a, b)| a / (a + b))
                .collect(),
        }
    }

    /// Posterior means for each row of `x`, row-major (n, K).
    pub fn expectations(&self, x: &[f64]) -> Vec<f64> {
        let d = self.cfg.n_features;
        let mut out = Vec::with_capacity(x.len() / d * self.n_arms);
        for row in x.chunks_exact(d) {
            out.extend(self.leaf_means(self.leaf_of(row)));
        }
        out
    }

    /// Exact probability that each arm wins the Thompson draw at leaf `i` (0 if unavailable).
    pub fn win_probabilities(&self, i: usize, available: Option<&[usize]>) -> Vec<f64> {
        let (first, second) = self.posterior(i);
        let idx: Vec<usize> = match available {
            Some(av) => {
                let mut v = av.to_vec();
                v.sort_unstable();
                v.dedup();
                v
            }
            None => (0..self.n_arms).collect(),
        };
        let f: Vec<f64> = idx.iter().map(|&a| first[a]).collect();
        let s: Vec<f64> = idx.iter().map(|&a| second[a]).collect();
        let p = match self.cfg.prior {
            Prior::Gaussian => prob_best_gaussian(&f, &s),
            Prior::Beta => prob_best_beta(&f, &s),
        };
        let mut out = vec![0.0; self.n_arms];
        for (&a, pa) in idx.iter().zip(p) {
            out[a] = pa;
        }
        out
    }

    /// `propensities` for each row of `x`, row-major (n, K).
    pub fn propensities(&self, x: &[f64], available: Option<&[usize]>) -> Result<Vec<f64>> {
        self.ready()?;
        let d = self.cfg.n_features;
        let mut cache: Vec<Option<Vec<f64>>> = vec![None; self.nodes.len()];
        let mut out = Vec::with_capacity(x.len() / d * self.n_arms);
        for row in x.chunks_exact(d) {
            let i = self.leaf_of(row);
            let p = cache[i].get_or_insert_with(|| self.win_probabilities(i, available));
            out.extend_from_slice(p);
        }
        Ok(out)
    }

    fn ready(&self) -> Result<()> {
        if self.n_arms == 0 {
            bail!("no arms to choose from");
        }
        Ok(())
    }

    /// One Thompson draw per arm at leaf `i` (event `t`), then the best available arm.
    fn choose(&self, i: usize, t: u64, available: Option<&[usize]>) -> usize {
        let (first, second) = self.posterior(i);
        let mut rng = Xoshiro256PlusPlus::stream(self.seed, t);
        let draws: Vec<f64> = match self.cfg.prior {
            Prior::Gaussian => first
                .iter()
                .zip(&second)
                .map(|(m, s)| m + s * standard_normal(&mut rng))
                .collect(),
            Prior::Beta => first
                .iter()
                .zip(&second)
                .map(|(&a, &b)| BetaSampler::new(a, b).sample(&mut rng))
                .collect(),
        };
        let mut best: Option<usize> = None;
        let mut consider = |a: usize| {
            if best.map_or(true, |b| draws[a] > draws[b]) {
                best = Some(a);
            }
        };
        match available {
            Some(av) => {
                let mut v = av.to_vec();
                v.sort_unstable();
                v.into_iter().for_each(&mut consider);
            }
            None => (0..self.n_arms).for_each(&mut consider),
        }
        best.expect("at least one arm")
    }

    /// The arm for each row of `x` (event per row, in order).
    pub fn predict(&mut self, x: &[f64], available: Option<&[usize]>) -> Result<Vec<usize>> {
        self.ready()?;
        let d = self.cfg.n_features;
        let t0 = self.events;
        let out = x
            .chunks_exact(d)
            .enumerate()
            .map(|(r, row)| self.choose(self.leaf_of(row), t0 + r as u64, available))
            .collect::<Vec<_>>();
        self.events += out.len() as u64;
        Ok(out)
    }

    // --- arms ---

    pub fn add_arm(&mut self) {
        let k = self.n_arms;
        for node in self.nodes.iter_mut().filter(|n| n.phase != Phase::Internal) {
            node.stats.push_column(k);
            for b in &mut node.bins {
                b.push_column(k);
            }
        }
        self.pulls.push(0);
        self.n_arms += 1;
    }

    pub fn remove_arm(&mut self, arm: usize) -> Result<()> {
        let k = self.n_arms;
        if arm >= k {
            bail!("unknown arm index {arm}");
        }
        let d = self.cfg.n_features;
        for node in self.nodes.iter_mut().filter(|n| n.phase != Phase::Internal) {
            node.stats.remove_column(k, arm);
            for b in &mut node.bins {
                b.remove_column(k, arm);
            }
            if node.phase == Phase::Sketch {
                let keep: Vec<usize> = (0..node.sketch_arm.len())
                    .filter(|&r| node.sketch_arm[r] != arm)
                    .collect();
                node.sketch_x = keep
                    .iter()
                    .flat_map(|&r| node.sketch_x[r * d..(r + 1) * d].to_vec())
                    .collect();
                node.sketch_r = keep.iter().map(|&r| node.sketch_r[r]).collect();
                node.sketch_arm = keep
                    .iter()
                    .map(|&r| node.sketch_arm[r] - usize::from(node.sketch_arm[r] > arm))
                    .collect();
                node.since = node.sketch_r.len() as u64;
            }
        }
        self.pulls.remove(arm);
        self.n_arms -= 1;
        Ok(())
    }

    // --- saved state ---

    pub fn set_events(&mut self, events: u64) {
        self.events = events;
    }

    /// A tree from saved parts, checked to be one the learner could have built.
    pub fn from_parts(
        cfg: TreeConfig,
        n_arms: usize,
        nodes: Vec<Node>,
        pulls: Vec<u64>,
        seed: u64,
        events: u64,
    ) -> Result<Self> {
        cfg.validate()?;
        check_nodes(&cfg, n_arms, &nodes)?;
        if pulls.len() != n_arms {
            bail!("pulls must have one entry per arm");
        }
        let mut sq_total = 0.0;
        for n in nodes.iter().filter(|n| n.phase != Phase::Internal) {
            sq_total += n.stats.q.iter().sum::<f64>();
        }
        if !sq_total.is_finite() {
            bail!("reward statistics overflow");
        }
        Ok(ContextTree {
            cfg,
            n_arms,
            nodes,
            pulls,
            sq_total,
            seed,
            events,
        })
    }
}

/// Quantile thresholds of each feature over the sketch, then the sketch into bins.
fn build_bins(leaf: &mut Node, k: usize, d: usize, nq: u64) {
    let m = leaf.sketch_r.len();
    let nq = nq as usize;
    leaf.thresholds = (0..d)
        .map(|j| {
            let mut values: Vec<f64> = (0..m).map(|r| leaf.sketch_x[r * d + j]).collect();
            values.sort_by(|a, b| a.partial_cmp(b).expect("finite contexts"));
            let top = values[m - 1];
            let mut thr: Vec<f64> = Vec::new();
            for i in 1..=nq {
                let t = values[(i * m) / (nq + 1)];
                if t < top && thr.last().map_or(true, |&l| t > l) {
                    thr.push(t);
                }
            }
            thr
        })
        .collect();
    leaf.bins = leaf
        .thresholds
        .iter()
        .map(|t| Stats::zeros((t.len() + 1) * k))
        .collect();
    let xs = std::mem::take(&mut leaf.sketch_x);
    let arms = std::mem::take(&mut leaf.sketch_arm);
    let rs = std::mem::take(&mut leaf.sketch_r);
    for (r, (&a, &y)) in arms.iter().zip(&rs).enumerate() {
        leaf.add_to_bins(&xs[r * d..(r + 1) * d], a, y, k);
    }
    leaf.phase = Phase::Binned;
}

/// Running sums over the bins (in bin order), per arm: (count, sum, sum of squares).
fn cumulative(bins: &Stats, k: usize) -> (Vec<u64>, Vec<f64>, Vec<f64>) {
    let (mut cn, mut cs, mut cq) = (bins.n.clone(), bins.s.clone(), bins.q.clone());
    for i in k..cn.len() {
        cn[i] += cn[i - k];
        cs[i] += cs[i - k];
        cq[i] += cq[i - k];
    }
    (cn, cs, cq)
}

/// (gain, feature, threshold index) of the best candidate of a binned leaf (first on ties).
fn best_split(leaf: &Node, k: usize, min_side: u64) -> Option<(f64, usize, usize)> {
    let n_candidates: usize = leaf.thresholds.iter().map(Vec::len).sum();
    if n_candidates == 0 {
        return None;
    }
    // Pure noise gives each arm's sum of squares a drop of about one residual variance per
    // candidate, and the best of M candidates about 1 + 2 ln M of them.
    let noise = 1.0 + 2.0 * (n_candidates as f64).ln();
    let mut best: Option<(f64, usize, usize)> = None;
    for (j, thr) in leaf.thresholds.iter().enumerate() {
        if thr.is_empty() {
            continue;
        }
        let (cn, cs, cq) = cumulative(&leaf.bins[j], k);
        let last = thr.len() * k;
        let total: u64 = cn[last..last + k].iter().sum();
        for b in 0..thr.len() {
            let left: u64 = cn[b * k..(b + 1) * k].iter().sum();
            if left < min_side || total - left < min_side {
                continue;
            }
            let (mut gain, mut used) = (0.0, 0u64);
            for a in 0..k {
                let (l, t) = (b * k + a, last + a);
                let (nl, nr) = (cn[l], cn[t] - cn[l]);
                if nl < min_side || nr < min_side || nl + nr <= 2 {
                    continue;
                }
                let (sl, ql) = (cs[l], cq[l]);
                let (sr, qr) = (cs[t] - sl, cq[t] - ql);
                let children = sse(nl, sl, ql) + sse(nr, sr, qr);
                let drop = sse(nl + nr, cs[t], cq[t]) - children;
                gain += (drop - noise * (children / (nl + nr - 2) as f64)) / (nl + nr) as f64;
                used += 1;
            }
            if used == 0 {
                continue;
            }
            gain /= used as f64;
            if best.map_or(true, |(g, _, _)| gain > g) {
                best = Some((gain, j, b));
            }
        }
    }
    best
}

fn bad(msg: &str) -> BanditError {
    BanditError::new(msg)
}

/// The structure and per-node invariants of a saved tree.
fn check_nodes(cfg: &TreeConfig, k: usize, nodes: &[Node]) -> Result<()> {
    let d = cfg.n_features;
    if nodes.is_empty() || nodes.len() as u64 > cfg.max_nodes {
        bail!("the tree must have between 1 and max_nodes nodes");
    }
    // Every node but the root is the child of exactly one internal node, at its depth + 1.
    let mut parent_seen = vec![false; nodes.len()];
    let mut depth = vec![0u64; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        if i > 0 && !parent_seen[i] {
            return Err(bad("a node has no parent"));
        }
        if node.depth != depth[i] {
            return Err(bad("a node's depth disagrees with the tree"));
        }
        if node.phase == Phase::Internal {
            let l = node.left;
            if l <= i || l + 1 >= nodes.len() || parent_seen[l] || parent_seen[l + 1] {
                return Err(bad("bad child index"));
            }
            if node.feature >= d || !node.threshold.is_finite() || node.depth >= cfg.max_depth {
                return Err(bad("bad split"));
            }
            parent_seen[l] = true;
            parent_seen[l + 1] = true;
            depth[l] = node.depth + 1;
            depth[l + 1] = node.depth + 1;
            continue;
        }
        let st = &node.stats;
        if st.n.len() != k || st.s.len() != k || st.q.len() != k {
            return Err(bad("leaf statistics must have one entry per arm"));
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !finite(&st.s) || st.q.iter().any(|q| !(q.is_finite() && *q >= 0.0)) {
            return Err(bad("leaf statistics must be finite"));
        }
        let splittable = node.depth < cfg.max_depth;
        match node.phase {
            Phase::Frozen if splittable => return Err(bad("a frozen leaf above max_depth")),
            Phase::Sketch | Phase::Binned if !splittable => {
                return Err(bad("a splittable leaf at max_depth"))
            }
            _ => {}
        }
        let m = node.sketch_r.len();
        if node.phase == Phase::Sketch {
            if m as u64 != node.since
                || m as u64 >= cfg.sketch_size()
                || node.sketch_x.len() != m * d
                || node.sketch_arm.len() != m
                || node.sketch_arm.iter().any(|&a| a >= k)
                || !finite(&node.sketch_x)
                || !finite(&node.sketch_r)
            {
                return Err(bad("bad sketch"));
            }
        } else if m != 0 || !node.sketch_x.is_empty() || !node.sketch_arm.is_empty() {
            return Err(bad("only sketch leaves buffer rows"));
        }
        if node.phase == Phase::Binned {
            if node.thresholds.len() != d || node.bins.len() != d {
                return Err(bad("bad split candidates"));
            }
            for (t, b) in node.thresholds.iter().zip(&node.bins) {
                let increasing = t.windows(2).all(|w| w[0] < w[1]);
                if t.len() as u64 > cfg.n_quantiles || !increasing || !finite(t) {
                    return Err(bad("bad split candidates"));
                }
                let len = (t.len() + 1) * k;
                if b.n.len() != len || b.s.len() != len || b.q.len() != len {
                    return Err(bad("bad bin statistics"));
                }
                if !finite(&b.s) || b.q.iter().any(|q| !(q.is_finite() && *q >= 0.0)) {
                    return Err(bad("bin statistics must be finite"));
                }
            }
        } else if !node.thresholds.is_empty() || !node.bins.is_empty() {
            return Err(bad("only binned leaves have split candidates"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TreeConfig {
        TreeConfig {
            n_features: 2,
            max_depth: 2,
            min_samples_split: 20,
            split_threshold: 0.01,
            max_nodes: 7,
            n_quantiles: 4,
            prior: Prior::Gaussian,
        }
    }

    #[test]
    fn splits_where_the_best_arm_changes() {
        let mut tree = ContextTree::new(cfg(), 2, 1).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let (mut x, mut arms, mut rewards) = (vec![], vec![], vec![]);
        for i in 0..400 {
            let z = rng.next_f64() * 2.0 - 1.0;
            let a = i % 2;
            x.extend([z, rng.next_f64()]);
            arms.push(a);
            rewards.push(if (z > 0.0) == (a == 1) { 1.0 } else { 0.0 });
        }
        tree.partial_fit(&x, &arms, &rewards).unwrap();
        assert!(tree.nodes().len() > 1 && tree.nodes().len() <= 7);
        assert_eq!(tree.nodes()[0].feature, 0);
        let e = tree.expectations(&[0.9, 0.5, -0.9, 0.5]);
        assert!(e[1] > e[0] && e[2] > e[3], "{e:?}");
        let p = tree.propensities(&[0.9, 0.5], Some(&[1])).unwrap();
        assert_eq!(p, vec![0.0, 1.0]);
    }

    #[test]
    fn bad_input_changes_nothing() {
        let mut tree = ContextTree::new(cfg(), 2, 1).unwrap();
        assert!(tree.partial_fit(&[0.0, 1.0], &[0], &[f64::NAN]).is_err());
        assert!(tree.partial_fit(&[0.0, 1.0], &[2], &[1.0]).is_err());
        assert!(tree.partial_fit(&[0.0, 1.0, 2.0], &[0], &[1.0]).is_err());
        assert_eq!(tree.nodes()[0].stats, Stats::zeros(2));
        assert!(ContextTree::new(
            TreeConfig {
                min_samples_split: 1,
                ..cfg()
            },
            2,
            0
        )
        .is_err());
    }
}
