//! The off-policy bootstrap kernels as functions (NumPy in, NumPy out), named like their
//! `banditkit.python.ope` references. They validate, then resample without the GIL.
use crate::convert::{self, err, value_error};
use banditkit_core::ope;
use banditkit_core::rng::os_seed;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

fn finite<'a>(what: &str, v: &'a PyReadonlyArray1<'_, f64>) -> PyResult<&'a [f64]> {
    let s = v.as_slice()?;
    if s.iter().any(|x| !x.is_finite()) {
        return err(format!("{what} must be finite"));
    }
    Ok(s)
}

fn resamples(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let b = convert::positive_int_setting("n_bootstrap", obj)?;
    usize::try_from(b).or_else(|_| err(format!("n_bootstrap is too large, got {b}")))
}

/// The means of `terms` over `n_bootstrap` resamples drawn with replacement.
#[pyfunction]
#[pyo3(signature = (terms, n_bootstrap, seed=None))]
fn bootstrap_means<'py>(
    py: Python<'py>,
    terms: PyReadonlyArray1<'py, f64>,
    n_bootstrap: &Bound<'py, PyAny>,
    seed: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let terms = finite("terms", &terms)?;
    let b = resamples(n_bootstrap)?;
    let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
    // The borrowed NumPy buffer stays valid without the GIL: the readonly borrow pins it.
    let means = py
        .detach(|| ope::bootstrap_means(terms, b, seed))
        .map_err(value_error)?;
    Ok(PyArray1::from_vec(py, means))
}

/// `mean(base) + sum(numer) / sum(denom)` over `n_bootstrap` resamples, an event's three
/// values drawn together.
#[pyfunction]
#[pyo3(signature = (base, numer, denom, n_bootstrap, seed=None))]
fn bootstrap_self_normalised<'py>(
    py: Python<'py>,
    base: PyReadonlyArray1<'py, f64>,
    numer: PyReadonlyArray1<'py, f64>,
    denom: PyReadonlyArray1<'py, f64>,
    n_bootstrap: &Bound<'py, PyAny>,
    seed: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (base, numer) = (finite("base", &base)?, finite("numer", &numer)?);
    let denom = finite("denom", &denom)?;
    let b = resamples(n_bootstrap)?;
    let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
    let means = py
        .detach(|| ope::bootstrap_self_normalised(base, numer, denom, b, seed))
        .map_err(value_error)?;
    Ok(PyArray1::from_vec(py, means))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bootstrap_means, m)?)?;
    m.add_function(wrap_pyfunction!(bootstrap_self_normalised, m)?)?;
    Ok(())
}
