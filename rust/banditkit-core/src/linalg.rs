//! Small dense symmetric linear algebra shared by the crate (K up to a few dozen).
//!
//! Matrices are row-major `&[f64]` of length `n * n`. Cholesky factors are lower triangular,
//! also stored row-major in a full `n * n` buffer with zeros above the diagonal.

/// Cholesky factor `L` (lower, row-major) with `a = L L^T`, or `None` if `a` is not
/// (numerically) positive definite or holds a non-finite value. Only the lower triangle is read.
pub fn cholesky_lower(a: &[f64], n: usize) -> Option<Vec<f64>> {
    debug_assert_eq!(a.len(), n * n);
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if !s.is_finite() || s <= 0.0 {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solves `a x = b` given the Cholesky factor `l` of `a` (forward then back substitution).
pub fn solve_cholesky(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    debug_assert_eq!(l.len(), n * n);
    debug_assert_eq!(b.len(), n);
    let mut y = b.to_vec();
    for i in 0..n {
        let mut s = y[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    y
}

/// Solves `a x = b` for a symmetric positive definite `a`; `None` if it is not.
pub fn solve_spd(a: &[f64], n: usize, b: &[f64]) -> Option<Vec<f64>> {
    cholesky_lower(a, n).map(|l| solve_cholesky(&l, n, b))
}

/// Inverse of a symmetric positive definite matrix; `None` if it is not.
pub fn inverse_spd(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let l = cholesky_lower(a, n)?;
    let mut inv = vec![0.0; n * n];
    let mut e = vec![0.0; n];
    for j in 0..n {
        e.iter_mut().for_each(|v| *v = 0.0);
        e[j] = 1.0;
        let col = solve_cholesky(&l, n, &e);
        for i in 0..n {
            inv[i * n + j] = col[i];
        }
    }
    symmetrize(&mut inv, n);
    Some(inv)
}

/// A lower-triangular `L` with `L L^T = a` for a symmetric `a` that is positive semidefinite up
/// to rounding. Cholesky when it succeeds; otherwise (rank-deficient or wildly scaled matrices,
/// where rounding makes a pivot fail) the exact factor of the PSD projection `V max(Λ, 0) V^T`:
/// the `R` of a QR of `max(Λ, 0)^{1/2} V^T` satisfies `R^T R = V max(Λ, 0) V^T`, so `L = R^T`.
/// Never fails for finite input.
pub fn psd_factor_lower(a: &[f64], n: usize) -> Vec<f64> {
    if let Some(l) = cholesky_lower(a, n) {
        return l;
    }
    let (values, vectors) = sym_eigen(a, n);
    let mut b = vec![0.0; n * n];
    for (k, &lam) in values.iter().enumerate() {
        let s = lam.max(0.0).sqrt();
        for j in 0..n {
            b[k * n + j] = s * vectors[j * n + k];
        }
    }
    householder_r(&mut b, n);
    // L = R^T with each row of R signed so the diagonal is non-negative ((DR)^T (DR) = R^T R).
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        let sign = if b[i * n + i] < 0.0 { -1.0 } else { 1.0 };
        for j in i..n {
            l[j * n + i] = sign * b[i * n + j];
        }
    }
    l
}

/// Overwrites the square row-major `a` with the `R` of its QR decomposition (Householder).
fn householder_r(a: &mut [f64], n: usize) {
    let mut v = vec![0.0; n];
    for col in 0..n {
        let norm = (col..n)
            .map(|i| a[i * n + col] * a[i * n + col])
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 {
            continue;
        }
        let alpha = if a[col * n + col] > 0.0 { -norm } else { norm };
        for i in col..n {
            v[i] = a[i * n + col];
        }
        v[col] -= alpha;
        let vv: f64 = (col..n).map(|i| v[i] * v[i]).sum();
        if vv == 0.0 {
            continue;
        }
        for j in col..n {
            let dot: f64 = (col..n).map(|i| v[i] * a[i * n + j]).sum();
            let f = 2.0 * dot / vv;
            for i in col..n {
                a[i * n + j] -= f * v[i];
            }
        }
        for i in col + 1..n {
            a[i * n + col] = 0.0;
        }
    }
}

/// Symmetric eigendecomposition by cyclic Jacobi rotations: `(values, vectors)` with
/// `a = V diag(values) V^T`, `vectors` row-major with eigenvector `k` in column `k`.
/// Values ascending. Jacobi is accurate to relative machine precision and fine for small n.
pub fn sym_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    symmetrize(&mut m, n);
    let mut v = identity(n);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum();
        let diag: f64 = (0..n).map(|i| m[i * n + i] * m[i * n + i]).sum();
        // Converged once the off-diagonal mass is negligible against the diagonal.
        if off <= f64::EPSILON * f64::EPSILON * diag || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let app = m[p * n + p];
                let aqq = m[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let mkp = m[k * n + p];
                    let mkq = m[k * n + q];
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let mpk = m[p * n + k];
                    let mqk = m[q * n + k];
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[i * n + i].total_cmp(&m[j * n + j]));
    let values = order.iter().map(|&i| m[i * n + i]).collect();
    let mut vectors = vec![0.0; n * n];
    for (new_k, &k) in order.iter().enumerate() {
        for r in 0..n {
            vectors[r * n + new_k] = v[r * n + k];
        }
    }
    (values, vectors)
}

/// Moore-Penrose pseudo-inverse of a symmetric matrix through its eigendecomposition.
/// With `s = max|lambda|`, eigenvalues in `[-neg_tol * s, rcond * s]` are treated as zero.
/// `neg_tol = rcond` is NumPy's `pinv` (`rcond = 1e-15` by default); a larger `neg_tol` suits a
/// matrix that is PSD by construction, whose slightly negative eigenvalues are rounding of
/// zeros (inverting one would put a huge negative variance in that direction).
pub fn pinv_sym(a: &[f64], n: usize, rcond: f64, neg_tol: f64) -> Vec<f64> {
    let (values, vectors) = sym_eigen(a, n);
    let scale = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let mut out = vec![0.0; n * n];
    for (k, &lam) in values.iter().enumerate() {
        if lam == 0.0 || (-neg_tol * scale..=rcond * scale).contains(&lam) {
            continue;
        }
        let inv = 1.0 / lam;
        for i in 0..n {
            let vi = vectors[i * n + k] * inv;
            for j in 0..n {
                out[i * n + j] += vi * vectors[j * n + k];
            }
        }
    }
    symmetrize(&mut out, n);
    out
}

/// Replaces `a` by `(a + a^T) / 2`.
pub fn symmetrize(a: &mut [f64], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            let m = 0.5 * (a[i * n + j] + a[j * n + i]);
            a[i * n + j] = m;
            a[j * n + i] = m;
        }
    }
}

/// The `n x n` identity, row-major.
pub fn identity(n: usize) -> Vec<f64> {
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        m[i * n + i] = 1.0;
    }
    m
}

/// `a (r x k) * b (k x c)`, row-major.
pub fn matmul(a: &[f64], b: &[f64], r: usize, k: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for p in 0..k {
            let aip = a[i * k + p];
            if aip == 0.0 {
                continue;
            }
            for j in 0..c {
                out[i * c + j] += aip * b[p * c + j];
            }
        }
    }
    out
}

/// Transpose of an `r x c` row-major matrix.
pub fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = a[i * c + j];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psd_factor_handles_rank_deficient_and_badly_scaled() {
        // Rank 1 (Cholesky's second pivot is 0) and the covariance of a near-flat posterior.
        // B B^T for a 4 x 3 B of scale 1e8: rank 3, entries ~1e17 (a near-flat posterior).
        let b = [1e8, 0.0, 3e7, 2e8, 5e8, 1e8, -1e8, 4e8, 7e8, 3e8, 2e8, -1e8];
        let bbt = matmul(&b, &transpose(&b, 4, 3), 4, 3, 4);
        let cases: Vec<(Vec<f64>, usize)> = vec![(vec![4.0, 2.0, 2.0, 1.0], 2), (bbt, 4)];
        for (a, n) in cases {
            let l = psd_factor_lower(&a, n);
            let scale = a.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            for i in 0..n {
                assert!(l[i * n + i] >= 0.0);
                for j in 0..n {
                    if j > i {
                        assert_eq!(l[i * n + j], 0.0);
                    }
                    let llt: f64 = (0..n).map(|k| l[i * n + k] * l[j * n + k]).sum();
                    assert!(
                        (llt - a[i * n + j]).abs() <= 1e-9 * scale,
                        "{llt} vs {}",
                        a[i * n + j]
                    );
                }
            }
        }
    }

    fn spd3() -> Vec<f64> {
        vec![4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0]
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn cholesky_reconstructs_and_solves() {
        let a = spd3();
        let l = cholesky_lower(&a, 3).unwrap();
        let llt = matmul(&l, &transpose(&l, 3, 3), 3, 3, 3);
        assert!(close(&llt, &a, 1e-12));
        let x = solve_cholesky(&l, 3, &[1.0, 2.0, 3.0]);
        let ax = matmul(&a, &x, 3, 3, 1);
        assert!(close(&ax, &[1.0, 2.0, 3.0], 1e-12));
        assert_eq!(solve_spd(&a, 3, &[1.0, 2.0, 3.0]).unwrap(), x);
    }

    #[test]
    fn cholesky_rejects_indefinite_and_nan() {
        assert!(cholesky_lower(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
        assert!(cholesky_lower(&[f64::NAN, 0.0, 0.0, 1.0], 2).is_none());
        assert!(cholesky_lower(&[0.0, 0.0, 0.0, 1.0], 2).is_none());
    }

    #[test]
    fn inverse_spd_is_inverse() {
        let a = spd3();
        let inv = inverse_spd(&a, 3).unwrap();
        assert!(close(&matmul(&a, &inv, 3, 3, 3), &identity(3), 1e-12));
    }

    #[test]
    fn psd_cholesky_handles_rank_deficiency() {
        // Rank 1: [1 1; 1 1]; and a zero coordinate.
        let a = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let l = psd_factor_lower(&a, 3);
        assert!(close(&matmul(&l, &transpose(&l, 3, 3), 3, 3, 3), &a, 1e-12));
        assert!(l[6..9].iter().all(|v| v.abs() < 1e-15));
        // Indefinite: the factor is that of the PSD projection, eigenvalues (3, 0).
        let l = psd_factor_lower(&[1.0, 2.0, 2.0, 1.0], 2);
        let proj = [1.5, 1.5, 1.5, 1.5];
        assert!(close(
            &matmul(&l, &transpose(&l, 2, 2), 2, 2, 2),
            &proj,
            1e-12
        ));
    }

    #[test]
    fn eigen_reconstructs() {
        let a = spd3();
        let (vals, vecs) = sym_eigen(&a, 3);
        assert!(vals.windows(2).all(|w| w[0] <= w[1]));
        let mut d = vec![0.0; 9];
        for k in 0..3 {
            d[k * 4] = vals[k];
        }
        let rec = matmul(
            &matmul(&vecs, &d, 3, 3, 3),
            &transpose(&vecs, 3, 3),
            3,
            3,
            3,
        );
        assert!(close(&rec, &a, 1e-12));
        let vtv = matmul(&transpose(&vecs, 3, 3), &vecs, 3, 3, 3);
        assert!(close(&vtv, &identity(3), 1e-12));
    }

    #[test]
    fn pinv_of_singular_matrix() {
        // pinv([1 1; 1 1]) = [1 1; 1 1] / 4.
        let p = pinv_sym(&[1.0, 1.0, 1.0, 1.0], 2, 1e-15, 1e-15);
        assert!(close(&p, &[0.25, 0.25, 0.25, 0.25], 1e-14));
        let a = spd3();
        assert!(close(
            &pinv_sym(&a, 3, 1e-15, 1e-15),
            &inverse_spd(&a, 3).unwrap(),
            1e-12
        ));
        assert_eq!(pinv_sym(&[0.0; 4], 2, 1e-15, 1e-15), vec![0.0; 4]);
        // diag(1, -1e-13): NumPy's rule inverts the rounding-level negative eigenvalue,
        // a PSD tolerance drops it; a clearly negative one is inverted either way.
        let d = [1.0, 0.0, 0.0, -1e-13];
        assert!((pinv_sym(&d, 2, 1e-15, 1e-15)[3] / -1e13 - 1.0).abs() < 1e-12);
        assert!(close(
            &pinv_sym(&d, 2, 1e-15, 1e-12),
            &[1.0, 0.0, 0.0, 0.0],
            1e-15
        ));
        let d = [1.0, 0.0, 0.0, -0.5];
        assert!(close(
            &pinv_sym(&d, 2, 1e-15, 1e-12),
            &[1.0, 0.0, 0.0, -2.0],
            1e-12
        ));
    }
}
