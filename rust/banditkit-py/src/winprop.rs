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
