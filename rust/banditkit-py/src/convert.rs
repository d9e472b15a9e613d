//! Argument conversion and validation shared by the classes (the policy is docs/validation.md):
//! settings (a wrong type is a `TypeError`, a wrong value a `ValueError`), data (numbers, arrays,
//! lists of arms, `[total, success]` observations, rewards, saved state: always `ValueError`),
//! draws and seeds. LinUCB/LinTS inputs are in `contextual/input.rs`.
use banditkit_core::gaussian::fmt_num;
use banditkit_core::BanditError;
use numpy::{PyArrayDescrMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

pub fn value_error(e: BanditError) -> PyErr {
    PyValueError::new_err(e.0)
}

pub fn err<T>(msg: String) -> PyResult<T> {
    Err(PyValueError::new_err(msg))
}

fn type_error<T>(msg: String) -> PyResult<T> {
    Err(PyTypeError::new_err(msg))
}

/// `repr(obj)`, for messages.
pub fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// True for NumPy arrays and scalars of an integer or floating dtype (booleans are not numbers).
fn numeric_kind(kind: u8) -> bool {
    matches!(kind, b'i' | b'u' | b'f')
}

/// The dtype kind of a NumPy scalar (`np.float32(1)`, `np.bool_(True)`), if `obj` is one.
fn numpy_scalar_kind(obj: &Bound<'_, PyAny>) -> Option<u8> {
    let dtype = obj.getattr("dtype").ok()?;
    let kind = dtype.getattr("kind").ok()?;
    let kind = kind
        .cast::<PyString>()
        .ok()?
        .to_str()
        .ok()?
        .as_bytes()
        .first()
        .copied();
    kind
}

/// Settings: a number (int, float, NumPy integer or floating scalar; never a bool or a string).
/// Wrong type: `TypeError`.
pub fn number_setting(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    if !obj.is_instance_of::<PyBool>() {
        if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
            return obj.extract();
        }
        if numpy_scalar_kind(obj).is_some_and(numeric_kind) && !is_ndarray(obj)? {
            return obj.extract();
        }
    }
    type_error(format!("{what} must be a number, got {}", repr(obj)))
}

/// Settings: an integer (int or NumPy integer scalar; never a bool or a float). Wrong type:
/// `TypeError`.
pub fn int_setting(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<i128> {
    let is_int = !obj.is_instance_of::<PyBool>()
        && (obj.is_instance_of::<PyInt>()
            || (numpy_scalar_kind(obj).is_some_and(|k| matches!(k, b'i' | b'u'))
                && !is_ndarray(obj)?));
    if !is_int {
        return type_error(format!("{what} must be an integer, got {}", repr(obj)));
    }
    obj.extract()
        .or_else(|_| err(format!("{what} is too large, got {}", repr(obj))))
}

/// Settings: a flag (bool or `np.bool_`). Wrong type: `TypeError`.
pub fn flag_setting(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.is_instance_of::<PyBool>() {
        return obj.extract();
    }
    if numpy_scalar_kind(obj) == Some(b'b') && !is_ndarray(obj)? {
        return obj.is_truthy();
    }
    type_error(format!("{what} must be True or False, got {}", repr(obj)))
}

/// Data: one real number (int, float, NumPy integer/floating scalar or 0-d array, anything else
/// with `__float__`), never a bool, a string or None. `None` if `obj` is not such a number.
pub fn data_number(obj: &Bound<'_, PyAny>) -> Option<f64> {
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyString>() || obj.is_none() {
        return None;
    }
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        return obj.extract().ok();
    }
    if let Ok(arr) = obj.cast::<PyUntypedArray>() {
        if arr.ndim() != 0 || !numeric_kind(arr.dtype().kind()) {
            return None;
        }
    } else if let Some(kind) = numpy_scalar_kind(obj) {
        if !numeric_kind(kind) {
            return None;
        }
    }
    obj.extract().ok()
}

/// `obj` as a NumPy array if it is one or converts to one by `__array__` (pandas Series, ...);
/// `Ok(None)` for anything else (lists, tuples, scalars, strings).
pub fn array_like<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyUntypedArray>>> {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return Ok(Some(a.clone()));
    }
    // Plain Python values first: a failed `hasattr` raises and clears an AttributeError, which
    // costs more than the rest of a small update.
    let plain = obj.is_instance_of::<PyFloat>()
        || obj.is_instance_of::<PyInt>()
        || obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>()
        || obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyDict>()
        || obj.is_none();
    if plain || !obj.hasattr("__array__")? {
        return Ok(None);
    }
    let np = obj.py().import("numpy")?;
    Ok(np
        .call_method1("asarray", (obj,))?
        .cast_into::<PyUntypedArray>()
        .ok())
}

/// Data: [`array_like`], rejecting (with `bad()`) an array whose dtype is not integer or
/// floating (booleans, strings, objects).
pub fn numeric_ndarray<'py>(
    obj: &Bound<'py, PyAny>,
    bad: impl Fn() -> PyErr,
) -> PyResult<Option<Bound<'py, PyUntypedArray>>> {
    match array_like(obj)? {
        Some(arr) if !numeric_kind(arr.dtype().kind()) => Err(bad()),
        other => Ok(other),
    }
}

/// Data: a list of arms. Any iterable but a string (which is never a list of arms).
pub fn arm_list<'py>(what: &str, obj: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() {
        return err(format!(
            "{what} must be a list of arms, got the string {}",
            repr(obj)
        ));
    }
    let iter = obj
        .try_iter()
        .or_else(|_| err(format!("{what} must be a list of arms, got {}", repr(obj))))?;
    iter.collect()
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

/// `n` of `select` and the like: a positive integer setting.
pub fn positive_int_setting(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    let n = int_setting(what, obj)?;
    if n <= 0 {
        return err(format!("{what} must be positive, got {n}"));
    }
    u64::try_from(n).or_else(|_| err(format!("{what} is too large, got {n}")))
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

/// A real number in data (a prior mean, say): `ValueError` if it is not one.
pub fn real(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    data_number(obj).map_or_else(
        || err(format!("{what} must be a number, got {}", repr(obj))),
        Ok,
    )
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

/// `method`: the string "mc" or "exact" (another type: `TypeError`).
pub fn method(obj: &Bound<'_, PyAny>) -> PyResult<Method> {
    let Ok(m) = obj.cast::<PyString>() else {
        return type_error(format!("method must be 'mc' or 'exact', got {}", repr(obj)));
    };
    let m = m.to_str()?;
    match m {
        "mc" => Ok(Method::MonteCarlo),
        "exact" => Ok(Method::Exact),
        _ => err(format!("method must be 'mc' or 'exact', got '{m}'")),
    }
}

/// `method`, "mc" when not given.
pub fn method_or_mc(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Method> {
    obj.map_or(Ok(Method::MonteCarlo), method)
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

/// One `[total_count, success_count]` observation as floats (validated by the core): a list,
/// tuple or array-like of two numbers.
pub fn count_pair(name: &Bound<'_, PyAny>, values: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let shape_msg = || {
        format!(
            "Each observation must be [total_count, success_count], got {} for action '{}'",
            values.str().map(|s| s.to_string()).unwrap_or_default(),
            label(name)
        )
    };
    // Items of an array as Python scalars, so that each is checked as a number below.
    let pair: Vec<Bound<'_, PyAny>> = match array_like(values)? {
        Some(arr) if arr.ndim() == 1 && arr.len() == 2 => arr
            .call_method0("tolist")?
            .try_iter()?
            .collect::<PyResult<_>>()?,
        Some(_) => return err(shape_msg()),
        None if (values.is_instance_of::<PyList>() || values.is_instance_of::<PyTuple>())
            && values.len()? == 2 =>
        {
            values.try_iter()?.collect::<PyResult<_>>()?
        }
        None => return err(shape_msg()),
    };
    let mut out = [0.0f64; 2];
    for ((slot, v), which) in out.iter_mut().zip(&pair).zip(["Total", "Success"]) {
        if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
            return err(shape_msg());
        }
        match data_number(v) {
            Some(x) => *slot = x,
            None if is_ndarray(v)? => return err(shape_msg()),
            None => {
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

/// Rewards for one arm, validated and summarised as (n, sum): a number, a list/tuple of
/// numbers, or a 0-d/1-d array-like of an integer or floating dtype.
pub fn reward_summary(name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<(u64, f64)> {
    let type_err = |what: String| {
        PyValueError::new_err(format!(
            "Rewards must be a number, list, tuple, or array, got {what} for action '{}'",
            label(name)
        ))
    };
    let type_name = || {
        value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    };
    let check =
        |r: &[f64]| banditkit_core::gaussian::check_rewards(&label(name), r).map_err(value_error);
    let dtype_err = || {
        let dtype = value
            .getattr("dtype")
            .and_then(|d| d.str().map(|s| s.to_string()))
            .unwrap_or_default();
        type_err(format!("an array of dtype {dtype}"))
    };
    if let Some(arr) = numeric_ndarray(value, dtype_err)? {
        let arr = arr.call_method1("astype", ("float64",))?;
        let arr: PyReadonlyArrayDyn<'_, f64> = arr.extract()?;
        if arr.ndim() > 1 {
            return err(format!(
                "Rewards must be a number or a 1-D sequence, got an array of shape {:?} for action '{}'",
                arr.shape(),
                label(name)
            ));
        }
        return match arr.as_slice() {
            Ok(s) => check(s),
            Err(_) => check(&arr.as_array().iter().copied().collect::<Vec<f64>>()),
        };
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut out = Vec::with_capacity(value.len()?);
        for v in value.try_iter()? {
            let v = v?;
            match data_number(&v) {
                Some(x) if !v.is_instance_of::<PyList>() => out.push(x),
                _ => return Err(type_err(type_name())),
            }
        }
        return check(&out);
    }
    match data_number(value) {
        Some(x) => check(&[x]),
        None => Err(type_err(type_name())),
    }
}

/// `obj` as a float64 array of an integer or floating dtype (no booleans, no strings): its
/// shape (as Python prints it, and as numbers) and data.
pub fn float_array(obj: &Bound<'_, PyAny>) -> PyResult<(String, Vec<usize>, Vec<f64>)> {
    let np = obj.py().import("numpy")?;
    let not_numbers = || PyValueError::new_err("expected an array of numbers");
    let arr = np
        .call_method1("asarray", (obj,))
        .map_err(|_| not_numbers())?;
    let arr = numeric_ndarray(&arr, not_numbers)?
        .ok_or_else(not_numbers)?
        .call_method1("astype", ("float64",))?;
    let shape_obj = arr.getattr("shape")?;
    let data: Vec<f64> = arr
        .call_method0("ravel")?
        .call_method0("tolist")?
        .extract()?;
    Ok((shape_obj.str()?.to_string(), shape_obj.extract()?, data))
}
