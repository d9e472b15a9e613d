//! `LogisticBandit`: ORTS and Full-TS, drop-in for orts' class (see spec/thompson.md). The maths
//! is `banditkit_core::logistic`; this file maps names to indices and releases the GIL.
use crate::arms::ArmIndex;
use crate::convert::{self, err, label, value_error, Method};
use crate::locked::Locked;
use crate::winprop::{ranked, select_count, split_requested};
use banditkit_core::exact;
use banditkit_core::logistic::{
    odds_ratio_sampler, ArmCounts, LogisticState, OddsRatioSampler, Slot, UpdateOptions,
};
use banditkit_core::montecarlo;
use banditkit_core::rng::{os_seed, SeedStream, Xoshiro256PlusPlus};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple, PyType};
use std::ffi::CString;

#[pyclass(frozen, module = "banditkit_rs", name = "LogisticBandit")]
pub struct LogisticBandit {
    inner: Locked<Inner>,
}

struct Inner {
    arms: ArmIndex,
    state: LogisticState,
    seeds: SeedStream,
}

/// Error target (3.5 standard errors) of each `propensities` probability, and its QMC seed.
const PROPENSITY_TOLERANCE: f64 = 1e-4;
const PROPENSITY_SEED: u64 = 0;

/// Win probabilities of the open arms from the joint posterior of their odds ratios.
fn open_probabilities(py: Python<'_>, state: &LogisticState, open: &[usize]) -> PyResult<Vec<f64>> {
    if open.len() <= 1 {
        return Ok(vec![1.0; open.len()]); // no arms: an empty answer, as the other classes
    }
    let sub = state.get_par(open).map_err(value_error)?;
    let s = odds_ratio_sampler(&sub).map_err(value_error)?;
    let cov = lower_times_transpose(&s.chol_lower, s.mean.len());
    py.detach(|| exact::prob_best_mvn(&s.mean, &cov, PROPENSITY_SEED, PROPENSITY_TOLERANCE))
        .map(|(p, _err)| p)
        .map_err(value_error)
}

/// The constructor's arguments as a state, with the Python backend's checks and messages.
fn state_from(
    mu: Option<&Bound<'_, PyAny>>,
    sigma_inv: Option<&Bound<'_, PyAny>>,
    k: usize,
) -> PyResult<LogisticState> {
    let (mu_shape, mu_dims, mu) = match mu.filter(|m| !m.is_none()) {
        Some(m) => convert::float_array(m)?,
        None => ("(0,)".into(), vec![0], vec![]),
    };
    let (s_shape, s_dims, s) = match sigma_inv.filter(|s| !s.is_none()) {
        Some(s) => convert::float_array(s)?,
        None => ("(0, 0)".into(), vec![0, 0], vec![]),
    };
    // Any empty array is the empty state.
    if !(k == 0 && mu.is_empty() && s.is_empty()) {
        if mu_dims != [k] {
            return err(format!(
                "mu must have shape ({k},) to match action_list, got {mu_shape}"
            ));
        }
        if s_dims != [k, k] {
            return err(format!(
                "sigma_inv must have shape ({k}, {k}), got {s_shape}"
            ));
        }
    }
    LogisticState::new(mu, s).map_err(value_error)
}

fn warn_repairs(py: Python<'_>, sampler: &OddsRatioSampler) -> PyResult<()> {
    if sampler.repairs > 0 {
        let msg = format!(
            "covariance matrix not positive semidefinite: added 0.001 to its diagonal {} time(s)",
            sampler.repairs
        );
        let msg = CString::new(msg).expect("no NUL in the message");
        PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &msg, 2)?;
    }
    Ok(())
}

impl Inner {
    /// Indices of `names` (a list of arms, not a string), rejecting unknown arms.
    fn positions(&self, names: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
        let mut out = Vec::new();
        for name in convert::arm_list("action_list", names)? {
            match self.arms.get(&name)? {
                Some(i) => out.push(i),
                None => return err(format!("unknown arm {}", name.repr()?)),
            }
        }
        Ok(out)
    }

    fn arms_at(&self, py: Python<'_>, positions: &[usize]) -> PyResult<ArmIndex> {
        let names = PyList::new(py, positions.iter().map(|&i| self.arms.name(py, i)))?;
        ArmIndex::from_list(py, names.as_any())
    }
}

impl LogisticBandit {
    fn wrap(inner: Inner) -> Self {
        LogisticBandit {
            inner: Locked::new(inner),
        }
    }

    fn sigma_array<'py>(
        py: Python<'py>,
        state: &LogisticState,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let k = state.k();
        PyArray1::from_vec(py, state.sigma_inv.clone()).reshape([k, k])
    }
}

#[pymethods]
impl LogisticBandit {
    #[new]
    #[pyo3(signature = (mu=None, sigma_inv=None, action_list=None, seed=None))]
    fn new(
        py: Python<'_>,
        mu: Option<&Bound<'_, PyAny>>,
        sigma_inv: Option<&Bound<'_, PyAny>>,
        action_list: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let arms = match action_list.filter(|a| !a.is_none()) {
            Some(list) => {
                let names = PyList::new(py, convert::arm_list("action_list", list)?)?;
                ArmIndex::from_list(py, names.as_any())?
            }
            None => ArmIndex::new(py),
        };
        let state = state_from(mu, sigma_inv, arms.len())?;
        let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
        Ok(Self::wrap(Inner {
            arms,
            state,
            seeds: SeedStream::new(seed),
        }))
    }

    /// Log-odds ratios against the reference, then the reference's log-odds (a copy).
    #[getter]
    fn mu<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_vec(py, self.inner.lock(py).state.mu.clone())
    }

    /// The posterior precision (a copy).
    #[getter]
    fn sigma_inv<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        Self::sigma_array(py, &self.inner.lock(py).state)
    }

    #[getter]
    fn action_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.inner.lock(py).arms.to_list(py)
    }

    fn get_models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.inner.lock(py).arms.to_list(py)
    }

    /// `(mu, sigma_inv)` re-expressed for `action_list` (known arms, last = reference);
    /// `(None, None)` for None or an empty list.
    #[pyo3(signature = (action_list=None))]
    fn get_par<'py>(
        &self,
        py: Python<'py>,
        action_list: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let me = self.inner.lock(py);
        let positions = match action_list.filter(|a| !a.is_none()) {
            Some(list) => me.positions(list)?,
            None => Vec::new(),
        };
        if positions.is_empty() {
            return PyTuple::new(py, [py.None(), py.None()]);
        }
        let s = me.state.get_par(&positions).map_err(value_error)?;
        drop(me);
        let mu = PyArray1::from_vec(py, s.mu.clone()).into_any();
        let sigma = Self::sigma_array(py, &s)?.into_any();
        PyTuple::new(py, [mu, sigma])
    }

    /// Replace the state by `get_par(action_list)`.
    fn transform(&self, py: Python<'_>, action_list: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut me = self.inner.lock(py);
        let positions = me.positions(action_list)?;
        let state = me.state.transform(&positions).map_err(value_error)?;
        me.arms = me.arms_at(py, &positions)?;
        me.state = state;
        Ok(())
    }

    /// Drop one arm; the reference stays unless it is the one dropped (then the last remaining
    /// arm becomes the reference).
    fn delete(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut me = self.inner.lock(py);
        let Some(index) = me.arms.get(name)? else {
            return err(format!("unknown arm {}", name.repr()?));
        };
        let state = me.state.delete(index).map_err(value_error)?;
        let kept: Vec<usize> = (0..me.arms.len()).filter(|&i| i != index).collect();
        me.arms = me.arms_at(py, &kept)?;
        me.state = state;
        Ok(())
    }

    /// Absorb `obs` (name -> [total, success]): ORTS if `odds_ratios_only`, else Full-TS.
    /// All-or-nothing: every entry is validated before anything changes. The lock is held
    /// across the whole update (the solve runs with the GIL released), so concurrent updates
    /// apply one after the other.
    #[pyo3(signature = (obs, odds_ratios_only=None, remove_not_observed=None, decay=None))]
    fn update(
        &self,
        py: Python<'_>,
        obs: &Bound<'_, PyAny>,
        odds_ratios_only: Option<&Bound<'_, PyAny>>,
        remove_not_observed: Option<&Bound<'_, PyAny>>,
        decay: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let flag = |what: &str, v: Option<&Bound<'_, PyAny>>, default: bool| {
            v.map_or(Ok(default), |v| convert::flag_setting(what, v))
        };
        let opts = UpdateOptions {
            odds_ratios_only: flag("odds_ratios_only", odds_ratios_only, true)?,
            remove_not_observed: flag("remove_not_observed", remove_not_observed, false)?,
            decay: match decay {
                Some(d) => convert::decay(convert::number_setting("decay", d)?)?,
                None => 0.0,
            },
        };
        let (keys, pairs) = convert::count_obs(obs)?;
        let mut guard = self.inner.lock(py);
        let me = &mut *guard;
        let mut batch = Vec::with_capacity(keys.len());
        for (key, &(total, success)) in keys.iter().zip(&pairs) {
            batch.push(ArmCounts {
                known: me.arms.get(key)?,
                total,
                success,
            });
        }
        let names: Vec<String> = keys.iter().map(label).collect();
        let state = &me.state;
        let result = py
            .detach(|| state.update(&batch, opts, &|b| names[b].clone()))
            .map_err(value_error)?;
        let Some((new_state, slots)) = result else {
            return Ok(());
        };
        let order = PyList::empty(py);
        for slot in slots {
            match slot {
                Slot::Known(i) => order.append(me.arms.name(py, i))?,
                Slot::New(b) => order.append(&keys[b])?,
            }
        }
        me.arms = ArmIndex::from_list(py, order.as_any())?;
        me.state = new_state;
        Ok(())
    }

    /// Probability that each requested arm has the highest success probability.
    #[pyo3(signature = (action_list=None, draw=None, aggressive=None, seed=None, method=None))]
    fn win_prop<'py>(
        &self,
        py: Python<'py>,
        action_list: Option<&Bound<'py, PyAny>>,
        draw: Option<&Bound<'py, PyAny>>,
        aggressive: Option<&Bound<'py, PyAny>>,
        seed: Option<&Bound<'py, PyAny>>,
        method: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let draws = match draw {
            Some(d) => convert::draws(d)?,
            None => 100_000,
        };
        let g = match aggressive {
            Some(a) => convert::aggressive(convert::number_setting("aggressive", a)?)?,
            None => 1.0,
        };
        let per_call = convert::seed(seed)?;
        let method = convert::method_or_mc(method)?;
        // Copy what the kernel needs; the lock is not held while it runs.
        let (req, sampler, seed) = {
            let mut me = self.inner.lock(py);
            let req = split_requested(py, &me.arms, action_list)?;
            if !req.needs_kernel() {
                (req, None, 0)
            } else {
                let sub = me.state.get_par(&req.observed).map_err(value_error)?;
                let sampler = odds_ratio_sampler(&sub).map_err(value_error)?;
                let seed = per_call.unwrap_or_else(|| me.seeds.next_seed());
                (req, Some(sampler), seed)
            }
        };
        let probs = match sampler {
            Some(s) => {
                warn_repairs(py, &s)?;
                let probs = py.detach(|| match method {
                    Method::MonteCarlo => {
                        let counts =
                            montecarlo::win_counts_mvn(&s.mean, &s.chol_lower, draws, seed);
                        Ok(montecarlo::apply_aggressive(&counts, g))
                    }
                    Method::Exact => {
                        // The repaired covariance of the odds ratios (reference row zero).
                        let cov = lower_times_transpose(&s.chol_lower, s.mean.len());
                        exact::prob_best_mvn(&s.mean, &cov, seed, exact::MVN_TOLERANCE)
                            .map(|(p, _err)| montecarlo::sharpen(&p, g))
                    }
                });
                Some(probs.map_err(value_error)?)
            }
            None => None,
        };
        req.to_dict(py, probs.as_deref())
    }

    /// The arm one joint posterior draw picks (n=1), or the n best of that draw, best first,
    /// among `available_arms` (default all); with `return_propensity` (n=1 only), `(arm, p)`
    /// where p is the probability that this draw picks that arm (`propensities`).
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
        let mut me = self.inner.lock(py);
        select_count(n, me.arms.len())?;
        let open = crate::winprop::open_arms(&me.arms, available_arms)?;
        let n = select_count(n, open.len())?;
        crate::winprop::check_propensity_count(return_propensity, n)?;
        let chosen = if me.arms.len() == 1 {
            ranked(py, &me.arms, &[0.0], n)?
        } else {
            let sampler = odds_ratio_sampler(&me.state).map_err(value_error)?;
            warn_repairs(py, &sampler)?;
            let seed = per_call.unwrap_or_else(|| me.seeds.next_seed());
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut values = montecarlo::sample_mvn(&sampler.mean, &sampler.chol_lower, &mut rng);
            crate::winprop::close_others(&mut values, &open);
            ranked(py, &me.arms, &values, n)?
        };
        if !return_propensity {
            return Ok(chosen);
        }
        let probs = open_probabilities(py, &me.state, &open)?;
        let at = open
            .iter()
            .position(|&i| me.arms.name(py, i).is(&chosen))
            .expect("the chosen arm is open");
        crate::winprop::with_propensity(py, chosen, probs[at])
    }

    /// Probability that `select(available_arms=...)` picks each arm: every arm in model order,
    /// unavailable arms 0. The odds ratios are correlated normals: `prob_best_mvn` to
    /// [`PROPENSITY_TOLERANCE`] with a fixed seed, so the same state gives the same answer.
    #[pyo3(signature = (available_arms=None))]
    fn propensities<'py>(
        &self,
        py: Python<'py>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let me = self.inner.lock(py);
        let open = crate::winprop::open_arms(&me.arms, available_arms)?;
        let probs = open_probabilities(py, &me.state, &open)?;
        crate::winprop::propensity_dict(py, &me.arms, &open, &probs)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let me = self.inner.lock(py);
        let k = me.arms.len();
        let reference = if k == 0 {
            "None".to_string()
        } else {
            me.arms.name(py, k - 1).repr()?.to_string()
        };
        Ok(format!("LogisticBandit(arms={k}, reference={reference})"))
    }

    /// This model as a banditkit file (docs/format.md); labels must be str or int.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let me = self.inner.lock(py);
        crate::persist::logistic_to_bytes(py, &me.arms, &me.state, &me.seeds)
    }

    /// The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
    #[classmethod]
    fn from_bytes(cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (arms, state, seeds) = crate::persist::logistic_from_bytes(cls.py(), data)?;
        Ok(Self::wrap(Inner { arms, state, seeds }))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let bytes = slf.get().to_bytes(slf.py())?;
        crate::persist::reduce(slf.as_any(), bytes)
    }

    fn __copy__(&self, py: Python<'_>) -> Self {
        let me = self.inner.lock(py);
        Self::wrap(Inner {
            arms: me.arms.clone_ref(py),
            state: me.state.clone(),
            seeds: me.seeds.clone(),
        })
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> Self {
        self.__copy__(py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LogisticBandit>()
}

/// `L L^T` for a row-major lower-triangular `n x n` factor.
fn lower_times_transpose(l: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let v: f64 = (0..=j).map(|p| l[i * n + p] * l[j * n + p]).sum();
            out[i * n + j] = v;
            out[j * n + i] = v;
        }
    }
    out
}
