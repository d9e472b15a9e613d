//! The public classes: `LinUCB` and `LinTS` add their constructor, scoring parameter and
//! `__repr__` to the shared `_LinearBandit`.
use banditkit_core::contextual::Scoring;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::LinearBase;

/// LinUCB: score `theta^T x + alpha sqrt(x^T A^{-1} x)`.
#[pyclass(extends = LinearBase, module = "banditkit_rs")]
pub struct LinUCB;

#[pymethods]
impl LinUCB {
    #[new]
    #[pyo3(signature = (arms, n_features, alpha=1.0, l2_lambda=1.0, window_size=0, gamma=1.0, seed=None, refactor_every=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        arms: &Bound<'_, PyAny>,
        n_features: i64,
        alpha: f64,
        l2_lambda: f64,
        window_size: i64,
        gamma: f64,
        seed: Option<&Bound<'_, PyAny>>,
        refactor_every: Option<i64>,
    ) -> PyResult<PyClassInitializer<Self>> {
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
        slf.as_super().policy.scoring().parameter()
    }

    fn __repr__(slf: PyRef<'_, Self>) -> String {
        repr("LinUCB", "alpha", slf.as_super())
    }
}

/// LinTS: score `theta_tilde^T x`, `theta_tilde ~ N(theta, v^2 A^{-1})`.
#[pyclass(extends = LinearBase, module = "banditkit_rs")]
pub struct LinTS;

#[pymethods]
impl LinTS {
    #[new]
    #[pyo3(signature = (arms, n_features, v=1.0, l2_lambda=1.0, window_size=0, gamma=1.0, seed=None, refactor_every=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        arms: &Bound<'_, PyAny>,
        n_features: i64,
        v: f64,
        l2_lambda: f64,
        window_size: i64,
        gamma: f64,
        seed: Option<&Bound<'_, PyAny>>,
        refactor_every: Option<i64>,
    ) -> PyResult<PyClassInitializer<Self>> {
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
        slf.as_super().policy.scoring().parameter()
    }

    fn __repr__(slf: PyRef<'_, Self>) -> String {
        repr("LinTS", "v", slf.as_super())
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

/// `Name(n_arms=.., n_features=.., param=.., l2_lambda=.., window_size=.., gamma=..)`.
fn repr(name: &str, param: &str, b: &LinearBase) -> String {
    let c = b.policy.config();
    format!(
        "{name}(n_arms={}, n_features={}, {param}={}, l2_lambda={}, window_size={}, gamma={})",
        b.labels.len(),
        c.n_features,
        b.policy.scoring().parameter(),
        c.l2_lambda,
        c.window_size,
        c.gamma
    )
}
