//! Learners from logged or live bandit feedback (docs/learners.md).
pub mod doubly_robust;
