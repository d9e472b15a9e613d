//! Argument conversion for LinUCB / LinTS: contexts (NumPy, lists, float32, strided, pandas),
//! batches, rewards, labels in messages, and the pickled per-arm state. These are data, so every
//! error is a `ValueError` (docs/validation.md): numbers are real and not booleans, arrays have
//! an integer or floating dtype.
use std::borrow::Cow;

use numpy::{AllowTypeChange, PyArrayLike1, PyArrayLike2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::convert;

pub(crate) fn verr(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

pub(crate) fn core_err(e: banditkit_core::BanditError) -> PyErr {
    PyValueError::new_err(e.0)
}

/// `obj` if it is a NumPy array of numbers, or a list/tuple whose items are all numbers (not
/// booleans, not strings), or an array-like (`__array__`) of numbers, converted to an array.
/// `what` names the argument in the error.
fn numeric<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyAny>> {
    let bad = || verr(format!("{what} of numbers"));
    if let Some(arr) = convert::numeric_ndarray(obj, bad)? {
        return Ok(arr.into_any());
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        // Nested lists (a batch) are checked by NumPy's dtype; flat items one by one, so that
        // `[1.0, True]` is not silently read as `[1.0, 1.0]`.
        for item in obj.try_iter()? {
            let item = item?;
            let nested = item.is_instance_of::<PyList>()
                || item.is_instance_of::<PyTuple>()
                || convert::is_ndarray(&item)?;
            if nested {
                let np = obj.py().import("numpy")?;
                let arr = np.call_method1("asarray", (obj,)).map_err(|_| bad())?;
                return match convert::numeric_ndarray(&arr, bad)? {
                    Some(a) => Ok(a.into_any()),
                    None => Err(bad()),
                };
            }
            if convert::data_number(&item).is_none() {
                return Err(bad());
            }
        }
        return Ok(obj.clone());
    }
    Err(bad())
}

/// A 1-D float64 view of a context (lists, float32, ints, array-likes accepted).
pub(crate) fn context<'py>(
    obj: &Bound<'py, PyAny>,
) -> PyResult<PyArrayLike1<'py, f64, AllowTypeChange>> {
    const WHAT: &str = "context must be a 1-D array";
    numeric(obj, WHAT)?
        .extract()
        .map_err(|_| verr(format!("{WHAT} of numbers")))
}

pub(crate) fn contiguous<'a>(a: &'a PyArrayLike1<'_, f64, AllowTypeChange>) -> Cow<'a, [f64]> {
    match a.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// A 2-D batch of contexts as row-major float64 with `d` columns; returns (data, rows).
pub(crate) fn batch(obj: &Bound<'_, PyAny>, d: usize) -> PyResult<(Vec<f64>, usize)> {
    const WHAT: &str = "X must be a 2-D array";
    let arr: PyArrayLike2<'_, f64, AllowTypeChange> = numeric(obj, WHAT)?
        .extract()
        .map_err(|_| verr(format!("{WHAT} of numbers")))?;
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

pub(crate) fn label_repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The position of `arm` among a model's arm `labels` (the same object, else an equal one).
pub(crate) fn find_label(labels: &[Py<PyAny>], arm: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
    for (k, l) in labels.iter().enumerate() {
        let l = l.bind(arm.py());
        if l.is(arm) || l.eq(arm)? {
            return Ok(Some(k));
        }
    }
    Ok(None)
}

fn check_hashable(arm: &Bound<'_, PyAny>) -> PyResult<()> {
    arm.hash().map(|_| ()).map_err(|_| {
        verr(format!(
            "arm labels must be hashable, got {}",
            label_repr(arm)
        ))
    })
}

/// A new arm label for `labels` (`add_arm`): hashable and not already there.
pub(crate) fn check_new_label(labels: &[Py<PyAny>], arm: &Bound<'_, PyAny>) -> PyResult<()> {
    check_hashable(arm)?;
    if find_label(labels, arm)?.is_some() {
        return Err(verr(format!("arm {} already exists", label_repr(arm))));
    }
    Ok(())
}

/// A constructor's `arms`: distinct hashable labels, in order.
pub(crate) fn new_labels(arms: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyAny>>> {
    let mut labels: Vec<Py<PyAny>> = Vec::new();
    for a in convert::arm_list("arms", arms)? {
        check_hashable(&a)?;
        if find_label(&labels, &a)?.is_some() {
            return Err(verr(format!("duplicate arm {}", label_repr(&a))));
        }
        labels.push(a.unbind());
    }
    Ok(labels)
}

/// The position of `arm` among `labels`, or a `ValueError` naming it.
pub(crate) fn label_index(labels: &[Py<PyAny>], arm: &Bound<'_, PyAny>) -> PyResult<usize> {
    find_label(labels, arm)?.ok_or_else(|| verr(format!("unknown arm {}", label_repr(arm))))
}

/// `available_arms` as positions among `labels` (None: every arm); an empty list is refused.
pub(crate) fn available_positions(
    labels: &[Py<PyAny>],
    available: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Vec<usize>>> {
    let Some(av) = available.filter(|a| !a.is_none()) else {
        return Ok(None);
    };
    let out = convert::arm_list("available_arms", av)?
        .iter()
        .map(|a| label_index(labels, a))
        .collect::<PyResult<Vec<_>>>()?;
    if out.is_empty() {
        return Err(verr("available_arms must not be empty"));
    }
    Ok(Some(out))
}

/// One reward: a real number, not a boolean or a string.
pub(crate) fn check_reward(reward: &Bound<'_, PyAny>) -> PyResult<f64> {
    convert::data_number(reward).ok_or_else(|| {
        verr(format!(
            "reward must be a number, got {}",
            label_repr(reward)
        ))
    })
}

/// The rewards of a batch: a 1-D array-like of numbers.
pub(crate) fn rewards(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    const WHAT: &str = "rewards must be a 1-D array";
    let r: PyArrayLike1<'_, f64, AllowTypeChange> = numeric(obj, WHAT)?
        .extract()
        .map_err(|_| verr(format!("{WHAT} of numbers")))?;
    Ok(r.as_array().iter().copied().collect())
}
