//! `ContextTree`: bindings over `banditkit_core::learners::context_tree` (labels, argument
//! conversion, the lock, the GIL, the file format). The maths is in the core.
use banditkit_core::learners::context_tree::{
    ContextTree as Core, Node, Phase, Prior, Stats, TreeConfig,
};
use banditkit_core::rng::os_seed;
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMapping, PyString, PyTuple, PyType};
use rmpv::Value;

use crate::contextual::input;
use crate::contextual::input::{
    batch, check_reward, context, contiguous, core_err, label_repr, rewards, verr,
};
use crate::convert;
use crate::locked::Locked;
use crate::persist::{self as ps, R};

/// Context tree with Thompson sampling per arm at each leaf.
#[pyclass(frozen, module = "banditkit_rs")]
pub struct ContextTree {
    cfg: TreeConfig,
    inner: Locked<Inner>,
}

struct Inner {
    tree: Core,
    labels: Vec<Py<PyAny>>,
}

impl Inner {
    fn index(&self, arm: &Bound<'_, PyAny>) -> PyResult<usize> {
        input::label_index(&self.labels, arm)
    }

    fn available(&self, available: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<usize>>> {
        input::available_positions(&self.labels, available)
    }

    fn ready(&self) -> PyResult<()> {
        if self.labels.is_empty() {
            return Err(verr("no arms to choose from"));
        }
        Ok(())
    }
}

fn finite_rows(x: &[f64], what: &str) -> PyResult<()> {
    if x.iter().any(|v| !v.is_finite()) {
        return Err(verr(format!("{what} must be finite")));
    }
    Ok(())
}

/// A single context as a finite float64 vector of length d.
fn one_context(x: &Bound<'_, PyAny>, d: usize) -> PyResult<Vec<f64>> {
    let arr = context(x)?;
    let v = contiguous(&arr).into_owned();
    if v.len() != d {
        return Err(verr(format!(
            "context must have {d} features, got {}",
            v.len()
        )));
    }
    finite_rows(&v, "context")?;
    Ok(v)
}

fn contexts(x: &Bound<'_, PyAny>, d: usize) -> PyResult<(Vec<f64>, usize)> {
    let (v, n) = batch(x, d)?;
    finite_rows(&v, "contexts")?;
    Ok((v, n))
}

fn check_propensity(p: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let Some(p) = p.filter(|p| !p.is_none()) else {
        return Ok(());
    };
    match convert::data_number(p) {
        Some(v) if v > 0.0 && v <= 1.0 => Ok(()),
        _ => Err(verr(format!(
            "propensity must be a number in (0, 1], got {}",
            label_repr(p)
        ))),
    }
}

fn check_propensities(p: Option<&Bound<'_, PyAny>>, n: usize) -> PyResult<()> {
    let Some(p) = p.filter(|p| !p.is_none()) else {
        return Ok(());
    };
    let v = rewards(p).map_err(|_| verr("propensities must be a 1-D array of numbers"))?;
    if v.len() != n {
        return Err(verr(format!(
            "propensities must have length {n}, got {}",
            v.len()
        )));
    }
    if v.iter().any(|&x| !(x > 0.0 && x <= 1.0)) {
        return Err(verr("propensities must be in (0, 1]"));
    }
    Ok(())
}

fn matrix<'py>(
    py: Python<'py>,
    v: Vec<f64>,
    n: usize,
    k: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    PyArray1::from_vec(py, v).reshape([n, k])
}

impl ContextTree {
    /// (X, arm indices, rewards) of a call: X/arms/rewards or an OBP logged-feedback mapping.
    #[allow(non_snake_case)]
    fn observations(
        &self,
        inner: &Inner,
        X: &Bound<'_, PyAny>,
        arms: Option<&Bound<'_, PyAny>>,
        rewards_obj: Option<&Bound<'_, PyAny>>,
        propensities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Vec<f64>, Vec<usize>, Vec<f64>)> {
        let given = |o: Option<&Bound<'_, PyAny>>| o.is_some_and(|o| !o.is_none());
        let d = self.cfg.n_features;
        if let Ok(logged) = X.cast::<PyMapping>() {
            if given(arms) || given(rewards_obj) || given(propensities) {
                return Err(verr(
                    "pass either a logged-feedback mapping or X, arms, rewards",
                ));
            }
            let get = |key: &str| -> PyResult<Bound<'_, PyAny>> {
                if !logged.contains(key)? {
                    return Err(verr(format!("logged feedback needs the key '{key}'")));
                }
                logged.get_item(key)
            };
            let (ctx, action, reward) = (get("context")?, get("action")?, get("reward")?);
            let pscore = if logged.contains("pscore")? {
                Some(logged.get_item("pscore")?)
            } else {
                None
            };
            let k = inner.labels.len();
            let act =
                rewards(&action).map_err(|_| verr("action must be a 1-D array of arm indices"))?;
            if act
                .iter()
                .any(|&a| !(a == a.floor() && a >= 0.0 && a < k as f64))
            {
                return Err(verr(format!(
                    "action must hold integer arm indices in [0, {k})"
                )));
            }
            let idx: Vec<usize> = act.iter().map(|&a| a as usize).collect();
            let (x, n) = contexts(&ctx, d)?;
            let r = rewards(&reward)?;
            if idx.len() != n || r.len() != n {
                return Err(verr(format!(
                    "X, arms and rewards must have the same length, got {n}, {}, {}",
                    idx.len(),
                    r.len()
                )));
            }
            finite_rows(&r, "rewards")?;
            check_propensities(pscore.as_ref(), n)?;
            return Ok((x, idx, r));
        }
        let (Some(arms), Some(rewards_obj)) = (
            arms.filter(|a| !a.is_none()),
            rewards_obj.filter(|r| !r.is_none()),
        ) else {
            return Err(verr("arms and rewards are required with X"));
        };
        let (x, n) = contexts(X, d)?;
        let mut idx = Vec::new();
        for a in convert::arm_list("arms", arms)? {
            idx.push(inner.index(&a)?);
        }
        let r = rewards(rewards_obj)?;
        if idx.len() != n || r.len() != n {
            return Err(verr(format!(
                "X, arms and rewards must have the same length, got {n}, {}, {}",
                idx.len(),
                r.len()
            )));
        }
        finite_rows(&r, "rewards")?;
        check_propensities(propensities, n)?;
        Ok((x, idx, r))
    }

    #[allow(non_snake_case)]
    fn fit_into(
        &self,
        py: Python<'_>,
        X: &Bound<'_, PyAny>,
        arms: Option<&Bound<'_, PyAny>>,
        rewards: Option<&Bound<'_, PyAny>>,
        propensities: Option<&Bound<'_, PyAny>>,
        fresh: bool,
    ) -> PyResult<()> {
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let (x, idx, r) = self.observations(inner, X, arms, rewards, propensities)?;
        let tree = &mut inner.tree;
        py.detach(|| {
            if fresh {
                tree.fit(&x, &idx, &r)
            } else {
                tree.partial_fit(&x, &idx, &r)
            }
        })
        .map_err(core_err)
    }
}

#[pymethods]
#[allow(non_snake_case)] // `X` is the scikit-learn name of the batch argument.
impl ContextTree {
    #[new]
    #[pyo3(signature = (arms, n_features, max_depth=None, min_samples_split=None, split_threshold=None, max_nodes=None, n_quantiles=None, prior=None, seed=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        arms: &Bound<'_, PyAny>,
        n_features: &Bound<'_, PyAny>,
        max_depth: Option<&Bound<'_, PyAny>>,
        min_samples_split: Option<&Bound<'_, PyAny>>,
        split_threshold: Option<&Bound<'_, PyAny>>,
        max_nodes: Option<&Bound<'_, PyAny>>,
        n_quantiles: Option<&Bound<'_, PyAny>>,
        prior: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let int = |what: &str, v: Option<&Bound<'_, PyAny>>, default: i128| match v {
            Some(v) => convert::int_setting(what, v),
            None => Ok(default),
        };
        let n_features = int("n_features", Some(n_features), 0)?;
        if n_features <= 0 {
            return Err(verr(format!(
                "n_features must be positive, got {n_features}"
            )));
        }
        let max_depth = int("max_depth", max_depth, 3)?;
        if max_depth < 0 {
            return Err(verr(format!(
                "max_depth must be non-negative, got {max_depth}"
            )));
        }
        let mss = int("min_samples_split", min_samples_split, 20)?;
        if mss < 2 {
            return Err(verr(format!(
                "min_samples_split must be at least 2, got {mss}"
            )));
        }
        let split_threshold = match split_threshold {
            Some(v) => convert::number_setting("split_threshold", v)?,
            None => 0.01,
        };
        let max_nodes = int("max_nodes", max_nodes, 2000)?;
        if max_nodes < 1 {
            return Err(verr(format!("max_nodes must be positive, got {max_nodes}")));
        }
        let nq = int("n_quantiles", n_quantiles, 8)?;
        if nq < 1 {
            return Err(verr(format!("n_quantiles must be positive, got {nq}")));
        }
        let prior = match prior {
            None => Prior::Gaussian,
            Some(p) => {
                let s = p.cast::<PyString>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "prior must be 'gaussian' or 'beta', got {}",
                        label_repr(p)
                    ))
                })?;
                Prior::parse(s.to_str()?).map_err(core_err)?
            }
        };
        let big = |v: i128| u64::try_from(v).unwrap_or(u64::MAX);
        let cfg = TreeConfig {
            n_features: usize::try_from(n_features)
                .map_err(|_| verr(format!("n_features is too large, got {n_features}")))?,
            max_depth: big(max_depth),
            min_samples_split: big(mss),
            split_threshold,
            max_nodes: big(max_nodes),
            n_quantiles: big(nq),
            prior,
        };
        cfg.validate().map_err(core_err)?;
        let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
        let labels = input::new_labels(arms)?;
        let tree = Core::new(cfg, labels.len(), seed).map_err(core_err)?;
        Ok(ContextTree {
            cfg,
            inner: Locked::new(Inner { tree, labels }),
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
    fn max_depth(&self) -> u64 {
        self.cfg.max_depth
    }
    #[getter]
    fn min_samples_split(&self) -> u64 {
        self.cfg.min_samples_split
    }
    #[getter]
    fn split_threshold(&self) -> f64 {
        self.cfg.split_threshold
    }
    #[getter]
    fn max_nodes(&self) -> u64 {
        self.cfg.max_nodes
    }
    #[getter]
    fn n_quantiles(&self) -> u64 {
        self.cfg.n_quantiles
    }
    #[getter]
    fn prior(&self) -> &'static str {
        self.cfg.prior.name()
    }
    #[getter]
    fn sketch_size(&self) -> u64 {
        self.cfg.sketch_size()
    }

    /// The arm to play for context `x` (a Thompson draw at its leaf); with
    /// `return_propensity`, `(arm, exact probability of that choice)`.
    #[pyo3(signature = (x, available_arms=None, return_propensity=false))]
    fn select<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
        return_propensity: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = one_context(x, self.cfg.n_features)?;
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let avail = inner.available(available_arms)?;
        inner.ready()?;
        let tree = &mut inner.tree;
        let (k, p) = py
            .detach(|| -> banditkit_core::Result<(usize, f64)> {
                let k = tree.predict(&v, avail.as_deref())?[0];
                let p = if return_propensity {
                    tree.win_probabilities(tree.leaf_of(&v), avail.as_deref())[k]
                } else {
                    0.0
                };
                Ok((k, p))
            })
            .map_err(core_err)?;
        let arm = inner.labels[k].bind(py).clone();
        if return_propensity {
            Ok(PyTuple::new(py, [arm, p.into_pyobject(py)?.into_any()])?.into_any())
        } else {
            Ok(arm)
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
        let (x, _) = contexts(X, self.cfg.n_features)?;
        let mut guard = self.inner.lock(py);
        let inner = &mut *guard;
        let avail = inner.available(available_arms)?;
        inner.ready()?;
        let tree = &mut inner.tree;
        let picks = py
            .detach(|| tree.predict(&x, avail.as_deref()))
            .map_err(core_err)?;
        PyList::new(py, picks.into_iter().map(|c| inner.labels[c].bind(py)))
    }

    /// Exact probability that `select` picks each arm, shape (n, n_arms), in `.arms` order.
    #[pyo3(signature = (X, available_arms=None))]
    fn propensities<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (x, n) = contexts(X, self.cfg.n_features)?;
        let guard = self.inner.lock(py);
        let avail = guard.available(available_arms)?;
        guard.ready()?;
        let tree = &guard.tree;
        let k = tree.n_arms();
        let p = py
            .detach(|| tree.propensities(&x, avail.as_deref()))
            .map_err(core_err)?;
        drop(guard);
        matrix(py, p, n, k)
    }

    /// Posterior mean reward of every arm at each row's leaf, shape (n, n_arms).
    fn predict_expectations<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (x, n) = contexts(X, self.cfg.n_features)?;
        let guard = self.inner.lock(py);
        let tree = &guard.tree;
        let k = tree.n_arms();
        let out = py.detach(|| tree.expectations(&x));
        drop(guard);
        matrix(py, out, n, k)
    }

    /// The posterior means the Thompson draws are centred on (the deterministic part).
    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.predict_expectations(py, X)
    }

    /// The index of the leaf each row of X falls in.
    fn apply<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let (x, _) = contexts(X, self.cfg.n_features)?;
        let guard = self.inner.lock(py);
        let d = self.cfg.n_features;
        let v: Vec<i64> = x
            .chunks_exact(d)
            .map(|r| guard.tree.leaf_of(r) as i64)
            .collect();
        Ok(PyArray1::from_vec(py, v))
    }

    /// One observation: `reward` for playing `arm` in context `x`. A propensity is checked
    /// (in (0, 1]) and not needed: the tree learns from the rewards of the arms played.
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
        let v = one_context(x, self.cfg.n_features)?;
        let r = check_reward(reward)?;
        if !r.is_finite() {
            return Err(verr(format!(
                "reward must be finite, got {}",
                label_repr(reward)
            )));
        }
        check_propensity(propensity)?;
        inner.tree.partial_fit(&v, &[k], &[r]).map_err(core_err)
    }

    /// Sequential updates (all or nothing): row i of `X` was played on `arms[i]` and earned
    /// `rewards[i]`; or one OBP-style mapping (context, action, reward, pscore).
    #[pyo3(signature = (X, arms=None, rewards=None, propensities=None))]
    fn partial_fit(
        &self,
        py: Python<'_>,
        X: &Bound<'_, PyAny>,
        arms: Option<&Bound<'_, PyAny>>,
        rewards: Option<&Bound<'_, PyAny>>,
        propensities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.fit_into(py, X, arms, rewards, propensities, false)
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
        self.fit_into(py, X, arms, rewards, propensities, true)
    }

    /// A new arm, unplayed in every leaf (its prior there is the leaf's pooled rewards).
    fn add_arm(&self, py: Python<'_>, arm: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut me = self.inner.lock(py);
        input::check_new_label(&me.labels, arm)?;
        me.tree.add_arm();
        me.labels.push(arm.clone().unbind());
        Ok(())
    }

    /// Drops the arm and its statistics; the splits it helped choose stay.
    fn remove_arm(&self, py: Python<'_>, arm: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut me = self.inner.lock(py);
        let k = me.index(arm)?;
        me.tree.remove_arm(k).map_err(core_err)?;
        me.labels.remove(k);
        Ok(())
    }

    /// Forgets every observation (arms, settings and the random stream position stay).
    fn reset(&self, py: Python<'_>) {
        self.inner.lock(py).tree.reset();
    }

    fn get_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let me = self.inner.lock(py);
        let arms = PyDict::new(py);
        for (k, l) in me.labels.iter().enumerate() {
            let s = PyDict::new(py);
            s.set_item("pulls", me.tree.pulls()[k])?;
            arms.set_item(l.bind(py), s)?;
        }
        let nodes = me.tree.nodes();
        let leaves = nodes.iter().filter(|n| n.phase != Phase::Internal);
        let out = PyDict::new(py);
        out.set_item("arms", arms)?;
        out.set_item("total_pulls", me.tree.pulls().iter().sum::<u64>())?;
        out.set_item("n_nodes", nodes.len())?;
        out.set_item("n_leaves", leaves.clone().count())?;
        out.set_item("depth", leaves.map(|n| n.depth).max().unwrap_or(0))?;
        out.set_item("n_arms", me.labels.len())?;
        out.set_item("n_features", self.cfg.n_features)?;
        Ok(out)
    }

    /// The nodes in storage order: splits (feature, threshold, left, right) and leaves
    /// (per-arm count, sum, sum of squares of the rewards they hold).
    fn tree<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let me = self.inner.lock(py);
        let out = PyList::empty(py);
        for n in me.tree.nodes() {
            let d = PyDict::new(py);
            if n.phase == Phase::Internal {
                d.set_item("feature", n.feature)?;
                d.set_item("threshold", n.threshold)?;
                d.set_item("left", n.left)?;
                d.set_item("right", n.left + 1)?;
            } else {
                d.set_item("counts", n.stats.n.clone())?;
                d.set_item("sums", n.stats.s.clone())?;
                d.set_item("sums_sq", n.stats.q.clone())?;
            }
            d.set_item("depth", n.depth)?;
            out.append(d)?;
        }
        Ok(out)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let c = &self.cfg;
        let n_arms = self.inner.lock(py).labels.len();
        format!(
            "ContextTree(n_arms={n_arms}, n_features={}, max_depth={}, min_samples_split={}, split_threshold={:?}, max_nodes={}, n_quantiles={}, prior='{}')",
            c.n_features, c.max_depth, c.min_samples_split, c.split_threshold, c.max_nodes, c.n_quantiles, c.prior.name()
        )
    }

    /// This model as a banditkit file (docs/format.md); labels must be str or int.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let me = self.inner.lock(py);
        to_bytes(py, &me.labels, &me.tree)
    }

    /// The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
    #[classmethod]
    fn from_bytes(cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = cls.py();
        let (labels, tree) = from_bytes(py, data)?;
        Ok(ContextTree {
            cfg: *tree.config(),
            inner: Locked::new(Inner { tree, labels }),
        })
    }

    /// An independent copy (any labels; nothing is encoded).
    fn __copy__(&self, py: Python<'_>) -> Self {
        let me = self.inner.lock(py);
        ContextTree {
            cfg: self.cfg,
            inner: Locked::new(Inner {
                tree: me.tree.clone(),
                labels: me.labels.iter().map(|l| l.clone_ref(py)).collect(),
            }),
        }
    }

    fn __deepcopy__(&self, py: Python<'_>, _memo: &Bound<'_, PyAny>) -> Self {
        self.__copy__(py)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let bytes = slf.get().to_bytes(slf.py())?;
        ps::reduce(slf.as_any(), bytes)
    }
}

// --- the file format (docs/format.md, "ContextTree"); the same arrays as the reference ---

fn to_bytes<'py>(
    py: Python<'py>,
    labels: &[Py<PyAny>],
    tree: &Core,
) -> PyResult<Bound<'py, PyBytes>> {
    let c = tree.config();
    let (k, d) = (tree.n_arms(), c.n_features);
    let nodes = tree.nodes();
    let m = nodes.len();
    let params = vec![
        ("n_features", Value::from(d as u64)),
        ("max_depth", Value::from(c.max_depth)),
        ("min_samples_split", Value::from(c.min_samples_split)),
        ("split_threshold", Value::F64(c.split_threshold)),
        ("max_nodes", Value::from(c.max_nodes)),
        ("n_quantiles", Value::from(c.n_quantiles)),
        ("prior", Value::from(c.prior.name())),
    ];
    let fields = ps::common_fields(
        ps::labels_out(labels.iter().map(|l| l.bind(py).clone()))?,
        params,
        ps::rng_events(tree.seed(), tree.events()),
    );
    let per_node = |f: &dyn Fn(&Node) -> u64| nodes.iter().map(f).collect::<Vec<u64>>();
    let phase = per_node(&|n| n.phase as u64);
    let feature = per_node(&|n| n.feature as u64);
    let left = per_node(&|n| n.left as u64);
    let since = per_node(&|n| n.since);
    let threshold: Vec<f64> = nodes.iter().map(|n| n.threshold).collect();
    let zeros = Stats::zeros(k);
    let leaf_stats = |n: &'_ Node| -> Stats {
        if n.phase == Phase::Internal {
            zeros.clone()
        } else {
            n.stats.clone()
        }
    };
    let stats: Vec<Stats> = nodes.iter().map(leaf_stats).collect();
    let leaf_n: Vec<u64> = stats.iter().flat_map(|s| s.n.clone()).collect();
    let leaf_s: Vec<f64> = stats.iter().flat_map(|s| s.s.clone()).collect();
    let leaf_q: Vec<f64> = stats.iter().flat_map(|s| s.q.clone()).collect();
    let sketch_x: Vec<f64> = nodes.iter().flat_map(|n| n.sketch_x.clone()).collect();
    let sketch_arm: Vec<u64> = nodes
        .iter()
        .flat_map(|n| n.sketch_arm.iter().map(|&a| a as u64))
        .collect();
    let sketch_r: Vec<f64> = nodes.iter().flat_map(|n| n.sketch_r.clone()).collect();
    let n_thr: Vec<u64> = nodes
        .iter()
        .flat_map(|n| {
            if n.phase == Phase::Binned {
                n.thresholds.iter().map(|t| t.len() as u64).collect()
            } else {
                vec![0; d]
            }
        })
        .collect();
    let thresholds: Vec<f64> = nodes.iter().flat_map(|n| n.thresholds.concat()).collect();
    let bins: Vec<&Stats> = nodes.iter().flat_map(|n| n.bins.iter()).collect();
    let bin_n: Vec<u64> = bins.iter().flat_map(|b| b.n.clone()).collect();
    let bin_s: Vec<f64> = bins.iter().flat_map(|b| b.s.clone()).collect();
    let bin_q: Vec<f64> = bins.iter().flat_map(|b| b.q.clone()).collect();
    let n_sketch = sketch_r.len();
    let n_bins = bin_n.len().checked_div(k).unwrap_or(0);
    use banditkit_core::format::{Array, Source};
    let arrays = vec![
        Array::new("node_phase", vec![m], Source::U64(&phase)),
        Array::new("node_feature", vec![m], Source::U64(&feature)),
        Array::new("node_threshold", vec![m], Source::F8(&threshold)),
        Array::new("node_left", vec![m], Source::U64(&left)),
        Array::new("node_since", vec![m], Source::U64(&since)),
        Array::new("leaf_n", vec![m, k], Source::U64(&leaf_n)),
        Array::new("leaf_s", vec![m, k], Source::F8(&leaf_s)),
        Array::new("leaf_q", vec![m, k], Source::F8(&leaf_q)),
        Array::new("sketch_x", vec![n_sketch, d], Source::F8(&sketch_x)),
        Array::new("sketch_arm", vec![n_sketch], Source::U64(&sketch_arm)),
        Array::new("sketch_r", vec![n_sketch], Source::F8(&sketch_r)),
        Array::new("n_thresholds", vec![m, d], Source::U64(&n_thr)),
        Array::new(
            "thresholds",
            vec![thresholds.len()],
            Source::F8(&thresholds),
        ),
        Array::new("bin_n", vec![n_bins, k], Source::U64(&bin_n)),
        Array::new("bin_s", vec![n_bins, k], Source::F8(&bin_s)),
        Array::new("bin_q", vec![n_bins, k], Source::F8(&bin_q)),
        Array::new("pulls", vec![k], Source::U64(tree.pulls())),
    ];
    ps::write(py, "ContextTree", fields, arrays)
}

fn param_str(doc: &banditkit_core::format::Document<'_>, key: &str) -> R<String> {
    match doc.field("params").and_then(|p| ps::map_get(p, key)) {
        Some(Value::String(s)) if s.as_str().is_some() => Ok(s.as_str().expect("checked").into()),
        _ => Err(ps::invalid(format!("params['{key}'] must be str"))),
    }
}

fn from_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<(Vec<Py<PyAny>>, Core)> {
    let bytes = ps::input_bytes(data)?;
    let doc = ps::decode(py, bytes.as_bytes(), "ContextTree")?;
    let labels = ps::to_py(py, ps::labels_in(py, &doc))?;
    let k = labels.len();
    let build = || -> R<Core> {
        let cfg = TreeConfig {
            n_features: usize::try_from(ps::param_u64(&doc, "n_features")?).map_err(ps::invalid)?,
            max_depth: ps::param_u64(&doc, "max_depth")?,
            min_samples_split: ps::param_u64(&doc, "min_samples_split")?,
            split_threshold: ps::param_f64(&doc, "split_threshold")?,
            max_nodes: ps::param_u64(&doc, "max_nodes")?,
            n_quantiles: ps::param_u64(&doc, "n_quantiles")?,
            prior: Prior::parse(&param_str(&doc, "prior")?).map_err(ps::invalid)?,
        };
        cfg.validate().map_err(ps::invalid)?;
        let d = cfg.n_features;
        let m = doc
            .array("node_phase")
            .map(|a| a.shape.first().copied().unwrap_or(0))
            .ok_or_else(|| ps::invalid("no array 'node_phase'"))?;
        let phase = ps::counts(&doc, "node_phase", &[m])?;
        let feature = ps::counts(&doc, "node_feature", &[m])?;
        let threshold = ps::floats(&doc, "node_threshold", &[m])?;
        let left = ps::counts(&doc, "node_left", &[m])?;
        let since = ps::counts(&doc, "node_since", &[m])?;
        let leaf_n = ps::counts(&doc, "leaf_n", &[m, k])?;
        let leaf_s = ps::floats(&doc, "leaf_s", &[m, k])?;
        let leaf_q = ps::floats(&doc, "leaf_q", &[m, k])?;
        let n_thr = ps::counts(&doc, "n_thresholds", &[m, d])?;
        let mut phases = Vec::with_capacity(m);
        for &p in &phase {
            phases.push(Phase::from_code(p).ok_or_else(|| ps::invalid("bad node_phase"))?);
        }
        let n_sketch: u64 = phases
            .iter()
            .zip(&since)
            .filter(|(p, _)| **p == Phase::Sketch)
            .map(|(_, s)| *s)
            .sum();
        let n_sketch = usize::try_from(n_sketch).map_err(ps::invalid)?;
        let sketch_x = ps::floats(&doc, "sketch_x", &[n_sketch, d])?;
        let sketch_arm = ps::counts(&doc, "sketch_arm", &[n_sketch])?;
        let sketch_r = ps::floats(&doc, "sketch_r", &[n_sketch])?;
        if n_thr.iter().any(|&t| t > cfg.n_quantiles) {
            return Err(ps::invalid("too many thresholds"));
        }
        let n_total_thr: u64 = n_thr.iter().sum();
        let thresholds = ps::floats(&doc, "thresholds", &[n_total_thr as usize])?;
        let n_bins: u64 = (0..m)
            .filter(|&i| phases[i] == Phase::Binned)
            .map(|i| n_thr[i * d..(i + 1) * d].iter().map(|t| t + 1).sum::<u64>())
            .sum();
        let n_bins = n_bins as usize;
        let bin_n = ps::counts(&doc, "bin_n", &[n_bins, k])?;
        let bin_s = ps::floats(&doc, "bin_s", &[n_bins, k])?;
        let bin_q = ps::floats(&doc, "bin_q", &[n_bins, k])?;
        let pulls = ps::counts(&doc, "pulls", &[k])?;
        let mut nodes = Vec::with_capacity(m);
        let mut depth = vec![0u64; m];
        let (mut sk, mut th, mut bi) = (0usize, 0usize, 0usize);
        for i in 0..m {
            let mut node = Node::leaf(depth[i], k, &cfg);
            node.phase = phases[i];
            node.since = since[i];
            if phases[i] == Phase::Internal {
                node.feature = usize::try_from(feature[i]).map_err(ps::invalid)?;
                node.threshold = threshold[i];
                node.left = usize::try_from(left[i]).map_err(ps::invalid)?;
                node.stats = Stats::default();
                if node.left > i && node.left + 1 < m {
                    depth[node.left] = depth[i] + 1;
                    depth[node.left + 1] = depth[i] + 1;
                }
                nodes.push(node);
                continue;
            }
            node.stats = Stats {
                n: leaf_n[i * k..(i + 1) * k].to_vec(),
                s: leaf_s[i * k..(i + 1) * k].to_vec(),
                q: leaf_q[i * k..(i + 1) * k].to_vec(),
            };
            if phases[i] == Phase::Sketch {
                let len = since[i] as usize;
                node.sketch_x = sketch_x[sk * d..(sk + len) * d].to_vec();
                node.sketch_arm = sketch_arm[sk..sk + len]
                    .iter()
                    .map(|&a| a as usize)
                    .collect();
                node.sketch_r = sketch_r[sk..sk + len].to_vec();
                sk += len;
            }
            if phases[i] == Phase::Binned {
                for j in 0..d {
                    let t = n_thr[i * d + j] as usize;
                    node.thresholds.push(thresholds[th..th + t].to_vec());
                    th += t;
                    let rows = (t + 1) * k;
                    node.bins.push(Stats {
                        n: bin_n[bi..bi + rows].to_vec(),
                        s: bin_s[bi..bi + rows].to_vec(),
                        q: bin_q[bi..bi + rows].to_vec(),
                    });
                    bi += rows;
                }
            } else if n_thr[i * d..(i + 1) * d].iter().any(|&t| t != 0) {
                return Err(ps::invalid("only binned leaves have thresholds"));
            }
            nodes.push(node);
        }
        if th != thresholds.len() {
            return Err(ps::invalid("thresholds of a leaf that is not binned"));
        }
        let (seed, events) = ps::rng_in(&doc)?.policy_stream();
        Core::from_parts(cfg, k, nodes, pulls, seed, events).map_err(ps::invalid)
    };
    let tree = ps::to_py(py, build())?;
    Ok((labels.into_iter().map(Bound::unbind).collect(), tree))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ContextTree>()
}
