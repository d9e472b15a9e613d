//! The banditkit file format for the five classes (docs/format.md): each class's state as a
//! document of `banditkit_core::format`, and back, with the same checks as the NumPy reference
//! (`python/banditkit/python/_persist.py`). Functions over plain references to the state; the
//! classes' `to_bytes`/`from_bytes` are thin wrappers. Every load failure raises
//! `banditkit.FormatError` (a `ValueError`); big arrays are encoded and decoded with the GIL
//! released.
use crate::arms::ArmIndex;
use banditkit_core::beta::BetaPosterior;
use banditkit_core::contextual::kernels::packed_len;
use banditkit_core::contextual::{ArmConfig, ArmSnapshot, ArmState, LinearPolicy, Scoring};
use banditkit_core::format::{self, Array, ArrayView, DType, Document, Encoder, Source};
use banditkit_core::gaussian::GaussianPosterior;
use banditkit_core::logistic::LogisticState;
use banditkit_core::rng::{splitmix64_mix, SeedStream};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyList, PyMemoryView, PySet, PyString, PyType};
use rmpv::Value;

/// Files above this size are encoded/decoded with the GIL released.
const DETACH_MIN_BYTES: usize = 1 << 16;

pub(crate) type R<T> = Result<T, String>;

/// `banditkit.FormatError(msg)` (the one class both backends raise).
pub fn format_error(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    let cls = py
        .import("banditkit._errors")
        .and_then(|m| m.getattr("FormatError"))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match cls {
        Ok(cls) => PyErr::from_type(cls, msg.into()),
        Err(e) => e,
    }
}

pub(crate) fn invalid(msg: impl std::fmt::Display) -> String {
    format!("invalid banditkit file: {msg}")
}

// --- bytes in and out ---

/// `data` as bytes (bytes, bytearray or memoryview); anything else is a TypeError.
pub(crate) fn input_bytes<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(b.clone());
    }
    if data.is_instance_of::<PyByteArray>() || data.is_instance_of::<PyMemoryView>() {
        let b = data.py().get_type::<PyBytes>().call1((data,))?;
        return b.cast_into::<PyBytes>().map_err(PyErr::from);
    }
    Err(PyTypeError::new_err(format!(
        "expected bytes, got {}",
        data.get_type().name()?
    )))
}

/// The document in `bytes`, which must hold a `class` (another class is refused by name).
pub(crate) fn decode<'a>(py: Python<'_>, bytes: &'a [u8], class: &str) -> PyResult<Document<'a>> {
    let doc = if bytes.len() >= DETACH_MIN_BYTES {
        py.detach(|| format::decode(bytes))
    } else {
        format::decode(bytes)
    }
    .map_err(|e| format_error(py, e.0))?;
    if doc.class != class {
        return Err(format_error(
            py,
            format!("the file holds a '{}', not a '{class}'", doc.class),
        ));
    }
    Ok(doc)
}

pub(crate) fn write<'py>(
    py: Python<'py>,
    class: &str,
    fields: Vec<(&str, Value)>,
    arrays: Vec<Array<'_>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let enc = Encoder::new(class, fields, arrays).map_err(|e| PyTypeError::new_err(e.0))?;
    // A new bytes object left uninitialised (PyBytes::new_with would zero it first: a pass
    // over a big file with the GIL held) and written whole by the encoder.
    let len = enc.len();
    let size =
        pyo3::ffi::Py_ssize_t::try_from(len).map_err(|_| PyTypeError::new_err("file too large"))?;
    // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new bytes object of n uninitialised
    // bytes (or NULL with an exception set, turned into Err); nobody else sees it until it is
    // returned, after write_into_uninit has written every one of its bytes.
    unsafe {
        let ptr = pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), size);
        let obj = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked::<PyBytes>();
        let data = pyo3::ffi::PyBytes_AsString(obj.as_ptr()).cast::<std::mem::MaybeUninit<u8>>();
        let buf = std::slice::from_raw_parts_mut(data, len);
        if len >= DETACH_MIN_BYTES {
            py.detach(|| enc.write_into_uninit(buf));
        } else {
            enc.write_into_uninit(buf);
        }
        Ok(obj)
    }
}

// --- common fields ---

/// Arm labels for a file: str and int (NumPy integers too, saved as int); else TypeError.
pub(crate) fn labels_out<'py>(
    labels: impl IntoIterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Value> {
    let mut out = Vec::new();
    let mut integral = None;
    for label in labels {
        let py = label.py();
        if let Ok(s) = label.cast::<PyString>() {
            let s = s
                .to_str()
                .map_err(|e| PyTypeError::new_err(e.to_string()))?;
            out.push(Value::from(s));
            continue;
        }
        let integral = match &integral {
            Some(i) => i,
            None => integral.insert(py.import("numbers")?.getattr("Integral")?),
        };
        if label.is_instance_of::<PyBool>() || !label.is_instance(integral)? {
            return Err(PyTypeError::new_err(format!(
                "arm labels must be str or int to be saved, got {} ({})",
                label.repr()?,
                label.get_type().name()?
            )));
        }
        let value: i128 = label.extract()?;
        if let Ok(v) = i64::try_from(value) {
            out.push(Value::from(v));
        } else if let Ok(v) = u64::try_from(value) {
            out.push(Value::from(v));
        } else {
            return Err(PyTypeError::new_err(format!(
                "arm label {} is too large to save (64-bit integers)",
                label.repr()?
            )));
        }
    }
    Ok(Value::Array(out))
}

/// The labels of a file as Python objects (str and int), refusing duplicates.
pub(crate) fn labels_in<'py>(py: Python<'py>, doc: &Document<'_>) -> R<Vec<Bound<'py, PyAny>>> {
    let bad = || invalid("arm labels must be a list of str and int");
    let Some(Value::Array(items)) = doc.field("arms") else {
        return Err(bad());
    };
    let mut out = Vec::with_capacity(items.len());
    for v in items {
        let obj = match v {
            Value::String(s) => PyString::new(py, s.as_str().ok_or_else(bad)?).into_any(),
            Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
                (Some(n), _) => n.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
                (None, Some(n)) => n.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        out.push(obj);
    }
    let distinct = PySet::new(py, &out).map_err(|e| e.to_string())?.len();
    if distinct != out.len() {
        return Err(invalid("duplicate arm labels"));
    }
    Ok(out)
}

pub(crate) fn common_fields(
    labels: Value,
    params: Vec<(&str, Value)>,
    rng: Value,
) -> Vec<(&str, Value)> {
    let writer = Value::Map(vec![
        (
            Value::from("banditkit"),
            Value::from(env!("CARGO_PKG_VERSION")),
        ),
        (Value::from("backend"), Value::from("rust")),
    ]);
    let params = params
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect();
    vec![
        ("writer", writer),
        ("arms", labels),
        ("params", Value::Map(params)),
        ("rng", rng),
    ]
}

pub(crate) fn map_get<'v>(map: &'v Value, key: &str) -> Option<&'v Value> {
    match map {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

pub(crate) fn param_f64(doc: &Document<'_>, key: &str) -> R<f64> {
    let v = doc.field("params").and_then(|p| map_get(p, key));
    match v {
        Some(Value::F64(x)) => Ok(*x),
        Some(Value::Integer(i)) if i.as_f64().is_some() => Ok(i.as_f64().expect("checked")),
        _ => Err(invalid(format!("params['{key}'] must be float"))),
    }
}

pub(crate) fn param_u64(doc: &Document<'_>, key: &str) -> R<u64> {
    match doc.field("params").and_then(|p| map_get(p, key)) {
        Some(Value::Integer(i)) => i
            .as_u64()
            .ok_or_else(|| invalid(format!("{key} must be non-negative"))),
        _ => Err(invalid(format!("params['{key}'] must be int"))),
    }
}

fn finite_positive(doc: &Document<'_>, key: &str) -> R<f64> {
    let v = param_f64(doc, key)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(invalid(format!("{key} must be positive, got {v}")));
    }
    Ok(v)
}

// --- random state ---

/// The generator state of a file, as this backend can use it.
pub(crate) enum RngIn {
    /// A Rust per-call seed stream, exactly.
    SplitMix(u64),
    /// A Rust contextual policy's stream, exactly.
    Events { seed: u64, events: u64 },
    /// A foreign (NumPy PCG64) state, folded into a seed (docs/format.md).
    Foreign(u64),
}

impl RngIn {
    /// The state of a per-call seed stream.
    fn stream_state(&self) -> u64 {
        match *self {
            RngIn::SplitMix(s) | RngIn::Foreign(s) => s,
            RngIn::Events { seed, events } => splitmix64_mix(seed ^ splitmix64_mix(events)),
        }
    }

    /// A contextual policy's (seed, events).
    pub(crate) fn policy_stream(&self) -> (u64, u64) {
        match *self {
            RngIn::SplitMix(s) | RngIn::Foreign(s) => (s, 0),
            RngIn::Events { seed, events } => (seed, events),
        }
    }
}

fn rng_splitmix(state: u64) -> Value {
    Value::Map(vec![
        (Value::from("kind"), Value::from("splitmix64")),
        (Value::from("state"), Value::from(state)),
    ])
}

pub(crate) fn rng_events(seed: u64, events: u64) -> Value {
    Value::Map(vec![
        (Value::from("kind"), Value::from("xoshiro256pp-events")),
        (Value::from("seed"), Value::from(seed)),
        (Value::from("events"), Value::from(events)),
    ])
}

pub(crate) fn rng_in(doc: &Document<'_>) -> R<RngIn> {
    let rng = doc.field("rng");
    let get_u64 = |k: &str| rng.and_then(|r| map_get(r, k)).and_then(Value::as_u64);
    let pair = |k: &str| -> Option<(u64, u64)> {
        match rng.and_then(|r| map_get(r, k)) {
            Some(Value::Array(w)) if w.len() == 2 => Some((w[0].as_u64()?, w[1].as_u64()?)),
            _ => None,
        }
    };
    let kind = rng.and_then(|r| map_get(r, "kind")).and_then(Value::as_str);
    let bad = || invalid("unknown random generator state");
    match kind {
        Some("splitmix64") => get_u64("state").map(RngIn::SplitMix).ok_or_else(bad),
        Some("xoshiro256pp-events") => match (get_u64("seed"), get_u64("events")) {
            (Some(seed), Some(events)) => Ok(RngIn::Events { seed, events }),
            _ => Err(bad()),
        },
        Some("pcg64") => {
            let (Some((s_hi, s_lo)), Some((i_hi, i_lo))) = (pair("state"), pair("inc")) else {
                return Err(invalid("a 128-bit value must be [hi, lo] u64 words"));
            };
            let has = get_u64("has_uint32");
            let uint = get_u64("uinteger");
            let ok =
                matches!(has, Some(0 | 1)) && uint.is_some_and(|u| u < 1 << 32) && i_lo % 2 == 1;
            if !ok {
                return Err(invalid("bad PCG64 state"));
            }
            Ok(RngIn::Foreign(splitmix64_mix(s_hi ^ s_lo ^ i_hi ^ i_lo)))
        }
        _ => Err(bad()),
    }
}

// --- arrays ---

pub(crate) fn view<'d, 'a>(
    doc: &'d Document<'a>,
    name: &str,
    shape: &[usize],
    dtype: DType,
) -> R<&'d ArrayView<'a>> {
    let a = doc
        .array(name)
        .ok_or_else(|| invalid(format!("no array '{name}'")))?;
    if a.shape != shape || a.dtype != dtype {
        return Err(invalid(format!(
            "array '{name}' must be {} of shape {shape:?}, got {} of shape {:?}",
            dtype.name(),
            a.dtype.name(),
            a.shape
        )));
    }
    Ok(a)
}

/// A finite float64 array.
pub(crate) fn floats(doc: &Document<'_>, name: &str, shape: &[usize]) -> R<Vec<f64>> {
    let v: Vec<f64> = view(doc, name, shape, DType::F8)?.f64s().collect();
    if v.iter().any(|x| !x.is_finite()) {
        return Err(invalid(format!("array '{name}' must be finite")));
    }
    Ok(v)
}

fn positive(v: Vec<f64>, name: &str) -> R<Vec<f64>> {
    if v.iter().any(|&x| x <= 0.0) {
        return Err(invalid(format!("{name} must be positive")));
    }
    Ok(v)
}

/// A non-negative int64 array.
pub(crate) fn counts(doc: &Document<'_>, name: &str, shape: &[usize]) -> R<Vec<u64>> {
    view(doc, name, shape, DType::I8)?
        .i64s()
        .map(|x| {
            u64::try_from(x).map_err(|_| invalid(format!("array '{name}' must be non-negative")))
        })
        .collect()
}

/// `k` symmetric `d x d` matrices, each stored as its packed upper triangle (shape
/// `[k, d (d + 1) / 2]`, the layout of `contextual::kernels`), checked finite, and the
/// array's CRC state.
fn packed_matrices<'n>(
    doc: &Document<'_>,
    name: &'n str,
    k: usize,
    d: usize,
    hashed: &mut Vec<(&'n str, format::Crc)>,
) -> R<Vec<Vec<f64>>> {
    let (blocks, h) = view(doc, name, &[k, packed_len(d)], DType::F8)?
        .copy_blocks(k)
        .ok_or_else(|| invalid(format!("array '{name}' must be finite")))?;
    hashed.push((name, h));
    Ok(blocks)
}

/// The arm labels as an [`ArmIndex`].
fn arm_index(py: Python<'_>, labels: Vec<Bound<'_, PyAny>>) -> PyResult<ArmIndex> {
    ArmIndex::from_list(py, PyList::new(py, labels)?.as_any())
}

pub(crate) fn to_py<T>(py: Python<'_>, r: R<T>) -> PyResult<T> {
    r.map_err(|m| format_error(py, m))
}

// --- The Thompson classes (TSPar, LinearBandit, LogisticBandit) ---
// Each is arm labels + settings + arrays + the `SeedStream` state; only their arrays differ.

fn thompson_to_bytes<'py>(
    py: Python<'py>,
    class: &str,
    arms: &ArmIndex,
    params: Vec<(&str, Value)>,
    seeds: &SeedStream,
    arrays: Vec<Array<'_>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let fields = common_fields(
        labels_out(arms.to_list(py)?)?,
        params,
        rng_splitmix(seeds.state()),
    );
    write(py, class, fields, arrays)
}

/// Decodes a `class` file; `state` builds the model from the document and the arm count.
fn thompson_from_bytes<T>(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    class: &str,
    state: impl FnOnce(&Document, usize) -> R<T>,
) -> PyResult<(ArmIndex, T, SeedStream)> {
    let bytes = input_bytes(data)?;
    let doc = decode(py, bytes.as_bytes(), class)?;
    let labels = to_py(py, labels_in(py, &doc))?;
    let k = labels.len();
    let (model, rng) = to_py(py, state(&doc, k).and_then(|m| Ok((m, rng_in(&doc)?))))?;
    Ok((
        arm_index(py, labels)?,
        model,
        SeedStream::new(rng.stream_state()),
    ))
}

pub fn tspar_to_bytes<'py>(
    py: Python<'py>,
    arms: &ArmIndex,
    post: &BetaPosterior,
    seeds: &SeedStream,
) -> PyResult<Bound<'py, PyBytes>> {
    let k = vec![arms.len()];
    let arrays = vec![
        Array::new("alpha", k.clone(), Source::F8(&post.alpha)),
        Array::new("beta", k, Source::F8(&post.beta)),
    ];
    thompson_to_bytes(py, "TSPar", arms, vec![], seeds, arrays)
}

pub fn tspar_from_bytes(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
) -> PyResult<(ArmIndex, BetaPosterior, SeedStream)> {
    thompson_from_bytes(py, data, "TSPar", |doc, k| {
        let alpha = positive(floats(doc, "alpha", &[k])?, "alpha")?;
        let beta = positive(floats(doc, "beta", &[k])?, "beta")?;
        Ok(BetaPosterior { alpha, beta })
    })
}

pub fn linear_to_bytes<'py>(
    py: Python<'py>,
    arms: &ArmIndex,
    post: &GaussianPosterior,
    seeds: &SeedStream,
) -> PyResult<Bound<'py, PyBytes>> {
    let params = vec![
        ("default_sigma", Value::F64(post.default_sigma)),
        ("obs_noise", Value::F64(post.obs_noise)),
    ];
    let k = vec![arms.len()];
    let arrays = vec![
        Array::new("mu", k.clone(), Source::F8(&post.mu)),
        Array::new("sigma", k.clone(), Source::F8(&post.sigma)),
        Array::new("counts", k.clone(), Source::U64(&post.counts)),
        Array::new("sum_rewards", k, Source::F8(&post.sum_rewards)),
    ];
    thompson_to_bytes(py, "LinearBandit", arms, params, seeds, arrays)
}

pub fn linear_from_bytes(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
) -> PyResult<(ArmIndex, GaussianPosterior, SeedStream)> {
    thompson_from_bytes(py, data, "LinearBandit", |doc, k| {
        let default_sigma = finite_positive(doc, "default_sigma")?;
        let obs_noise = finite_positive(doc, "obs_noise")?;
        let mut post = GaussianPosterior::new(default_sigma, obs_noise).map_err(invalid)?;
        post.mu = floats(doc, "mu", &[k])?;
        post.sigma = positive(floats(doc, "sigma", &[k])?, "sigma")?;
        post.counts = counts(doc, "counts", &[k])?;
        post.sum_rewards = floats(doc, "sum_rewards", &[k])?;
        Ok(post)
    })
}

pub fn logistic_to_bytes<'py>(
    py: Python<'py>,
    arms: &ArmIndex,
    state: &LogisticState,
    seeds: &SeedStream,
) -> PyResult<Bound<'py, PyBytes>> {
    let k = state.k();
    let arrays = vec![
        Array::new("mu", vec![k], Source::F8(&state.mu)),
        Array::new("sigma_inv", vec![k, k], Source::F8(&state.sigma_inv)),
    ];
    thompson_to_bytes(py, "LogisticBandit", arms, vec![], seeds, arrays)
}

pub fn logistic_from_bytes(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
) -> PyResult<(ArmIndex, LogisticState, SeedStream)> {
    thompson_from_bytes(py, data, "LogisticBandit", |doc, k| {
        let mu = floats(doc, "mu", &[k])?;
        let sigma_inv = floats(doc, "sigma_inv", &[k, k])?;
        // The constructor's checks (finite, symmetric within its tolerance).
        LogisticState::new(mu, sigma_inv).map_err(invalid)
    })
}

// --- LinUCB / LinTS ---

pub fn contextual_to_bytes<'py>(
    py: Python<'py>,
    class: &str,
    labels: &[Py<PyAny>],
    policy: &mut LinearPolicy,
) -> PyResult<Bound<'py, PyBytes>> {
    py.detach(|| policy.settle_grams());
    let policy = &*policy;
    let cfg = policy.config();
    let (d, k) = (cfg.n_features, policy.n_arms());
    let param = match policy.scoring() {
        Scoring::Ucb { alpha } => ("alpha", alpha),
        Scoring::Ts { v } => ("v", v),
    };
    let params = vec![
        ("n_features", Value::from(d as u64)),
        (param.0, Value::F64(param.1)),
        ("l2_lambda", Value::F64(cfg.l2_lambda)),
        ("window_size", Value::from(cfg.window_size as u64)),
        ("gamma", Value::F64(cfg.gamma)),
        ("refactor_every", Value::from(cfg.refactor_every)),
    ];
    let fields = common_fields(
        labels_out(labels.iter().map(|l| l.bind(py).clone()))?,
        params,
        rng_events(policy.seed(), policy.events()),
    );
    let arms: Vec<&ArmState> = (0..k).map(|i| policy.arm(i)).collect();
    let grams: Vec<_> = arms.iter().map(|a| a.gram_packed()).collect();
    let windows: Vec<_> = arms.iter().map(|a| a.window()).collect();
    let scales: Vec<f64> = arms.iter().map(|a| a.a_inv_packed().1).collect();
    let per_arm = |f: &dyn Fn(&ArmState) -> u64| arms.iter().map(|a| f(a)).collect::<Vec<u64>>();
    let pulls = per_arm(&|a| a.pulls());
    let since = per_arm(&|a| a.since_refactor());
    let refactors = per_arm(&|a| a.refactors());
    let lens = per_arm(&|a| a.window_len() as u64);
    let n_hist = lens.iter().sum::<u64>() as usize;
    let arrays = vec![
        Array::new(
            "gram",
            vec![k, packed_len(d)],
            Source::Concat(grams.iter().map(|g| Source::F8(g)).collect()),
        ),
        Array {
            name: "a_inv",
            shape: vec![k, packed_len(d)],
            data: Source::Concat(
                arms.iter()
                    .map(|a| Source::F8(a.a_inv_packed().0))
                    .collect(),
            ),
        },
        Array::new("a_inv_scale", vec![k], Source::F8(&scales)),
        Array::new(
            "b",
            vec![k, d],
            Source::Concat(arms.iter().map(|a| Source::F8(a.b())).collect()),
        ),
        Array::new(
            "theta",
            vec![k, d],
            Source::Concat(arms.iter().map(|a| Source::F8(a.theta())).collect()),
        ),
        Array::new("pulls", vec![k], Source::U64(&pulls)),
        Array::new("since_refactor", vec![k], Source::U64(&since)),
        Array::new("refactors", vec![k], Source::U64(&refactors)),
        Array::new("window_len", vec![k], Source::U64(&lens)),
        Array::new(
            "history_x",
            vec![n_hist, d],
            Source::Concat(windows.iter().map(|w| Source::F8(&w.0)).collect()),
        ),
        Array::new(
            "history_r",
            vec![n_hist],
            Source::Concat(windows.iter().map(|w| Source::F8(&w.1)).collect()),
        ),
    ];
    write(py, class, fields, arrays)
}

/// The policy of a file (labels come back separately), with the constructor's checks on the
/// settings and the arms' states checked against them.
pub fn contextual_from_bytes(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    class: &str,
) -> PyResult<(Vec<Py<PyAny>>, LinearPolicy)> {
    let bytes = input_bytes(data)?;
    let raw = bytes.as_bytes();
    let big = raw.len() >= DETACH_MIN_BYTES;
    // The CRC is checked after the arrays are read (their big blocks are checksummed while
    // copied), before anything built is used; every failure first checks it, so a damaged file
    // is reported as such.
    let doc = if big {
        py.detach(|| format::decode_unverified(raw))
    } else {
        format::decode_unverified(raw)
    }
    .map_err(|e| format_error(py, e.0))?;
    let crc_first = |err: PyErr| match doc.verify(&[]) {
        Ok(()) => err,
        Err(e) => format_error(py, e.0),
    };
    if doc.class != class {
        return Err(crc_first(format_error(
            py,
            format!("the file holds a '{}', not a '{class}'", doc.class),
        )));
    }
    let labels = to_py(py, labels_in(py, &doc)).map_err(crc_first)?;
    let k = labels.len();
    let ucb = class == "LinUCB";
    let build = |hashed: &mut Vec<(&str, format::Crc)>| -> R<LinearPolicy> {
        let n_features = param_u64(&doc, "n_features")?;
        let param = param_f64(&doc, if ucb { "alpha" } else { "v" })?;
        let cfg = ArmConfig {
            n_features: usize::try_from(n_features).map_err(invalid)?,
            l2_lambda: param_f64(&doc, "l2_lambda")?,
            window_size: usize::try_from(param_u64(&doc, "window_size")?).map_err(invalid)?,
            gamma: param_f64(&doc, "gamma")?,
            refactor_every: param_u64(&doc, "refactor_every")?,
        };
        let scoring = if ucb {
            Scoring::Ucb { alpha: param }
        } else {
            Scoring::Ts { v: param }
        };
        let (seed, events) = rng_in(&doc)?.policy_stream();
        let mut policy = LinearPolicy::new(cfg, scoring, 0, seed).map_err(invalid)?;
        policy.set_events(events);
        let d = cfg.n_features;
        let grams = packed_matrices(&doc, "gram", k, d, hashed)?;
        let inverses = packed_matrices(&doc, "a_inv", k, d, hashed)?;
        let scales = positive(floats(&doc, "a_inv_scale", &[k])?, "a_inv_scale")?;
        let b = floats(&doc, "b", &[k, d])?;
        let theta = floats(&doc, "theta", &[k, d])?;
        let pulls = counts(&doc, "pulls", &[k])?;
        let since = counts(&doc, "since_refactor", &[k])?;
        let refactors = counts(&doc, "refactors", &[k])?;
        let lens = counts(&doc, "window_len", &[k])?;
        let window = cfg.window_size as u64;
        if lens.iter().zip(&pulls).any(|(&n, &p)| n > window || n > p) {
            return Err(invalid("window_len exceeds the window or the pulls"));
        }
        let n_hist = lens.iter().sum::<u64>() as usize;
        let hist_x = floats(&doc, "history_x", &[n_hist, d])?;
        let hist_r = floats(&doc, "history_r", &[n_hist])?;
        let mut arms = Vec::with_capacity(k);
        let mut start = 0;
        for (i, (gram, a_inv)) in grams.into_iter().zip(inverses).enumerate() {
            let n = lens[i] as usize;
            let snap = ArmSnapshot {
                gram_packed: gram,
                b: b[i * d..(i + 1) * d].to_vec(),
                a_inv_packed: a_inv,
                a_inv_scale: scales[i],
                theta: theta[i * d..(i + 1) * d].to_vec(),
                hist_x: hist_x[start * d..(start + n) * d].to_vec(),
                hist_r: hist_r[start..start + n].to_vec(),
                pulls: pulls[i],
                since_refactor: since[i],
                refactors: refactors[i],
            };
            start += n;
            // packed_matrices checked both matrices finite.
            let arm = ArmState::from_snapshot_finite_matrices(cfg, snap)
                .ok_or_else(|| invalid("inconsistent arm state"))?;
            arms.push(arm);
        }
        policy.set_arms(arms).map_err(invalid)?;
        Ok(policy)
    };
    let build_and_verify = || {
        let mut hashed = Vec::new();
        let built = build(&mut hashed);
        doc.verify(&hashed).map_err(|e| e.0).and(built)
    };
    let policy = if big {
        py.detach(build_and_verify)
    } else {
        build_and_verify()
    };
    let policy = to_py(py, policy)?;
    Ok((labels.into_iter().map(Bound::unbind).collect(), policy))
}

/// `(type(obj).from_bytes, (obj.to_bytes(),))`: pickle goes through the format.
pub fn reduce<'py>(
    obj: &Bound<'py, PyAny>,
    bytes: Bound<'py, PyBytes>,
) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    let from_bytes = obj.get_type().getattr("from_bytes")?;
    pyo3::types::PyTuple::new(
        obj.py(),
        [
            from_bytes,
            pyo3::types::PyTuple::new(obj.py(), [bytes])?.into_any(),
        ],
    )
}

/// Decodes a file with the Rust container and encodes the same document again (for the tests
/// that hold the Rust and Python codecs to the same bytes).
#[pyfunction]
pub fn _format_reencode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = input_bytes(data)?;
    let doc = format::decode(bytes.as_bytes()).map_err(|e| format_error(py, e.0))?;
    enum Owned {
        F(Vec<f64>),
        I(Vec<i64>),
    }
    let owned: Vec<Owned> = doc
        .arrays
        .iter()
        .map(|a| match a.dtype {
            DType::F8 => Owned::F(a.f64s().collect()),
            DType::I8 => Owned::I(a.i64s().collect()),
        })
        .collect();
    let arrays = doc
        .arrays
        .iter()
        .zip(&owned)
        .map(|(a, o)| Array {
            name: &a.name,
            shape: a.shape.clone(),
            data: match o {
                Owned::F(v) => Source::F8(v),
                Owned::I(v) => Source::I8(v),
            },
        })
        .collect();
    let fields = doc
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    write(py, &doc.class, fields, arrays)
}
