//! Bindings of the learners in `banditkit_core::learners`.
pub mod context_tree;
