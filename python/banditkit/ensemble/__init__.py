"""Bootstrap ensembles: `BootstrapRidge` (a scikit-learn regressor of thousands of bootstrap
ridge members, with intervals) and `BootstrapTS` (bootstrapped Thompson sampling).
Both run on the backend in use (`banditkit.backend()`): its `ridge_ensemble_fit` kernel.

`BootstrapRidge` needs scikit-learn (`pip install 'banditkit[ensemble]'`) and is imported on
first use, so that `BootstrapTS` (NumPy only) works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ts import BootstrapTS

if TYPE_CHECKING:
    from .ridge import BootstrapRidge

__all__ = ["BootstrapRidge", "BootstrapTS"]


def __getattr__(name: str) -> object:
    if name == "BootstrapRidge":
        try:
            from .ridge import BootstrapRidge
        except ModuleNotFoundError as exc:
            if exc.name is None or not exc.name.startswith("sklearn"):
                raise
            raise ModuleNotFoundError(
                "BootstrapRidge needs scikit-learn: pip install 'banditkit[ensemble]'",
                name=exc.name,
            ) from exc
        return BootstrapRidge
    raise AttributeError(f"module 'banditkit.ensemble' has no attribute {name!r}")
