//! Off-policy learners (issue 14): each learns a policy from logged or live bandit feedback
//! and reports the exact probability with which it picks each arm.
pub mod offset_tree;
