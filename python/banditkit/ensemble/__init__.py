"""Bootstrap ensembles: `BootstrapRidge` (a scikit-learn regressor of thousands of bootstrap
ridge members, with intervals) and `BootstrapTS` (bootstrapped Thompson sampling).
Both run on the backend in use (`banditkit.backend()`): its `ridge_ensemble_fit` kernel.
"""

from __future__ import annotations

from .ridge import BootstrapRidge
from .ts import BootstrapTS

__all__ = ["BootstrapRidge", "BootstrapTS"]
