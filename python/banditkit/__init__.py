"""banditkit: fast, trustworthy bandits. A Rust core with a NumPy reference backend.

`from banditkit import LinearBandit, TSPar, LogisticBandit, ...` gives the Rust classes unless
`BANDITKIT_BACKEND=python` (or the extension is missing, with a RuntimeWarning);
`banditkit.backend()` says which. `banditkit.python` is always the pure-Python reference.
"""

from __future__ import annotations

from banditkit._backend import MODULE as _impl
from banditkit._backend import backend
from banditkit._errors import FormatError
from banditkit._saving import dumps, load, loads, save
from banditkit._version import __version__


def __getattr__(name: str) -> object:
    # The ensembles need scikit-learn (the `ensemble` extra): imported on first use only.
    if name in ("BootstrapRidge", "BootstrapTS"):
        from banditkit import ensemble

        return getattr(ensemble, name)
    raise AttributeError(f"module 'banditkit' has no attribute {name!r}")


# Both backends define every name below (tests/test_backend.py checks it).
LinearBandit = _impl.LinearBandit
TSPar = _impl.TSPar
LogisticBandit = _impl.LogisticBandit
LinUCB = _impl.LinUCB
LinTS = _impl.LinTS
DoublyRobust = _impl.DoublyRobust
OffsetTree = _impl.OffsetTree
ContextTree = _impl.ContextTree
prob_best_gaussian = _impl.prob_best_gaussian
prob_best_gaussian_rows = _impl.prob_best_gaussian_rows
prob_best_beta = _impl.prob_best_beta
prob_best_mvn = _impl.prob_best_mvn

__all__ = [
    "FormatError",
    "__version__",
    "backend",
    "dumps",
    "load",
    "loads",
    "save",
    "LinearBandit",
    "TSPar",
    "LogisticBandit",
    "LinUCB",
    "LinTS",
    "DoublyRobust",
    "OffsetTree",
    "ContextTree",
    "prob_best_gaussian",
    "prob_best_gaussian_rows",
    "prob_best_beta",
    "prob_best_mvn",
    "BootstrapRidge",
    "BootstrapTS",
]
