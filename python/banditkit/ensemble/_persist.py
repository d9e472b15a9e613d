"""BootstrapRidge in banditkit's file format (docs/format.md, class "BootstrapRidge"): the
settings, the fitted sizes and the members' coefficients. The container holds float64 and int64
arrays only, so float32 coefficients are written widened to float64 (exactly) and narrowed
back on load."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .._errors import FormatError
from .._version import __version__
from ..python import _format
from ..python._persist import array, decode, param


def _random_state_out(rs: object) -> int | None:
    # A RandomState object is not data: only an int seed (or None) is saved.
    return int(rs) if isinstance(rs, numbers.Integral) else None


def ridge_to_bytes(model: Any) -> bytes:
    names = getattr(model, "feature_names_in_", None)
    params = {
        "n_estimators": int(model.n_estimators),
        "alpha": float(model.alpha),
        "fit_intercept": bool(model.fit_intercept),
        "max_samples": model.max_samples
        if isinstance(model.max_samples, int)
        else float(model.max_samples),
        "random_state": _random_state_out(model.random_state),
        "sampling": str(model.sampling),
        "dtype": str(model.dtype),
        "n_jobs": None if model.n_jobs is None else int(model.n_jobs),
    }
    fields = {
        "writer": {"banditkit": __version__, "backend": "python"},
        "params": params,
        "fitted": {
            "n_features_in": int(model.n_features_in_),
            "n_draws": int(model.n_draws_),
            "intercept_mean": float(model.intercept_mean_),
            "feature_names": None if names is None else [str(s) for s in names],
        },
    }
    arrays = [
        ("coef", np.asarray(model.coef_, dtype=np.float64)),
        ("intercept", model.intercept_),
        ("coef_mean", model.coef_mean_),
    ]
    if getattr(model, "seeds_", None) is not None:
        arrays.append(("seeds", model.seeds_.astype(np.int64)))
    return _format.encode("BootstrapRidge", fields, arrays)


def ridge_from_bytes(cls: type, data: bytes) -> Any:
    doc = decode(data, cls)
    p = doc.fields.get("params")
    fitted = doc.fields.get("fitted")
    if not isinstance(p, dict) or not isinstance(fitted, dict):
        raise FormatError("invalid banditkit file: no params or fitted sizes")
    n_estimators = param(doc, "n_estimators", int)
    dtype = param(doc, "dtype", str)
    settings = {
        "n_estimators": n_estimators,
        "alpha": param(doc, "alpha", float),
        "fit_intercept": param(doc, "fit_intercept", bool),
        "max_samples": p.get("max_samples"),
        "random_state": p.get("random_state"),
        "sampling": param(doc, "sampling", str),
        "dtype": dtype,
        "n_jobs": p.get("n_jobs"),
    }
    model = cls(**settings)
    try:
        model._validate_params()
    except (ValueError, TypeError) as exc:
        raise FormatError(f"invalid banditkit file: bad settings ({exc})") from None
    n_features = fitted.get("n_features_in")
    n_draws = fitted.get("n_draws")
    intercept_mean = fitted.get("intercept_mean")
    ok = (
        isinstance(n_features, int) and n_features >= 1
        and isinstance(n_draws, int) and n_draws >= 1
        and isinstance(intercept_mean, float) and math.isfinite(intercept_mean)
    )  # fmt: skip
    if not ok:
        raise FormatError("invalid banditkit file: bad fitted sizes")
    coef = array(doc, "coef", (n_estimators, n_features))
    model.coef_ = coef.astype(dtype)
    if dtype == "float32" and not np.array_equal(model.coef_, coef):
        raise FormatError("invalid banditkit file: coef does not fit float32")
    model.intercept_ = array(doc, "intercept", (n_estimators,))
    model.coef_mean_ = array(doc, "coef_mean", (n_features,))
    model.intercept_mean_ = intercept_mean
    model.n_features_in_ = n_features
    model.n_draws_ = n_draws
    names = fitted.get("feature_names")
    if names is not None:
        if not (
            isinstance(names, list)
            and len(names) == n_features
            and all(isinstance(s, str) for s in names)
        ):
            raise FormatError("invalid banditkit file: bad feature names")
        model.feature_names_in_ = np.array(names, dtype=object)
    if "seeds" in doc.arrays:
        seeds = array(doc, "seeds", (n_estimators,), "i8")
        if np.any(seeds >= 2**32):
            raise FormatError("invalid banditkit file: seeds must be 32-bit")
        model.seeds_ = seeds.astype(np.uint32)
    return model
