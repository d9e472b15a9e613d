//! Learners from logged or live bandit feedback (docs/learners.md): each learns a policy and
//! reports the exact probability with which it picks each arm.
pub mod context_tree;
pub mod doubly_robust;
pub mod offset_tree;
