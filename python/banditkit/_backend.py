"""Backend selection, in one place: Rust (`banditkit_rs`) unless `BANDITKIT_BACKEND=python`.

If the extension cannot be imported, fall back to the NumPy reference with a RuntimeWarning
(or raise, when `BANDITKIT_BACKEND=rust` asked for Rust explicitly).
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

ENV_VAR = "BANDITKIT_BACKEND"
CHOICES = ("rust", "python")


def _load() -> tuple[str, ModuleType]:
    wanted = os.environ.get(ENV_VAR, "").strip().lower()
    if wanted not in ("",) + CHOICES:
        raise ImportError(f"{ENV_VAR} must be 'rust' or 'python', got {wanted!r}")
    if wanted == "python":
        return "python", importlib.import_module("banditkit.python")
    try:
        return "rust", importlib.import_module("banditkit_rs")
    except ImportError as exc:
        if wanted == "rust":
            msg = f"{ENV_VAR}=rust but the Rust extension failed to load: {exc}"
            raise ImportError(msg) from exc
        warnings.warn(
            f"banditkit: the Rust extension failed to load ({exc}); using the pure-Python backend",
            RuntimeWarning,
            stacklevel=3,
        )
        return "python", importlib.import_module("banditkit.python")


NAME, MODULE = _load()


def backend() -> str:
    """The backend in use: "rust" or "python"."""
    return NAME
