"""banditkit: fast, trustworthy bandits. A Rust core with a NumPy reference backend.

`from banditkit import LinearBandit, TSPar, LogisticBandit, ...` gives the Rust classes unless
`BANDITKIT_BACKEND=python` (or the extension is missing, with a RuntimeWarning);
`banditkit.backend()` says which. `banditkit.python` is always the pure-Python reference.
"""

from __future__ import annotations

from banditkit._backend import MODULE as _impl
from banditkit._backend import backend

__version__ = "0.1.0"

_PUBLIC = (
    "LinearBandit",
    "TSPar",
    "LogisticBandit",
    "prob_best_gaussian",
    "prob_best_beta",
    "prob_best_mvn",
    "LinUCB",
    "LinTS",
)

__all__ = ["backend", "__version__"]
for _name in _PUBLIC:
    if hasattr(_impl, _name):
        globals()[_name] = getattr(_impl, _name)
        __all__.append(_name)
del _name
