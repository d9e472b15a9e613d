//! Bindings of the off-policy learners (issue 14); each module registers its own class.
pub mod offset_tree;
