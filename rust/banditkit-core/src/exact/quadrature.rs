//! The shared-node quadrature behind the independent-arm win probabilities.
//!
//! For independent arms with densities p_j and CDFs F_j in one integration variable t,
//! `P_i = integral p_i(t) prod_{j != i} F_j(t) dt`. Every arm contributes panel breakpoints
//! placed around its own mode at its own scale (so standard deviations differing by 1e6 are
//! resolved alike); all arms share the merged panels' Gauss-Legendre nodes, so the cost is
//! O(K x nodes). The CDFs are not special functions here: they are the running integrals of
//! the densities on the same nodes (a spectral integration matrix inside each panel), and each
//! arm's density is normalised by its own quadrature total. That needs only the log-density
//! relative to the mode, which the families compute without cancellation, so Beta(1e6, 1e6)
//! is as accurate as Beta(2, 3). The products are plain prefix/suffix products: where they
//! underflow the integrand is below 1e-300 and irrelevant.
use std::sync::OnceLock;

/// Gauss-Legendre nodes per panel.
const ORDER: usize = 10;
/// A density is treated as zero once its log falls this far below its mode (e^-40 ~ 4e-18).
const DROP: f64 = 40.0;
/// Inner panels (log-density above -INNER_LEVEL) are INNER_STEP scales wide.
const INNER_LEVEL: f64 = 4.5;
const INNER_STEP: f64 = 2.0;
/// Inner panels away from the mode span at least this much log-density each.
const INNER_SPAN: f64 = 1.0;
/// Tail panels span about this much log-density each.
const TAIL_SPAN: f64 = 15.0;
/// Breakpoints of different arms closer than this fraction of their spacing are merged.
const MERGE_FRAC: f64 = 0.5;
/// Guard on the number of panels one arm contributes per side.
const MAX_STEPS: usize = 400;

/// Independent continuous arms described by log-densities in a shared variable t.
pub(super) trait Family: Sync {
    /// What every arm's log-density needs at a node (computed once per node).
    type Node: Copy;
    fn node(&self, t: f64) -> Self::Node;
    fn len(&self) -> usize;
    fn mode(&self, j: usize) -> f64;
    /// 1/sqrt(-l''(mode)): the width of the arm's peak in t.
    fn scale(&self, j: usize) -> f64;
    /// log p_j(t) - log p_j(mode) (so 0 at the mode, negative elsewhere).
    fn log_density(&self, j: usize, node: &Self::Node) -> f64;
    /// d/dt log p_j(t).
    fn slope(&self, j: usize, node: &Self::Node) -> f64;
}

struct Rule {
    nodes: [f64; ORDER],
    weights: [f64; ORDER],
    /// `cumulative_t[l][k] = integral_{-1}^{nodes[k]} lagrange_l(u) du`.
    cumulative_t: [[f64; ORDER]; ORDER],
}

/// Gauss-Legendre nodes and weights on [-1, 1] (Newton on the Legendre recurrence).
fn gauss_legendre() -> ([f64; ORDER], [f64; ORDER]) {
    let n = ORDER;
    let (mut x, mut w) = ([0.0; ORDER], [0.0; ORDER]);
    for i in 0..n {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, z);
            for k in 2..=n {
                let kf = k as f64;
                (p0, p1) = (p1, ((2.0 * kf - 1.0) * z * p1 - (kf - 1.0) * p0) / kf);
            }
            dp = n as f64 * (z * p1 - p0) / (z * z - 1.0);
            let dz = p1 / dp;
            z -= dz;
            if dz.abs() < 1e-16 {
                break;
            }
        }
        x[n - 1 - i] = z;
        w[n - 1 - i] = 2.0 / ((1.0 - z * z) * dp * dp);
    }
    (x, w)
}

fn rule() -> &'static Rule {
    static RULE: OnceLock<Rule> = OnceLock::new();
    RULE.get_or_init(|| {
        let (nodes, weights) = gauss_legendre();
        let lagrange = |l: usize, u: f64| {
            (0..ORDER)
                .filter(|&m| m != l)
                .map(|m| (u - nodes[m]) / (nodes[l] - nodes[m]))
                .product::<f64>()
        };
        let mut cumulative_t = [[0.0; ORDER]; ORDER];
        for (l, row) in cumulative_t.iter_mut().enumerate() {
            for (k, c) in row.iter_mut().enumerate() {
                // The Lagrange basis has degree ORDER-1, so Gauss-Legendre on [-1, x_k] is exact.
                let half = 0.5 * (nodes[k] + 1.0);
                *c = (0..ORDER)
                    .map(|m| half * weights[m] * lagrange(l, -1.0 + half * (nodes[m] + 1.0)))
                    .sum();
            }
        }
        Rule {
            nodes,
            weights,
            cumulative_t,
        }
    })
}

/// One arm's breakpoints `(position, local spacing)`, walking out from the mode until the
/// log-density falls below -DROP on each side. Returns (lowest, highest) breakpoint.
fn arm_breakpoints<F: Family>(fam: &F, j: usize, out: &mut Vec<(f64, f64)>) -> (f64, f64) {
    let (mode, scale) = (fam.mode(j), fam.scale(j));
    out.push((mode, INNER_STEP * scale));
    let mut ends = [mode; 2];
    for (side, dir) in [(0, -1.0), (1, 1.0)] {
        let mut t = mode;
        for _ in 0..MAX_STEPS {
            let node = fam.node(t);
            let level = fam.log_density(j, &node);
            if t != mode && (level.is_nan() || level <= -DROP) {
                break;
            }
            // Near the mode, steps of INNER_STEP scales, or wider where the log-density is
            // nearly flat (the long exponential tails of Beta(a, b) with tiny a or b in the
            // log-odds); beyond, steps spanning about TAIL_SPAN of log-density.
            let slope = fam.slope(j, &node).abs();
            let step = if level > -INNER_LEVEL {
                let wide = INNER_SPAN / slope;
                if t == mode || !wide.is_finite() {
                    INNER_STEP * scale
                } else {
                    (INNER_STEP * scale).max(wide)
                }
            } else {
                TAIL_SPAN / slope
            };
            t += dir * step;
            out.push((t, step));
        }
        ends[side] = t;
    }
    (ends[0], ends[1])
}

/// Win probabilities of the arms of `fam`, optionally against a point mass at `cut` (an
/// extra arm fixed at that value, which wins whenever every other arm is below it).
/// Returns (P for each arm of `fam`, P for the point mass); together they sum to ~1.
pub(super) fn prob_best<F: Family>(fam: &F, cut: Option<f64>) -> (Vec<f64>, f64) {
    let k = fam.len();
    let mut points = Vec::with_capacity(k * 16);
    let mut per_arm = Vec::with_capacity(k);
    let mut edges = Vec::with_capacity(k);
    for j in 0..k {
        let start = points.len();
        edges.push(arm_breakpoints(fam, j, &mut points));
        per_arm.push(start..points.len());
    }
    // Below `floor` some arm (or the point mass) is almost surely higher: arms entirely below
    // it never win, and are ~1 as a CDF factor wherever the integrand is not negligible.
    let floor = edges
        .iter()
        .map(|e| e.0)
        .fold(cut.unwrap_or(f64::NEG_INFINITY), f64::max);
    let live: Vec<usize> = (0..k).filter(|&j| edges[j].1 > floor).collect();
    let mut probs = vec![0.0; k];
    if live.is_empty() {
        return (probs, 1.0);
    }
    let mut marks: Vec<(f64, f64)> = live
        .iter()
        .flat_map(|&j| points[per_arm[j].clone()].to_vec())
        .collect();
    marks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut breaks: Vec<f64> = Vec::with_capacity(marks.len() + 1);
    let mut last_step = 0.0;
    for &(t, step) in &marks {
        match breaks.last() {
            Some(&prev) if t - prev < MERGE_FRAC * step.min(last_step) => {}
            _ => {
                breaks.push(t);
                last_step = step;
            }
        }
    }
    // The point mass needs its value as a panel edge; below the grid it cannot win.
    let cut_at = cut.filter(|&c| c > breaks[0]);
    if let Some(c) = cut_at {
        if c < *breaks.last().unwrap() {
            let pos = breaks.partition_point(|&b| b < c);
            if breaks[pos] != c {
                breaks.insert(pos, c);
            }
        } else {
            // Every live arm ends below the point mass.
            return (probs, 1.0);
        }
    }

    let rule = rule();
    let panels = breaks.len() - 1;
    let n_nodes = panels * ORDER;
    let r = live.len();
    // density[a * n_nodes + node], cdf likewise; then normalised per arm.
    let mut density = vec![0.0; r * n_nodes];
    let mut cdf = vec![0.0; r * n_nodes];
    let mut weight = vec![0.0; n_nodes];
    let mut first_above_cut = 0;
    let mut mass_cdf = vec![0.0; r];
    for p in 0..panels {
        let (lo, hi) = (breaks[p], breaks[p + 1]);
        let (mid, half) = (0.5 * (lo + hi), 0.5 * (hi - lo));
        if cut_at == Some(lo) {
            first_above_cut = p * ORDER;
        }
        for q in 0..ORDER {
            let idx = p * ORDER + q;
            weight[idx] = half * rule.weights[q];
            let t = mid + half * rule.nodes[q];
            let node = fam.node(t);
            for (a, &j) in live.iter().enumerate() {
                if t > edges[j].0 && t < edges[j].1 {
                    density[a * n_nodes + idx] = fam.log_density(j, &node).exp();
                }
            }
        }
    }
    let mut totals = vec![0.0; r];
    for a in 0..r {
        let dens = &density[a * n_nodes..(a + 1) * n_nodes];
        let out = &mut cdf[a * n_nodes..(a + 1) * n_nodes];
        let mut running = 0.0;
        for p in 0..panels {
            if cut_at.is_some() && p * ORDER == first_above_cut {
                mass_cdf[a] = running;
            }
            let (lo, hi) = (breaks[p], breaks[p + 1]);
            let half = 0.5 * (hi - lo);
            let d = &dens[p * ORDER..(p + 1) * ORDER];
            let cell = &mut out[p * ORDER..(p + 1) * ORDER];
            if d.iter().all(|&v| v == 0.0) {
                cell.fill(running);
                continue;
            }
            // Column by column: ORDER independent sums, which vectorise.
            let mut acc = [0.0; ORDER];
            let mut whole = 0.0;
            for (l, &v) in d.iter().enumerate() {
                for (a, c) in acc.iter_mut().zip(&rule.cumulative_t[l]) {
                    *a += c * v;
                }
                whole += rule.weights[l] * v;
            }
            for (o, a) in cell.iter_mut().zip(acc) {
                *o = running + half * a;
            }
            running += half * whole;
        }
        totals[a] = running;
    }
    for a in 0..r {
        let inv = 1.0 / totals[a];
        density[a * n_nodes..(a + 1) * n_nodes]
            .iter_mut()
            .for_each(|v| *v *= inv);
        cdf[a * n_nodes..(a + 1) * n_nodes]
            .iter_mut()
            .for_each(|v| *v *= inv);
        mass_cdf[a] *= inv;
    }

    let mut live_probs = vec![0.0; r];
    let mut prefix = vec![1.0; r + 1];
    for idx in first_above_cut..n_nodes {
        for a in 0..r {
            prefix[a + 1] = prefix[a] * cdf[a * n_nodes + idx];
        }
        if prefix[r] == 0.0 && (0..r).filter(|&a| cdf[a * n_nodes + idx] == 0.0).count() > 1 {
            continue;
        }
        let mut suffix = 1.0;
        for a in (0..r).rev() {
            live_probs[a] += weight[idx] * density[a * n_nodes + idx] * prefix[a] * suffix;
            suffix *= cdf[a * n_nodes + idx];
        }
    }
    for (a, &j) in live.iter().enumerate() {
        probs[j] = live_probs[a];
    }
    let mass = if cut_at.is_some() {
        mass_cdf.iter().product()
    } else {
        0.0
    };
    (probs, mass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_integrates_polynomials_and_cumulative_is_exact() {
        let r = rule();
        let total: f64 = r.weights.iter().sum();
        assert!((total - 2.0).abs() < 1e-14);
        // integral_{-1}^{x} u^5 du = (x^6 - 1) / 6 from values at the nodes.
        for k in 0..ORDER {
            let got: f64 = (0..ORDER)
                .map(|l| r.cumulative_t[l][k] * r.nodes[l].powi(5))
                .sum();
            let want = (r.nodes[k].powi(6) - 1.0) / 6.0;
            assert!((got - want).abs() < 1e-14, "{got} vs {want}");
        }
    }
}
