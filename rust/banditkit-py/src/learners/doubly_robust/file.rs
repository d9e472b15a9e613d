//! The banditkit file of `DoublyRobust` (docs/format.md): the settings, the reward (`q_*`) and
//! policy (`pi_*`) ridge models per arm in LinUCB's per-arm layout, and the kept rows
//! (`history_*`). Read and written by both backends.
use banditkit_core::contextual::kernels::packed_len;
use banditkit_core::contextual::{ArmConfig, ArmSnapshot, ArmState};
use banditkit_core::format::{Array, Document, Source};
use banditkit_core::learners::doubly_robust::{DoublyRobust, DrConfig, Exploration, HistoryRows};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rmpv::Value;

use crate::persist::{
    common_fields, counts, decode, floats, input_bytes, invalid, labels_in, labels_out, map_get,
    packed_matrices, param_f64, param_u64, rng_events, rng_in, to_py, write, R,
};

const CLASS: &str = "DoublyRobust";

/// The arrays of one model family (`q` or `pi`) of `k` arms.
fn model_arrays<'a>(arms: &[&'a ArmState], store: &'a Owned) -> Vec<Array<'a>> {
    let (k, d) = (arms.len(), store.d);
    let name = |s: &str| -> &'a str {
        let i = FIELDS.iter().position(|f| *f == s).expect("a model field");
        &store.names[i]
    };
    vec![
        Array::new(
            name("gram"),
            vec![k, packed_len(d)],
            Source::Concat(store.grams.iter().map(|g| Source::F8(g)).collect()),
        ),
        Array::new(
            name("a_inv"),
            vec![k, packed_len(d)],
            Source::Concat(
                arms.iter()
                    .map(|a| Source::F8(a.a_inv_packed().0))
                    .collect(),
            ),
        ),
        Array::new(name("a_inv_scale"), vec![k], Source::F8(&store.scales)),
        Array::new(
            name("b"),
            vec![k, d],
            Source::Concat(arms.iter().map(|a| Source::F8(a.b())).collect()),
        ),
        Array::new(
            name("theta"),
            vec![k, d],
            Source::Concat(arms.iter().map(|a| Source::F8(a.theta())).collect()),
        ),
        Array::new(name("pulls"), vec![k], Source::U64(&store.pulls)),
        Array::new(name("since_refactor"), vec![k], Source::U64(&store.since)),
        Array::new(name("refactors"), vec![k], Source::U64(&store.refactors)),
    ]
}

/// The per-arm arrays of a model family, each named `{prefix}_{field}`.
const FIELDS: [&str; 8] = [
    "gram",
    "a_inv",
    "a_inv_scale",
    "b",
    "theta",
    "pulls",
    "since_refactor",
    "refactors",
];

/// Per-arm values computed for saving (borrowed by the arrays).
struct Owned {
    names: Vec<String>,
    d: usize,
    grams: Vec<Vec<f64>>,
    scales: Vec<f64>,
    pulls: Vec<u64>,
    since: Vec<u64>,
    refactors: Vec<u64>,
}

impl Owned {
    fn of(prefix: &str, arms: &[&ArmState], d: usize) -> Self {
        Owned {
            names: FIELDS.iter().map(|f| format!("{prefix}_{f}")).collect(),
            d,
            grams: arms.iter().map(|a| a.gram_packed().into_owned()).collect(),
            scales: arms.iter().map(|a| a.a_inv_packed().1).collect(),
            pulls: arms.iter().map(|a| a.pulls()).collect(),
            since: arms.iter().map(|a| a.since_refactor()).collect(),
            refactors: arms.iter().map(|a| a.refactors()).collect(),
        }
    }
}

pub fn to_bytes<'py>(
    py: Python<'py>,
    labels: &[Py<PyAny>],
    dr: &mut DoublyRobust,
) -> PyResult<Bound<'py, PyBytes>> {
    dr.settle_grams();
    let dr = &*dr;
    let c = dr.config();
    let (d, k) = (c.n_features, dr.n_arms());
    let params = vec![
        ("n_features", Value::from(d as u64)),
        ("alpha", Value::F64(c.alpha)),
        ("l2_lambda", Value::F64(c.l2_lambda)),
        ("max_weight", Value::F64(c.max_weight)),
        ("max_history", Value::from(c.max_history as u64)),
        ("exploration", Value::from(c.exploration.name())),
        ("epsilon", Value::F64(c.epsilon)),
        ("temperature", Value::F64(c.temperature)),
    ];
    let fields = common_fields(
        labels_out(labels.iter().map(|l| l.bind(py).clone()))?,
        params,
        rng_events(dr.seed(), dr.events()),
    );
    let q: Vec<&ArmState> = (0..k).map(|i| dr.reward_arm(i)).collect();
    let pi: Vec<&ArmState> = (0..k).map(|i| dr.policy_arm(i)).collect();
    let (q_owned, pi_owned) = (Owned::of("q", &q, d), Owned::of("pi", &pi, d));
    let rows = dr.history();
    let n = rows.r.len();
    let arm: Vec<u64> = rows.arm.iter().map(|&a| a as u64).collect();
    let mut arrays = model_arrays(&q, &q_owned);
    arrays.extend(model_arrays(&pi, &pi_owned));
    arrays.extend([
        Array::new("history_x", vec![n, d], Source::F8(&rows.x)),
        Array::new("history_arm", vec![n], Source::U64(&arm)),
        Array::new("history_r", vec![n], Source::F8(&rows.r)),
        Array::new("history_p", vec![n], Source::F8(&rows.p)),
    ]);
    write(py, CLASS, fields, arrays)
}

fn models(doc: &Document<'_>, prefix: &str, k: usize, cfg: ArmConfig) -> R<Vec<ArmState>> {
    let d = cfg.n_features;
    let name = |s: &str| format!("{prefix}_{s}");
    let mut hashed = Vec::new();
    let (g, ai) = (name("gram"), name("a_inv"));
    let grams = packed_matrices(doc, &g, k, d, &mut hashed)?;
    let inverses = packed_matrices(doc, &ai, k, d, &mut hashed)?;
    let scales = floats(doc, &name("a_inv_scale"), &[k])?;
    if scales.iter().any(|&s| s <= 0.0) {
        return Err(invalid(format!("{} must be positive", name("a_inv_scale"))));
    }
    let b = floats(doc, &name("b"), &[k, d])?;
    let theta = floats(doc, &name("theta"), &[k, d])?;
    let pulls = counts(doc, &name("pulls"), &[k])?;
    let since = counts(doc, &name("since_refactor"), &[k])?;
    let refactors = counts(doc, &name("refactors"), &[k])?;
    let mut out = Vec::with_capacity(k);
    for (i, (gram, a_inv)) in grams.into_iter().zip(inverses).enumerate() {
        let snap = ArmSnapshot {
            gram_packed: gram,
            b: b[i * d..(i + 1) * d].to_vec(),
            a_inv_packed: a_inv,
            a_inv_scale: scales[i],
            theta: theta[i * d..(i + 1) * d].to_vec(),
            hist_x: Vec::new(),
            hist_r: Vec::new(),
            pulls: pulls[i],
            since_refactor: since[i],
            refactors: refactors[i],
        };
        out.push(
            ArmState::from_snapshot_finite_matrices(cfg, snap)
                .ok_or_else(|| invalid("inconsistent arm state"))?,
        );
    }
    Ok(out)
}

fn build(doc: &Document<'_>, k: usize) -> R<DoublyRobust> {
    let exploration = match doc.field("params").and_then(|p| map_get(p, "exploration")) {
        Some(Value::String(s)) => s.as_str().unwrap_or(""),
        _ => return Err(invalid("params['exploration'] must be str")),
    };
    let size = |key: &str| -> R<usize> { usize::try_from(param_u64(doc, key)?).map_err(invalid) };
    let cfg = DrConfig {
        n_features: size("n_features")?,
        alpha: param_f64(doc, "alpha")?,
        l2_lambda: param_f64(doc, "l2_lambda")?,
        max_weight: param_f64(doc, "max_weight")?,
        max_history: size("max_history")?,
        exploration: Exploration::parse(exploration).map_err(invalid)?,
        epsilon: param_f64(doc, "epsilon")?,
        temperature: param_f64(doc, "temperature")?,
    };
    cfg.validate().map_err(invalid)?;
    let arm_cfg = ArmConfig {
        n_features: cfg.n_features,
        l2_lambda: cfg.l2_lambda,
        window_size: 0,
        gamma: 1.0,
        refactor_every: ArmConfig::default_refactor_every(cfg.n_features),
    };
    let reward = models(doc, "q", k, arm_cfg)?;
    let policy = models(doc, "pi", k, arm_cfg)?;
    let n = doc
        .array("history_r")
        .map_or(0, |a| a.shape.first().copied().unwrap_or(0));
    if n > cfg.max_history {
        return Err(invalid("history longer than max_history"));
    }
    let d = cfg.n_features;
    let rows = HistoryRows {
        x: floats(doc, "history_x", &[n, d])?,
        arm: counts(doc, "history_arm", &[n])?
            .into_iter()
            .map(|a| usize::try_from(a).unwrap_or(usize::MAX))
            .collect(),
        r: floats(doc, "history_r", &[n])?,
        p: floats(doc, "history_p", &[n])?,
    };
    let (seed, events) = rng_in(doc)?.policy_stream();
    DoublyRobust::from_parts(cfg, seed, events, reward, policy, rows).map_err(|e| invalid(e.0))
}

pub fn from_bytes(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
) -> PyResult<(Vec<Py<PyAny>>, DoublyRobust)> {
    let bytes = input_bytes(data)?;
    let doc = decode(py, bytes.as_bytes(), CLASS)?;
    let labels = to_py(py, labels_in(py, &doc))?;
    let k = labels.len();
    let dr = to_py(py, build(&doc, k))?;
    Ok((labels.into_iter().map(Bound::unbind).collect(), dr))
}
