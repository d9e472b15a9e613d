//! Packed symmetric kernels: the O(d^2) inner loops of LinUCB/LinTS.
//!
//! A symmetric d x d matrix is stored as its upper triangle, row-major and packed: row `i`
//! holds `M[i, i..d]` and starts at [`row_start`]`(d, i)`. Reading half the matrix halves the
//! memory traffic, which is what bounds `select`/`update` at d in the hundreds.
//!
//! Kernels work on a block of rows `i0..i1` (a slice starting at row `i0`), so that large
//! matrices can be split between two threads with identical arithmetic whatever the thread
//! count. Each has a portable version and an AVX2+FMA version (explicit intrinsics: LLVM does
//! not vectorise the short, shifting rows well on its own, measured about 3x slower) chosen at
//! run time; a given machine always takes the same path.

/// Number of stored entries of a packed d x d symmetric matrix.
#[inline]
pub fn packed_len(d: usize) -> usize {
    d * (d + 1) / 2
}

/// Offset of row `i` (its diagonal entry) in the packed storage.
#[inline]
pub fn row_start(d: usize, i: usize) -> usize {
    i * (2 * d - i + 1) / 2
}

/// Every value is finite. Branch-free over short runs (a plain `all` stops at each value and
/// does not vectorise: measured 3-4x slower on big models), stopping between runs; AVX2 where
/// the CPU has it (the same loop, twice as wide: it is a large part of loading a big model).
pub fn all_finite(v: &[f64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { all_finite_avx2(v) };
    }
    all_finite_runs(v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn all_finite_avx2(v: &[f64]) -> bool {
    all_finite_runs(v)
}

#[inline(always)]
fn all_finite_runs(v: &[f64]) -> bool {
    // Adding one to the exponent field carries into the sign bit only from all ones (inf, NaN):
    // integer and/add/or only, which vectorise on any x86-64.
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    const ONE: u64 = 1 << 52;
    v.chunks(512).all(|run| {
        run.iter()
            .fold(0u64, |acc, x| acc | ((x.to_bits() & EXP) + ONE))
            >> 63
            == 0
    })
}

/// Rank-k updates handle up to `2 * MAX_RANK` terms per pass over a row.
pub const MAX_RANK: usize = 32;

/// From this dimension on, update kernels split rows between two rayon tasks.
pub const PAR_MIN_D: usize = 160;

/// Runs two halves of a split kernel: in parallel on a rayon worker (a cheap join), in order
/// elsewhere. From outside the pool a join hands both halves to pool threads and waits for
/// a wake-up on every kernel call, which measured slower than one core on a loaded 2-core
/// machine. The halves' arithmetic is fixed, so results are identical either way.
fn join2<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    if rayon::current_thread_index().is_some() {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// The row splitting the packed triangle into two halves of about equal size.
fn half_row(d: usize) -> usize {
    (0..d)
        .find(|&i| 2 * row_start(d, i) >= packed_len(d))
        .unwrap_or(d)
}

const LANES: usize = 8;

#[inline(always)]
fn dot_impl(a: &[f64], b: &[f64]) -> f64 {
    let n8 = a.len() / LANES * LANES;
    let mut acc = [0.0f64; LANES];
    for (av, bv) in a[..n8].chunks_exact(LANES).zip(b[..n8].chunks_exact(LANES)) {
        for k in 0..LANES {
            acc[k] += av[k] * bv[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for k in n8..a.len() {
        s += a[k] * b[k];
    }
    s
}

#[inline(always)]
fn axpy_impl(y: &mut [f64], x: &[f64], c: f64) {
    for (yv, xv) in y.iter_mut().zip(x) {
        *yv += c * xv;
    }
}

#[inline(always)]
fn dot_axpy_impl(a: &[f64], b: &[f64], u: &mut [f64], c: f64) -> f64 {
    axpy_impl(u, a, c);
    dot_impl(a, b)
}

/// The row loops, written once over the three row primitives.
macro_rules! row_kernels {
    ($dot:ident, $dot_axpy:ident) => {
        /// `u += M[i0..i1, :] x` (with the mirrored lower part): `u` is full length.
        #[inline(always)]
        #[allow(unused_unsafe)]
        fn matvec_rows(block: &[f64], x: &[f64], u: &mut [f64], i0: usize, i1: usize) {
            let d = x.len();
            let mut off = 0;
            for i in i0..i1 {
                let row = &block[off..off + d - i];
                off += d - i;
                let (head_u, ut) = u.split_at_mut(i + 1);
                // SAFETY (AVX2 build): only compiled into functions that require AVX2+FMA.
                head_u[i] += row[0] * x[i] + unsafe { $dot_axpy(&row[1..], &x[i + 1..], ut, x[i]) };
            }
        }

        #[inline(always)]
        #[allow(unused_unsafe)]
        fn quad_form_rows(m: &[f64], x: &[f64], i0: usize, i1: usize) -> f64 {
            let d = x.len();
            let mut total = 0.0;
            let mut off = 0;
            for i in i0..i1 {
                let row = &m[off..off + d - i];
                off += d - i;
                total += x[i] * (row[0] * x[i] + 2.0 * unsafe { $dot(&row[1..], &x[i + 1..]) });
            }
            total
        }
    };
}

mod portable {
    use super::{axpy_impl, dot_axpy_impl, dot_impl};
    row_kernels!(dot_impl, dot_axpy_impl);

    /// `out[c] += x_c^T M[i0..i1] x_c` for the contexts `xs` (row-major): each row of `M` is read
    /// once per block while it sits in L1; per context the operations are exactly those
    /// of `quad_form_rows`, so the results are bitwise equal.
    #[inline(always)]
    fn quad_forms_rows(m: &[f64], xs: &[f64], d: usize, i0: usize, i1: usize, out: &mut [f64]) {
        let mut off = 0;
        for i in i0..i1 {
            let row = &m[off..off + d - i];
            off += d - i;
            for (c, o) in out.iter_mut().enumerate() {
                let x = &xs[c * d..(c + 1) * d];
                *o += x[i] * (row[0] * x[i] + 2.0 * dot_impl(&row[1..], &x[i + 1..]));
            }
        }
    }

    /// `M[i0..i1, :] = scale M[i0..i1, :] + sum_k w_k x_k x_k^T` (`xs` holds the x_k).
    #[inline(always)]
    fn rank_k_rows(
        block: &mut [f64],
        d: usize,
        i0: usize,
        i1: usize,
        scale: f64,
        ws: &[f64],
        xs: &[f64],
    ) {
        let mut off = 0;
        for i in i0..i1 {
            let row = &mut block[off..off + d - i];
            off += d - i;
            if scale != 1.0 {
                row.iter_mut().for_each(|v| *v *= scale);
            }
            for (k, &w) in ws.iter().enumerate() {
                let xk = &xs[k * d..(k + 1) * d];
                axpy_impl(row, &xk[i..], w * xk[i]);
            }
        }
    }

    pub fn matvec(block: &[f64], x: &[f64], u: &mut [f64], i0: usize, i1: usize) {
        matvec_rows(block, x, u, i0, i1)
    }
    pub fn quad_form(m: &[f64], x: &[f64], i0: usize, i1: usize) -> f64 {
        quad_form_rows(m, x, i0, i1)
    }
    pub fn quad_forms(m: &[f64], xs: &[f64], d: usize, i0: usize, i1: usize, out: &mut [f64]) {
        quad_forms_rows(m, xs, d, i0, i1, out)
    }
    pub fn rank_k(
        block: &mut [f64],
        d: usize,
        i0: usize,
        i1: usize,
        scale: f64,
        ws: &[f64],
        xs: &[f64],
    ) {
        rank_k_rows(block, d, i0, i1, scale, ws, xs)
    }
    pub fn dot(a: &[f64], b: &[f64]) -> f64 {
        dot_impl(a, b)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;

#[inline]
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

macro_rules! dispatch {
    ($name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2::$name($($arg),*) };
        }
        portable::$name($($arg),*)
    }};
}

/// `u += M[i0..i1, :] x` for a block of rows starting at row `i0`.
fn matvec_block(block: &[f64], x: &[f64], u: &mut [f64], i0: usize, i1: usize) {
    dispatch!(matvec(block, x, u, i0, i1))
}

fn rank_k_block(
    block: &mut [f64],
    d: usize,
    i0: usize,
    i1: usize,
    scale: f64,
    ws: &[f64],
    xs: &[f64],
) {
    dispatch!(rank_k(block, d, i0, i1, scale, ws, xs))
}

/// `u = M x` for packed symmetric `M`; returns `x^T M x` (= `x . u`). For `d >= PAR_MIN_D`
/// the rows are split between two rayon tasks (each half accumulates into its own vector,
/// summed in a fixed order), so the result does not depend on the number of threads.
pub fn sym_matvec(m: &[f64], x: &[f64], u: &mut [f64]) -> f64 {
    let d = x.len();
    debug_assert_eq!(m.len(), packed_len(d));
    debug_assert_eq!(u.len(), d);
    u.iter_mut().for_each(|v| *v = 0.0);
    if d < PAR_MIN_D {
        matvec_block(m, x, u, 0, d);
    } else {
        let s = half_row(d);
        let (top, bottom) = m.split_at(row_start(d, s));
        let mut lower = vec![0.0; d];
        join2(
            || matvec_block(top, x, u, 0, s),
            || matvec_block(bottom, x, &mut lower, s, d),
        );
        for (a, b) in u[s..].iter_mut().zip(&lower[s..]) {
            *a += b;
        }
    }
    dot(x, u)
}

/// `x^T M x` below `PAR_MIN_D` (matrices in cache, so arithmetic bound): the AVX2 kernel
/// without per-row horizontal sums, or the portable row loop.
fn quad_form_small(m: &[f64], x: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { avx2::quad_form_small(m, x) };
    }
    portable::quad_form(m, x, 0, x.len())
}

/// `x^T M x` for packed symmetric `M` (one read of the triangle, no `M x`). For
/// `d >= PAR_MIN_D` the two halves of the rows are summed on two rayon tasks and added.
pub fn quad_form(m: &[f64], x: &[f64]) -> f64 {
    let d = x.len();
    debug_assert_eq!(m.len(), packed_len(d));
    if d < PAR_MIN_D {
        return quad_form_small(m, x);
    }
    let block = |m: &[f64], i0: usize, i1: usize| -> f64 { dispatch!(quad_form(m, x, i0, i1)) };
    let s = half_row(d);
    let (top, bottom) = m.split_at(row_start(d, s));
    let (a, b) = join2(|| block(top, 0, s), || block(bottom, s, d));
    a + b
}

/// `out[c] = x_c^T M x_c` for a block of contexts (row-major, `out.len()` rows), bitwise
/// equal to [`quad_form`] on each (same halves, same order), reading `M` once per block
/// instead of once per context.
pub fn quad_forms(m: &[f64], xs: &[f64], out: &mut [f64]) {
    let n = out.len();
    if n == 0 {
        return;
    }
    let d = xs.len() / n;
    debug_assert_eq!(xs.len(), n * d);
    let block = |m: &[f64], i0: usize, i1: usize, out: &mut [f64]| {
        dispatch!(quad_forms(m, xs, d, i0, i1, out))
    };
    if d < PAR_MIN_D {
        // Small matrices stay in cache: the one-context kernel, two contexts per pass over
        // `M` with AVX2 (bitwise the same values).
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            for (pair, o) in xs.chunks_exact(2 * d).zip(out.chunks_exact_mut(2)) {
                let (x, y) = pair.split_at(d);
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                o.copy_from_slice(&unsafe { avx2::quad_form_small_pair(m, x, y) });
            }
            done = n / 2 * 2;
        }
        for (o, x) in out.iter_mut().zip(xs.chunks_exact(d)).skip(done) {
            *o = quad_form_small(m, x);
        }
        return;
    }
    out.iter_mut().for_each(|v| *v = 0.0);
    let s = half_row(d);
    let (top, bottom) = m.split_at(row_start(d, s));
    let mut lower = vec![0.0; n];
    block(top, 0, s, out);
    block(bottom, s, d, &mut lower);
    for (o, l) in out.iter_mut().zip(&lower) {
        *o += l;
    }
}

/// `M = scale M + sum_k ws[k] x_k x_k^T`, `x_k = xs[k*d..(k+1)*d]`: one pass over `M`.
pub fn rank_k(m: &mut [f64], d: usize, scale: f64, ws: &[f64], xs: &[f64]) {
    debug_assert_eq!(m.len(), packed_len(d));
    debug_assert_eq!(xs.len(), ws.len() * d);
    if d < PAR_MIN_D {
        rank_k_block(m, d, 0, d, scale, ws, xs);
    } else {
        let s = half_row(d);
        let (top, bottom) = m.split_at_mut(row_start(d, s));
        join2(
            || rank_k_block(top, d, 0, s, scale, ws, xs),
            || rank_k_block(bottom, d, s, d, scale, ws, xs),
        );
    }
}

/// `M += c u u^T` for packed symmetric `M`.
pub fn rank1(m: &mut [f64], u: &[f64], c: f64) {
    rank_k(m, u.len(), 1.0, &[c], u)
}

#[cfg(test)]
#[test]
fn all_finite_finds_every_non_finite_value() {
    let mut v: Vec<f64> = (0..1500).map(|i| (i as f64 - 700.0) * 1e300).collect();
    v.extend([f64::MAX, -f64::MAX, f64::MIN_POSITIVE, 5e-324, -0.0]);
    assert!(all_finite(&v) && all_finite(&[]));
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -f64::NAN] {
        for at in [0, 511, 512, 1504] {
            let mut w = v.clone();
            w[at] = bad;
            assert!(!all_finite(&w), "{bad} at {at}");
        }
    }
}

/// `a . b`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    dispatch!(dot(a, b))
}

/// Packed upper triangle of a full row-major symmetric matrix.
pub fn pack(full: &[f64], d: usize) -> Vec<f64> {
    let mut p = Vec::with_capacity(packed_len(d));
    for i in 0..d {
        p.extend_from_slice(&full[i * d + i..(i + 1) * d]);
    }
    p
}

/// Full row-major symmetric matrix from its packed upper triangle.
pub fn unpack(packed: &[f64], d: usize) -> Vec<f64> {
    let mut full = vec![0.0; d * d];
    let mut off = 0;
    for i in 0..d {
        for j in i..d {
            full[i * d + j] = packed[off + j - i];
            full[j * d + i] = packed[off + j - i];
        }
        off += d - i;
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(d: usize) -> Vec<f64> {
        let mut full = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                full[i * d + j] = ((i * 7 + j * 7) % 11) as f64 - 5.0 + (i == j) as u8 as f64;
            }
        }
        full
    }

    #[test]
    fn packed_kernels_match_dense() {
        for d in [1usize, 3, 8, 17, 40, 200] {
            let full = sym(d);
            let p = pack(&full, d);
            assert_eq!(unpack(&p, d), full);
            assert_eq!(row_start(d, d - 1) + 1, packed_len(d));
            let x: Vec<f64> = (0..d).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut u = vec![9.0; d];
            let q = sym_matvec(&p, &x, &mut u);
            for i in 0..d {
                let want: f64 = (0..d).map(|j| full[i * d + j] * x[j]).sum();
                assert!((u[i] - want).abs() < 1e-12 * (d as f64) * 10.0);
            }
            let want_q: f64 = (0..d).map(|i| u[i] * x[i]).sum();
            assert!((q - want_q).abs() < 1e-10);
            let qf = quad_form(&p, &x);
            assert!((qf - want_q).abs() < 1e-10 * (d * d) as f64);
            // Five different contexts (pairs and a single one on the small-d path): each
            // bitwise equal to its one-context quad_form.
            let xs: Vec<Vec<f64>> = (0..5)
                .map(|c| {
                    x.iter()
                        .map(|v| v * (1.0 + c as f64) - 0.1 * c as f64)
                        .collect()
                })
                .collect();
            let mut five = [0.0; 5];
            quad_forms(&p, &xs.concat(), &mut five);
            for (got, xc) in five.iter().zip(&xs) {
                assert_eq!(got.to_bits(), quad_form(&p, xc).to_bits(), "d = {d}");
            }
            let mut p2 = p.clone();
            rank1(&mut p2, &x, 0.5);
            let full2 = unpack(&p2, d);
            for i in 0..d {
                for j in 0..d {
                    let want = full[i * d + j] + 0.5 * x[i] * x[j];
                    assert!((full2[i * d + j] - want).abs() < 1e-12);
                }
            }
        }
    }
}
