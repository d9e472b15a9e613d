//! The contract's rules around a win-probability kernel, shared by the Thompson classes:
//! which requested arms are observed, how unobserved arms share, and `select`'s ranking.
use crate::arms::ArmIndex;
use crate::convert::err;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The requested arms, split into observed (tracked, by index) and unobserved (labels only).
pub struct Requested {
    /// Requested labels in request order, each with its index among `observed` if tracked.
    order: Vec<(Py<PyAny>, Option<usize>)>,
    /// Indices into the model's arms of the observed requested arms.
    pub observed: Vec<usize>,
}

pub fn split_requested(
    py: Python<'_>,
    arms: &ArmIndex,
    action_list: Option<&Bound<'_, PyAny>>,
) -> PyResult<Requested> {
    let mut order = Vec::new();
    let mut observed = Vec::new();
    match action_list.filter(|a| !a.is_none()) {
        None => {
            for i in 0..arms.len() {
                order.push((arms.name(py, i).clone().unbind(), Some(observed.len())));
                observed.push(i);
            }
        }
        Some(list) => {
            let seen = PyDict::new(py);
            for name in crate::convert::arm_list("action_list", list)? {
                if seen.contains(&name)? {
                    continue; // a repeated name is one arm
                }
                seen.set_item(&name, true)?;
                let slot = match arms.get(&name)? {
                    Some(i) => {
                        observed.push(i);
                        Some(observed.len() - 1)
                    }
                    None => None,
                };
                order.push((name.unbind(), slot));
            }
        }
    }
    Ok(Requested { order, observed })
}

impl Requested {
    /// A kernel runs only when at least two requested arms are observed.
    pub fn needs_kernel(&self) -> bool {
        self.order.len() > 1 && self.observed.len() > 1
    }

    /// The result dict: `probs` are the kernel's probabilities over `observed` (when it ran),
    /// scaled by the observed share; unobserved arms each get 1 / (number requested).
    pub fn to_dict<'py>(
        &self,
        py: Python<'py>,
        probs: Option<&[f64]>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let total = self.order.len() as f64;
        let share = self.observed.len() as f64 / total;
        for (name, slot) in &self.order {
            let p = match (slot, probs) {
                (Some(j), Some(p)) => p[*j] * share,
                _ => 1.0 / total,
            };
            out.set_item(name.bind(py), p)?;
        }
        Ok(out)
    }
}

/// `select`'s `n`: None means 1; otherwise an integer in [1, n_arms].
pub fn select_count(n: Option<&Bound<'_, PyAny>>, n_arms: usize) -> PyResult<usize> {
    if n_arms == 0 {
        return err("no arms to select from".into());
    }
    let n = match n.filter(|n| !n.is_none()) {
        None => 1,
        Some(obj) => crate::convert::positive_int_setting("n", obj)? as usize,
    };
    if n > n_arms {
        return err(format!(
            "n must be at most the number of arms ({n_arms}), got {n}"
        ));
    }
    Ok(n)
}

/// The arm with the largest sampled value (n == 1), or the n largest, best first; ties go to
/// the lower index, as with `numpy.argmax`.
pub fn ranked<'py>(
    py: Python<'py>,
    arms: &ArmIndex,
    values: &[f64],
    n: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    if n == 1 {
        return Ok(arms.name(py, idx[0]).clone());
    }
    Ok(PyList::new(py, idx[..n].iter().map(|&i| arms.name(py, i)))?.into_any())
}

/// `available_arms` of a Thompson class's `select`/`propensities`: the indices of the named
/// arms, sorted, each once (None: every arm). Unknown arms and an empty list are ValueErrors.
pub fn open_arms(arms: &ArmIndex, available: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<usize>> {
    let Some(av) = available.filter(|a| !a.is_none()) else {
        return Ok((0..arms.len()).collect());
    };
    let mut open = Vec::new();
    for name in crate::convert::arm_list("available_arms", av)? {
        match arms.get(&name)? {
            Some(i) => open.push(i),
            None => return err(format!("unknown arm {}", name.repr()?)),
        }
    }
    if open.is_empty() {
        return err("available_arms must not be empty".into());
    }
    open.sort_unstable();
    open.dedup();
    Ok(open)
}

/// `select` among the open arms only: the others' draws can never rank.
pub fn close_others(values: &mut [f64], open: &[usize]) {
    if open.len() < values.len() {
        let mut keep = vec![false; values.len()];
        open.iter().for_each(|&i| keep[i] = true);
        for (v, k) in values.iter_mut().zip(keep) {
            if !k {
                *v = f64::NEG_INFINITY;
            }
        }
    }
}

/// `select`'s answer with `return_propensity`: (arm, its probability); only for n == 1.
pub fn with_propensity<'py>(
    py: Python<'py>,
    arm: Bound<'py, PyAny>,
    p: f64,
) -> PyResult<Bound<'py, PyAny>> {
    Ok((arm, p.max(0.0)).into_pyobject(py)?.into_any())
}

/// `return_propensity` needs one arm: the probability of a ranked list is not computed.
pub fn check_propensity_count(return_propensity: bool, n: usize) -> PyResult<()> {
    if return_propensity && n != 1 {
        return err(format!(
            "return_propensity=True needs n=1 (the probability of a ranking of {n} arms is not computed)"
        ));
    }
    Ok(())
}

/// The propensities dict: every arm in model order, `probs` (over `open`) on the open arms
/// (the integrators' rounding below 0, ~1e-22, as 0) and 0 on the others.
pub fn propensity_dict<'py>(
    py: Python<'py>,
    arms: &ArmIndex,
    open: &[usize],
    probs: &[f64],
) -> PyResult<Bound<'py, PyDict>> {
    let mut all = vec![0.0; arms.len()];
    for (&i, &p) in open.iter().zip(probs) {
        all[i] = p.max(0.0);
    }
    let out = PyDict::new(py);
    for (i, p) in all.iter().enumerate() {
        out.set_item(arms.name(py, i), *p)?;
    }
    Ok(out)
}
