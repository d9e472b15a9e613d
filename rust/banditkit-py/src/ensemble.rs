//! The bootstrap ridge kernel as functions (NumPy in, NumPy out), named like their
//! `banditkit.python.ensemble` references. Types are converted here; the fit runs without the GIL.
use crate::convert::{err, value_error};
use banditkit_core::ensemble::{self, Draws, Fitted, Problem, Sampling};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

/// The sampling named by `sampling` with its seed(s).
fn sampling_of<'a>(kind: &str, seed: u64, seeds: Option<&'a [u32]>) -> PyResult<Sampling<'a>> {
    match (kind, seeds) {
        ("sklearn", Some(seeds)) => Ok(Sampling::Sklearn { seeds }),
        ("sklearn", None) => err("sampling='sklearn' needs the members' seeds".into()),
        ("fast", _) => Ok(Sampling::Fast { seed }),
        _ => err(format!(
            "sampling must be 'sklearn' or 'fast', got {kind:?}"
        )),
    }
}

fn slice_or_copy<T: numpy::Element + Copy>(a: &PyReadonlyArray1<'_, T>) -> Vec<T> {
    a.as_array().iter().copied().collect()
}

fn pool(n_threads: Option<usize>) -> PyResult<Option<rayon::ThreadPool>> {
    match n_threads {
        None => Ok(None),
        Some(0) => err("n_threads must be at least 1".into()),
        Some(k) => rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .map(Some)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string())),
    }
}

type FitOut<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    f64,
);

fn to_numpy<'py, T: numpy::Element>(
    py: Python<'py>,
    f: Fitted<T>,
    members: usize,
    p: usize,
) -> PyResult<FitOut<'py>> {
    let coef = PyArray1::from_vec(py, f.coef).reshape([members, p])?;
    Ok((
        coef.into_any(),
        PyArray1::from_vec(py, f.intercept),
        PyArray1::from_vec(py, f.coef_mean),
        f.intercept_mean,
    ))
}

/// Fits `n_estimators` bootstrap ridge members: (coef (members x p, float32 or float64),
/// intercept (members), coef_mean (p), intercept_mean).
#[pyfunction]
#[pyo3(signature = (x, y, alpha, fit_intercept, n_estimators, sampling, seed, seeds, n_draws, cdf=None, dtype="float32", n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn ridge_ensemble_fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    alpha: f64,
    fit_intercept: bool,
    n_estimators: usize,
    sampling: &str,
    seed: u64,
    seeds: Option<PyReadonlyArray1<'py, u32>>,
    n_draws: usize,
    cdf: Option<PyReadonlyArray1<'py, f64>>,
    dtype: &str,
    n_threads: Option<usize>,
) -> PyResult<FitOut<'py>> {
    let [n, p] = [x.shape()[0], x.shape()[1]];
    let xs: Vec<f64> = x.as_array().iter().copied().collect();
    let ys = slice_or_copy(&y);
    let seeds = seeds.as_ref().map(slice_or_copy);
    let cdf = cdf.as_ref().map(slice_or_copy);
    let sampling = sampling_of(sampling, seed, seeds.as_deref())?;
    let pool = pool(n_threads)?;
    let pb = Problem {
        x: &xs,
        y: &ys,
        n,
        p,
        alpha,
        fit_intercept,
    };
    let draws = Draws {
        n_rows: n,
        n_draws,
        cdf: cdf.as_deref(),
    };
    match dtype {
        "float32" => {
            let fit = || ensemble::fit::<f32>(&pb, sampling, draws, n_estimators);
            let out = py.detach(|| match &pool {
                Some(pool) => pool.install(fit),
                None => fit(),
            });
            to_numpy(py, out.map_err(value_error)?, n_estimators, p)
        }
        "float64" => {
            let fit = || ensemble::fit::<f64>(&pb, sampling, draws, n_estimators);
            let out = py.detach(|| match &pool {
                Some(pool) => pool.install(fit),
                None => fit(),
            });
            to_numpy(py, out.map_err(value_error)?, n_estimators, p)
        }
        _ => err(format!(
            "dtype must be 'float32' or 'float64', got {dtype:?}"
        )),
    }
}

/// The members' bootstrap counts (n_estimators x n_rows, float64), as the fit draws them.
#[pyfunction]
#[pyo3(signature = (n_rows, n_estimators, sampling, seed, seeds, n_draws, cdf=None))]
#[allow(clippy::too_many_arguments)]
fn ridge_bootstrap_counts<'py>(
    py: Python<'py>,
    n_rows: usize,
    n_estimators: usize,
    sampling: &str,
    seed: u64,
    seeds: Option<PyReadonlyArray1<'py, u32>>,
    n_draws: usize,
    cdf: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let seeds = seeds.as_ref().map(slice_or_copy);
    let cdf = cdf.as_ref().map(slice_or_copy);
    let sampling = sampling_of(sampling, seed, seeds.as_deref())?;
    if let Sampling::Sklearn { seeds } = sampling {
        if seeds.len() != n_estimators {
            return err("need one seed per member".into());
        }
    }
    if n_rows == 0 || cdf.as_ref().is_some_and(|c| c.len() != n_rows) {
        return err("n_rows must be positive and match the cumulative weights".into());
    }
    let draws = Draws {
        n_rows,
        n_draws,
        cdf: cdf.as_deref(),
    };
    let counts = py.detach(|| ensemble::counts(sampling, draws, n_estimators));
    PyArray1::from_vec(py, counts).reshape([n_estimators, n_rows])
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ridge_ensemble_fit, m)?)?;
    m.add_function(wrap_pyfunction!(ridge_bootstrap_counts, m)?)?;
    Ok(())
}
