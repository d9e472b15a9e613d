//! `LinUCB` and `LinTS` (spec/contextual-linear.md): thin wrappers over
//! `banditkit_core::contextual::LinearPolicy`. Both extend `_LinearBandit`, which holds the
//! labels and the policy and implements every shared method.
//!
//! Heavy calls release the GIL without holding a borrow of `self`: the policy is moved out
//! (an arm-less placeholder stays behind, marked busy) and moved back afterwards; batch scoring
//! works on a snapshot of `Arc`ed arms. Small one-event calls skip the release: it costs more
//! than the work.
mod classes;
mod input;

use banditkit_core::contextual::{ArmConfig, LinearPolicy, Scoring};
use banditkit_core::rng::os_seed;
use input::{batch, check_reward, context, contiguous, core_err, label_repr, verr};
use numpy::{AllowTypeChange, PyArray1, PyArray2, PyArrayLike1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

/// Work (arms x d^2 matrix entries) above which one-event calls release the GIL.
const DETACH_MIN_ENTRIES: usize = 60_000;

/// Shared state and methods of LinUCB and LinTS.
#[pyclass(subclass, module = "banditkit_rs", name = "_LinearBandit")]
pub struct LinearBase {
    pub(crate) policy: LinearPolicy,
    pub(crate) labels: Vec<Py<PyAny>>,
    busy: bool,
}

impl LinearBase {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        arms: &Bound<'_, PyAny>,
        n_features: i64,
        scoring: Scoring,
        l2_lambda: f64,
        window_size: i64,
        gamma: f64,
        seed: Option<&Bound<'_, PyAny>>,
        refactor_every: Option<i64>,
    ) -> PyResult<Self> {
        if n_features <= 0 {
            return Err(verr(format!(
                "n_features must be positive, got {n_features}"
            )));
        }
        if window_size < 0 {
            return Err(verr(format!(
                "window_size must be non-negative, got {window_size}"
            )));
        }
        let d = n_features as usize;
        let refactor_every = match refactor_every {
            None => ArmConfig::default_refactor_every(d),
            Some(r) if r > 0 => r as u64,
            Some(r) => return Err(verr(format!("refactor_every must be positive, got {r}"))),
        };
        let seed = crate::convert::seed(seed)?.unwrap_or_else(os_seed);
        let mut labels: Vec<Py<PyAny>> = Vec::new();
        for a in arms
            .try_iter()
            .map_err(|_| verr("arms must be a list of labels"))?
        {
            let a = a?;
            a.hash().map_err(|_| {
                verr(format!(
                    "arm labels must be hashable, got {}",
                    label_repr(&a)
                ))
            })?;
            for l in &labels {
                if l.bind(a.py()).eq(&a)? {
                    return Err(verr(format!("duplicate arm {}", label_repr(&a))));
                }
            }
            labels.push(a.unbind());
        }
        let cfg = ArmConfig {
            n_features: d,
            l2_lambda,
            window_size: window_size as usize,
            gamma,
            refactor_every,
        };
        let policy = LinearPolicy::new(cfg, scoring, labels.len(), seed).map_err(core_err)?;
        Ok(LinearBase {
            policy,
            labels,
            busy: false,
        })
    }

    /// Validated copies of `partial_fit`/`fit` inputs: contexts, arm indices, rewards.
    #[allow(non_snake_case)]
    fn fit_inputs(
        slf: &Bound<'_, Self>,
        X: &Bound<'_, PyAny>,
        arms: &Bound<'_, PyAny>,
        rewards: &Bound<'_, PyAny>,
    ) -> PyResult<(Vec<f64>, Vec<usize>, Vec<f64>)> {
        let me = slf.borrow();
        me.ready()?;
        let (x, _) = batch(X, me.policy.config().n_features)?;
        let mut idx = Vec::new();
        for a in arms
            .try_iter()
            .map_err(|_| verr("arms must be a list of arms"))?
        {
            idx.push(me.index(&a?)?);
        }
        Ok((x, idx, Self::rewards(rewards)?))
    }

    /// Waits (GIL released) while another thread runs a detached call on this object. Under
    /// the GIL nothing can start one between this returning and the caller's borrow.
    fn wait_ready(slf: &Bound<'_, Self>) {
        while slf.borrow().busy {
            slf.py().detach(std::thread::yield_now);
        }
    }

    fn ready(&self) -> PyResult<()> {
        if self.busy {
            return Err(verr("this bandit is being used by another thread"));
        }
        Ok(())
    }

    fn find(&self, arm: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        for (k, l) in self.labels.iter().enumerate() {
            let l = l.bind(arm.py());
            if l.is(arm) || l.eq(arm)? {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    fn index(&self, arm: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.find(arm)?
            .ok_or_else(|| verr(format!("unknown arm {}", label_repr(arm))))
    }

    fn available(&self, available: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<usize>>> {
        let Some(av) = available.filter(|a| !a.is_none()) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for a in av
            .try_iter()
            .map_err(|_| verr("available_arms must be a list of arms"))?
        {
            out.push(self.index(&a?)?);
        }
        if out.is_empty() {
            return Err(verr("available_arms must not be empty"));
        }
        Ok(Some(out))
    }

    fn heavy(&self) -> bool {
        let d = self.policy.config().n_features;
        self.policy.n_arms().max(1) * d * d >= DETACH_MIN_ENTRIES
    }

    /// Runs `f` on the policy with the GIL released, the policy moved out meanwhile.
    fn with_policy_detached<T: Send>(
        slf: &Bound<'_, Self>,
        f: impl FnOnce(&mut LinearPolicy) -> T + Send,
    ) -> PyResult<T> {
        let mut policy = {
            let mut me = slf.borrow_mut();
            me.ready()?;
            let placeholder = me.policy.placeholder();
            me.busy = true;
            std::mem::replace(&mut me.policy, placeholder)
        };
        // A panic in the kernel must not leave the object busy (and its waiters spinning).
        let out = slf
            .py()
            .detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut policy))));
        let mut me = slf.borrow_mut();
        me.policy = policy;
        me.busy = false;
        drop(me);
        out.map_err(|p| std::panic::resume_unwind(p))
    }

    fn label<'py>(&self, py: Python<'py>, k: usize) -> Bound<'py, PyAny> {
        self.labels[k].bind(py).clone()
    }

    fn scores_array<'py>(
        py: Python<'py>,
        v: Vec<f64>,
        n: usize,
        k: usize,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        PyArray1::from_vec(py, v).reshape([n, k])
    }

    fn rewards(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
        let r: PyArrayLike1<'_, f64, AllowTypeChange> = obj
            .extract()
            .map_err(|_| verr("rewards must be a 1-D array of numbers"))?;
        Ok(r.as_array().iter().copied().collect())
    }
}

#[pymethods]
#[allow(non_snake_case)] // `X` is the scikit-learn name of the batch argument.
impl LinearBase {
    /// Arm labels, in order.
    #[getter]
    fn arms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.labels.iter().map(|l| l.bind(py)))
    }
    #[getter]
    fn n_features(&self) -> usize {
        self.policy.config().n_features
    }
    #[getter]
    fn l2_lambda(&self) -> f64 {
        self.policy.config().l2_lambda
    }
    #[getter]
    fn window_size(&self) -> usize {
        self.policy.config().window_size
    }
    #[getter]
    fn gamma(&self) -> f64 {
        self.policy.config().gamma
    }
    #[getter]
    fn refactor_every(&self) -> u64 {
        self.policy.config().refactor_every
    }

    /// The arm to play for context `x` (argmax of the scores; ties to the first arm).
    #[pyo3(signature = (x, available_arms=None))]
    fn select<'py>(
        slf: &Bound<'py, Self>,
        x: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::wait_ready(slf);
        let py = slf.py();
        let arr = context(x)?;
        let xs = contiguous(&arr);
        let (avail, heavy) = {
            let me = slf.borrow();
            me.ready()?;
            (me.available(available_arms)?, me.heavy())
        };
        let choice = if heavy {
            let owned = xs.into_owned();
            Self::with_policy_detached(slf, |p| p.select(&owned, avail.as_deref()))?
        } else {
            let mut me = slf.borrow_mut();
            me.policy.select(&xs, avail.as_deref())
        }
        .map_err(core_err)?;
        Ok(slf.borrow().label(py, choice))
    }

    /// One observation: `reward` for playing `arm` in context `x`.
    fn update(
        slf: &Bound<'_, Self>,
        arm: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        reward: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        Self::wait_ready(slf);
        let arr = context(x)?;
        let xs = contiguous(&arr);
        let r = check_reward(reward)?;
        let (k, heavy) = {
            let me = slf.borrow();
            me.ready()?;
            let k = me.index(arm)?;
            me.policy.validate_update(k, &xs, r).map_err(core_err)?;
            (k, me.heavy())
        };
        if heavy {
            let owned = xs.into_owned();
            Self::with_policy_detached(slf, |p| p.update(k, &owned, r))?
        } else {
            slf.borrow_mut().policy.update(k, &xs, r)
        }
        .map_err(core_err)
    }

    /// Sequential updates: row i of `X` was played on `arms[i]` and earned `rewards[i]`.
    fn partial_fit(
        slf: &Bound<'_, Self>,
        X: &Bound<'_, PyAny>,
        arms: &Bound<'_, PyAny>,
        rewards: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        Self::wait_ready(slf);
        let (x, idx, r) = Self::fit_inputs(slf, X, arms, rewards)?;
        Self::with_policy_detached(slf, |p| p.partial_fit(&x, &idx, &r))?.map_err(core_err)
    }

    /// `reset()` then `partial_fit(X, arms, rewards)`; on bad input nothing changes.
    fn fit(
        slf: &Bound<'_, Self>,
        X: &Bound<'_, PyAny>,
        arms: &Bound<'_, PyAny>,
        rewards: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        Self::wait_ready(slf);
        let (x, idx, r) = Self::fit_inputs(slf, X, arms, rewards)?;
        Self::with_policy_detached(slf, |p| {
            let mut fresh = p.clone();
            fresh.reset();
            fresh.partial_fit(&x, &idx, &r).map(|()| *p = fresh)
        })?
        .map_err(core_err)
    }

    /// The chosen arm for each row of `X` (equals `select` on each row in turn).
    #[pyo3(signature = (X, available_arms=None))]
    fn predict<'py>(
        slf: &Bound<'py, Self>,
        X: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        Self::wait_ready(slf);
        let py = slf.py();
        let (x, view, t0, avail) = {
            let mut me = slf.borrow_mut();
            me.ready()?;
            let (x, _) = batch(X, me.policy.config().n_features)?;
            let avail = me.available(available_arms)?;
            let (view, _, t0) = me
                .policy
                .begin_batch(&x, avail.as_deref())
                .map_err(core_err)?;
            (x, view, t0, avail)
        };
        let k = view.arms.len();
        let picks = py.detach(|| {
            banditkit_core::contextual::policy::choices(
                &view.batch_scores(&x, t0),
                k,
                avail.as_deref(),
            )
        });
        let me = slf.borrow();
        PyList::new(py, picks.into_iter().map(|c| me.label(py, c)))
    }

    /// Scores used for the choice, shape (n, n_arms): UCB values (LinUCB) or draws (LinTS).
    fn decision_function<'py>(
        slf: &Bound<'py, Self>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        Self::wait_ready(slf);
        let py = slf.py();
        let (x, n, view, t0) = {
            let mut me = slf.borrow_mut();
            me.ready()?;
            let (x, n) = batch(X, me.policy.config().n_features)?;
            let (view, _, t0) = me.policy.begin_batch(&x, None).map_err(core_err)?;
            (x, n, view, t0)
        };
        let k = view.arms.len();
        let scores = py.detach(|| view.batch_scores(&x, t0));
        Self::scores_array(py, scores, n, k)
    }

    /// Expected rewards `theta^T x`, shape (n, n_arms).
    fn predict_expectations<'py>(
        slf: &Bound<'py, Self>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        Self::wait_ready(slf);
        let py = slf.py();
        let (x, n, view) = {
            let me = slf.borrow();
            me.ready()?;
            let d = me.policy.config().n_features;
            let (x, n) = batch(X, d)?;
            banditkit_core::contextual::policy::validate_batch(&x, d).map_err(core_err)?;
            (x, n, me.policy.view())
        };
        let k = view.arms.len();
        let out = py.detach(|| view.expectations(&x));
        Self::scores_array(py, out, n, k)
    }

    /// Adds an arm with a fresh model (at the end of the arm order).
    fn add_arm(&mut self, arm: &Bound<'_, PyAny>) -> PyResult<()> {
        self.ready()?;
        arm.hash().map_err(|_| {
            verr(format!(
                "arm labels must be hashable, got {}",
                label_repr(arm)
            ))
        })?;
        if self.find(arm)?.is_some() {
            return Err(verr(format!("arm {} already exists", label_repr(arm))));
        }
        self.policy.add_arm();
        self.labels.push(arm.clone().unbind());
        Ok(())
    }

    fn remove_arm(&mut self, arm: &Bound<'_, PyAny>) -> PyResult<()> {
        self.ready()?;
        let k = self.index(arm)?;
        self.policy.remove_arm(k).map_err(core_err)?;
        self.labels.remove(k);
        Ok(())
    }

    /// Forgets every observation (arms, settings and the random stream position stay).
    fn reset(&mut self) -> PyResult<()> {
        self.ready()?;
        self.policy.reset();
        Ok(())
    }

    /// Per arm: pulls, theta_norm, condition_estimate, window_len, refactors; plus totals.
    fn get_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.ready()?;
        let arms = PyDict::new(py);
        let mut total = 0u64;
        for k in 0..self.policy.n_arms() {
            let a = self.policy.arm(k);
            let s = PyDict::new(py);
            s.set_item("pulls", a.pulls())?;
            s.set_item(
                "theta_norm",
                a.theta().iter().map(|t| t * t).sum::<f64>().sqrt(),
            )?;
            s.set_item("condition_estimate", a.condition_estimate())?;
            s.set_item("window_len", a.window_len())?;
            s.set_item("refactors", a.refactors())?;
            arms.set_item(self.labels[k].bind(py), s)?;
            total += a.pulls();
        }
        let out = PyDict::new(py);
        out.set_item("arms", arms)?;
        out.set_item("total_pulls", total)?;
        out.set_item("n_arms", self.policy.n_arms())?;
        out.set_item("n_features", self.policy.config().n_features)?;
        Ok(out)
    }

    /// Copy of `theta` for `arm`.
    fn theta<'py>(
        &self,
        py: Python<'py>,
        arm: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.ready()?;
        Ok(PyArray1::from_slice(
            py,
            self.policy.arm(self.index(arm)?).theta(),
        ))
    }

    /// Copy of `A^{-1}` for `arm`, shape (d, d).
    fn a_inv<'py>(
        &self,
        py: Python<'py>,
        arm: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.ready()?;
        let d = self.policy.config().n_features;
        Self::scores_array(py, self.policy.arm(self.index(arm)?).a_inv(), d, d)
    }

    /// Copy of the exact Gram matrix `A` for `arm`, shape (d, d).
    fn gram<'py>(
        &self,
        py: Python<'py>,
        arm: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.ready()?;
        let d = self.policy.config().n_features;
        Self::scores_array(py, self.policy.arm(self.index(arm)?).gram(), d, d)
    }

    /// Copy of `b` (weighted sum of reward * context) for `arm`.
    fn b<'py>(
        &self,
        py: Python<'py>,
        arm: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.ready()?;
        Ok(PyArray1::from_slice(
            py,
            self.policy.arm(self.index(arm)?).b(),
        ))
    }

    /// This model as a banditkit file (docs/format.md); labels must be str or int.
    fn to_bytes<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyBytes>> {
        Self::wait_ready(slf);
        let py = slf.py();
        let class = slf.get_type().name()?.to_string();
        let me = slf.borrow();
        me.ready()?;
        crate::persist::contextual_to_bytes(py, &class, &me.labels, &me.policy)
    }

    /// An independent copy (any labels; nothing is encoded). The arms are shared
    /// copy-on-write, so this is cheap until one of the two learns.
    fn __copy__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::wait_ready(slf);
        let py = slf.py();
        let base = {
            let me = slf.borrow();
            me.ready()?;
            LinearBase {
                policy: me.policy.clone(),
                labels: me.labels.iter().map(|l| l.clone_ref(py)).collect(),
                busy: false,
            }
        };
        classes::wrap(py, &slf.get_type(), base)
    }

    fn __deepcopy__<'py>(
        slf: &Bound<'py, Self>,
        _memo: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::__copy__(slf)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let bytes = Self::to_bytes(slf)?;
        crate::persist::reduce(slf.as_any(), bytes)
    }
}

impl LinearBase {
    /// A base built from a file of `class` ("LinUCB" or "LinTS").
    pub(crate) fn from_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        class: &str,
    ) -> PyResult<Self> {
        let (labels, policy) = crate::persist::contextual_from_bytes(py, data, class)?;
        Ok(LinearBase {
            policy,
            labels,
            busy: false,
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LinearBase>()?;
    m.add_class::<classes::LinUCB>()?;
    m.add_class::<classes::LinTS>()
}
