//! The same loops with explicit AVX2/FMA intrinsics: LLVM does not vectorise the short,
//! shifting rows of a packed triangle well on its own (measured 3x slower).
use std::arch::x86_64::*;

#[inline(always)]
unsafe fn hsum(v: __m256d) -> f64 {
    let lo = _mm256_castpd256_pd128(v);
    let hi = _mm256_extractf128_pd(v, 1);
    let s = _mm_add_pd(lo, hi);
    _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
}

/// `sum a[k] b[k]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut k = 0;
    while k + 8 <= n {
        a0 = _mm256_fmadd_pd(_mm256_loadu_pd(pa.add(k)), _mm256_loadu_pd(pb.add(k)), a0);
        a1 = _mm256_fmadd_pd(
            _mm256_loadu_pd(pa.add(k + 4)),
            _mm256_loadu_pd(pb.add(k + 4)),
            a1,
        );
        k += 8;
    }
    if k + 4 <= n {
        a0 = _mm256_fmadd_pd(_mm256_loadu_pd(pa.add(k)), _mm256_loadu_pd(pb.add(k)), a0);
        k += 4;
    }
    let mut s = hsum(_mm256_add_pd(a0, a1));
    while k < n {
        s += a[k] * b[k];
        k += 1;
    }
    s
}

/// `u[k] += c a[k]` and returns `sum a[k] b[k]`, one pass over `a`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_axpy(a: &[f64], b: &[f64], u: &mut [f64], c: f64) -> f64 {
    let n = a.len().min(b.len()).min(u.len());
    let (pa, pb, pu) = (a.as_ptr(), b.as_ptr(), u.as_mut_ptr());
    let cv = _mm256_set1_pd(c);
    let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut k = 0;
    while k + 8 <= n {
        let r0 = _mm256_loadu_pd(pa.add(k));
        let r1 = _mm256_loadu_pd(pa.add(k + 4));
        a0 = _mm256_fmadd_pd(r0, _mm256_loadu_pd(pb.add(k)), a0);
        a1 = _mm256_fmadd_pd(r1, _mm256_loadu_pd(pb.add(k + 4)), a1);
        _mm256_storeu_pd(
            pu.add(k),
            _mm256_fmadd_pd(cv, r0, _mm256_loadu_pd(pu.add(k))),
        );
        _mm256_storeu_pd(
            pu.add(k + 4),
            _mm256_fmadd_pd(cv, r1, _mm256_loadu_pd(pu.add(k + 4))),
        );
        k += 8;
    }
    let mut s = hsum(_mm256_add_pd(a0, a1));
    while k < n {
        s += a[k] * b[k];
        u[k] += c * a[k];
        k += 1;
    }
    s
}

row_kernels!(dot_inl, dot_axpy);

#[inline(always)]
unsafe fn dot_inl(a: &[f64], b: &[f64]) -> f64 {
    dot(a, b)
}

/// Two rows per pass: `x` and `u` are loaded (and `u` stored) once for both rows, which
/// cuts the load/store traffic of the one-row loop by a third.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matvec(block: &[f64], x: &[f64], u: &mut [f64], i0: usize, i1: usize) {
    let d = x.len();
    let (px, pu, pm) = (x.as_ptr(), u.as_mut_ptr(), block.as_ptr());
    let mut off = 0;
    let mut i = i0;
    while i + 2 <= i1 {
        let r0 = pm.add(off); // M[i, i..]
        let r1 = pm.add(off + d - i); // M[i+1, i+1..]
        off += 2 * (d - i) - 1;
        let (x0, x1) = (x[i], x[i + 1]);
        let m01 = *r0.add(1);
        let (x0v, x1v) = (_mm256_set1_pd(x0), _mm256_set1_pd(x1));
        let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        // columns j = i+2.., at offset j-i in row i and j-i-1 in row i+1
        let n = d - i - 2;
        let (q0, q1, qx, qu) = (r0.add(2), r1.add(1), px.add(i + 2), pu.add(i + 2));
        let mut k = 0;
        while k + 4 <= n {
            let m0 = _mm256_loadu_pd(q0.add(k));
            let m1 = _mm256_loadu_pd(q1.add(k));
            let xv = _mm256_loadu_pd(qx.add(k));
            a0 = _mm256_fmadd_pd(m0, xv, a0);
            a1 = _mm256_fmadd_pd(m1, xv, a1);
            let uv = _mm256_fmadd_pd(
                x1v,
                m1,
                _mm256_fmadd_pd(x0v, m0, _mm256_loadu_pd(qu.add(k))),
            );
            _mm256_storeu_pd(qu.add(k), uv);
            k += 4;
        }
        let (mut s0, mut s1) = (hsum(a0), hsum(a1));
        while k < n {
            let (m0, m1, xv) = (*q0.add(k), *q1.add(k), *qx.add(k));
            s0 += m0 * xv;
            s1 += m1 * xv;
            *qu.add(k) += x0 * m0 + x1 * m1;
            k += 1;
        }
        *pu.add(i) += *r0 * x0 + m01 * x1 + s0;
        *pu.add(i + 1) += m01 * x0 + *r1 * x1 + s1;
        i += 2;
    }
    if i < i1 {
        matvec_rows(&block[off..], x, u, i, i1);
    }
}
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quad_form(m: &[f64], x: &[f64], i0: usize, i1: usize) -> f64 {
    quad_form_rows(m, x, i0, i1)
}

/// `x^T M x` for small d (the matrix is in cache, so arithmetic is the limit): no horizontal
/// sum per row. The off-diagonal products go into four vector accumulators used in turn
/// across all rows (four independent FMA chains), row tails through masked loads.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quad_form_small(m: &[f64], x: &[f64]) -> f64 {
    let d = x.len();
    let (pm, px) = (m.as_ptr(), x.as_ptr());
    let lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    let z = _mm256_setzero_pd();
    let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
    let mut diag = 0.0;
    let mut off = 0;
    for (i, &xi) in x.iter().enumerate() {
        let len = d - i;
        diag += xi * *pm.add(off) * xi;
        let n = len - 1;
        let (row, xr) = (pm.add(off + 1), px.add(i + 1));
        let xiv = _mm256_set1_pd(xi);
        let mut k = 0;
        while k + 4 <= n {
            let t = _mm256_mul_pd(xiv, _mm256_loadu_pd(row.add(k)));
            let next = _mm256_fmadd_pd(t, _mm256_loadu_pd(xr.add(k)), a0);
            (a0, a1, a2, a3) = (a1, a2, a3, next);
            k += 4;
        }
        if k < n {
            let mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x((n - k) as i64), lanes);
            let t = _mm256_mul_pd(xiv, _mm256_maskload_pd(row.add(k), mask));
            let next = _mm256_fmadd_pd(t, _mm256_maskload_pd(xr.add(k), mask), a0);
            (a0, a1, a2, a3) = (a1, a2, a3, next);
        }
        off += len;
    }
    diag + 2.0 * hsum(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)))
}
/// [`quad_form_small`] of two contexts in one pass over `M`: each row is loaded once for
/// both, and per context the operations are exactly those of `quad_form_small` (same
/// accumulators, same order), so the results are bitwise equal.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quad_form_small_pair(m: &[f64], x: &[f64], y: &[f64]) -> [f64; 2] {
    let d = x.len();
    debug_assert_eq!(y.len(), d);
    let (pm, px, py) = (m.as_ptr(), x.as_ptr(), y.as_ptr());
    let lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    let z = _mm256_setzero_pd();
    let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
    let (mut b0, mut b1, mut b2, mut b3) = (z, z, z, z);
    let (mut diag_x, mut diag_y) = (0.0, 0.0);
    let mut off = 0;
    for i in 0..d {
        let (xi, yi) = (*px.add(i), *py.add(i));
        let len = d - i;
        let mii = *pm.add(off);
        diag_x += xi * mii * xi;
        diag_y += yi * mii * yi;
        let n = len - 1;
        let (row, xr, yr) = (pm.add(off + 1), px.add(i + 1), py.add(i + 1));
        let (xiv, yiv) = (_mm256_set1_pd(xi), _mm256_set1_pd(yi));
        let mut k = 0;
        while k + 4 <= n {
            let r = _mm256_loadu_pd(row.add(k));
            let next_x = _mm256_fmadd_pd(_mm256_mul_pd(xiv, r), _mm256_loadu_pd(xr.add(k)), a0);
            let next_y = _mm256_fmadd_pd(_mm256_mul_pd(yiv, r), _mm256_loadu_pd(yr.add(k)), b0);
            (a0, a1, a2, a3) = (a1, a2, a3, next_x);
            (b0, b1, b2, b3) = (b1, b2, b3, next_y);
            k += 4;
        }
        if k < n {
            let mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x((n - k) as i64), lanes);
            let r = _mm256_maskload_pd(row.add(k), mask);
            let tx = _mm256_mul_pd(xiv, r);
            let ty = _mm256_mul_pd(yiv, r);
            let next_x = _mm256_fmadd_pd(tx, _mm256_maskload_pd(xr.add(k), mask), a0);
            let next_y = _mm256_fmadd_pd(ty, _mm256_maskload_pd(yr.add(k), mask), b0);
            (a0, a1, a2, a3) = (a1, a2, a3, next_x);
            (b0, b1, b2, b3) = (b1, b2, b3, next_y);
        }
        off += len;
    }
    let total = |a0, a1, a2, a3| hsum(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    [
        diag_x + 2.0 * total(a0, a1, a2, a3),
        diag_y + 2.0 * total(b0, b1, b2, b3),
    ]
}

/// [`dot`] of `a` with four vectors at once (the row is loaded once for all four); per
/// vector the operations are exactly those of `dot`, so the results are bitwise equal.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4(a: *const f64, b: [*const f64; 4], n: usize) -> [f64; 4] {
    let z = _mm256_setzero_pd();
    let (mut lo, mut hi) = ([z; 4], [z; 4]);
    let mut k = 0;
    while k + 8 <= n {
        let r0 = _mm256_loadu_pd(a.add(k));
        let r1 = _mm256_loadu_pd(a.add(k + 4));
        for c in 0..4 {
            lo[c] = _mm256_fmadd_pd(r0, _mm256_loadu_pd(b[c].add(k)), lo[c]);
            hi[c] = _mm256_fmadd_pd(r1, _mm256_loadu_pd(b[c].add(k + 4)), hi[c]);
        }
        k += 8;
    }
    if k + 4 <= n {
        let r0 = _mm256_loadu_pd(a.add(k));
        for c in 0..4 {
            lo[c] = _mm256_fmadd_pd(r0, _mm256_loadu_pd(b[c].add(k)), lo[c]);
        }
        k += 4;
    }
    let mut s = [0.0; 4];
    for c in 0..4 {
        s[c] = hsum(_mm256_add_pd(lo[c], hi[c]));
        for j in k..n {
            s[c] += *a.add(j) * *b[c].add(j);
        }
    }
    s
}

/// Contexts four at a time through [`dot4`], over blocks of rows of `M` small enough to
/// stay in L2 while every group of contexts passes over them. Per context the rows are
/// still taken in order with the operations of `quad_forms_rows`: bitwise equal results.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quad_forms(m: &[f64], xs: &[f64], d: usize, i0: usize, i1: usize, out: &mut [f64]) {
    const BLOCK_ENTRIES: usize = 24 * 1024; // 192 KB of M per row block
    let n = out.len();
    let quads = n / 4 * 4;
    let (mut r0, mut off0) = (i0, 0);
    while r0 < i1 {
        let (mut r1, mut size) = (r0, 0);
        while r1 < i1 && (size == 0 || size + d - r1 <= BLOCK_ENTRIES) {
            size += d - r1;
            r1 += 1;
        }
        let mut c = 0;
        while c < quads {
            let mut off = off0;
            for i in r0..r1 {
                let len = d - i;
                let row = &m[off..off + len];
                off += len;
                let ptrs = [0, 1, 2, 3].map(|t| xs.as_ptr().add((c + t) * d + i + 1));
                let dots = dot4(row.as_ptr().add(1), ptrs, len - 1);
                for (t, dt) in dots.iter().enumerate() {
                    let xi = xs[(c + t) * d + i];
                    out[c + t] += xi * (row[0] * xi + 2.0 * dt);
                }
            }
            c += 4;
        }
        for (c, o) in out.iter_mut().enumerate().skip(quads) {
            let x = &xs[c * d..(c + 1) * d];
            let mut off = off0;
            for i in r0..r1 {
                let row = &m[off..off + d - i];
                off += d - i;
                *o += x[i] * (row[0] * x[i] + 2.0 * dot(&row[1..], &x[i + 1..]));
            }
        }
        off0 += size;
        r0 = r1;
    }
}
#[target_feature(enable = "avx2,fma")]
pub unsafe fn rank_k(
    block: &mut [f64],
    d: usize,
    i0: usize,
    i1: usize,
    scale: f64,
    ws: &[f64],
    xs: &[f64],
) {
    if ws.len() == 1 && scale == 1.0 {
        // Plain rank-1 update (every observation): one axpy per row.
        let mut off = 0;
        for i in i0..i1 {
            let len = d - i;
            let cv = _mm256_set1_pd(ws[0] * xs[i]);
            let (row, x) = (block.as_mut_ptr().add(off), xs.as_ptr().add(i));
            off += len;
            let mut j = 0;
            while j + 8 <= len {
                let a0 =
                    _mm256_fmadd_pd(cv, _mm256_loadu_pd(x.add(j)), _mm256_loadu_pd(row.add(j)));
                let a1 = _mm256_fmadd_pd(
                    cv,
                    _mm256_loadu_pd(x.add(j + 4)),
                    _mm256_loadu_pd(row.add(j + 4)),
                );
                _mm256_storeu_pd(row.add(j), a0);
                _mm256_storeu_pd(row.add(j + 4), a1);
                j += 8;
            }
            while j < len {
                *row.add(j) = (ws[0] * xs[i]).mul_add(*x.add(j), *row.add(j));
                j += 1;
            }
        }
        return;
    }
    // Register-blocked: each 8-wide piece of a row is loaded and stored once while all
    // k terms are added to it (the generic loop reloads it once per term).
    let mut coef = [0.0f64; 2 * super::MAX_RANK];
    let mut off = 0;
    for i in i0..i1 {
        let len = d - i;
        let row = block.as_mut_ptr().add(off);
        off += len;
        for chunk in ws
            .chunks(2 * super::MAX_RANK)
            .zip(xs.chunks(2 * super::MAX_RANK * d))
            .enumerate()
        {
            let (c, (wc, xc)) = chunk;
            let first = c == 0;
            for (k, w) in wc.iter().enumerate() {
                coef[k] = w * xc[k * d + i];
            }
            let sv = _mm256_set1_pd(if first { scale } else { 1.0 });
            let mut j = 0;
            while j + 8 <= len {
                let mut a0 = _mm256_mul_pd(sv, _mm256_loadu_pd(row.add(j)));
                let mut a1 = _mm256_mul_pd(sv, _mm256_loadu_pd(row.add(j + 4)));
                for (k, &c) in coef[..wc.len()].iter().enumerate() {
                    let cv = _mm256_set1_pd(c);
                    let xk = xc.as_ptr().add(k * d + i + j);
                    a0 = _mm256_fmadd_pd(cv, _mm256_loadu_pd(xk), a0);
                    a1 = _mm256_fmadd_pd(cv, _mm256_loadu_pd(xk.add(4)), a1);
                }
                _mm256_storeu_pd(row.add(j), a0);
                _mm256_storeu_pd(row.add(j + 4), a1);
                j += 8;
            }
            while j < len {
                let mut a = *row.add(j) * if first { scale } else { 1.0 };
                for (k, &c) in coef[..wc.len()].iter().enumerate() {
                    a = c.mul_add(xc[k * d + i + j], a);
                }
                *row.add(j) = a;
                j += 1;
            }
        }
    }
}
