//! banditkit-core: the numerical kernels behind banditkit, with no Python dependency.
//!
//! - [`rng`]: xoshiro256++ streams derived from (seed, chunk index); OS seeding.
//! - [`normal`], [`gamma`]: fast samplers (ziggurat normal, Marsaglia-Tsang gamma, Beta as a gamma ratio).
//! - [`montecarlo`]: deterministic chunked, rayon-parallel win counting.
//! - [`gaussian`], [`beta`]: the conjugate state of LinearBandit and TSPar.
//! - [`ope`]: the deterministic parallel bootstrap behind the off-policy estimators' intervals.
//! - [`learners`]: learners for logged and live contextual feedback (ContextTree).
pub mod beta;
pub mod contextual;
pub mod ensemble;
pub mod error;
pub mod exact;
pub mod format;
pub mod gamma;
pub mod gaussian;
pub mod learners;
pub mod linalg;
pub mod logistic;
pub mod montecarlo;
pub mod normal;
pub mod ope;
pub mod rng;

pub use error::{BanditError, Result};
