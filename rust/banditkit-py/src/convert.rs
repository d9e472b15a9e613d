//! Argument conversion and validation shared by the classes: draws, seeds, aggressive, method,
//! `[total, success]` observations. Errors become `ValueError` with the contract's messages.
use banditkit_core::gaussian::fmt_num;
use banditkit_core::BanditError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyTuple};

pub fn value_error(e: BanditError) -> PyErr {
    PyValueError::new_err(e.0)
}

pub fn err<T>(msg: String) -> PyResult<T> {
    Err(PyValueError::new_err(msg))
}

/// `str(name)`, for messages.
pub fn label(name: &Bound<'_, PyAny>) -> String {
    name.str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A positive Python integer (numpy integers too); booleans and floats are rejected.
pub fn positive_int(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() {
        return err(format!("{what} must be an integer, got {}", obj.repr()?));
    }
    let n: i128 = match obj.extract() {
        Ok(n) => n,
        Err(_) => return err(format!("{what} must be an integer, got {}", obj.repr()?)),
    };
    if n <= 0 {
        return err(format!("{what} must be positive, got {n}"));
    }
    u64::try_from(n).or_else(|_| err(format!("{what} is too large, got {n}")))
}

/// `draw`: a positive integer.
pub fn draws(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    positive_int("draw", obj)
}

/// An optional seed: None, or an integer in [0, 2^64).
pub fn seed(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if obj.is_instance_of::<PyBool>() {
        return err(format!(
            "seed must be a non-negative integer, got {}",
            obj.repr()?
        ));
    }
    match obj.extract::<i128>() {
        Ok(s) if (0..=u64::MAX as i128).contains(&s) => Ok(Some(s as u64)),
        _ => err(format!(
            "seed must be a non-negative integer below 2**64, got {}",
            obj.repr()?
        )),
    }
}

/// A real number argument; booleans are rejected (they are almost always a mistake here).
pub fn real(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    if obj.is_instance_of::<PyBool>() {
        return err(format!("{what} must be a number, got {}", obj.repr()?));
    }
    obj.extract::<f64>()
        .or_else(|_| err(format!("{what} must be a number, got {}", obj.repr()?)))
}

/// `aggressive`: a finite positive exponent.
pub fn aggressive(g: f64) -> PyResult<f64> {
    if !(g.is_finite() && g > 0.0) {
        return err(format!("aggressive must be positive, got {}", fmt_num(g)));
    }
    Ok(g)
}

/// How win probabilities are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    MonteCarlo,
    Exact,
}

pub fn method(m: &str) -> PyResult<Method> {
    match m {
        "mc" => Ok(Method::MonteCarlo),
        "exact" => Ok(Method::Exact),
        _ => err(format!("method must be 'mc' or 'exact', got '{m}'")),
    }
}

/// `decay` in [0, 1].
pub fn decay(d: f64) -> PyResult<f64> {
    banditkit_core::gaussian::check_decay(d).map_err(value_error)?;
    Ok(d)
}

/// The items of an `obs` mapping, in order, rejecting an empty or non-dict argument.
pub fn obs_items<'py>(
    obs: &Bound<'py, PyAny>,
) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    let dict = match obs.cast::<PyDict>() {
        Ok(d) => d.clone(),
        Err(_) => {
            if obs.hasattr("items")? {
                PyDict::from_sequence(&obs.call_method0("items")?)?
            } else {
                return err(format!(
                    "obs must be a dict mapping action to observations, got {}",
                    obs.get_type().name()?
                ));
            }
        }
    };
    if dict.is_empty() {
        return err("obs dictionary cannot be empty".into());
    }
    Ok(dict.iter().collect())
}

/// One `[total_count, success_count]` observation as floats (validated by the core).
pub fn count_pair(name: &Bound<'_, PyAny>, values: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let shape_err = || {
        err(format!(
            "Each observation must be [total_count, success_count], got {} for action '{}'",
            values.str().map(|s| s.to_string()).unwrap_or_default(),
            label(name)
        ))
    };
    let is_seq = values.is_instance_of::<PyList>()
        || values.is_instance_of::<PyTuple>()
        || is_ndarray(values)?;
    if !is_seq || values.len().unwrap_or(0) != 2 {
        return shape_err();
    }
    let pair: Vec<Bound<'_, PyAny>> = values.try_iter()?.collect::<PyResult<_>>()?;
    let mut out = [0.0f64; 2];
    for ((slot, v), which) in out.iter_mut().zip(&pair).zip(["Total", "Success"]) {
        if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() || is_ndarray(v)? {
            return shape_err();
        }
        match v.extract::<f64>() {
            Ok(x) if !v.is_instance_of::<PyBool>() => *slot = x,
            _ => {
                return err(format!(
                    "{which} count must be a finite whole number, got {} for action '{}'",
                    v.repr()?,
                    label(name)
                ))
            }
        }
    }
    Ok((out[0], out[1]))
}

/// Parses a whole `obs` of counts: labels, their `str` names, and the pairs, validated by the core
/// (so nothing is changed before every entry has passed).
#[allow(clippy::type_complexity)]
pub fn count_obs<'py>(
    obs: &Bound<'py, PyAny>,
) -> PyResult<(Vec<Bound<'py, PyAny>>, Vec<(f64, f64)>)> {
    let items = obs_items(obs)?;
    let mut keys = Vec::with_capacity(items.len());
    let mut names = Vec::with_capacity(items.len());
    let mut pairs = Vec::with_capacity(items.len());
    for (k, v) in items {
        pairs.push(count_pair(&k, &v)?);
        names.push(label(&k));
        keys.push(k);
    }
    banditkit_core::beta::validate_count_obs(&names, &pairs).map_err(value_error)?;
    Ok((keys, pairs))
}

pub fn is_ndarray(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(obj.cast::<numpy::PyUntypedArray>().is_ok())
}
