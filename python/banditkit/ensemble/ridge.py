"""`BootstrapRidge`: a bagged ridge regressor (scikit-learn API) fitted by banditkit's kernel.

`sampling="sklearn"` draws the rows scikit-learn's `BaggingRegressor(Ridge(alpha),
bootstrap=True, max_features=1.0)` draws (checked against scikit-learn 1.9.1: the member seeds
are `RandomState(random_state).randint(2**31 - 1, size=n_estimators)`; member i's rows are
`RandomState(seed_i).randint(0, n, n_draws)`, or `.choice(n, n_draws, p=w / w.sum())` with
sample weights; Ridge is fitted with the row counts as sample weights), so coefficients equal
scikit-learn's to rounding. `sampling="fast"` uses banditkit's own counter-based streams.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import _backend
from . import _blocks

MAX_INT = np.iinfo(np.int32).max
# Member predictions held at once by the block-wise predictors (float64 values).
BLOCK_VALUES = 1 << 22


def n_bootstrap_draws(n: int, max_samples: float | int, sample_weight: np.ndarray | None) -> int:
    """Rows drawn per member, as scikit-learn counts them: an int as is, a float times the
    number of rows (or times the sum of the sample weights), at least 1."""
    if isinstance(max_samples, numbers.Integral):
        return int(max_samples)
    total = n if sample_weight is None else float(sample_weight.sum())
    return max(int(max_samples * total), 1)


def _threads(n_jobs: int | None) -> int | None:
    """Rayon threads for joblib's `n_jobs`: None and -1 all cores, -2 all but one, ..."""
    if n_jobs is None or n_jobs == -1:
        return None
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + int(n_jobs))
    return int(n_jobs)


class BootstrapRidge(RegressorMixin, BaseEstimator):
    """`n_estimators` ridge regressions, each on a bootstrap sample of the rows.

    Attributes after `fit`: `coef_` (n_estimators, n_features) in `dtype`, `intercept_`
    (n_estimators,), `coef_mean_` and `intercept_mean_` (the mean member, float64, which gives
    `predict`), `n_features_in_`, `n_draws_` (rows drawn per member), `seeds_` (sklearn
    sampling: each member's seed, as `BaggingRegressor._seeds`).

    `n_jobs`: by default one kernel call fits the members on that many Rayon threads (None and
    -1: every core). Under a joblib process or cluster backend (`joblib.parallel_config(
    backend="loky" | "ray" | ...)`) the members are fitted in blocks, `n_jobs` of them at a time
    (None: every worker of the backend); the result is bit for bit the same either way.
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "fit_intercept": ["boolean"],
        "max_samples": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Real, 0, 1, closed="right"),
        ],
        "random_state": ["random_state"],
        "sampling": [StrOptions({"sklearn", "fast"})],
        "dtype": [StrOptions({"float32", "float64"})],
        "n_jobs": [Interval(numbers.Integral, None, None, closed="neither"), None],
    }

    def __init__(
        self,
        n_estimators: int = 1000,
        alpha: float = 1.0,
        fit_intercept: bool = True,
        max_samples: float | int = 1.0,
        random_state: int | np.random.RandomState | None = None,
        sampling: str = "sklearn",
        dtype: str = "float32",
        n_jobs: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_samples = max_samples
        self.random_state = random_state
        self.sampling = sampling
        self.dtype = dtype
        self.n_jobs = n_jobs

    # --- fitting ---

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BootstrapRidge:
        """Fit every member. On any error the estimator is left as it was."""
        before = dict(self.__dict__)
        try:
            return self._fit(X, y, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit(self, X: Any, y: Any, sample_weight: Any) -> BootstrapRidge:
        self._validate_params()
        if self.n_jobs == 0:
            raise ValueError("n_jobs == 0 has no meaning; use None, -1 or a positive count")
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, reset=True)
        n = X.shape[0]
        cdf = None
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            if np.any(sample_weight < 0) or not sample_weight.sum() > 0:
                raise ValueError("sample_weight must be non-negative with a positive sum")
            p = sample_weight / np.sum(sample_weight)
            cdf = np.cumsum(p)
            cdf /= cdf[-1]
        n_draws = n_bootstrap_draws(n, self.max_samples, sample_weight)
        rng = check_random_state(self.random_state)
        seeds = None
        seed = 0
        if self.sampling == "sklearn":
            seeds = rng.randint(MAX_INT, size=self.n_estimators).astype(np.uint32)
        elif isinstance(self.random_state, numbers.Integral):
            seed = int(self.random_state) % (1 << 64)
        else:
            seed = int(rng.randint(0, 1 << 63, dtype=np.int64))
        X = np.ascontiguousarray(X)
        y = np.ascontiguousarray(y, dtype=np.float64)
        distributed, config_jobs = _blocks.distributed_backend()
        if distributed:
            pb = _blocks.Problem(
                _backend.MODULE.__name__,
                X,
                y,
                float(self.alpha),
                bool(self.fit_intercept),
                self.sampling,
                seed,
                n_draws,
                cdf,
                self.dtype,
            )
            # None: every worker the backend has, as None means every core for a local fit.
            n_jobs = self.n_jobs if self.n_jobs is not None else (config_jobs or -1)
            fitted = _blocks.fit_in_blocks(pb, int(self.n_estimators), seeds, n_jobs)
        else:
            fitted = _backend.MODULE.ridge_ensemble_fit(
                X,
                y,
                float(self.alpha),
                bool(self.fit_intercept),
                int(self.n_estimators),
                self.sampling,
                seed,
                seeds,
                n_draws,
                cdf,
                self.dtype,
                _threads(self.n_jobs),
            )
        coef, intercept, coef_mean, intercept_mean = fitted
        self.coef_ = coef
        self.intercept_ = intercept
        self.coef_mean_ = coef_mean
        self.intercept_mean_ = float(intercept_mean)
        self.n_draws_ = n_draws
        if seeds is not None:
            self.seeds_ = seeds
        else:
            self.__dict__.pop("seeds_", None)
        return self

    # --- prediction ---

    def _rows(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=np.float64, reset=False)

    def predict(self, X: Any) -> np.ndarray:
        """The ensemble's mean prediction (the mean member's, float64)."""
        X = self._rows(X)
        return X @ self.coef_mean_ + self.intercept_mean_

    def _ensemble_blocks(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Every member's predictions into `out` (rows, members), members in blocks."""
        m = self.coef_.shape[0]
        step = max(1, BLOCK_VALUES // max(1, X.shape[1]))
        for start in range(0, m, step):
            block = slice(start, min(m, start + step))
            out[:, block] = X @ self.coef_[block].astype(np.float64).T
            out[:, block] += self.intercept_[block]
        return out

    def predict_ensemble(self, X: Any) -> np.ndarray:
        """All members' predictions, (n_rows, n_estimators) float64, computed in blocks of
        members so that temporaries stay bounded."""
        X = self._rows(X)
        out = np.empty((X.shape[0], self.coef_.shape[0]))
        return self._ensemble_blocks(X, out)

    def predict_quantiles(self, X: Any, q: Any) -> np.ndarray:
        """Quantiles `q` (in [0, 1]) of the members' predictions per row: (n_rows, len(q)), or
        (n_rows,) for a scalar `q` (NumPy's linear interpolation, as `np.percentile`). Rows are
        taken in blocks so that at most about 32 MB of member predictions exist at once."""
        X = self._rows(X)
        qs = np.asarray(q, dtype=np.float64)
        if qs.ndim > 1 or not np.all((qs >= 0) & (qs <= 1)):
            raise ValueError(f"q must be a number or a 1-d array in [0, 1], got {q!r}")
        m = self.coef_.shape[0]
        rows = max(1, BLOCK_VALUES // m)
        out = np.empty((X.shape[0], qs.size))
        buf = np.empty((min(rows, X.shape[0]), m))
        for start in range(0, X.shape[0], rows):
            part = X[start : start + rows]
            preds = self._ensemble_blocks(part, buf[: part.shape[0]])
            out[start : start + part.shape[0]] = np.quantile(preds, qs.ravel(), axis=1).T
        return out[:, 0] if qs.ndim == 0 else out

    def predict_interval(
        self, X: Any, level: float = 0.95
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, lower, upper): the mean prediction and the central `level` interval of the
        members' predictions (percentiles 2.5 and 97.5 for 0.95)."""
        if not (isinstance(level, numbers.Real) and 0 < level < 1):
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        bounds = self.predict_quantiles(X, [(1 - level) / 2, (1 + level) / 2])
        return self.predict(X), bounds[:, 0], bounds[:, 1]

    # --- saving (docs/format.md) ---

    def to_bytes(self) -> bytes:
        """The fitted ensemble in banditkit's versioned format."""
        from ._persist import ridge_to_bytes

        check_is_fitted(self)
        return ridge_to_bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> BootstrapRidge:
        from ._persist import ridge_from_bytes

        return ridge_from_bytes(cls, data)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
