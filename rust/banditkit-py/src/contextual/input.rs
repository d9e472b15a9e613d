//! Argument conversion for LinUCB / LinTS: contexts (NumPy, lists, float32, strided), batches,
//! rewards, labels in messages. Errors are `ValueError`.
use std::borrow::Cow;

use numpy::{AllowTypeChange, PyArrayLike1, PyArrayLike2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pub(super) fn verr(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

pub(super) fn core_err(e: banditkit_core::BanditError) -> PyErr {
    PyValueError::new_err(e.0)
}

/// A 1-D float64 view of a context (lists, float32, ints accepted).
pub(super) fn context<'py>(
    obj: &Bound<'py, PyAny>,
) -> PyResult<PyArrayLike1<'py, f64, AllowTypeChange>> {
    obj.extract()
        .map_err(|_| verr("context must be a 1-D array of numbers"))
}

pub(super) fn contiguous<'a>(a: &'a PyArrayLike1<'_, f64, AllowTypeChange>) -> Cow<'a, [f64]> {
    match a.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// A 2-D batch of contexts as row-major float64 with `d` columns; returns (data, rows).
pub(super) fn batch(obj: &Bound<'_, PyAny>, d: usize) -> PyResult<(Vec<f64>, usize)> {
    let arr: PyArrayLike2<'_, f64, AllowTypeChange> = obj
        .extract()
        .map_err(|_| verr("X must be a 2-D array of numbers"))?;
    let shape = arr.shape();
    if shape[1] != d {
        return Err(verr(format!("X must have {d} columns, got {}", shape[1])));
    }
    // `as_slice` also accepts Fortran order, whose memory order is not row-major.
    let data = match arr.as_slice() {
        Ok(s) if arr.is_c_contiguous() => s.to_vec(),
        _ => arr.as_array().iter().copied().collect(),
    };
    Ok((data, shape[0]))
}

pub(super) fn label_repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into())
}

pub(super) fn check_reward(reward: &Bound<'_, PyAny>) -> PyResult<f64> {
    reward.extract::<f64>().map_err(|_| {
        verr(format!(
            "reward must be a number, got {}",
            label_repr(reward)
        ))
    })
}
