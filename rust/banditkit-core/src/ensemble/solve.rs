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

/// In-place lower Cholesky of the m x m row-major matrix in `a` (lower triangle read and
/// written); false if it is not positive definite.
#[inline(always)]
fn cholesky_in_place(a: &mut [f64], m: usize) -> bool {
    for i in 0..m {
        for j in 0..=i {
            let (head, tail) = a.split_at_mut(i * m);
            let row_i = &tail[..m];
            let row_j = if j == i {
                row_i
            } else {
                &head[j * m..j * m + m]
            };
            let s = row_i[j] - dot(&row_i[..j], &row_j[..j]);
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return false;
                }
                tail[i] = s.sqrt();
            } else {
                tail[j] = s / head[j * m + j];
            }
        }
    }
    true
}

/// Solves `L L^T z = r` in place, `L` from [`cholesky_in_place`].
#[inline(always)]
fn cholesky_solve(l: &[f64], m: usize, z: &mut [f64]) {
    for i in 0..m {
        z[i] = (z[i] - dot(&l[i * m..i * m + i], &z[..i])) / l[i * m + i];
    }
    for i in (0..m).rev() {
        z[i] /= l[i * m + i];
        let zi = z[i];
        for (zk, lk) in z[..i].iter_mut().zip(&l[i * m..i * m + i]) {
            *zk -= lk * zi;
        }
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
    pub coef: Vec<f64>,
}

impl Workspace {
    pub fn new(s: &Shared<'_>) -> Self {
        let k = if s.dual { s.n } else { s.p };
        Workspace {
            counts: vec![0.0; s.n],
            active: Vec::with_capacity(s.n),
            mat: vec![0.0; k * k],
            vec_a: vec![0.0; k.max(s.n)],
            vec_b: vec![0.0; s.n.max(s.p)],
            coef: vec![0.0; s.p],
        }
    }
}

/// Fits the member whose weights are in `ws.counts`; the coefficients land in `ws.coef` and
/// the intercept is returned. None if the system is not positive definite (overflow).
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
    if !s.fit_intercept {
        return Some(0.0);
    }
    // intercept = ybar - xbar . coef, back in the caller's (unshifted) coordinates
    Some(ybar + s.y_shift - xbar_dot_coef - dot(&s.x_shift, &ws.coef))
}

/// Dual form on the m active rows: K = S Gc S + alpha I, K a = S (y - ybar), then
/// coef = sum_a u_a x_a with u = S a minus its weighted mean. Returns xbar . coef.
#[inline(always)]
fn dual(s: &Shared<'_>, ws: &mut Workspace, total: f64, ybar: f64) -> Option<f64> {
    let (n, p, m) = (s.n, s.p, ws.active.len());
    let act = &ws.active;
    let w = &ws.counts;
    let g = &mut ws.vec_b; // g_i = x_i . xbar over active rows, then c = xbar . xbar
    let mut c = 0.0;
    if s.fit_intercept {
        for (a, &i) in act.iter().enumerate() {
            let row = &s.gram[i * n..(i + 1) * n];
            g[a] = act.iter().map(|&k| w[k] * row[k]).sum::<f64>() / total;
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
    let k = &mut ws.mat[..m * m];
    for (a, &i) in act.iter().enumerate() {
        let si = w[i].sqrt();
        let row = &s.gram[i * n..(i + 1) * n];
        let (ga, krow) = (g[a], &mut k[a * m..a * m + a + 1]);
        for ((kv, &j), &gb) in krow.iter_mut().zip(&act[..=a]).zip(&g[..=a]) {
            *kv = si * w[j].sqrt() * (row[j] - ga - gb + c);
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
    ws.coef.fill(0.0);
    for (a, &i) in act.iter().enumerate() {
        let ua = z[a];
        for (cf, xv) in ws.coef.iter_mut().zip(&s.x[i * p..(i + 1) * p]) {
            *cf += ua * xv;
        }
    }
    if !s.fit_intercept {
        return Some(0.0);
    }
    // xbar . coef = sum_a w_a (x_a . coef) / W, with x_a . coef = sum_b G_ab u_b
    let mut xc = 0.0;
    for &i in act.iter() {
        let row = &s.gram[i * n..(i + 1) * n];
        let xa_coef: f64 = act.iter().zip(z.iter()).map(|(&j, &u)| row[j] * u).sum();
        xc += w[i] * xa_coef;
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
        let mut a = vec![4.0, 0.0, 2.0, 3.0];
        assert!(cholesky_in_place(&mut a, 2));
        let mut z = vec![2.0, 3.0];
        cholesky_solve(&a, 2, &mut z);
        // [[4, 2], [2, 3]] x = [2, 3] -> x = [0, 1]
        assert!((z[0] - 0.0).abs() < 1e-14 && (z[1] - 1.0).abs() < 1e-14);
    }
}
