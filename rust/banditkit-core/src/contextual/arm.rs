//! One arm's ridge-regression state, kept current in O(d^2) per observation.
//!
//! Stored (all float64, symmetric matrices packed, see [`super::kernels`]):
//! - the exact Gram matrix `A = gamma^n l2_lambda I + sum_i w_i x_i x_i^T` (the ground truth).
//!   Rank-1 terms are queued and applied to `A` in one pass every [`CHECK_EVERY`] updates (a
//!   rank-k update reads `A` once instead of k times); [`ArmState::gram`] includes the queue;
//! - `b = sum_i w_i r_i x_i` and `theta = A^{-1} b`;
//! - `A^{-1} = inv_scale * m`: forgetting multiplies `inv_scale` by `1/gamma` in O(1).
//!
//! An observation enters by Sherman-Morrison; one leaving the sliding window is removed by a
//! guarded rank-1 downdate. `A^{-1}` is rebuilt from `A` by Cholesky every `refactor_every`
//! updates, when a downdate's denominator is too small, or when the residual
//! `||A u - x|| / ||x||` (checked every [`CHECK_EVERY`] updates) exceeds [`RESIDUAL_TOL`].
use super::kernels::{
    all_finite, dot, packed_len, quad_form, quad_forms, rank1, rank_k, row_start, sym_matvec,
    unpack,
};
use crate::linalg::cholesky_lower;
use std::borrow::Cow;

/// Updates between residual checks (and flushes of the queued Gram updates).
pub const CHECK_EVERY: u64 = 32;
/// Relative residual `||A u - x|| / ||x||` above which `A^{-1}` is rebuilt.
pub const RESIDUAL_TOL: f64 = 1e-7;
/// A downdate with `1 - w x^T A^{-1} x` below this is replaced by a rebuild: `1 / (1 - ...)`
/// amplifies the error already in `A^{-1}` (1e-6 let windows with W < d drift to 1e-4 in
/// `A A^{-1} - I`; with 1e-2 they stay at rounding level, and windows of W >= 2d essentially
/// never hit it since the average leverage is d / W).
pub const DOWNDATE_TOL: f64 = 1e-2;
/// Keep `inv_scale` within these bounds by folding it into `m`.
const SCALE_LIMIT: f64 = 1e100;
/// [`ArmState::try_add`] updates in place, without a trial copy, when the state's magnitude
/// bound is at most `SAFE_STATE`, the context and reward at most `SAFE_INPUT` in absolute value
/// and `gamma` at least `SAFE_GAMMA`: then every intermediate stays below about
/// `d^4 * 1e183`, far from overflow (each Sherman-Morrison term is bounded by Cauchy-Schwarz,
/// `u_i^2 <= (A^-1)_ii x^T A^-1 x`, and a downdate's growth by `1 / DOWNDATE_TOL`).
const SAFE_STATE: f64 = 1e30;
const SAFE_INPUT: f64 = 1e15;
const SAFE_GAMMA: f64 = 1e-30;

/// Hyper-parameters shared by every arm of a policy (validated by the policy).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmConfig {
    pub n_features: usize,
    pub l2_lambda: f64,
    /// 0: no window.
    pub window_size: usize,
    /// Forgetting factor in (0, 1]; 1 keeps everything.
    pub gamma: f64,
    pub refactor_every: u64,
}

impl ArmConfig {
    /// The default `refactor_every`: a rebuild costs about d^3 flops against d^2 per update,
    /// so every `max(2000, 50 d)` updates keeps it near 2% of the update cost. Measured: the
    /// Sherman-Morrison error does not grow with the number of updates (d = 387, features
    /// spanning 1e-2..1e2, cond(A) ~ 4e7: max |A A^{-1} - I| went 1.5e-9 -> 6.7e-10 from 4,000
    /// to 20,000 updates without any rebuild), so the rebuild is a safety net, not a need.
    pub fn default_refactor_every(d: usize) -> u64 {
        (50 * d as u64).max(2000)
    }
}

/// Per-arm state; see the module documentation.
#[derive(Debug, Clone)]
pub struct ArmState {
    cfg: ArmConfig,
    a: Vec<f64>,
    a_scale: f64,
    queued_x: Vec<f64>,
    queued_w: Vec<f64>,
    /// Upper bound on the diagonal the queued terms add to `A`.
    queued_diag: f64,
    b: Vec<f64>,
    m: Vec<f64>,
    inv_scale: f64,
    theta: Vec<f64>,
    hist_x: Vec<f64>,
    hist_r: Vec<f64>,
    hist_head: usize,
    /// Upper bound on `|x_i|` and `|r|` over the windowed history.
    hist_max: f64,
    pulls: u64,
    since_refactor: u64,
    refactors: u64,
    scratch: Vec<f64>,
    scratch2: Vec<f64>,
}

/// Plain serialisable snapshot of an [`ArmState`] (history oldest first). The Gram matrix is
/// flushed; `A^{-1} = a_inv_scale * a_inv_packed` keeps the lazy scale, so an arm rebuilt from
/// a snapshot scores bit for bit as the original.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmSnapshot {
    pub gram_packed: Vec<f64>,
    pub b: Vec<f64>,
    pub a_inv_packed: Vec<f64>,
    pub a_inv_scale: f64,
    pub theta: Vec<f64>,
    pub hist_x: Vec<f64>,
    pub hist_r: Vec<f64>,
    pub pulls: u64,
    pub since_refactor: u64,
    pub refactors: u64,
}

impl ArmState {
    pub fn new(cfg: ArmConfig) -> Self {
        let d = cfg.n_features;
        let mut a = vec![0.0; packed_len(d)];
        let mut m = vec![0.0; packed_len(d)];
        for i in 0..d {
            a[row_start(d, i)] = cfg.l2_lambda;
            m[row_start(d, i)] = 1.0 / cfg.l2_lambda;
        }
        ArmState {
            cfg,
            a,
            a_scale: 1.0,
            queued_x: Vec::with_capacity(2 * CHECK_EVERY as usize * d),
            queued_w: Vec::with_capacity(2 * CHECK_EVERY as usize),
            queued_diag: 0.0,
            b: vec![0.0; d],
            m,
            inv_scale: 1.0,
            theta: vec![0.0; d],
            hist_x: Vec::new(),
            hist_r: Vec::new(),
            hist_head: 0,
            hist_max: 0.0,
            pulls: 0,
            since_refactor: 0,
            refactors: 0,
            scratch: vec![0.0; d],
            scratch2: vec![0.0; d],
        }
    }

    pub fn config(&self) -> &ArmConfig {
        &self.cfg
    }
    pub fn n_features(&self) -> usize {
        self.cfg.n_features
    }
    pub fn pulls(&self) -> u64 {
        self.pulls
    }
    pub fn refactors(&self) -> u64 {
        self.refactors
    }
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }
    pub fn b(&self) -> &[f64] {
        &self.b
    }
    /// Observations currently in the window (all of them without a window).
    pub fn window_len(&self) -> usize {
        self.hist_r.len()
    }

    /// `theta^T x`: the expected reward.
    #[inline]
    pub fn mean(&self, x: &[f64]) -> f64 {
        dot(&self.theta, x)
    }

    /// `x^T A^{-1} x`: one pass over the packed inverse.
    #[inline]
    pub fn variance(&self, x: &[f64]) -> f64 {
        self.inv_scale * quad_form(&self.m, x)
    }

    /// `out[c] = x_c^T A^{-1} x_c` for a row-major block of contexts; each equals
    /// [`ArmState::variance`] bitwise.
    pub fn variances(&self, xs: &[f64], out: &mut [f64]) {
        quad_forms(&self.m, xs, out);
        out.iter_mut().for_each(|v| *v *= self.inv_scale);
    }

    /// Adds observation `(x, r)` if the new state is finite; otherwise returns false and
    /// leaves the arm exactly as it was. In place when the magnitudes make overflow impossible
    /// (see [`SAFE_STATE`]), else on a trial copy that is kept only if it is finite.
    pub fn try_add(&mut self, x: &[f64], r: f64) -> bool {
        if self.add_is_safe(x, r) {
            self.add(x, r);
            return true;
        }
        let mut trial = self.clone();
        trial.add(x, r);
        if !trial.is_finite() {
            return false;
        }
        *self = trial;
        true
    }

    /// Whether [`ArmState::add`] of `(x, r)` certainly keeps the state finite (see
    /// [`SAFE_STATE`]): a caller updating several arms together can then skip trial copies.
    pub fn add_is_safe(&self, x: &[f64], r: f64) -> bool {
        let input = max_abs(x).max(r.abs());
        input <= SAFE_INPUT && self.cfg.gamma >= SAFE_GAMMA && self.magnitude() <= SAFE_STATE
    }

    /// An upper bound (up to rounding) on the absolute value of every stored number: `A` and
    /// `A^{-1}` are positive semidefinite, so no entry exceeds the largest diagonal one.
    /// Infinite if any of them is not finite.
    pub fn magnitude(&self) -> f64 {
        let d = self.cfg.n_features;
        let gram = self.a_scale.abs() * max_abs_diag(&self.a, d) + self.queued_diag;
        let inv = self.inv_scale * max_abs_diag(&self.m, d);
        max_abs(&[
            max_abs(&self.b),
            max_abs(&self.theta),
            gram,
            inv,
            self.hist_max,
        ])
    }

    /// Every stored number is finite.
    pub fn is_finite(&self) -> bool {
        all_finite(&self.a) && all_finite(&self.m) && self.is_finite_but_matrices()
    }

    /// Every stored number but those of the two packed matrices is finite.
    fn is_finite_but_matrices(&self) -> bool {
        let finite = all_finite;
        finite(&self.b)
            && finite(&self.theta)
            && finite(&self.queued_x)
            && finite(&self.queued_w)
            && finite(&self.hist_x)
            && finite(&self.hist_r)
            && self.a_scale.is_finite()
            && self.inv_scale.is_finite()
            && self.inv_scale > 0.0
            && self.magnitude().is_finite()
    }

    /// Adds observation `(x, r)` without checking that the result is finite (see
    /// [`ArmState::try_add`]).
    pub fn add(&mut self, x: &[f64], r: f64) {
        let d = self.cfg.n_features;
        if self.cfg.window_size > 0 && self.hist_r.len() == self.cfg.window_size {
            self.remove_oldest();
        }
        if self.cfg.gamma < 1.0 {
            let g = self.cfg.gamma;
            // A <- gamma A (ridge included), b <- gamma b: theta is unchanged.
            self.a_scale *= g;
            self.queued_w.iter_mut().for_each(|w| *w *= g);
            self.b.iter_mut().for_each(|v| *v *= g);
            self.inv_scale /= g;
        }
        let mut u = std::mem::take(&mut self.scratch);
        let mut s = self.inv_scale * sym_matvec(&self.m, x, &mut u);
        if (self.pulls + 1) % CHECK_EVERY == 0
            && self.since_refactor >= CHECK_EVERY
            && self.residual(x, &u) > RESIDUAL_TOL
            && self.refactor()
        {
            s = self.inv_scale * sym_matvec(&self.m, x, &mut u);
        }
        // Sherman-Morrison: A^{-1} -= u u^T / (1 + x^T u); theta moves along u in O(d).
        let denom = 1.0 + s;
        let err = r - dot(x, &self.theta);
        rank1(&mut self.m, &u, -self.inv_scale / denom);
        let step = self.inv_scale * err / denom;
        for (t, ui) in self.theta.iter_mut().zip(&u) {
            *t += step * ui;
        }
        self.scratch = u;
        for (bi, xi) in self.b.iter_mut().zip(x) {
            *bi += r * xi;
        }
        self.queue_gram(1.0, x);
        if self.cfg.window_size > 0 {
            self.push_history(x, r);
        }
        self.pulls += 1;
        self.since_refactor += 1;
        if self.since_refactor >= self.cfg.refactor_every {
            self.refactor();
        }
        if !(self.inv_scale < SCALE_LIMIT && self.inv_scale > 1.0 / SCALE_LIMIT) {
            let s = self.inv_scale;
            self.m.iter_mut().for_each(|v| *v *= s);
            self.inv_scale = 1.0;
        }
        debug_assert_eq!(self.theta.len(), d);
    }

    /// Removes the oldest windowed observation, whose weight is now gamma^(W-1).
    fn remove_oldest(&mut self) {
        let d = self.cfg.n_features;
        let w = self.cfg.gamma.powi(self.cfg.window_size as i32 - 1);
        let h = self.hist_head;
        let xo = std::mem::take(&mut self.hist_x);
        let x_old = &xo[h * d..(h + 1) * d];
        let r_old = self.hist_r[h];
        let mut u = std::mem::take(&mut self.scratch2);
        let s = self.inv_scale * sym_matvec(&self.m, x_old, &mut u);
        let denom = 1.0 - w * s;
        let err = dot(x_old, &self.theta) - r_old;
        for (bi, xi) in self.b.iter_mut().zip(x_old) {
            *bi -= w * r_old * xi;
        }
        self.queue_gram(-w, x_old);
        self.hist_x = xo;
        if denom > DOWNDATE_TOL {
            // A^{-1} += w u u^T / (1 - w x^T u); theta += w u (x^T theta - r) / (1 - w x^T u).
            rank1(&mut self.m, &u, w * self.inv_scale / denom);
            let step = w * self.inv_scale * err / denom;
            for (t, ui) in self.theta.iter_mut().zip(&u) {
                *t += step * ui;
            }
            self.scratch2 = u;
        } else {
            self.scratch2 = u;
            self.refactor();
        }
    }

    fn push_history(&mut self, x: &[f64], r: f64) {
        let d = self.cfg.n_features;
        self.hist_max = x
            .iter()
            .fold(self.hist_max.max(r.abs()), |m, v| m.max(v.abs()));
        if self.hist_r.len() < self.cfg.window_size {
            self.hist_x.extend_from_slice(x);
            self.hist_r.push(r);
        } else {
            let h = self.hist_head;
            self.hist_x[h * d..(h + 1) * d].copy_from_slice(x);
            self.hist_r[h] = r;
            self.hist_head = (h + 1) % self.cfg.window_size;
        }
    }

    fn queue_gram(&mut self, w: f64, x: &[f64]) {
        if self.queued_w.len() == 2 * CHECK_EVERY as usize {
            self.flush_gram();
        }
        self.queued_w.push(w);
        self.queued_x.extend_from_slice(x);
        self.queued_diag += w.abs() * x.iter().fold(0.0_f64, |m, v| m.max(v * v));
    }

    /// Applies the pending Gram updates now if that is exact: without forgetting, an entry
    /// gets the same additions in the same order whenever they are applied (with `gamma < 1`
    /// the lazy scale would round differently, so those stay pending). Returns whether any
    /// update was pending and applied.
    pub fn settle_gram(&mut self) -> bool {
        if self.cfg.gamma != 1.0 || (self.a_scale == 1.0 && self.queued_w.is_empty()) {
            return false;
        }
        self.flush_gram();
        true
    }

    /// Whether [`ArmState::settle_gram`] would do anything.
    pub fn gram_settles(&self) -> bool {
        self.cfg.gamma == 1.0 && !(self.a_scale == 1.0 && self.queued_w.is_empty())
    }

    /// Applies the pending scale and rank-1 terms to `A` in one pass over it.
    fn flush_gram(&mut self) {
        let d = self.cfg.n_features;
        if self.a_scale == 1.0 && self.queued_w.is_empty() {
            return;
        }
        rank_k(&mut self.a, d, self.a_scale, &self.queued_w, &self.queued_x);
        self.a_scale = 1.0;
        self.queued_w.clear();
        self.queued_x.clear();
        self.queued_diag = 0.0;
    }

    /// `||A u - x|| / ||x||` with `u = inv_scale * raw_u`.
    fn residual(&mut self, x: &[f64], raw_u: &[f64]) -> f64 {
        self.flush_gram();
        let mut au = std::mem::take(&mut self.scratch2);
        sym_matvec(&self.a, raw_u, &mut au);
        let mut num = 0.0;
        for (v, xi) in au.iter().zip(x) {
            let e = self.inv_scale * v - xi;
            num += e * e;
        }
        self.scratch2 = au;
        let den = dot(x, x);
        if den > 0.0 {
            (num / den).sqrt()
        } else {
            0.0
        }
    }

    /// Rebuilds `A^{-1}` and `theta` from the exact `A` by Cholesky. Returns false (keeping
    /// the current inverse) if `A` is not numerically positive definite or its inverse is not
    /// finite.
    pub fn refactor(&mut self) -> bool {
        self.flush_gram();
        let d = self.cfg.n_features;
        let rebuilt = cholesky_lower(&unpack(&self.a, d), d).and_then(|l| {
            let m = inverse_from_cholesky(&l, d);
            let mut theta = vec![0.0; d];
            sym_matvec(&m, &self.b, &mut theta);
            let finite = m.iter().chain(&theta).all(|v| v.is_finite());
            finite.then_some((m, theta))
        });
        let Some((m, theta)) = rebuilt else {
            self.since_refactor = 0;
            return false;
        };
        self.m = m;
        self.inv_scale = 1.0;
        self.theta = theta;
        self.since_refactor = 0;
        self.refactors += 1;
        true
    }

    /// Exact Gram matrix `A`, full row-major (queued terms included).
    pub fn gram(&self) -> Vec<f64> {
        let mut copy = self.clone();
        copy.flush_gram();
        unpack(&copy.a, self.cfg.n_features)
    }

    /// `A^{-1}`, full row-major.
    pub fn a_inv(&self) -> Vec<f64> {
        let mut full = unpack(&self.m, self.cfg.n_features);
        full.iter_mut().for_each(|v| *v *= self.inv_scale);
        full
    }

    /// 1-norm condition estimate `||A||_1 ||A^{-1}||_1` from the maintained inverse.
    pub fn condition_estimate(&self) -> f64 {
        let d = self.cfg.n_features;
        let norm1 = |full: &[f64]| {
            (0..d)
                .map(|j| (0..d).map(|i| full[i * d + j].abs()).sum::<f64>())
                .fold(0.0, f64::max)
        };
        norm1(&self.gram()) * norm1(&self.a_inv())
    }

    /// The exact Gram matrix `A`, packed: borrowed when no update is pending.
    pub fn gram_packed(&self) -> Cow<'_, [f64]> {
        if self.a_scale == 1.0 && self.queued_w.is_empty() {
            return Cow::Borrowed(&self.a);
        }
        let mut a = self.a.clone();
        let d = self.cfg.n_features;
        rank_k(&mut a, d, self.a_scale, &self.queued_w, &self.queued_x);
        Cow::Owned(a)
    }

    /// `(M, s)` with `A^{-1} = s M`, `M` packed.
    pub fn a_inv_packed(&self) -> (&[f64], f64) {
        (&self.m, self.inv_scale)
    }

    pub fn since_refactor(&self) -> u64 {
        self.since_refactor
    }

    /// The windowed observations, oldest first: contexts (row-major) and rewards.
    pub fn window(&self) -> (Vec<f64>, Vec<f64>) {
        let d = self.cfg.n_features;
        let n = self.hist_r.len();
        let mut hist_x = Vec::with_capacity(n * d);
        let mut hist_r = Vec::with_capacity(n);
        for k in 0..n {
            let slot = if n == self.cfg.window_size {
                (self.hist_head + k) % n
            } else {
                k
            };
            hist_x.extend_from_slice(&self.hist_x[slot * d..(slot + 1) * d]);
            hist_r.push(self.hist_r[slot]);
        }
        (hist_x, hist_r)
    }

    pub fn snapshot(&self) -> ArmSnapshot {
        let (hist_x, hist_r) = self.window();
        ArmSnapshot {
            gram_packed: self.gram_packed().into_owned(),
            b: self.b.clone(),
            a_inv_packed: self.m.clone(),
            a_inv_scale: self.inv_scale,
            theta: self.theta.clone(),
            hist_x,
            hist_r,
            pulls: self.pulls,
            since_refactor: self.since_refactor,
            refactors: self.refactors,
        }
    }

    /// Rebuilds an arm from a snapshot; `None` if the lengths do not fit `cfg` or a number is
    /// not finite.
    pub fn from_snapshot(cfg: ArmConfig, s: ArmSnapshot) -> Option<Self> {
        let finite = all_finite(&s.gram_packed) && all_finite(&s.a_inv_packed);
        Self::from_snapshot_finite_matrices(cfg, s).filter(|_| finite)
    }

    /// [`ArmState::from_snapshot`] for a caller that has already checked that both packed
    /// matrices are finite (a loader checks each piece while it is in cache after copying it):
    /// every other check is made, and the matrices, the bulk of a big arm, are not scanned again.
    pub fn from_snapshot_finite_matrices(cfg: ArmConfig, s: ArmSnapshot) -> Option<Self> {
        debug_assert!(all_finite(&s.gram_packed) && all_finite(&s.a_inv_packed));
        let d = cfg.n_features;
        let p = packed_len(d);
        let n = s.hist_r.len();
        let hist_ok = if cfg.window_size == 0 {
            n == 0
        } else {
            n <= cfg.window_size
        };
        if s.gram_packed.len() != p
            || s.a_inv_packed.len() != p
            || s.b.len() != d
            || s.theta.len() != d
            || s.hist_x.len() != n * d
            || !hist_ok
            || !(s.a_inv_scale.is_finite() && s.a_inv_scale > 0.0)
        {
            return None;
        }
        // Built directly (no fresh arm first): loading a big model is one copy of its arrays.
        let hist_max = s
            .hist_x
            .iter()
            .chain(&s.hist_r)
            .fold(0.0_f64, |m, v| m.max(v.abs()));
        let arm = ArmState {
            cfg,
            a: s.gram_packed,
            a_scale: 1.0,
            queued_x: Vec::with_capacity(2 * CHECK_EVERY as usize * d),
            queued_w: Vec::with_capacity(2 * CHECK_EVERY as usize),
            queued_diag: 0.0,
            b: s.b,
            m: s.a_inv_packed,
            inv_scale: s.a_inv_scale,
            theta: s.theta,
            hist_x: s.hist_x,
            hist_r: s.hist_r,
            hist_head: 0, // the window is stored oldest first
            hist_max,
            pulls: s.pulls,
            since_refactor: s.since_refactor,
            refactors: s.refactors,
            scratch: vec![0.0; d],
            scratch2: vec![0.0; d],
        };
        arm.is_finite_but_matrices().then_some(arm)
    }
}

/// The largest `|v|`, or infinity if a value is NaN or infinite. Four independent lanes with a
/// comparison that skips NaN (vector max instructions, no dependency chain); NaN and infinities
/// are caught by a separate `|v| <= MAX` test.
fn max_abs(v: &[f64]) -> f64 {
    let mut lanes = [0.0_f64; 4];
    let mut finite = true;
    let chunks = v.chunks_exact(4);
    for &x in chunks.remainder() {
        let a = x.abs();
        lanes[0] = if a > lanes[0] { a } else { lanes[0] };
        finite &= a <= f64::MAX;
    }
    for c in chunks {
        for l in 0..4 {
            let a = c[l].abs();
            lanes[l] = if a > lanes[l] { a } else { lanes[l] };
            finite &= a <= f64::MAX;
        }
    }
    if finite {
        lanes.into_iter().fold(0.0, f64::max)
    } else {
        f64::INFINITY
    }
}

/// [`max_abs`] of the diagonal of a packed symmetric matrix (row i starts `d - i` entries after
/// row i - 1).
fn max_abs_diag(p: &[f64], d: usize) -> f64 {
    let (mut m, mut finite, mut at) = (0.0_f64, true, 0);
    for i in 0..d {
        let a = p[at].abs();
        m = if a > m { a } else { m };
        finite &= a <= f64::MAX;
        at += d - i;
    }
    if finite {
        m
    } else {
        f64::INFINITY
    }
}

/// Packed `A^{-1} = L^{-T} L^{-1}` from the lower Cholesky factor `l` (full row-major).
fn inverse_from_cholesky(l: &[f64], d: usize) -> Vec<f64> {
    // Rows of X = L^{-1} (lower triangular): X[i,:] = (e_i - sum_{k<i} L[i,k] X[k,:]) / L[i,i].
    let mut x = vec![0.0; d * d];
    for i in 0..d {
        let (done, rest) = x.split_at_mut(i * d);
        let row = &mut rest[..d];
        for k in 0..i {
            let lik = l[i * d + k];
            if lik != 0.0 {
                for (r, xk) in row[..=k].iter_mut().zip(&done[k * d..k * d + k + 1]) {
                    *r -= lik * xk;
                }
            }
        }
        row[i] += 1.0;
        let inv_diag = 1.0 / l[i * d + i];
        row[..=i].iter_mut().for_each(|v| *v *= inv_diag);
    }
    // A^{-1} = X^T X = sum_k X[k,:]^T X[k,:]; row k of X is nonzero on 0..=k only.
    let mut p = vec![0.0; packed_len(d)];
    for k in 0..d {
        let xk = &x[k * d..k * d + k + 1];
        for i in 0..=k {
            let off = row_start(d, i);
            let c = xk[i];
            for (pv, xj) in p[off..off + k + 1 - i].iter_mut().zip(&xk[i..]) {
                *pv += c * xj;
            }
        }
    }
    p
}
