//! One member's weighted ridge fit, in the dual (n x n) or primal (p x p) form, into a
//! workspace that is allocated once per thread and reused for every member.
//!
//! The data are shifted once by their unweighted means (when fitting an intercept), which
//! changes no coefficient (a weighted centring removes any shift) but keeps the centred Gram
//! `G_ij - g_i - g_j + c` free of cancellation when the features have large offsets.

/// Four-accumulator dot product: the same order of operations on every thread count.
#[inline(always)]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// In-place Cholesky `A = U^T U` of the symmetric m x m row-major matrix in `a`, whose upper
/// triangle is given; `U` replaces it. Right-looking:
/// each step updates the trailing rows by contiguous multiply-adds with no dependency chain,
/// which vectorise (a dot-product formulation waits on one accumulator). False if `a` is not
/// positive definite.
#[inline(always)]
fn cholesky_in_place(a: &mut [f64], m: usize) -> bool {
    const PANEL: usize = 4;
    let mut k0 = 0;
    while k0 < m {
        let kb = PANEL.min(m - k0);
        // the panel's rows, unblocked
        for k in k0..k0 + kb {
            let (head, tail) = a.split_at_mut((k + 1) * m);
            let row_k = &mut head[k * m..];
            let d = row_k[k];
            if !(d > 0.0 && d.is_finite()) {
                return false;
            }
            let d = d.sqrt();
            row_k[k] = d;
            for v in &mut row_k[k + 1..] {
                *v /= d;
            }
            let row_k = &head[k * m..];
            for (off, row_i) in tail.chunks_exact_mut(m).take(k0 + kb - k - 1).enumerate() {
                let i = k + 1 + off;
                let f = row_k[i];
                for (v, u) in row_i[i..].iter_mut().zip(&row_k[i..]) {
                    *v -= f * u;
                }
            }
        }
        // the trailing rows, by the whole panel at once: one pass over them per panel
        let (head, tail) = a.split_at_mut((k0 + kb) * m);
        let panel = &head[k0 * m..];
        for (off, row_i) in tail.chunks_exact_mut(m).enumerate() {
            let i = k0 + kb + off;
            if kb == PANEL {
                let (r0, r1, r2, r3) = (
                    &panel[i..m],
                    &panel[m + i..2 * m],
                    &panel[2 * m + i..3 * m],
                    &panel[3 * m + i..4 * m],
                );
                let (f0, f1, f2, f3) = (r0[0], r1[0], r2[0], r3[0]);
                for ((((v, a0), a1), a2), a3) in
                    row_i[i..].iter_mut().zip(r0).zip(r1).zip(r2).zip(r3)
                {
                    *v -= (f0 * a0 + f1 * a1) + (f2 * a2 + f3 * a3);
                }
            } else {
                for t in 0..kb {
                    let r = &panel[t * m + i..(t + 1) * m];
                    let f = r[0];
                    for (v, u) in row_i[i..].iter_mut().zip(r) {
                        *v -= f * u;
                    }
                }
            }
        }
        k0 += kb;
    }
    true
}

/// Solves `U^T U z = r` in place, `U` from [`cholesky_in_place`].
#[inline(always)]
fn cholesky_solve(u: &[f64], m: usize, z: &mut [f64]) {
    for k in 0..m {
        let zk = z[k] / u[k * m + k];
        z[k] = zk;
        for (zi, uv) in z[k + 1..m].iter_mut().zip(&u[k * m + k + 1..(k + 1) * m]) {
            *zi -= uv * zk;
        }
    }
    for i in (0..m).rev() {
        let t = dot(&u[i * m + i + 1..(i + 1) * m], &z[i + 1..m]);
        z[i] = (z[i] - t) / u[i * m + i];
    }
}

/// The data shared by every member: shifted features and targets, and (dual form) their Gram.
pub struct Shared<'a> {
    pub x: Vec<f64>, // n x p, shifted by `x_shift` when fitting an intercept
    pub y: Vec<f64>,
    pub x_shift: Vec<f64>,
    pub y_shift: f64,
    pub gram: Vec<f64>, // n x n (dual form only)
    pub n: usize,
    pub p: usize,
    pub alpha: f64,
    pub fit_intercept: bool,
    pub dual: bool,
    _data: std::marker::PhantomData<&'a ()>,
}

impl Shared<'_> {
    pub fn new(x: &[f64], y: &[f64], n: usize, p: usize, alpha: f64, fit_intercept: bool) -> Self {
        let (mut xs, mut ys) = (x.to_vec(), y.to_vec());
        let mut x_shift = vec![0.0; p];
        let mut y_shift = 0.0;
        if fit_intercept {
            for row in xs.chunks_exact(p) {
                for (s, v) in x_shift.iter_mut().zip(row) {
                    *s += v;
                }
            }
            x_shift.iter_mut().for_each(|s| *s /= n as f64);
            y_shift = ys.iter().sum::<f64>() / n as f64;
            for row in xs.chunks_exact_mut(p) {
                for (v, s) in row.iter_mut().zip(&x_shift) {
                    *v -= s;
                }
            }
            ys.iter_mut().for_each(|v| *v -= y_shift);
        }
        let dual = p > n;
        let mut gram = Vec::new();
        if dual {
            gram = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..=i {
                    let g = dot(&xs[i * p..(i + 1) * p], &xs[j * p..(j + 1) * p]);
                    gram[i * n + j] = g;
                    gram[j * n + i] = g;
                }
            }
        }
        Shared {
            x: xs,
            y: ys,
            x_shift,
            y_shift,
            gram,
            n,
            p,
            alpha,
            fit_intercept,
            dual,
            _data: std::marker::PhantomData,
        }
    }
}

/// Per-thread scratch: `counts` (n), the active rows, the system matrix (m x m dual, p x p
/// primal), vectors, and the member's coefficients in f64.
pub struct Workspace {
    pub counts: Vec<f64>,
    active: Vec<usize>,
    mat: Vec<f64>,
    vec_a: Vec<f64>,
    vec_b: Vec<f64>,
    sqrt_w: Vec<f64>,
    pub coef: Vec<f64>,
    /// Dual form: the member's row weights of its coefficients (zero for rows not drawn).
    pub u: Vec<f64>,
    /// A block's `u` (dual) and coefficients, members x n and members x p.
    pub u_block: Vec<f64>,
    pub coef_block: Vec<f64>,
}

impl Workspace {
    pub fn new(s: &Shared<'_>, block: usize) -> Self {
        let k = if s.dual { s.n } else { s.p };
        Workspace {
            counts: vec![0.0; s.n],
            active: Vec::with_capacity(s.n),
            mat: vec![0.0; k * k],
            vec_a: vec![0.0; k.max(s.n)],
            vec_b: vec![0.0; s.n.max(s.p)],
            sqrt_w: vec![0.0; s.n],
            coef: vec![0.0; s.p],
            u: vec![0.0; s.n],
            u_block: if s.dual {
                vec![0.0; block * s.n]
            } else {
                Vec::new()
            },
            coef_block: vec![0.0; block * s.p],
        }
    }
}

/// Fits the member whose weights are in `ws.counts`. Primal form: the coefficients land in
/// `ws.coef`; dual form: their row weights in `ws.u` (see [`combine_rows`]). Returns the
/// intercept but for its `- x_shift . coef` term. None if the system is not positive definite.
///
/// On x86-64 with AVX2 the same code is compiled a second time with AVX2 enabled and chosen at
/// run time: wider vectors, the same operations in the same order (Rust never fuses a multiply
/// and an add on its own), so both paths give the same bits.
pub fn fit_member(s: &Shared<'_>, ws: &mut Workspace) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available on this CPU (checked just above).
            return unsafe { fit_member_avx2(s, ws) };
        }
    }
    fit_member_portable(s, ws)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fit_member_avx2(s: &Shared<'_>, ws: &mut Workspace) -> Option<f64> {
    fit_member_portable(s, ws)
}

#[inline(always)]
fn fit_member_portable(s: &Shared<'_>, ws: &mut Workspace) -> Option<f64> {
    ws.active.clear();
    ws.active.extend((0..s.n).filter(|&i| ws.counts[i] > 0.0));
    let total: f64 = ws.active.iter().map(|&i| ws.counts[i]).sum();
    let ybar = if s.fit_intercept {
        ws.active
            .iter()
            .map(|&i| ws.counts[i] * s.y[i])
            .sum::<f64>()
            / total
    } else {
        0.0
    };
    let xbar_dot_coef = if s.dual {
        dual(s, ws, total, ybar)?
    } else {
        primal(s, ws, total, ybar)?
    };
    // intercept = ybar - xbar . coef in the caller's (unshifted) coordinates, but for the
    // term - x_shift . coef, which the caller subtracts once the coefficients exist
    Some(ybar + s.y_shift - xbar_dot_coef)
}

/// Dual form: the coefficients of several members, `coef[b] = sum_i u[b][i] x_i`, as one
/// product: each row of X is read once per group of members while their coefficient rows stay
/// in cache. Each member's sum runs over its rows in increasing order, as a lone member's would.
pub fn combine_rows(s: &Shared<'_>, u: &[f64], coef: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available on this CPU (checked just above).
            return unsafe { combine_rows_avx2(s, u, coef) };
        }
    }
    combine_rows_portable(s, u, coef)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn combine_rows_avx2(s: &Shared<'_>, u: &[f64], coef: &mut [f64]) {
    combine_rows_portable(s, u, coef)
}

#[inline(always)]
fn combine_rows_portable(s: &Shared<'_>, u: &[f64], coef: &mut [f64]) {
    const GROUP: usize = 8;
    let (n, p) = (s.n, s.p);
    for (ug, cg) in u.chunks(GROUP * n).zip(coef.chunks_mut(GROUP * p)) {
        cg.fill(0.0);
        for i in 0..n {
            let xi = &s.x[i * p..(i + 1) * p];
            for (ub, cb) in ug.chunks_exact(n).zip(cg.chunks_exact_mut(p)) {
                let f = ub[i];
                if f != 0.0 {
                    for (c, x) in cb.iter_mut().zip(xi) {
                        *c += f * x;
                    }
                }
            }
        }
    }
}

/// Dual form on the m active rows: K = S Gc S + alpha I, K a = S (y - ybar), then
/// coef = sum_a u_a x_a with u = S a minus its weighted mean. Returns xbar . coef.
#[inline(always)]
fn dual(s: &Shared<'_>, ws: &mut Workspace, total: f64, ybar: f64) -> Option<f64> {
    let (n, m) = (s.n, ws.active.len());
    let act = &ws.active;
    let w = &ws.counts;
    let g = &mut ws.vec_b; // g_i = x_i . xbar over active rows, then c = xbar . xbar
    let mut c = 0.0;
    if s.fit_intercept {
        // full rows against the dense weights (zero where not drawn): contiguous, vectorised
        for (a, &i) in act.iter().enumerate() {
            g[a] = dot(&s.gram[i * n..(i + 1) * n], w) / total;
        }
        c = act
            .iter()
            .enumerate()
            .map(|(a, &i)| w[i] * g[a])
            .sum::<f64>()
            / total;
    } else {
        g[..m].fill(0.0);
    }
    let sw = &mut ws.sqrt_w;
    for (a, &i) in act.iter().enumerate() {
        sw[a] = w[i].sqrt();
    }
    // the upper triangle, row by row (what `cholesky_in_place` reads)
    let k = &mut ws.mat[..m * m];
    for (a, &i) in act.iter().enumerate() {
        let row = &s.gram[i * n..(i + 1) * n];
        let (si, ga) = (sw[a], g[a]);
        let krow = &mut k[a * m + a..(a + 1) * m];
        for (((kv, &j), &gb), &sj) in krow.iter_mut().zip(&act[a..]).zip(&g[a..m]).zip(&sw[a..m]) {
            *kv = si * sj * (row[j] - ga - gb + c);
        }
        k[a * m + a] += s.alpha;
    }
    if !cholesky_in_place(k, m) {
        return None;
    }
    let z = &mut ws.vec_a[..m];
    for (a, &i) in act.iter().enumerate() {
        z[a] = w[i].sqrt() * (s.y[i] - ybar);
    }
    cholesky_solve(k, m, z);
    // v = S a; u = v - w sum(v) / W (the centring's contribution, when fitting an intercept)
    let mut vsum = 0.0;
    for (a, &i) in act.iter().enumerate() {
        z[a] *= w[i].sqrt();
        vsum += z[a];
    }
    if s.fit_intercept {
        for (a, &i) in act.iter().enumerate() {
            z[a] -= w[i] * vsum / total;
        }
    }
    // coef = sum_a u_a x_a is formed for a block of members at once (`combine_rows`)
    ws.u.fill(0.0);
    for (a, &i) in act.iter().enumerate() {
        ws.u[i] = z[a];
    }
    if !s.fit_intercept {
        return Some(0.0);
    }
    // xbar . coef = sum_a w_a (x_a . coef) / W, with x_a . coef = sum_b G_ab u_b
    let mut xc = 0.0;
    for &i in act.iter() {
        xc += w[i] * dot(&s.gram[i * n..(i + 1) * n], &ws.u);
    }
    Some(xc / total)
}

/// Primal form: A = sum_a w_a r_a r_a^T + alpha I with r_a = x_a - xbar, A coef = sum w r (y - ybar).
#[inline(always)]
fn primal(s: &Shared<'_>, ws: &mut Workspace, total: f64, ybar: f64) -> Option<f64> {
    let p = s.p;
    let act = &ws.active;
    let w = &ws.counts;
    let xbar = &mut ws.vec_b[..p];
    xbar.fill(0.0);
    if s.fit_intercept {
        for &i in act.iter() {
            for (xb, xv) in xbar.iter_mut().zip(&s.x[i * p..(i + 1) * p]) {
                *xb += w[i] * xv;
            }
        }
        xbar.iter_mut().for_each(|v| *v /= total);
    }
    let a = &mut ws.mat[..p * p];
    a.fill(0.0);
    let rhs = &mut ws.coef;
    rhs.fill(0.0);
    let r = &mut ws.vec_a[..p];
    for &i in act.iter() {
        for ((rv, xv), xb) in r.iter_mut().zip(&s.x[i * p..(i + 1) * p]).zip(xbar.iter()) {
            *rv = xv - xb;
        }
        let wi = w[i];
        let yi = wi * (s.y[i] - ybar);
        for row in 0..p {
            let f = wi * r[row];
            for (av, rv) in a[row * p..row * p + row + 1].iter_mut().zip(&r[..=row]) {
                *av += f * rv;
            }
            rhs[row] += yi * r[row];
        }
    }
    for d in 0..p {
        a[d * p + d] += s.alpha;
        for j in 0..d {
            a[j * p + d] = a[d * p + j]; // the upper triangle, for `cholesky_in_place`
        }
    }
    if !cholesky_in_place(a, p) {
        return None;
    }
    cholesky_solve(a, p, rhs);
    Some(dot(xbar, rhs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        let mut a = vec![4.0, 2.0, 0.0, 3.0];
        assert!(cholesky_in_place(&mut a, 2));
        let mut z = vec![2.0, 3.0];
        cholesky_solve(&a, 2, &mut z);
        // [[4, 2], [2, 3]] x = [2, 3] -> x = [0, 1]
        assert!((z[0] - 0.0).abs() < 1e-14 && (z[1] - 1.0).abs() < 1e-14);
    }
}
