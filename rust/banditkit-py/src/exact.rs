//! Exact win probabilities as functions (NumPy in, NumPy out), named like their
//! `banditkit.python.exact` references: validate, copy, integrate without the GIL.
use crate::convert::{self, value_error};
use banditkit_core::exact;
use banditkit_core::rng::os_seed;
use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::IntoPyDict;

/// `numpy.asarray(obj, dtype=float64, order="C")` as (values in C order, shape); lists and float32 work.
fn float_array(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<(Vec<f64>, Vec<usize>)> {
    let py = obj.py();
    let np = py.import("numpy")?;
    let kwargs = [("dtype", "float64"), ("order", "C")].into_py_dict(py)?;
    let arr = np
        .call_method("asarray", (obj,), Some(&kwargs))
        .map_err(|e| PyValueError::new_err(format!("{name} must be an array of numbers: {e}")))?;
    let arr = arr.cast::<PyArrayDyn<f64>>()?;
    let shape = arr.shape().to_vec();
    let values = arr.readonly().as_slice()?.to_vec();
    Ok((values, shape))
}

fn vector(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    let (values, shape) = float_array(obj, name)?;
    if shape.len() != 1 {
        return convert::err(format!("{name} must be 1-D, got shape {shape:?}"));
    }
    Ok(values)
}

/// Probability that each independent N(mu_i, sigma_i^2) arm has the highest draw.
#[pyfunction]
fn prob_best_gaussian<'py>(
    py: Python<'py>,
    mu: &Bound<'py, PyAny>,
    sigma: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (mu, sigma) = (vector(mu, "mu")?, vector(sigma, "sigma")?);
    exact::check_gaussian(&mu, &sigma).map_err(value_error)?;
    let probs = py.detach(|| exact::prob_best_gaussian(&mu, &sigma));
    Ok(PyArray1::from_vec(py, probs))
}

/// `prob_best_gaussian` of every row of (n, k) `mu` and `sigma`, rows in parallel; with
/// `share_ties`, as a policy's propensities: point masses tied at the top share their
/// probability evenly (a policy that breaks ties at random) and rounding below 0 becomes 0.
#[pyfunction]
#[pyo3(signature = (mu, sigma, share_ties=false))]
fn prob_best_gaussian_rows<'py>(
    py: Python<'py>,
    mu: &Bound<'py, PyAny>,
    sigma: &Bound<'py, PyAny>,
    share_ties: bool,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (mu, shape) = float_array(mu, "mu")?;
    let (sigma, sigma_shape) = float_array(sigma, "sigma")?;
    if shape.len() != 2 {
        return convert::err(format!("mu must be 2-D, got shape {shape:?}"));
    }
    if sigma_shape != shape {
        return convert::err(format!(
            "mu and sigma must have the same shape, got {shape:?} and {sigma_shape:?}"
        ));
    }
    exact::check_gaussian(&mu, &sigma).map_err(value_error)?;
    let probs = py.detach(|| exact::prob_best_gaussian_rows(&mu, &sigma, shape[1], share_ties));
    PyArray1::from_vec(py, probs).reshape([shape[0], shape[1]])
}

/// Probability that each independent Beta(alpha_i, beta_i) arm has the highest draw.
#[pyfunction]
fn prob_best_beta<'py>(
    py: Python<'py>,
    alpha: &Bound<'py, PyAny>,
    beta: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (alpha, beta) = (vector(alpha, "alpha")?, vector(beta, "beta")?);
    exact::check_beta(&alpha, &beta).map_err(value_error)?;
    let probs = py.detach(|| exact::prob_best_beta(&alpha, &beta));
    Ok(PyArray1::from_vec(py, probs))
}

/// Probability that each arm has the highest draw of N(mean, cov) (Genz's method; each
/// probability's 3.5-standard-error estimate below `tolerance`); same seed, same answer.
#[pyfunction]
#[pyo3(signature = (mean, cov, seed=None, tolerance=exact::MVN_TOLERANCE))]
fn prob_best_mvn<'py>(
    py: Python<'py>,
    mean: &Bound<'py, PyAny>,
    cov: &Bound<'py, PyAny>,
    seed: Option<&Bound<'py, PyAny>>,
    tolerance: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let mean = vector(mean, "mean")?;
    let (cov, shape) = float_array(cov, "cov")?;
    let k = mean.len();
    if shape != [k, k] {
        return convert::err(format!(
            "cov must be {k} x {k} to match mean, got shape {shape:?}"
        ));
    }
    let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
    let (probs, _error) = py
        .detach(|| exact::prob_best_mvn(&mean, &cov, seed, tolerance))
        .map_err(value_error)?;
    Ok(PyArray1::from_vec(py, probs))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(prob_best_gaussian, m)?)?;
    m.add_function(wrap_pyfunction!(prob_best_gaussian_rows, m)?)?;
    m.add_function(wrap_pyfunction!(prob_best_beta, m)?)?;
    m.add_function(wrap_pyfunction!(prob_best_mvn, m)?)?;
    m.add("MVN_TOLERANCE", exact::MVN_TOLERANCE)?;
    Ok(())
}
