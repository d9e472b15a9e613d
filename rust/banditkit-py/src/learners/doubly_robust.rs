//! `DoublyRobust` (docs/learners.md): a thin wrapper over
//! `banditkit_core::learners::doubly_robust::DoublyRobust`. The labels and the learner sit behind
//! one lock (see [`crate::locked`]) held across each whole call; batch work runs with the GIL
//! released. The banditkit file of the class is in [`file`].
mod file;

use banditkit_core::learners::doubly_robust::{self as core, DrConfig, Exploration};
use banditkit_core::rng::os_seed;
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMapping, PyTuple, PyType};

use crate::contextual::input;
use crate::contextual::input::{
    batch, check_reward, context, contiguous, core_err, label_repr, rewards, verr,
};
use crate::convert::{self, label};
use crate::locked::Locked;

/// Arms x d^2 from which one-row calls release the GIL.
const DETACH_MIN_ENTRIES: usize = 60_000;

/// A policy learnt from doubly robust pseudo-rewards; see docs/learners.md.
#[pyclass(frozen, module = "banditkit_rs")]
pub struct DoublyRobust {
    cfg: DrConfig,
    inner: Locked<Inner>,
}

struct Inner {
    dr: core::DoublyRobust,
    labels: Vec<Py<PyAny>>,
}

impl Inner {
    fn index(&self, arm: &Bound<'_, PyAny>) -> PyResult<usize> {
        input::label_index(&self.labels, arm)
    }

    fn available(&self, available: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<usize>>> {
        input::available_positions(&self.labels, available)
    }

    fn names(&self, py: Python<'_>) -> Vec<String> {
        self.labels.iter().map(|l| label(l.bind(py))).collect()
    }

    fn heavy(&self) -> bool {
        let d = self.dr.config().n_features;
        self.dr.n_arms().max(1) * d * d >= DETACH_MIN_ENTRIES
    }
}

/// Rows to learn: contexts, arm indices, rewards, optional propensities.
struct Rows {
    x: Vec<f64>,
    arms: Vec<usize>,
    rewards: Vec<f64>,
    propensities: Option<Vec<f64>>,
}

fn float_vec(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f64>> {
    rewards(obj).map_err(|_| verr(format!("{what} must be a 1-D array of numbers")))
}

fn array2<'py>(
    py: Python<'py>,
    v: Vec<f64>,
    n: usize,
    k: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    PyArray1::from_vec(py, v).reshape([n, k])
}

impl DoublyRobust {
    /// Contexts, arms, rewards and propensities of a `fit`/`partial_fit` call: either
    /// `(X, arms, rewards, propensities)` or a logged-feedback mapping (OBP's keys).
    #[allow(non_snake_case)]
    fn rows<'py>(
        &self,
        inner: &Inner,
        X: &Bound<'py, PyAny>,
        arms: Option<&Bound<'py, PyAny>>,
        rewards_obj: Option<&Bound<'py, PyAny>>,
        propensities: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Rows> {
        let given = |o: Option<&Bound<'py, PyAny>>| o.filter(|v| !v.is_none()).cloned();
        let (arms, rewards_obj, propensities) =
            (given(arms), given(rewards_obj), given(propensities));
        if let Ok(logged) = X.cast::<PyMapping>() {
            if arms.is_some() || rewards_obj.is_some() || propensities.is_some() {
                return Err(verr(
                    "pass either logged feedback (a mapping) or X, arms, rewards",
                ));
            }
            let key = |k: &str| -> PyResult<Bound<'_, PyAny>> {
                if !logged.contains(k)? {
                    return Err(verr(format!("logged feedback must have the key '{k}'")));
                }
                logged.get_item(k)
            };
            let (context, action, reward) = (key("context")?, key("action")?, key("reward")?);
            let pscore = if logged.contains("pscore")? {
                Some(logged.get_item("pscore")?).filter(|p| !p.is_none())
            } else {
                None
            };
            let (x, _) = batch(&context, self.cfg.n_features)?;
            let k = inner.labels.len();
            let actions = float_vec(&action, "action")
                .map_err(|_| verr("action must be a 1-D array of arm indices"))?;
            if actions
                .iter()
                .any(|&a| !(a >= 0.0 && a < k as f64 && a.fract() == 0.0))
            {
                return Err(verr(format!("action must hold arm indices in [0, {k})")));
            }
            let propensities = pscore.map(|p| float_vec(&p, "propensities")).transpose()?;
            return Ok(Rows {
                x,
                arms: actions.iter().map(|&a| a as usize).collect(),
                rewards: float_vec(&reward, "rewards")?,
                propensities,
            });
        }
        let (Some(arms), Some(rewards_obj)) = (arms, rewards_obj) else {
            return Err(verr("arms and rewards are required with X"));
        };
        let (x, _) = batch(X, self.cfg.n_features)?;
        let idx = convert::arm_list("arms", &arms)?
            .iter()
            .map(|a| inner.index(a))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Rows {
            x,
            arms: idx,
            rewards: float_vec(&rewards_obj, "rewards")?,
            propensities: propensities
                .map(|p| float_vec(&p, "propensities"))
                .transpose()?,
        })
    }

    #[allow(non_snake_case)]
    fn learn(
        &self,
        py: Python<'_>,
        X: &Bound<'_, PyAny>,
        arms: Option<&Bound<'_, PyAny>>,
        rewards: Option<&Bound<'_, PyAny>>,
        propensities: Option<&Bound<'_, PyAny>>,
        from_scratch: bool,
    ) -> PyResult<()> {
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let rows = self.rows(inner, X, arms, rewards, propensities)?;
        let names = inner.names(py);
        let dr = &mut inner.dr;
        py.detach(|| {
            let name = |k: usize| names[k].clone();
            let p = rows.propensities.as_deref();
            if from_scratch {
                dr.fit(&rows.x, &rows.arms, &rows.rewards, p, &name)
            } else {
                dr.partial_fit(&rows.x, &rows.arms, &rows.rewards, p, &name)
            }
        })
        .map_err(core_err)
    }

    /// `f(learner, X)` on a batch, with the GIL released, as an (n, K) array.
    #[allow(non_snake_case)]
    fn batch_call<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
        f: impl Fn(&core::DoublyRobust, &[f64], Option<&[usize]>) -> banditkit_core::Result<Vec<f64>>
            + Send
            + Sync,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (x, n) = batch(X, self.cfg.n_features)?;
        let guard = self.inner.lock(py);
        let avail = guard.available(available_arms)?;
        let k = guard.labels.len();
        let dr = &guard.dr;
        let out = py
            .detach(|| f(dr, &x, avail.as_deref()))
            .map_err(core_err)?;
        drop(guard);
        array2(py, out, n, k)
    }
}

/// A number setting, `default` when not given.
fn number(what: &str, v: Option<&Bound<'_, PyAny>>, default: f64) -> PyResult<f64> {
    v.map_or(Ok(default), |v| convert::number_setting(what, v))
}

#[pymethods]
#[allow(non_snake_case)] // `X` is the scikit-learn name of the batch argument.
impl DoublyRobust {
    #[new]
    #[pyo3(signature = (arms, n_features, alpha=None, l2_lambda=None, max_weight=None, max_history=None, exploration=None, epsilon=None, temperature=None, seed=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        arms: &Bound<'_, PyAny>,
        n_features: &Bound<'_, PyAny>,
        alpha: Option<&Bound<'_, PyAny>>,
        l2_lambda: Option<&Bound<'_, PyAny>>,
        max_weight: Option<&Bound<'_, PyAny>>,
        max_history: Option<&Bound<'_, PyAny>>,
        exploration: Option<&Bound<'_, PyAny>>,
        epsilon: Option<&Bound<'_, PyAny>>,
        temperature: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let d = convert::int_setting("n_features", n_features)?;
        if d <= 0 {
            return Err(verr(format!("n_features must be positive, got {d}")));
        }
        let h = match max_history {
            Some(h) => convert::int_setting("max_history", h)?,
            None => 10_000,
        };
        if h < 0 {
            return Err(verr(format!("max_history must be non-negative, got {h}")));
        }
        let exploration = match exploration {
            None => Exploration::Ucb,
            Some(e) => {
                let s = e.extract::<String>().map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "exploration must be a string, got {}",
                        label_repr(e)
                    ))
                })?;
                Exploration::parse(&s).map_err(core_err)?
            }
        };
        let cfg = DrConfig {
            n_features: usize::try_from(d)
                .map_err(|_| verr(format!("n_features is too large, got {d}")))?,
            alpha: number("alpha", alpha, 1.0)?,
            l2_lambda: number("l2_lambda", l2_lambda, 1.0)?,
            max_weight: number("max_weight", max_weight, f64::INFINITY)?,
            max_history: usize::try_from(h).unwrap_or(usize::MAX),
            exploration,
            epsilon: number("epsilon", epsilon, 0.05)?,
            temperature: number("temperature", temperature, 1.0)?,
        };
        cfg.validate().map_err(core_err)?;
        let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
        let labels = input::new_labels(arms)?;
        let dr = core::DoublyRobust::new(cfg, labels.len(), seed).map_err(core_err)?;
        Ok(DoublyRobust {
            cfg,
            inner: Locked::new(Inner { dr, labels }),
        })
    }

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
    fn alpha(&self) -> f64 {
        self.cfg.alpha
    }
    #[getter]
    fn l2_lambda(&self) -> f64 {
        self.cfg.l2_lambda
    }
    #[getter]
    fn max_weight(&self) -> f64 {
        self.cfg.max_weight
    }
    #[getter]
    fn max_history(&self) -> usize {
        self.cfg.max_history
    }
    #[getter]
    fn exploration(&self) -> &'static str {
        self.cfg.exploration.name()
    }
    #[getter]
    fn epsilon(&self) -> f64 {
        self.cfg.epsilon
    }
    #[getter]
    fn temperature(&self) -> f64 {
        self.cfg.temperature
    }

    /// The arm to play for `x`, drawn from the propensities (with its propensity if asked).
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
        let (k, p) = if inner.heavy() {
            let owned = xs.into_owned();
            let dr = &mut inner.dr;
            py.detach(|| dr.select(&owned, avail.as_deref()))
        } else {
            inner.dr.select(&xs, avail.as_deref())
        }
        .map_err(core_err)?;
        let choice = inner.labels[k].bind(py).clone();
        if return_propensity {
            Ok(PyTuple::new(py, [choice, p.into_pyobject(py)?.into_any()])?.into_any())
        } else {
            Ok(choice)
        }
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
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let avail = inner.available(available_arms)?;
        let dr = &mut inner.dr;
        let picks = py
            .detach(|| dr.predict(&x, avail.as_deref()))
            .map_err(core_err)?;
        PyList::new(py, picks.into_iter().map(|c| inner.labels[c].bind(py)))
    }

    /// The exact probability that `select`/`predict` picks each arm, shape (n, n_arms).
    #[pyo3(signature = (X, available_arms=None))]
    fn propensities<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.batch_call(py, X, available_arms, |dr, x, av| dr.propensities(x, av))
    }

    /// The scores the policy ranks by, shape (n, n_arms).
    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.batch_call(py, X, None, |dr, x, _| dr.decision_function(x))
    }

    /// The reward model's estimate `q_a(x)`, shape (n, n_arms).
    fn predict_expectations<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.batch_call(py, X, None, |dr, x, _| dr.predict_expectations(x))
    }

    /// The policy model's estimate `pi_a(x)`, shape (n, n_arms).
    fn policy_values<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.batch_call(py, X, None, |dr, x, _| dr.policy_values(x))
    }

    /// One row: `arm` played in `x` earned `reward`; `propensity` is the logging policy's
    /// probability of `arm` (None: this learner chose it).
    #[pyo3(signature = (arm, x, reward, propensity=None))]
    fn update(
        &self,
        py: Python<'_>,
        arm: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        reward: &Bound<'_, PyAny>,
        propensity: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let k = inner.index(arm)?;
        let arr = context(x)?;
        let xs = contiguous(&arr).into_owned();
        banditkit_core::contextual::policy::validate_context(&xs, self.cfg.n_features)
            .map_err(core_err)?;
        let r = check_reward(reward)?;
        let p = match propensity.filter(|p| !p.is_none()) {
            None => None,
            Some(p) => {
                let v = convert::data_number(p).ok_or_else(|| {
                    verr(format!(
                        "propensity must be a number, got {}",
                        label_repr(p)
                    ))
                })?;
                if !(v > 0.0 && v <= 1.0) {
                    return Err(verr(format!("propensity must be in (0, 1], got {v}")));
                }
                Some([v])
            }
        };
        let name = label(arm);
        let heavy = inner.heavy();
        let dr = &mut inner.dr;
        let mut run = || {
            dr.partial_fit(&xs, &[k], &[r], p.as_ref().map(|v| &v[..]), &|_| {
                name.clone()
            })
        };
        if heavy { py.detach(run) } else { run() }.map_err(core_err)
    }

    /// Rows in order, all or nothing: `(X, arms, rewards, propensities=None)` or logged
    /// feedback (a mapping with context, action, reward, pscore).
    #[pyo3(signature = (X, arms=None, rewards=None, propensities=None))]
    fn partial_fit(
        &self,
        py: Python<'_>,
        X: &Bound<'_, PyAny>,
        arms: Option<&Bound<'_, PyAny>>,
        rewards: Option<&Bound<'_, PyAny>>,
        propensities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.learn(py, X, arms, rewards, propensities, false)
    }

    /// `reset()` then `partial_fit(...)`; on bad input nothing changes.
    #[pyo3(signature = (X, arms=None, rewards=None, propensities=None))]
    fn fit(
        &self,
        py: Python<'_>,
        X: &Bound<'_, PyAny>,
        arms: Option<&Bound<'_, PyAny>>,
        rewards: Option<&Bound<'_, PyAny>>,
        propensities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.learn(py, X, arms, rewards, propensities, true)
    }

    /// Refits the policy model on the kept rows with the current reward model.
    fn refit(&self, py: Python<'_>) -> PyResult<()> {
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let names = inner.names(py);
        let dr = &mut inner.dr;
        py.detach(|| dr.refit(&|k| names[k].clone()))
            .map_err(core_err)
    }

    /// Forgets every observation (arms, settings and the random stream position stay).
    fn reset(&self, py: Python<'_>) {
        self.inner.lock(py).dr.reset();
    }

    fn add_arm(&self, _arm: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(verr(
            "DoublyRobust cannot add arms: every arm's policy model is fitted on every row; \
             create a new learner with the new arm list and fit it on the logs",
        ))
    }

    fn remove_arm(&self, _arm: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(verr(
            "DoublyRobust cannot remove arms: every arm's policy model is fitted on every row; \
             create a new learner with the new arm list and fit it on the logs",
        ))
    }

    /// Per arm: pulls (rows logged on it), reward_theta_norm, policy_theta_norm; totals.
    fn get_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let me = self.inner.lock(py);
        let norm = |t: &[f64]| t.iter().map(|v| v * v).sum::<f64>().sqrt();
        let arms = PyDict::new(py);
        let mut total = 0u64;
        for k in 0..me.dr.n_arms() {
            let (q, pi) = (me.dr.reward_arm(k), me.dr.policy_arm(k));
            let s = PyDict::new(py);
            s.set_item("pulls", q.pulls())?;
            s.set_item("reward_theta_norm", norm(q.theta()))?;
            s.set_item("policy_theta_norm", norm(pi.theta()))?;
            arms.set_item(me.labels[k].bind(py), s)?;
            total += q.pulls();
        }
        let out = PyDict::new(py);
        out.set_item("arms", arms)?;
        out.set_item("total_updates", total)?;
        out.set_item("history_len", me.dr.history_len())?;
        out.set_item("n_arms", me.dr.n_arms())?;
        out.set_item("n_features", self.cfg.n_features)?;
        Ok(out)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let c = &self.cfg;
        let n_arms = self.inner.lock(py).labels.len();
        format!(
            "DoublyRobust(n_arms={n_arms}, n_features={}, alpha={:?}, l2_lambda={:?}, \
             max_weight={}, max_history={}, exploration='{}', epsilon={:?}, temperature={:?})",
            c.n_features,
            c.alpha,
            c.l2_lambda,
            if c.max_weight.is_infinite() {
                "inf".to_string()
            } else {
                format!("{:?}", c.max_weight)
            },
            c.max_history,
            c.exploration.name(),
            c.epsilon,
            c.temperature
        )
    }

    /// This learner as a banditkit file (docs/format.md); labels must be str or int.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut guard = self.inner.lock(py);
        let me = &mut *guard;
        file::to_bytes(py, &me.labels, &mut me.dr)
    }

    /// The learner saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
    #[classmethod]
    fn from_bytes(cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (labels, dr) = file::from_bytes(cls.py(), data)?;
        Ok(DoublyRobust {
            cfg: *dr.config(),
            inner: Locked::new(Inner { dr, labels }),
        })
    }

    fn __copy__(&self, py: Python<'_>) -> Self {
        let me = self.inner.lock(py);
        DoublyRobust {
            cfg: self.cfg,
            inner: Locked::new(Inner {
                dr: me.dr.clone(),
                labels: me.labels.iter().map(|l| l.clone_ref(py)).collect(),
            }),
        }
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> Self {
        self.__copy__(py)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let bytes = slf.get().to_bytes(slf.py())?;
        crate::persist::reduce(slf.as_any(), bytes)
    }
}
