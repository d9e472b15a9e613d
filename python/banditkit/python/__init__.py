"""`banditkit.python`: the pure-NumPy reference backend, same API as `banditkit_rs`.

Readable and vectorised rather than fast: every Rust kernel is tested against its namesake here.
"""

from __future__ import annotations

from .linear import LinearBandit
from .montecarlo import apply_aggressive, win_counts_beta, win_counts_gaussian, win_counts_mvn
from .tspar import TSPar

__all__ = [
    "LinearBandit",
    "TSPar",
    "apply_aggressive",
    "win_counts_beta",
    "win_counts_gaussian",
    "win_counts_mvn",
]

# Modules written in parallel by other engineers: exported once they exist.
try:
    from .logistic import LogisticBandit  # noqa: F401

    __all__ += ["LogisticBandit"]
except ImportError:
    pass

try:
    from .exact import prob_best_beta, prob_best_gaussian, prob_best_mvn  # noqa: F401

    __all__ += ["prob_best_beta", "prob_best_gaussian", "prob_best_mvn"]
except ImportError:
    pass

try:
    from .contextual import LinTS, LinUCB  # noqa: F401

    __all__ += ["LinTS", "LinUCB"]
except ImportError:
    pass
