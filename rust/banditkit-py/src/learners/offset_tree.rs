//! `OffsetTree`: a thin wrapper over `banditkit_core::learners::offset_tree::OffsetTree` with
//! labels, input conversion, the GIL released for batch work, and the banditkit file format.
//! State behind one lock held across each whole call (see [`crate::locked`]).
use banditkit_core::format::{Array, Document, Source};
use banditkit_core::learners::offset_tree::{self as core, OffsetTreeConfig, TreeState};
use banditkit_core::rng::os_seed;
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMapping, PyTuple, PyType};
use rmpv::Value;

use crate::contextual::input;
use crate::contextual::input::{
    batch, check_reward, context, contiguous, core_err, label_repr, rewards, verr,
};
use crate::convert::{self, label};
use crate::locked::Locked;
use crate::persist;

const CLASS: &str = "OffsetTree";

#[pyclass(frozen, module = "banditkit_rs")]
pub struct OffsetTree {
    cfg: OffsetTreeConfig,
    inner: Locked<Inner>,
}

struct Inner {
    tree: core::OffsetTree,
    labels: Vec<Py<PyAny>>,
}

impl Inner {
    fn index(&self, arm: &Bound<'_, PyAny>) -> PyResult<usize> {
        input::label_index(&self.labels, arm)
    }

    fn available(&self, available: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<usize>>> {
        input::available_positions(&self.labels, available)
    }

    fn label<'py>(&self, py: Python<'py>, k: usize) -> Bound<'py, PyAny> {
        self.labels[k].bind(py).clone()
    }
}

/// Rows to learn: contexts (row-major), arm indices, rewards, optional propensities.
type Rows = (Vec<f64>, Vec<usize>, Vec<f64>, Option<Vec<f64>>);

/// Probabilities in (0, 1], `what` named in the error.
fn probabilities(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let p = rewards(obj).map_err(|_| verr(format!("{what} must be a 1-D array of numbers")))?;
    if let Some(bad) = p.iter().find(|&&v| !(v > 0.0 && v <= 1.0)) {
        return Err(verr(format!("{what} must be in (0, 1], got {bad}")));
    }
    Ok(p)
}

fn f64_array<'py>(
    py: Python<'py>,
    v: Vec<f64>,
    n: usize,
    k: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    PyArray1::from_vec(py, v).reshape([n, k])
}

impl OffsetTree {
    /// The rows of a call, all converted and checked against the labels (not yet the core's
    /// checks, which `learn` makes before changing anything).
    #[allow(non_snake_case)]
    fn rows(
        &self,
        inner: &Inner,
        X: &Bound<'_, PyAny>,
        arms: Option<&Bound<'_, PyAny>>,
        rewards_obj: Option<&Bound<'_, PyAny>>,
        propensities: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Rows> {
        let d = self.cfg.n_features;
        let some = |o: Option<&Bound<'_, PyAny>>| o.filter(|v| !v.is_none()).is_some();
        if let Ok(logged) = X.cast::<PyMapping>() {
            if some(arms) || some(rewards_obj) || some(propensities) {
                return Err(verr(
                    "pass either a logged-feedback mapping or X, arms, rewards",
                ));
            }
            let get = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
                if logged.contains(key)? {
                    Ok(Some(logged.get_item(key)?)).map(|v| v.filter(|v| !v.is_none()))
                } else {
                    Ok(None)
                }
            };
            for key in ["context", "action", "reward"] {
                if get(key)?.is_none() {
                    return Err(verr(format!("logged feedback needs the key '{key}'")));
                }
            }
            let (x, _) = batch(&get("context")?.expect("checked"), d)?;
            let bad_action = || verr("action must be a 1-D array of integer arm indices");
            let act = rewards(&get("action")?.expect("checked")).map_err(|_| bad_action())?;
            let k = inner.labels.len();
            let mut idx = Vec::with_capacity(act.len());
            for a in act {
                if a.floor() != a {
                    return Err(bad_action());
                }
                if !(a >= 0.0 && a < k as f64) {
                    return Err(verr(format!("action must be arm indices in [0, {k})")));
                }
                idx.push(a as usize);
            }
            let r = rewards(&get("reward")?.expect("checked"))?;
            let p = match get("pscore")? {
                Some(p) => Some(probabilities("pscore", &p)?),
                None => None,
            };
            return Ok((x, idx, r, p));
        }
        let (Some(arms), Some(rewards_obj)) = (
            arms.filter(|v| !v.is_none()),
            rewards_obj.filter(|v| !v.is_none()),
        ) else {
            return Err(verr("arms and rewards are required with X"));
        };
        let (x, _) = batch(X, d)?;
        let mut idx = Vec::new();
        for a in convert::arm_list("arms", arms)? {
            idx.push(inner.index(&a)?);
        }
        let r = rewards(rewards_obj)?;
        let p = match propensities.filter(|v| !v.is_none()) {
            Some(p) => Some(probabilities("propensities", p)?),
            None => None,
        };
        Ok((x, idx, r, p))
    }

    #[allow(non_snake_case)]
    fn learn(
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
        let (x, idx, r, p) = self.rows(inner, X, arms, rewards, propensities)?;
        let names: Vec<String> = inner.labels.iter().map(|l| label(l.bind(py))).collect();
        let tree = &mut inner.tree;
        py.detach(|| tree.learn(&x, &idx, &r, p.as_deref(), fresh, &|k| names[k].clone()))
            .map_err(core_err)
    }
}

#[pymethods]
#[allow(non_snake_case)] // `X` is the scikit-learn name of the batch argument.
impl OffsetTree {
    #[new]
    #[pyo3(signature = (arms, n_features, learning_rate=None, l2=None, epsilon=None, max_weight=None, offset=None, seed=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        arms: &Bound<'_, PyAny>,
        n_features: &Bound<'_, PyAny>,
        learning_rate: Option<&Bound<'_, PyAny>>,
        l2: Option<&Bound<'_, PyAny>>,
        epsilon: Option<&Bound<'_, PyAny>>,
        max_weight: Option<&Bound<'_, PyAny>>,
        offset: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let n_features = convert::int_setting("n_features", n_features)?;
        if n_features <= 0 {
            return Err(verr(format!(
                "n_features must be positive, got {n_features}"
            )));
        }
        let number = |what: &str, v: Option<&Bound<'_, PyAny>>, default: f64| match v {
            Some(v) => convert::number_setting(what, v),
            None => Ok(default),
        };
        let cfg = OffsetTreeConfig {
            n_features: usize::try_from(n_features)
                .map_err(|_| verr(format!("n_features is too large, got {n_features}")))?,
            learning_rate: number("learning_rate", learning_rate, 0.1)?,
            l2: number("l2", l2, 0.0)?,
            epsilon: number("epsilon", epsilon, 0.05)?,
            max_weight: number("max_weight", max_weight, f64::INFINITY)?,
            offset: match offset.filter(|o| !o.is_none()) {
                Some(o) => Some(convert::number_setting("offset", o)?),
                None => None,
            },
        };
        cfg.validate().map_err(core_err)?;
        let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
        let labels = input::new_labels(arms)?;
        let tree = core::OffsetTree::new(cfg, labels.len(), seed).map_err(core_err)?;
        Ok(OffsetTree {
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
    fn learning_rate(&self) -> f64 {
        self.cfg.learning_rate
    }
    #[getter]
    fn l2(&self) -> f64 {
        self.cfg.l2
    }
    #[getter]
    fn epsilon(&self) -> f64 {
        self.cfg.epsilon
    }
    #[getter]
    fn max_weight(&self) -> f64 {
        self.cfg.max_weight
    }
    #[getter]
    fn offset(&self) -> Option<f64> {
        self.cfg.offset
    }
    /// Internal (binary) nodes: n_arms - 1.
    #[getter]
    fn n_nodes(&self, py: Python<'_>) -> usize {
        self.inner.lock(py).tree.n_nodes()
    }

    /// The arm to play for `x` (and its exact propensity if `return_propensity`).
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
        let mut me = self.inner.lock(py);
        let avail = me.available(available_arms)?;
        let (k, p) = me.tree.select(&xs, avail.as_deref()).map_err(core_err)?;
        let arm = me.label(py, k);
        if return_propensity {
            Ok(PyTuple::new(py, [arm, p.into_pyobject(py)?.into_any()])?.into_any())
        } else {
            Ok(arm)
        }
    }

    /// The arm for each row of `X` (equals `select` on each row in turn).
    #[pyo3(signature = (X, available_arms=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (x, _) = batch(X, self.cfg.n_features)?;
        let (view, mask, t0, labels) = {
            let mut me = self.inner.lock(py);
            let avail = me.available(available_arms)?;
            let (view, mask, t0) = me
                .tree
                .begin_choose(&x, avail.as_deref())
                .map_err(core_err)?;
            let labels: Vec<Py<PyAny>> = me.labels.iter().map(|l| l.clone_ref(py)).collect();
            (view, mask, t0, labels)
        };
        let picks = py.detach(|| view.choose(&x, mask.as_deref(), t0));
        PyList::new(py, picks.into_iter().map(|(c, _)| labels[c].bind(py)))
    }

    /// Exact probability that `select` picks each arm, shape (n, n_arms).
    #[pyo3(signature = (X, available_arms=None))]
    fn propensities<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        available_arms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (x, n) = batch(X, self.cfg.n_features)?;
        let (tree, avail) = {
            let me = self.inner.lock(py);
            (me.tree.clone(), me.available(available_arms)?)
        };
        let k = tree.n_arms();
        let out = py
            .detach(|| tree.propensities(&x, avail.as_deref()))
            .map_err(core_err)?;
        f64_array(py, out, n, k)
    }

    /// The greedy tournament's choice per row: 1 for the winner (shares under ties).
    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (x, n) = batch(X, self.cfg.n_features)?;
        let tree = self.inner.lock(py).tree.clone();
        let out = py.detach(|| tree.decision_function(&x)).map_err(core_err)?;
        f64_array(py, out, n, tree.n_arms())
    }

    /// The tree's soft probabilities over arms (products of node probabilities).
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (x, n) = batch(X, self.cfg.n_features)?;
        let tree = self.inner.lock(py).tree.clone();
        let out = py.detach(|| tree.predict_proba(&x)).map_err(core_err)?;
        f64_array(py, out, n, tree.n_arms())
    }

    /// Per arm, its self-normalised importance-weighted mean reward (context-free).
    fn predict_expectations<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (x, n) = batch(X, self.cfg.n_features)?;
        let me = self.inner.lock(py);
        let out = me.tree.predict_expectations(&x).map_err(core_err)?;
        f64_array(py, out, n, me.tree.n_arms())
    }

    /// One row: `reward` for `arm` in context `x`, logged with `propensity` (None: this
    /// learner's own propensity of `arm` for `x`).
    #[pyo3(signature = (arm, x, reward, propensity=None))]
    fn update(
        &self,
        py: Python<'_>,
        arm: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        reward: &Bound<'_, PyAny>,
        propensity: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let arr = context(x)?;
        let xs = contiguous(&arr);
        let r = check_reward(reward)?;
        let p = match propensity.filter(|p| !p.is_none()) {
            Some(p) => {
                let v = convert::data_number(p).ok_or_else(|| {
                    verr(format!(
                        "propensity must be a number, got {}",
                        label_repr(p)
                    ))
                })?;
                if !(v > 0.0 && v <= 1.0) {
                    return Err(verr(format!("propensities must be in (0, 1], got {v}")));
                }
                Some(vec![v])
            }
            None => None,
        };
        let mut me = self.inner.lock(py);
        let k = me.index(arm)?;
        if xs.len() != self.cfg.n_features {
            return Err(verr(format!(
                "context must have {} features, got {}",
                self.cfg.n_features,
                xs.len()
            )));
        }
        let name = label(arm);
        me.tree
            .learn(&xs, &[k], &[r], p.as_deref(), false, &|_| name.clone())
            .map_err(core_err)
    }

    /// Learns the rows in order: `partial_fit(X, arms, rewards, propensities=None)` or
    /// `partial_fit(logged)` with OBP's keys. All or nothing.
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

    /// Forgets everything learned, then learns these rows (on bad input nothing changes).
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

    fn add_arm(&self, _arm: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyValueError::new_err(
            "OffsetTree cannot add arms: its tournament is fixed at construction (build a new OffsetTree with the new arm list)",
        ))
    }

    fn remove_arm(&self, _arm: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyValueError::new_err(
            "OffsetTree cannot remove arms: its tournament is fixed at construction (pass available_arms to select/predict/propensities instead)",
        ))
    }

    /// Forgets everything learned (arms, settings and the random stream position stay).
    fn reset(&self, py: Python<'_>) {
        self.inner.lock(py).tree.reset();
    }

    fn get_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let me = self.inner.lock(py);
        let st = me.tree.state();
        let arms = PyDict::new(py);
        for (k, l) in me.labels.iter().enumerate() {
            let s = PyDict::new(py);
            s.set_item("rows", st.arm_rows[k])?;
            s.set_item("weight", st.arm_weight[k])?;
            arms.set_item(l.bind(py), s)?;
        }
        let out = PyDict::new(py);
        out.set_item("arms", arms)?;
        out.set_item("node_updates", st.node_updates.clone())?;
        out.set_item("rows", st.rows)?;
        out.set_item("offset", st.offset(self.cfg.offset))?;
        out.set_item("n_arms", me.tree.n_arms())?;
        out.set_item("n_nodes", me.tree.n_nodes())?;
        out.set_item("n_features", self.cfg.n_features)?;
        Ok(out)
    }

    /// (n_nodes, n_features + 1): each node's weights, intercept last.
    fn node_weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let me = self.inner.lock(py);
        let n = me.tree.n_nodes();
        f64_array(
            py,
            me.tree.state().theta.clone(),
            n,
            self.cfg.n_features + 1,
        )
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let c = &self.cfg;
        let n_arms = self.inner.lock(py).labels.len();
        let offset = c.offset.map_or("None".to_string(), |o| format!("{o:?}"));
        format!(
            "OffsetTree(n_arms={n_arms}, n_features={}, learning_rate={:?}, l2={:?}, epsilon={:?}, max_weight={}, offset={offset})",
            c.n_features,
            c.learning_rate,
            c.l2,
            c.epsilon,
            if c.max_weight.is_infinite() { "inf".to_string() } else { format!("{:?}", c.max_weight) },
        )
    }

    /// This model as a banditkit file (docs/format.md); labels must be str or int.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let me = self.inner.lock(py);
        let c = &self.cfg;
        let params = vec![
            ("n_features", Value::from(c.n_features as u64)),
            ("learning_rate", Value::F64(c.learning_rate)),
            ("l2", Value::F64(c.l2)),
            ("epsilon", Value::F64(c.epsilon)),
            ("max_weight", Value::F64(c.max_weight)),
            ("offset", c.offset.map_or(Value::Nil, Value::F64)),
        ];
        let fields = persist::common_fields(
            persist::labels_out(me.labels.iter().map(|l| l.bind(py).clone()))?,
            params,
            persist::rng_events(me.tree.seed(), me.tree.events()),
        );
        let st = me.tree.state();
        let (k, n, d1) = (me.tree.n_arms(), me.tree.n_nodes(), c.n_features + 1);
        let reward_sum = [st.reward_sum];
        let rows = [st.rows];
        let arrays = vec![
            Array::new("theta", vec![n, d1], Source::F8(&st.theta)),
            Array::new("accum", vec![n, d1], Source::F8(&st.accum)),
            Array::new("node_updates", vec![n], Source::U64(&st.node_updates)),
            Array::new("arm_rows", vec![k], Source::U64(&st.arm_rows)),
            Array::new("arm_weight", vec![k], Source::F8(&st.arm_weight)),
            Array::new("arm_reward", vec![k], Source::F8(&st.arm_reward)),
            Array::new("reward_sum", vec![1], Source::F8(&reward_sum)),
            Array::new("rows", vec![1], Source::U64(&rows)),
        ];
        persist::write(py, CLASS, fields, arrays)
    }

    /// The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
    #[classmethod]
    fn from_bytes(_cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = data.py();
        let bytes = persist::input_bytes(data)?;
        let doc = persist::decode(py, bytes.as_bytes(), CLASS)?;
        let labels = persist::to_py(py, persist::labels_in(py, &doc))?;
        let tree = persist::to_py(py, tree_of(&doc, labels.len()))?;
        Ok(OffsetTree {
            cfg: *tree.config(),
            inner: Locked::new(Inner {
                tree,
                labels: labels.into_iter().map(Bound::unbind).collect(),
            }),
        })
    }

    /// An independent copy (any labels; nothing is encoded).
    fn __copy__(&self, py: Python<'_>) -> Self {
        let me = self.inner.lock(py);
        OffsetTree {
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
        persist::reduce(slf.as_any(), bytes)
    }
}

/// The learner of a file, with the constructor's checks on the settings and the state's.
fn tree_of(doc: &Document<'_>, k: usize) -> persist::R<core::OffsetTree> {
    use persist::{counts, floats, invalid, param_f64, param_u64};
    let offset = match doc
        .field("params")
        .and_then(|p| persist::map_get(p, "offset"))
    {
        None | Some(Value::Nil) => None,
        Some(_) => Some(param_f64(doc, "offset")?),
    };
    let cfg = OffsetTreeConfig {
        n_features: usize::try_from(param_u64(doc, "n_features")?).map_err(invalid)?,
        learning_rate: param_f64(doc, "learning_rate")?,
        l2: param_f64(doc, "l2")?,
        epsilon: param_f64(doc, "epsilon")?,
        max_weight: param_f64(doc, "max_weight")?,
        offset,
    };
    let (seed, events) = persist::rng_in(doc)?.policy_stream();
    let mut tree = core::OffsetTree::new(cfg, k, seed).map_err(invalid)?;
    tree.set_events(events);
    let (n, d1) = (tree.n_nodes(), cfg.n_features + 1);
    let rows = counts(doc, "rows", &[1])?[0];
    let state = TreeState {
        theta: floats(doc, "theta", &[n, d1])?,
        accum: floats(doc, "accum", &[n, d1])?,
        node_updates: counts(doc, "node_updates", &[n])?,
        arm_rows: counts(doc, "arm_rows", &[k])?,
        arm_weight: floats(doc, "arm_weight", &[k])?,
        arm_reward: floats(doc, "arm_reward", &[k])?,
        reward_sum: floats(doc, "reward_sum", &[1])?[0],
        rows,
    };
    tree.set_state(state).map_err(invalid)?;
    Ok(tree)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<OffsetTree>()
}
