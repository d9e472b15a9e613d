//! Arm labels: any hashable Python object, kept in insertion order with a dict for lookup.
//! The core works on indices; only the bindings see labels.
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

pub struct ArmIndex {
    names: Vec<Py<PyAny>>,
    lookup: Py<PyDict>,
}

impl ArmIndex {
    pub fn new(py: Python<'_>) -> Self {
        ArmIndex {
            names: Vec::new(),
            lookup: PyDict::new(py).unbind(),
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn get(&self, key: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        match self.lookup.bind(key.py()).get_item(key)? {
            Some(i) => Ok(Some(i.extract()?)),
            None => Ok(None),
        }
    }

    /// Adds a label (the caller checked it is new); returns its index.
    pub fn push(&mut self, key: &Bound<'_, PyAny>) -> PyResult<usize> {
        let i = self.names.len();
        self.lookup.bind(key.py()).set_item(key, i)?;
        self.names.push(key.clone().unbind());
        Ok(i)
    }

    pub fn name<'py>(&self, py: Python<'py>, i: usize) -> &Bound<'py, PyAny> {
        self.names[i].bind(py)
    }

    pub fn to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.names.iter().map(|n| n.bind(py)))
    }

    /// Rebuilds the index from a list of labels (pickling); rejects duplicates.
    pub fn from_list(py: Python<'_>, names: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut idx = ArmIndex::new(py);
        for name in names.try_iter()? {
            let name = name?;
            if idx.get(&name)?.is_some() {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "duplicate arm {} in state",
                    name.repr()?
                )));
            }
            idx.push(&name)?;
        }
        Ok(idx)
    }

    pub fn clone_ref(&self, py: Python<'_>) -> Self {
        let mut idx = ArmIndex::new(py);
        for n in &self.names {
            idx.push(n.bind(py))
                .expect("labels were hashable when first added");
        }
        idx
    }
}
