//! Learners for logged and live contextual feedback.
pub mod context_tree;
