//! `LinearBandit`: Gaussian Thompson sampling, drop-in for orts' class (see spec/thompson.md).
use crate::arms::ArmIndex;
use crate::convert::{self, err, label, value_error, Method};
use crate::locked::Locked;
use crate::winprop::split_requested;
use banditkit_core::gaussian::{self, GaussianPosterior, RewardSummary};
use banditkit_core::montecarlo;
use banditkit_core::rng::{os_seed, SeedStream, Xoshiro256PlusPlus};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple, PyType};

#[pyclass(frozen, module = "banditkit_rs", name = "LinearBandit")]
pub struct LinearBandit {
    state: Locked<Inner>,
}

struct Inner {
    arms: ArmIndex,
    post: GaussianPosterior,
    seeds: SeedStream,
}

fn dict_of<'py, T: IntoPyObject<'py> + Copy>(
    py: Python<'py>,
    arms: &ArmIndex,
    values: &[T],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (i, v) in values.iter().enumerate() {
        d.set_item(arms.name(py, i), *v)?;
    }
    Ok(d)
}

/// A prior argument: None (empty) or a dict of name -> number.
fn prior_dict<'py>(
    py: Python<'py>,
    what: &str,
    p: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    match p.filter(|p| !p.is_none()) {
        None => Ok(PyDict::new(py)),
        Some(p) => match p.cast::<PyDict>() {
            Ok(d) => Ok(d.clone()),
            Err(_) => err(format!(
                "prior {what} must be a dict of name -> number, got {}",
                p.get_type().name()?
            )),
        },
    }
}

impl Inner {
    fn next_seed(&mut self, per_call: Option<u64>) -> u64 {
        per_call.unwrap_or_else(|| self.seeds.next_seed())
    }
}

impl LinearBandit {
    fn wrap(inner: Inner) -> Self {
        LinearBandit {
            state: Locked::new(inner),
        }
    }

    /// Win probabilities of the open arms (exact integration, GIL released).
    fn open_probabilities(py: Python<'_>, me: &Inner, open: &[usize]) -> Vec<f64> {
        let mu: Vec<f64> = open.iter().map(|&i| me.post.mu[i]).collect();
        let sigma: Vec<f64> = open.iter().map(|&i| me.post.sigma[i]).collect();
        py.detach(|| banditkit_core::exact::prob_best_gaussian(&mu, &sigma))
    }
}

#[pymethods]
impl LinearBandit {
    #[new]
    #[pyo3(signature = (mu=None, sigma=None, default_sigma=None, obs_noise=None, seed=None))]
    fn new(
        py: Python<'_>,
        mu: Option<&Bound<'_, PyAny>>,
        sigma: Option<&Bound<'_, PyAny>>,
        default_sigma: Option<&Bound<'_, PyAny>>,
        obs_noise: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let setting = |what: &str, v: Option<&Bound<'_, PyAny>>| match v {
            Some(v) => convert::number_setting(what, v),
            None => Ok(1.0),
        };
        let default_sigma = setting("default_sigma", default_sigma)?;
        let obs_noise = setting("obs_noise", obs_noise)?;
        let mut post = GaussianPosterior::new(default_sigma, obs_noise).map_err(value_error)?;
        let seed = convert::seed(seed)?.unwrap_or_else(os_seed);
        let mut arms = ArmIndex::new(py);
        // Prior arms: the keys of `mu`, then those of `sigma` not in `mu`. An arm with a prior mean
        // and no prior sd gets `default_sigma` (upstream fails there on the first update).
        let mu = prior_dict(py, "mean", mu)?;
        let sigma = prior_dict(py, "sigma", sigma)?;
        let mut priors = Vec::new();
        for key in mu.keys().iter().chain(
            sigma
                .keys()
                .iter()
                .filter(|k| !mu.contains(k).unwrap_or(true)),
        ) {
            let m: f64 = match mu.get_item(&key)? {
                Some(v) => convert::real("prior mean", &v)?,
                None => 0.0,
            };
            let s: f64 = match sigma.get_item(&key)? {
                Some(v) => convert::real("prior sigma", &v)?,
                None => default_sigma,
            };
            gaussian::check_prior(&label(&key), m, s).map_err(value_error)?;
            priors.push((key, m, s));
        }
        for (key, m, s) in priors {
            arms.push(&key)?;
            post.push_arm(m, s);
        }
        Ok(Self::wrap(Inner {
            arms,
            post,
            seeds: SeedStream::new(seed),
        }))
    }

    #[getter]
    fn mu<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let me = self.state.lock(py);
        dict_of(py, &me.arms, &me.post.mu)
    }

    #[getter]
    fn sigma<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let me = self.state.lock(py);
        dict_of(py, &me.arms, &me.post.sigma)
    }

    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let me = self.state.lock(py);
        dict_of(py, &me.arms, &me.post.counts)
    }

    #[getter]
    fn sum_rewards<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let me = self.state.lock(py);
        dict_of(py, &me.arms, &me.post.sum_rewards)
    }

    #[getter]
    fn default_sigma(&self, py: Python<'_>) -> f64 {
        self.state.lock(py).post.default_sigma
    }

    #[getter]
    fn obs_noise(&self, py: Python<'_>) -> f64 {
        self.state.lock(py).post.obs_noise
    }

    fn get_models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.state.lock(py).arms.to_list(py)
    }

    /// Conjugate update; `obs` maps arm -> a reward or a sequence of rewards. All-or-nothing.
    #[pyo3(signature = (obs, decay=None))]
    fn update(
        &self,
        py: Python<'_>,
        obs: &Bound<'_, PyAny>,
        decay: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let decay = match decay {
            Some(d) => convert::decay(convert::number_setting("decay", d)?)?,
            None => 0.0,
        };
        let items = convert::obs_items(obs)?;
        // Validate every entry before anything changes.
        let mut parsed = Vec::with_capacity(items.len());
        for (key, value) in &items {
            let (n, sum) = convert::reward_summary(key, value)?;
            if n > 0 {
                parsed.push((key, n, sum));
            }
        }
        let mut guard = self.state.lock(py);
        let me = &mut *guard;
        // New arms get indices past the end; they are added only once the update is accepted.
        let mut batch = Vec::with_capacity(parsed.len());
        let mut new_keys = Vec::new();
        for (key, n, sum) in &parsed {
            let arm = match me.arms.get(key)? {
                Some(i) => i,
                None => {
                    new_keys.push(*key);
                    me.arms.len() + new_keys.len() - 1
                }
            };
            batch.push(RewardSummary {
                arm,
                n: *n,
                sum: *sum,
            });
        }
        let mut post = me.post.clone();
        for _ in &new_keys {
            post.push_arm(0.0, post.default_sigma);
        }
        let known = me.arms.len();
        let arms = &me.arms;
        let name = |i: usize| {
            if i < known {
                label(arms.name(py, i))
            } else {
                label(new_keys[i - known])
            }
        };
        post.update(&batch, decay, &name).map_err(value_error)?;
        for key in new_keys {
            me.arms.push(key)?;
        }
        me.post = post;
        Ok(())
    }

    /// Probability that each requested arm has the highest mean (Monte Carlo or exact).
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
        let method = convert::method_or_mc(method)?;
        let per_call = convert::seed(seed)?;
        // Copy what the kernel needs; the lock is not held while it runs.
        let (req, mu, sigma, seed) = {
            let mut me = self.state.lock(py);
            let req = split_requested(py, &me.arms, action_list)?;
            let mu: Vec<f64> = req.observed.iter().map(|&i| me.post.mu[i]).collect();
            let sigma: Vec<f64> = req.observed.iter().map(|&i| me.post.sigma[i]).collect();
            let seed = if req.needs_kernel() {
                me.next_seed(per_call)
            } else {
                0
            };
            (req, mu, sigma, seed)
        };
        let probs = if req.needs_kernel() {
            Some(py.detach(|| match method {
                Method::MonteCarlo => {
                    let counts = montecarlo::win_counts_gaussian(&mu, &sigma, draws, seed);
                    montecarlo::apply_aggressive(&counts, g)
                }
                Method::Exact => {
                    montecarlo::sharpen(&banditkit_core::exact::prob_best_gaussian(&mu, &sigma), g)
                }
            }))
        } else {
            None
        };
        req.to_dict(py, probs.as_deref())
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
        let seed = me.next_seed(per_call);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut values = montecarlo::sample_gaussian(&me.post.mu, &me.post.sigma, &mut rng);
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
    /// order, unavailable arms 0 (`prob_best_gaussian` of the open arms' posteriors).
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

    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let me = self.state.lock(py);
        let out = PyDict::new(py);
        for i in 0..me.arms.len() {
            let d = PyDict::new(py);
            let count = me.post.counts[i];
            d.set_item("mu", me.post.mu[i])?;
            d.set_item("sigma", me.post.sigma[i])?;
            d.set_item("count", count)?;
            let mean = if count > 0 {
                me.post.sum_rewards[i] / count as f64
            } else {
                0.0
            };
            d.set_item("mean_reward", mean)?;
            out.set_item(me.arms.name(py, i), d)?;
        }
        Ok(out)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let me = self.state.lock(py);
        format!(
            "LinearBandit(arms={}, default_sigma={}, obs_noise={})",
            me.arms.len(),
            gaussian::fmt_num(me.post.default_sigma),
            gaussian::fmt_num(me.post.obs_noise)
        )
    }

    /// This model as a banditkit file (docs/format.md); labels must be str or int.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let me = self.state.lock(py);
        crate::persist::linear_to_bytes(py, &me.arms, &me.post, &me.seeds)
    }

    /// The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
    #[classmethod]
    fn from_bytes(cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (arms, post, seeds) = crate::persist::linear_from_bytes(cls.py(), data)?;
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
    m.add_class::<LinearBandit>()
}
