//! `LinUCB` and `LinTS` (spec/contextual-linear.md): thin wrappers over
//! `banditkit_core::contextual::LinearPolicy`. Both extend `_LinearBandit`, which holds the
//! labels and the policy and implements every shared method.
//!
//! The labels and the policy sit behind one lock (see [`crate::locked`]), held across each
//! whole call, so calls from many threads apply one after the other and readers wait for a
//! running writer. Heavy calls release the GIL while holding the lock; batch scoring works on
//! a snapshot of `Arc`ed arms with the lock already released. One-event calls release the GIL
//! only from [`DETACH_MIN_ENTRIES`] (below that, the release costs more than it frees).
mod classes;
pub(crate) mod input;

use banditkit_core::contextual::{ArmConfig, LinearPolicy, Scoring};
use banditkit_core::rng::os_seed;
use input::{batch, check_reward, context, contiguous, core_err, rewards, verr};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::convert::{self, label};
use crate::locked::Locked;

/// Work (arms x d^2 matrix entries) from which one-event calls release the GIL.
const DETACH_MIN_ENTRIES: usize = 60_000;

/// Shared state and methods of LinUCB and LinTS.
#[pyclass(subclass, frozen, module = "banditkit_rs", name = "_LinearBandit")]
pub struct LinearBase {
    /// Settings, fixed at construction (read without the lock).
    cfg: ArmConfig,
    scoring: Scoring,
    inner: Locked<Inner>,
}

struct Inner {
    policy: LinearPolicy,
    labels: Vec<Py<PyAny>>,
}

impl Inner {
    fn index(&self, arm: &Bound<'_, PyAny>) -> PyResult<usize> {
        input::label_index(&self.labels, arm)
    }

    fn available(&self, available: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<usize>>> {
        input::available_positions(&self.labels, available)
    }

    fn heavy(&self) -> bool {
        let d = self.policy.config().n_features;
        self.policy.n_arms().max(1) * d * d >= DETACH_MIN_ENTRIES
    }

    fn label<'py>(&self, py: Python<'py>, k: usize) -> Bound<'py, PyAny> {
        self.labels[k].bind(py).clone()
    }

    /// `str` of every label, for messages built with the GIL released.
    fn label_strings(&self, py: Python<'_>) -> Vec<String> {
        self.labels.iter().map(|l| label(l.bind(py))).collect()
    }
}

impl LinearBase {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        arms: &Bound<'_, PyAny>,
        n_features: &Bound<'_, PyAny>,
        scoring: Scoring,
        l2_lambda: Option<&Bound<'_, PyAny>>,
        window_size: Option<&Bound<'_, PyAny>>,
        gamma: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        refactor_every: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let n_features = convert::int_setting("n_features", n_features)?;
        if n_features <= 0 {
            return Err(verr(format!(
                "n_features must be positive, got {n_features}"
            )));
        }
        let window_size = match window_size {
            Some(w) => convert::int_setting("window_size", w)?,
            None => 0,
        };
        if window_size < 0 {
            return Err(verr(format!(
                "window_size must be non-negative, got {window_size}"
            )));
        }
        let number = |what: &str, v: Option<&Bound<'_, PyAny>>| match v {
            Some(v) => convert::number_setting(what, v),
            None => Ok(1.0),
        };
        let l2_lambda = number("l2_lambda", l2_lambda)?;
        let gamma = number("gamma", gamma)?;
        let d = usize::try_from(n_features)
            .map_err(|_| verr(format!("n_features is too large, got {n_features}")))?;
        let refactor_every = match refactor_every.filter(|r| !r.is_none()) {
            None => ArmConfig::default_refactor_every(d),
            Some(r) => match convert::int_setting("refactor_every", r)? {
                r if r > 0 => u64::try_from(r).unwrap_or(u64::MAX),
                r => return Err(verr(format!("refactor_every must be positive, got {r}"))),
            },
        };
        let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
        let labels = input::new_labels(arms)?;
        let cfg = ArmConfig {
            n_features: d,
            l2_lambda,
            window_size: usize::try_from(window_size).unwrap_or(usize::MAX),
            gamma,
            refactor_every,
        };
        let policy = LinearPolicy::new(cfg, scoring, labels.len(), seed).map_err(core_err)?;
        Ok(LinearBase {
            cfg,
            scoring,
            inner: Locked::new(Inner { policy, labels }),
        })
    }

    pub(crate) fn parameter(&self) -> f64 {
        self.scoring.parameter()
    }

    /// `Name(n_arms=.., n_features=.., param=.., l2_lambda=.., window_size=.., gamma=..)`.
    pub(crate) fn repr(&self, py: Python<'_>, name: &str, param: &str) -> String {
        let c = &self.cfg;
        let n_arms = self.inner.lock(py).labels.len();
        format!(
            "{name}(n_arms={n_arms}, n_features={}, {param}={}, l2_lambda={}, window_size={}, gamma={})",
            c.n_features,
            self.scoring.parameter(),
            c.l2_lambda,
            c.window_size,
            c.gamma
        )
    }

    fn scores_array<'py>(
        py: Python<'py>,
        v: Vec<f64>,
        n: usize,
        k: usize,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        PyArray1::from_vec(py, v).reshape([n, k])
    }

    /// Runs `partial_fit` of validated inputs on `policy` with the GIL released.
    #[allow(non_snake_case)]
    fn fit_into(
        &self,
        py: Python<'_>,
        X: &Bound<'_, PyAny>,
        arms: &Bound<'_, PyAny>,
        rewards_obj: &Bound<'_, PyAny>,
        from_scratch: bool,
    ) -> PyResult<()> {
        let (x, _) = batch(X, self.cfg.n_features)?;
        let r = rewards(rewards_obj)?;
        let arm_items = convert::arm_list("arms", arms)?;
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let mut idx = Vec::with_capacity(arm_items.len());
        for a in &arm_items {
            idx.push(inner.index(a)?);
        }
        let names = inner.label_strings(py);
        let policy = &mut inner.policy;
        py.detach(|| {
            let name = |k: usize| names[k].clone();
            if from_scratch {
                let mut fresh = policy.clone();
                fresh.reset();
                fresh
                    .partial_fit(&x, &idx, &r, &name)
                    .map(|()| *policy = fresh)
            } else {
                policy.partial_fit(&x, &idx, &r, &name)
            }
        })
        .map_err(core_err)
    }
}

#[pymethods]
#[allow(non_snake_case)] // `X` is the scikit-learn name of the batch argument.
impl LinearBase {
    /// Arm labels, in order.
    #[getter]
    fn arms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let me = self.inner.lock(py);
        PyList::new(py, me.labels.iter().map(|l| l.bind(py)))
    }
    #[getter]
    fn n_features(&self) -> usize {
        self.cfg.n_features
    }
    #[getter]
    fn l2_lambda(&self) -> f64 {
        self.cfg.l2_lambda
    }
    #[getter]
    fn window_size(&self) -> usize {
        self.cfg.window_size
    }
    #[getter]
    fn gamma(&self) -> f64 {
        self.cfg.gamma
    }
    #[getter]
    fn refactor_every(&self) -> u64 {
        self.cfg.refactor_every
    }

    /// The arm to play for context `x` (argmax of the scores; tied maxima uniformly at
    /// random); with `return_propensity`, `(arm, probability that this call picks it)`.
    #[pyo3(signature = (x, available_arms=None, return_propensity=false))]
    fn select<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
        return_propensity: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let arr = context(x)?;
        let xs = contiguous(&arr);
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let avail = inner.available(available_arms)?;
        let run = |policy: &mut banditkit_core::contextual::LinearPolicy, xs: &[f64]| {
            if return_propensity {
                policy.select_with_propensity(xs, avail.as_deref())
            } else {
                policy.select(xs, avail.as_deref()).map(|c| (c, 1.0))
            }
        };
        let (choice, p) = if inner.heavy() || (return_propensity && self.scoring.is_thompson()) {
            let owned = xs.into_owned();
            let policy = &mut inner.policy;
            py.detach(|| run(policy, &owned))
        } else {
            run(&mut inner.policy, &xs)
        }
        .map_err(core_err)?;
        let arm = inner.label(py, choice);
        if return_propensity {
            Ok((arm, p).into_pyobject(py)?.into_any())
        } else {
            Ok(arm)
        }
    }

    /// Probability that `select` picks each arm for each row of `X`, shape (n, n_arms),
    /// columns in arm order, unavailable arms 0 (exact: see `ScoringView::propensities`).
    #[pyo3(signature = (X, available_arms=None))]
    fn propensities<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (x, n) = batch(X, self.cfg.n_features)?;
        banditkit_core::contextual::policy::validate_batch(&x, self.cfg.n_features)
            .map_err(core_err)?;
        let (view, avail) = {
            let me = self.inner.lock(py);
            let avail = me.available(available_arms)?;
            if me.labels.is_empty() {
                return Err(verr("no arms to choose from"));
            }
            (me.policy.view(), avail)
        };
        let k = view.arms.len();
        let out = py.detach(|| view.propensities(&x, avail.as_deref()));
        Self::scores_array(py, out, n, k)
    }

    /// One observation: `reward` for playing `arm` in context `x`.
    fn update(
        &self,
        py: Python<'_>,
        arm: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        reward: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let arr = context(x)?;
        let xs = contiguous(&arr);
        let r = check_reward(reward)?;
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let k = inner.index(arm)?;
        inner.policy.validate_update(k, &xs, r).map_err(core_err)?;
        if inner.heavy() {
            let owned = xs.into_owned();
            let name = label(arm);
            let policy = &mut inner.policy;
            py.detach(|| policy.update(k, &owned, r, &|_| name.clone()))
        } else {
            inner.policy.update(k, &xs, r, &|_| label(arm))
        }
        .map_err(core_err)
    }

    /// Sequential updates: row i of `X` was played on `arms[i]` and earned `rewards[i]`.
    /// All-or-nothing.
    fn partial_fit(
        &self,
        py: Python<'_>,
        X: &Bound<'_, PyAny>,
        arms: &Bound<'_, PyAny>,
        rewards: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.fit_into(py, X, arms, rewards, false)
    }

    /// `reset()` then `partial_fit(X, arms, rewards)`; on bad input nothing changes.
    fn fit(
        &self,
        py: Python<'_>,
        X: &Bound<'_, PyAny>,
        arms: &Bound<'_, PyAny>,
        rewards: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.fit_into(py, X, arms, rewards, true)
    }

    /// The chosen arm for each row of `X` (equals `select` on each row in turn).
    #[pyo3(signature = (X, available_arms=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (x, _) = batch(X, self.cfg.n_features)?;
        let (view, t0, avail, labels) = {
            let mut me = self.inner.lock(py);
            let avail = me.available(available_arms)?;
            let (view, _, t0) = me
                .policy
                .begin_batch(&x, avail.as_deref())
                .map_err(core_err)?;
            let labels: Vec<Py<PyAny>> = me.labels.iter().map(|l| l.clone_ref(py)).collect();
            (view, t0, avail, labels)
        };
        let k = view.arms.len();
        let picks = py.detach(|| {
            banditkit_core::contextual::policy::picks(
                &view.batch_scores(&x, t0),
                k,
                avail.as_deref(),
                view.seed,
                t0,
            )
        });
        PyList::new(py, picks.into_iter().map(|c| labels[c].bind(py)))
    }

    /// Scores used for the choice, shape (n, n_arms): UCB values (LinUCB) or draws (LinTS).
    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (x, n) = batch(X, self.cfg.n_features)?;
        let (view, t0) = {
            let mut me = self.inner.lock(py);
            let (view, _, t0) = me.policy.begin_batch(&x, None).map_err(core_err)?;
            (view, t0)
        };
        let k = view.arms.len();
        let scores = py.detach(|| view.batch_scores(&x, t0));
        Self::scores_array(py, scores, n, k)
    }

    /// Expected rewards `theta^T x`, shape (n, n_arms).
    fn predict_expectations<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let d = self.cfg.n_features;
        let (x, n) = batch(X, d)?;
        banditkit_core::contextual::policy::validate_batch(&x, d).map_err(core_err)?;
        let view = self.inner.lock(py).policy.view();
        let k = view.arms.len();
        let out = py.detach(|| view.expectations(&x));
        Self::scores_array(py, out, n, k)
    }

    /// Adds an arm with a fresh model (at the end of the arm order).
    fn add_arm(&self, py: Python<'_>, arm: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut me = self.inner.lock(py);
        input::check_new_label(&me.labels, arm)?;
        me.policy.add_arm();
        me.labels.push(arm.clone().unbind());
        Ok(())
    }

    fn remove_arm(&self, py: Python<'_>, arm: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut me = self.inner.lock(py);
        let k = me.index(arm)?;
        me.policy.remove_arm(k).map_err(core_err)?;
        me.labels.remove(k);
        Ok(())
    }

    /// Forgets every observation (arms, settings and the random stream position stay).
    fn reset(&self, py: Python<'_>) {
        self.inner.lock(py).policy.reset();
    }

    /// Per arm: pulls, theta_norm, condition_estimate, window_len, refactors; plus totals.
    fn get_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let me = self.inner.lock(py);
        let arms = PyDict::new(py);
        let mut total = 0u64;
        for k in 0..me.policy.n_arms() {
            let a = me.policy.arm(k);
            let s = PyDict::new(py);
            s.set_item("pulls", a.pulls())?;
            s.set_item(
                "theta_norm",
                a.theta().iter().map(|t| t * t).sum::<f64>().sqrt(),
            )?;
            s.set_item("condition_estimate", a.condition_estimate())?;
            s.set_item("window_len", a.window_len())?;
            s.set_item("refactors", a.refactors())?;
            arms.set_item(me.labels[k].bind(py), s)?;
            total += a.pulls();
        }
        let out = PyDict::new(py);
        out.set_item("arms", arms)?;
        out.set_item("total_pulls", total)?;
        out.set_item("n_arms", me.policy.n_arms())?;
        out.set_item("n_features", self.cfg.n_features)?;
        Ok(out)
    }

    /// Copy of `theta` for `arm`.
    fn theta<'py>(
        &self,
        py: Python<'py>,
        arm: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let me = self.inner.lock(py);
        Ok(PyArray1::from_slice(
            py,
            me.policy.arm(me.index(arm)?).theta(),
        ))
    }

    /// Copy of `A^{-1}` for `arm`, shape (d, d).
    fn a_inv<'py>(
        &self,
        py: Python<'py>,
        arm: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let d = self.cfg.n_features;
        let v = {
            let me = self.inner.lock(py);
            me.policy.arm(me.index(arm)?).a_inv()
        };
        Self::scores_array(py, v, d, d)
    }

    /// Copy of the exact Gram matrix `A` for `arm`, shape (d, d).
    fn gram<'py>(
        &self,
        py: Python<'py>,
        arm: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let d = self.cfg.n_features;
        let v = {
            let me = self.inner.lock(py);
            me.policy.arm(me.index(arm)?).gram()
        };
        Self::scores_array(py, v, d, d)
    }

    /// Copy of `b` (weighted sum of reward * context) for `arm`.
    fn b<'py>(
        &self,
        py: Python<'py>,
        arm: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let me = self.inner.lock(py);
        Ok(PyArray1::from_slice(py, me.policy.arm(me.index(arm)?).b()))
    }

    /// This model as a banditkit file (docs/format.md); labels must be str or int.
    fn to_bytes<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyBytes>> {
        let py = slf.py();
        let class = slf.get_type().name()?.to_string();
        let mut guard = slf.get().inner.lock(py);
        let me = &mut *guard;
        crate::persist::contextual_to_bytes(py, &class, &me.labels, &mut me.policy)
    }

    /// An independent copy (any labels; nothing is encoded). The arms are shared
    /// copy-on-write, so this is cheap until one of the two learns.
    fn __copy__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let inner = {
            let me = this.inner.lock(py);
            Inner {
                policy: me.policy.clone(),
                labels: me.labels.iter().map(|l| l.clone_ref(py)).collect(),
            }
        };
        let base = LinearBase {
            cfg: this.cfg,
            scoring: this.scoring,
            inner: Locked::new(inner),
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
            cfg: *policy.config(),
            scoring: policy.scoring(),
            inner: Locked::new(Inner { policy, labels }),
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LinearBase>()?;
    m.add_class::<classes::LinUCB>()?;
    m.add_class::<classes::LinTS>()
}
