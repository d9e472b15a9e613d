//! The public classes: `LinUCB` and `LinTS` add their constructor, scoring parameter and
//! `__repr__` to the shared `_LinearBandit`.
use banditkit_core::contextual::Scoring;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::LinearBase;
use crate::convert;

/// The scoring parameter (`alpha`, `v`): a number setting, 1.0 when not given.
fn parameter(what: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
    v.map_or(Ok(1.0), |v| convert::number_setting(what, v))
}

/// LinUCB: score `theta^T x + alpha sqrt(x^T A^{-1} x)`.
#[pyclass(extends = LinearBase, frozen, module = "banditkit_rs")]
pub struct LinUCB;

#[pymethods]
impl LinUCB {
    #[new]
    #[pyo3(signature = (arms, n_features, alpha=None, l2_lambda=None, window_size=None, gamma=None, seed=None, refactor_every=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        arms: &Bound<'_, PyAny>,
        n_features: &Bound<'_, PyAny>,
        alpha: Option<&Bound<'_, PyAny>>,
        l2_lambda: Option<&Bound<'_, PyAny>>,
        window_size: Option<&Bound<'_, PyAny>>,
        gamma: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        refactor_every: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let alpha = parameter("alpha", alpha)?;
        let base = LinearBase::build(
            arms,
            n_features,
            Scoring::Ucb { alpha },
            l2_lambda,
            window_size,
            gamma,
            seed,
            refactor_every,
        )?;
        Ok(PyClassInitializer::from(base).add_subclass(LinUCB))
    }

    /// The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
    #[classmethod]
    fn from_bytes(cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Py<Self>> {
        let base = LinearBase::from_bytes(cls.py(), data, "LinUCB")?;
        Py::new(
            cls.py(),
            PyClassInitializer::from(base).add_subclass(LinUCB),
        )
    }

    #[getter]
    fn alpha(slf: PyRef<'_, Self>) -> f64 {
        slf.as_super().parameter()
    }

    fn __repr__(slf: PyRef<'_, Self>) -> String {
        slf.as_super().repr(slf.py(), "LinUCB", "alpha")
    }
}

/// LinTS: score `theta_tilde^T x`, `theta_tilde ~ N(theta, v^2 A^{-1})`.
#[pyclass(extends = LinearBase, frozen, module = "banditkit_rs")]
pub struct LinTS;

#[pymethods]
impl LinTS {
    #[new]
    #[pyo3(signature = (arms, n_features, v=None, l2_lambda=None, window_size=None, gamma=None, seed=None, refactor_every=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        arms: &Bound<'_, PyAny>,
        n_features: &Bound<'_, PyAny>,
        v: Option<&Bound<'_, PyAny>>,
        l2_lambda: Option<&Bound<'_, PyAny>>,
        window_size: Option<&Bound<'_, PyAny>>,
        gamma: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        refactor_every: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let v = parameter("v", v)?;
        let base = LinearBase::build(
            arms,
            n_features,
            Scoring::Ts { v },
            l2_lambda,
            window_size,
            gamma,
            seed,
            refactor_every,
        )?;
        Ok(PyClassInitializer::from(base).add_subclass(LinTS))
    }

    /// The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
    #[classmethod]
    fn from_bytes(cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Py<Self>> {
        let base = LinearBase::from_bytes(cls.py(), data, "LinTS")?;
        Py::new(cls.py(), PyClassInitializer::from(base).add_subclass(LinTS))
    }

    #[getter]
    fn v(slf: PyRef<'_, Self>) -> f64 {
        slf.as_super().parameter()
    }

    fn __repr__(slf: PyRef<'_, Self>) -> String {
        slf.as_super().repr(slf.py(), "LinTS", "v")
    }
}

/// `base` as an object of `cls` (LinUCB or LinTS).
pub(super) fn wrap<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    base: LinearBase,
) -> PyResult<Bound<'py, PyAny>> {
    let init = PyClassInitializer::from(base);
    if cls.is(py.get_type::<LinTS>()) {
        Ok(Bound::new(py, init.add_subclass(LinTS))?.into_any())
    } else {
        Ok(Bound::new(py, init.add_subclass(LinUCB))?.into_any())
    }
}
