"""`banditkit.python`: the pure-NumPy reference backend, same API as `banditkit_rs`.

Readable and vectorised rather than fast: every Rust kernel is tested against its namesake here.
Objects may be shared between threads: every public method holds a per-object lock (`_sync.py`).
Inputs follow docs/validation.md (`_validate.py`).
"""

from __future__ import annotations

from .._errors import FormatError
from .contextual import LinTS, LinUCB
from .ensemble import ridge_bootstrap_counts, ridge_ensemble_fit
from .exact import (
    MVN_TOLERANCE,
    prob_best_beta,
    prob_best_gaussian,
    prob_best_gaussian_rows,
    prob_best_mvn,
)
from .learners import ContextTree, DoublyRobust, OffsetTree
from .linear import LinearBandit
from .logistic import LogisticBandit
from .montecarlo import apply_aggressive, win_counts_beta, win_counts_gaussian, win_counts_mvn
from .ope import bootstrap_means, bootstrap_self_normalised
from .tspar import TSPar

__all__ = [
    "DoublyRobust",
    "ContextTree",
    "FormatError",
    "MVN_TOLERANCE",
    "LinTS",
    "LinUCB",
    "LinearBandit",
    "LogisticBandit",
    "OffsetTree",
    "TSPar",
    "apply_aggressive",
    "bootstrap_means",
    "bootstrap_self_normalised",
    "prob_best_beta",
    "prob_best_gaussian",
    "prob_best_gaussian_rows",
    "prob_best_mvn",
    "ridge_bootstrap_counts",
    "ridge_ensemble_fit",
    "win_counts_beta",
    "win_counts_gaussian",
    "win_counts_mvn",
]
