"""Learners from logged or live bandit feedback (docs/learners.md), NumPy reference."""
