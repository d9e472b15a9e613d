//! Linear contextual bandits (disjoint ridge model per arm): LinUCB and LinTS.
//!
//! - [`kernels`]: packed symmetric matrix kernels (one pass over `A^{-1}`), AVX2 when present.
//! - [`arm`]: per-arm state: exact Gram matrix, Sherman-Morrison updates, window downdates,
//!   forgetting, refactorisation.
//! - [`policy`]: scoring, choice, event-indexed random streams, parallel batch prediction.
pub mod arm;
pub mod kernels;
pub mod policy;

pub use arm::{ArmConfig, ArmSnapshot, ArmState};
pub use policy::{LinearPolicy, Scoring, ScoringView};

#[cfg(test)]
mod tests;
