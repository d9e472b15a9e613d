//! Bindings of the learners (docs/learners.md).
pub mod context_tree;
pub mod doubly_robust;
pub mod offset_tree;
