//! `TSPar`: Beta-Bernoulli Thompson sampling, drop-in for orts' class (see spec/thompson.md).
use crate::arms::ArmIndex;
use crate::convert::{self, label, value_error, Method};
use crate::locked::Locked;
use banditkit_core::beta::BetaPosterior;
use banditkit_core::montecarlo;
use banditkit_core::rng::{os_seed, SeedStream, Xoshiro256PlusPlus};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple, PyType};

#[pyclass(frozen, module = "banditkit_rs", name = "TSPar")]
pub struct TSPar {
    state: Locked<Inner>,
}

struct Inner {
    arms: ArmIndex,
    post: BetaPosterior,
    seeds: SeedStream,
}

impl TSPar {
    fn wrap(inner: Inner) -> Self {
        TSPar {
            state: Locked::new(inner),
        }
    }

    /// Win probabilities of the open arms (exact integration, GIL released).
    fn open_probabilities(py: Python<'_>, me: &Inner, open: &[usize]) -> Vec<f64> {
        let alpha: Vec<f64> = open.iter().map(|&i| me.post.alpha[i]).collect();
        let beta: Vec<f64> = open.iter().map(|&i| me.post.beta[i]).collect();
        py.detach(|| banditkit_core::exact::prob_best_beta(&alpha, &beta))
    }
}

#[pymethods]
impl TSPar {
    #[new]
    #[pyo3(signature = (seed=None))]
    fn new(py: Python<'_>, seed: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
        Ok(Self::wrap(Inner {
            arms: ArmIndex::new(py),
            post: BetaPosterior::default(),
            seeds: SeedStream::new(seed),
        }))
    }

    #[getter]
    fn action_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.state.lock(py).arms.to_list(py)
    }

    #[getter]
    fn alpha<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.state.lock(py).post.alpha)
    }

    #[getter]
    fn beta<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.state.lock(py).post.beta)
    }

    fn get_models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.state.lock(py).arms.to_list(py)
    }

    /// alpha += success, beta += total - success; new arms start at Beta(1, 1); arms absent
    /// from `obs` are unchanged. `alpha_0` and `max_iter` are accepted for compatibility
    /// (type-checked as settings, otherwise unused).
    #[pyo3(signature = (obs, alpha_0=None, max_iter=None))]
    fn update(
        &self,
        py: Python<'_>,
        obs: &Bound<'_, PyAny>,
        alpha_0: Option<&Bound<'_, PyAny>>,
        max_iter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if let Some(a) = alpha_0 {
            convert::number_setting("alpha_0", a)?;
        }
        if let Some(m) = max_iter {
            convert::int_setting("max_iter", m)?;
        }
        let (keys, pairs) = convert::count_obs(obs)?;
        let mut guard = self.state.lock(py);
        let me = &mut *guard;
        // New arms get indices past the end; they are added only once the update is accepted.
        let mut counts = Vec::with_capacity(keys.len());
        let mut new_keys = Vec::new();
        for (b, (key, (total, success))) in keys.iter().zip(pairs).enumerate() {
            let arm = match me.arms.get(key)? {
                Some(i) => i,
                None => {
                    new_keys.push(b);
                    me.arms.len() + new_keys.len() - 1
                }
            };
            counts.push((arm, total, success));
        }
        let mut post = me.post.clone();
        for _ in &new_keys {
            post.push_arm();
        }
        let known = me.arms.len();
        let arms = &me.arms;
        let name = |i: usize| {
            if i < known {
                label(arms.name(py, i))
            } else {
                label(&keys[new_keys[i - known]])
            }
        };
        post.add_counts(&counts, &name).map_err(value_error)?;
        for b in new_keys {
            me.arms.push(&keys[b])?;
        }
        me.post = post;
        Ok(())
    }

    /// Probability that each arm has the highest success rate: win counts / draw, or exact.
    #[pyo3(signature = (draw=None, seed=None, method=None))]
    fn win_prop<'py>(
        &self,
        py: Python<'py>,
        draw: Option<&Bound<'py, PyAny>>,
        seed: Option<&Bound<'py, PyAny>>,
        method: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let draws = match draw {
            Some(d) => convert::draws(d)?,
            None => 10_000,
        };
        let method = convert::method_or_mc(method)?;
        let per_call = convert::seed(seed)?;
        // Copy what the kernel needs; the lock is not held while it runs.
        let (names, alpha, beta, seed) = {
            let mut me = self.state.lock(py);
            if me.arms.len() == 0 {
                return Ok(PyDict::new(py)); // upstream errors on an empty model
            }
            let seed = per_call.unwrap_or_else(|| me.seeds.next_seed());
            let names = me.arms.to_list(py)?;
            (names, me.post.alpha.clone(), me.post.beta.clone(), seed)
        };
        let probs: Vec<f64> = py.detach(|| match method {
            Method::MonteCarlo => montecarlo::win_counts_beta(&alpha, &beta, draws, seed)
                .iter()
                .map(|&c| c as f64 / draws as f64)
                .collect(),
            Method::Exact => banditkit_core::exact::prob_best_beta(&alpha, &beta),
        });
        let out = PyDict::new(py);
        for (name, p) in names.iter().zip(&probs) {
            out.set_item(name, p)?;
        }
        Ok(out)
    }

    /// The arm one Thompson draw picks (n=1), or the n best arms of that one draw, best first,
    /// among `available_arms` (default all); with `return_propensity` (n=1 only), `(arm, p)`
    /// where p is the exact probability that this draw picks that arm.
    #[pyo3(signature = (n=None, seed=None, return_propensity=false, available_arms=None))]
    fn select<'py>(
        &self,
        py: Python<'py>,
        n: Option<&Bound<'py, PyAny>>,
        seed: Option<&Bound<'py, PyAny>>,
        return_propensity: bool,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let per_call = convert::seed(seed)?;
        let mut me = self.state.lock(py);
        crate::winprop::select_count(n, me.arms.len())?;
        let open = crate::winprop::open_arms(&me.arms, available_arms)?;
        let n = crate::winprop::select_count(n, open.len())?;
        crate::winprop::check_propensity_count(return_propensity, n)?;
        let seed = per_call.unwrap_or_else(|| me.seeds.next_seed());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut values = montecarlo::sample_beta(&me.post.alpha, &me.post.beta, &mut rng);
        crate::winprop::close_others(&mut values, &open);
        let chosen = crate::winprop::ranked(py, &me.arms, &values, n)?;
        if !return_propensity {
            return Ok(chosen);
        }
        let probs = Self::open_probabilities(py, &me, &open);
        let at = open
            .iter()
            .position(|&i| me.arms.name(py, i).is(&chosen))
            .expect("the chosen arm is open");
        crate::winprop::with_propensity(py, chosen, probs[at])
    }

    /// Exact probability that `select(available_arms=...)` picks each arm: every arm in model
    /// order, unavailable arms 0 (`prob_best_beta` of the open arms' posteriors).
    #[pyo3(signature = (available_arms=None))]
    fn propensities<'py>(
        &self,
        py: Python<'py>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let me = self.state.lock(py);
        let open = crate::winprop::open_arms(&me.arms, available_arms)?;
        let probs = Self::open_probabilities(py, &me, &open);
        crate::winprop::propensity_dict(py, &me.arms, &open, &probs)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("TSPar(arms={})", self.state.lock(py).arms.len())
    }

    /// This model as a banditkit file (docs/format.md); labels must be str or int.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let me = self.state.lock(py);
        crate::persist::tspar_to_bytes(py, &me.arms, &me.post, &me.seeds)
    }

    /// The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
    #[classmethod]
    fn from_bytes(cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (arms, post, seeds) = crate::persist::tspar_from_bytes(cls.py(), data)?;
        Ok(Self::wrap(Inner { arms, post, seeds }))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let bytes = slf.get().to_bytes(slf.py())?;
        crate::persist::reduce(slf.as_any(), bytes)
    }

    fn __copy__(&self, py: Python<'_>) -> Self {
        let me = self.state.lock(py);
        Self::wrap(Inner {
            arms: me.arms.clone_ref(py),
            post: me.post.clone(),
            seeds: me.seeds.clone(),
        })
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> Self {
        self.__copy__(py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TSPar>()
}
