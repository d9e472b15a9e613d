//! `TSPar`: Beta-Bernoulli Thompson sampling, drop-in for orts' class (see spec/thompson.md).
use crate::arms::ArmIndex;
use crate::convert::{self, value_error, Method};
use banditkit_core::beta::BetaPosterior;
use banditkit_core::montecarlo;
use banditkit_core::rng::{os_seed, SeedStream, Xoshiro256PlusPlus};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple, PyType};

#[pyclass(module = "banditkit_rs", name = "TSPar")]
pub struct TSPar {
    arms: ArmIndex,
    post: BetaPosterior,
    seeds: SeedStream,
}

#[pymethods]
impl TSPar {
    #[new]
    #[pyo3(signature = (seed=None))]
    fn new(py: Python<'_>, seed: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
        Ok(TSPar {
            arms: ArmIndex::new(py),
            post: BetaPosterior::default(),
            seeds: SeedStream::new(seed),
        })
    }

    #[getter]
    fn action_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.arms.to_list(py)
    }

    #[getter]
    fn alpha<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.post.alpha)
    }

    #[getter]
    fn beta<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.post.beta)
    }

    fn get_models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.arms.to_list(py)
    }

    /// alpha += success, beta += total - success; new arms start at Beta(1, 1); arms absent
    /// from `obs` are unchanged. `alpha_0` and `max_iter` are accepted for compatibility.
    #[pyo3(signature = (obs, alpha_0=0.01, max_iter=100))]
    fn update(&mut self, obs: &Bound<'_, PyAny>, alpha_0: f64, max_iter: i64) -> PyResult<()> {
        let _ = (alpha_0, max_iter);
        let (keys, pairs) = convert::count_obs(obs)?;
        let mut counts = Vec::with_capacity(keys.len());
        for (key, (total, success)) in keys.iter().zip(pairs) {
            let arm = match self.arms.get(key)? {
                Some(i) => i,
                None => {
                    self.arms.push(key)?;
                    self.post.push_arm()
                }
            };
            counts.push((arm, total, success));
        }
        self.post.add_counts(&counts).map_err(value_error)
    }

    /// Probability that each arm has the highest success rate: win counts / draw, or exact.
    #[pyo3(signature = (draw=None, seed=None, method="mc"))]
    fn win_prop<'py>(
        slf: &Bound<'py, Self>,
        draw: Option<&Bound<'py, PyAny>>,
        seed: Option<&Bound<'py, PyAny>>,
        method: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let draws = match draw {
            Some(d) => convert::draws(d)?,
            None => 10_000,
        };
        let method = convert::method(method)?;
        let per_call = convert::seed(seed)?;
        let (alpha, beta, seed) = {
            let mut me = slf.borrow_mut();
            if me.arms.len() == 0 {
                return Ok(PyDict::new(py)); // upstream errors on an empty model
            }
            let seed = per_call.unwrap_or_else(|| me.seeds.next_seed());
            (me.post.alpha.clone(), me.post.beta.clone(), seed)
        };
        let probs: Vec<f64> = py.detach(|| match method {
            Method::MonteCarlo => montecarlo::win_counts_beta(&alpha, &beta, draws, seed)
                .iter()
                .map(|&c| c as f64 / draws as f64)
                .collect(),
            Method::Exact => banditkit_core::exact::prob_best_beta(&alpha, &beta),
        });
        let me = slf.borrow();
        let out = PyDict::new(py);
        for (i, p) in probs.iter().enumerate() {
            out.set_item(me.arms.name(py, i), p)?;
        }
        Ok(out)
    }

    /// The arm one Thompson draw picks (n=1), or the n best arms of that one draw, best first.
    #[pyo3(signature = (n=None, seed=None))]
    fn select<'py>(
        &mut self,
        py: Python<'py>,
        n: Option<&Bound<'py, PyAny>>,
        seed: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let per_call = convert::seed(seed)?;
        let n = crate::winprop::select_count(n, self.arms.len())?;
        let seed = per_call.unwrap_or_else(|| self.seeds.next_seed());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let values = montecarlo::sample_beta(&self.post.alpha, &self.post.beta, &mut rng);
        crate::winprop::ranked(py, &self.arms, &values, n)
    }

    fn __repr__(&self) -> String {
        format!("TSPar(arms={})", self.arms.len())
    }

    /// This model as a banditkit file (docs/format.md); labels must be str or int.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        crate::persist::tspar_to_bytes(py, &self.arms, &self.post, &self.seeds)
    }

    /// The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
    #[classmethod]
    fn from_bytes(cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (arms, post, seeds) = crate::persist::tspar_from_bytes(cls.py(), data)?;
        Ok(TSPar { arms, post, seeds })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let bytes = slf.borrow().to_bytes(slf.py())?;
        crate::persist::reduce(slf.as_any(), bytes)
    }

    fn __copy__(&self, py: Python<'_>) -> Self {
        TSPar {
            arms: self.arms.clone_ref(py),
            post: self.post.clone(),
            seeds: self.seeds.clone(),
        }
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> Self {
        self.__copy__(py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TSPar>()
}
