//! Off-policy evaluation kernels. The estimators themselves are a few NumPy lines over the
//! logged events (`banditkit.ope`); what is worth a native kernel is their bootstrap interval,
//! which touches every event once per resample.
pub mod bootstrap;

pub use bootstrap::{bootstrap_means, bootstrap_self_normalised, CHUNK_RESAMPLES};
