//! The Monte Carlo kernels as functions (NumPy in, NumPy out), named like their
//! `banditkit.python.montecarlo` references. They validate, copy, and sample without the GIL.
use crate::convert::{self, err};
use banditkit_core::montecarlo;
use banditkit_core::rng::os_seed;
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

fn finite(what: &str, v: &[f64]) -> PyResult<()> {
    if v.iter().any(|x| !x.is_finite()) {
        return err(format!("{what} must be finite"));
    }
    Ok(())
}

fn same_len(a: &[f64], b: &[f64], what: &str) -> PyResult<()> {
    if a.len() != b.len() {
        return err(format!(
            "{what} must have the same length, got {} and {}",
            a.len(),
            b.len()
        ));
    }
    Ok(())
}

fn seed_or_os(seed: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    Ok(convert::seed(seed)?.unwrap_or_else(os_seed))
}

/// Win counts of independent N(mu_i, sigma_i^2) arms over `draws` joint draws.
#[pyfunction]
#[pyo3(signature = (mu, sigma, draws, seed=None))]
fn win_counts_gaussian<'py>(
    py: Python<'py>,
    mu: PyReadonlyArray1<'py, f64>,
    sigma: PyReadonlyArray1<'py, f64>,
    draws: &Bound<'py, PyAny>,
    seed: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let (mu, sigma) = (mu.as_slice()?.to_vec(), sigma.as_slice()?.to_vec());
    same_len(&mu, &sigma, "mu and sigma")?;
    finite("mu and sigma", &mu)?;
    finite("mu and sigma", &sigma)?;
    if sigma.iter().any(|&s| s < 0.0) {
        return err("sigma must be non-negative".into());
    }
    let (draws, seed) = (convert::draws(draws)?, seed_or_os(seed)?);
    let counts = py.detach(|| montecarlo::win_counts_gaussian(&mu, &sigma, draws, seed));
    Ok(PyArray1::from_vec(py, counts))
}

/// Win counts of independent Beta(alpha_i, beta_i) arms over `draws` joint draws.
#[pyfunction]
#[pyo3(signature = (alpha, beta, draws, seed=None))]
fn win_counts_beta<'py>(
    py: Python<'py>,
    alpha: PyReadonlyArray1<'py, f64>,
    beta: PyReadonlyArray1<'py, f64>,
    draws: &Bound<'py, PyAny>,
    seed: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let (alpha, beta) = (alpha.as_slice()?.to_vec(), beta.as_slice()?.to_vec());
    same_len(&alpha, &beta, "alpha and beta")?;
    if alpha
        .iter()
        .chain(&beta)
        .any(|x| !(x.is_finite() && *x > 0.0))
    {
        return err("alpha and beta must be finite and positive".into());
    }
    let (draws, seed) = (convert::draws(draws)?, seed_or_os(seed)?);
    let counts = py.detach(|| montecarlo::win_counts_beta(&alpha, &beta, draws, seed));
    Ok(PyArray1::from_vec(py, counts))
}

/// Win counts of x = mean + L z, z standard normal, L lower triangular (zero rows allowed).
#[pyfunction]
#[pyo3(signature = (mean, chol_lower, draws, seed=None))]
fn win_counts_mvn<'py>(
    py: Python<'py>,
    mean: PyReadonlyArray1<'py, f64>,
    chol_lower: PyReadonlyArray2<'py, f64>,
    draws: &Bound<'py, PyAny>,
    seed: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let mean = mean.as_slice()?.to_vec();
    let n = mean.len();
    if chol_lower.shape() != [n, n] {
        return err(format!(
            "chol_lower must be {n} x {n}, got {:?}",
            chol_lower.shape()
        ));
    }
    let l: Vec<f64> = chol_lower.as_array().iter().copied().collect();
    finite("mean", &mean)?;
    finite("chol_lower", &l)?;
    if (0..n).any(|i| (i + 1..n).any(|j| l[i * n + j] != 0.0)) {
        return err("chol_lower must be lower triangular".into());
    }
    let (draws, seed) = (convert::draws(draws)?, seed_or_os(seed)?);
    let counts = py.detach(|| montecarlo::win_counts_mvn(&mean, &l, draws, seed));
    Ok(PyArray1::from_vec(py, counts))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(win_counts_gaussian, m)?)?;
    m.add_function(wrap_pyfunction!(win_counts_beta, m)?)?;
    m.add_function(wrap_pyfunction!(win_counts_mvn, m)?)?;
    Ok(())
}
