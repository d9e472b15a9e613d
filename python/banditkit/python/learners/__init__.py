"""Off-policy learners of issue 14, NumPy reference (one module per learner)."""
