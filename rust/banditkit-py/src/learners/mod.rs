//! Bindings of the learners (docs/learners.md).
pub mod doubly_robust;
pub mod offset_tree;
