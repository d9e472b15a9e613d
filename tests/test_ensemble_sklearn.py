"""BootstrapRidge against scikit-learn's BaggingRegressor(Ridge): the same bootstrap rows and,
to rounding, the same coefficients, intercepts and predictions (docs/ensemble.md states the
tolerance: 1e-10 relative to the largest coefficient; observed about 1e-14). Also the
scikit-learn estimator contract: clone, Pipeline, GridSearchCV, check_estimator."""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.ensemble import BaggingRegressor  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import banditkit._backend  # noqa: E402
from banditkit.ensemble import BootstrapRidge  # noqa: E402

RTOL = 1e-10

# (n rows, p features, fit_intercept, max_samples, sample weights?)
CASES = [
    (20, 60, True, 1.0, False),  # dual form
    (40, 7, True, 1.0, False),  # primal form
    (25, 40, False, 1.0, False),
    (30, 50, True, 0.6, False),  # fewer rows per member
    (30, 6, True, 45, False),  # an integer max_samples above n
    (24, 40, True, 1.0, True),  # sample weights: weighted row draws
    (40, 5, False, 0.8, True),
]


@pytest.fixture(params=["rust", "python"])
def backend(request, monkeypatch):
    """Run BootstrapRidge's kernel on each backend."""
    from conftest import backend_module

    monkeypatch.setattr(banditkit._backend, "MODULE", backend_module(request.param))
    return request.param


def _data(n, p, seed, offset=3.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + offset
    y = X @ rng.normal(size=p) + rng.normal(size=n) + 10.0
    return X, y, rng.uniform(0.0, 2.0, size=n)


@pytest.mark.parametrize("case", CASES)
def test_coefficients_equal_sklearn_bagging(case, backend):
    n, p, fit_intercept, max_samples, weighted = case
    X, y, w = _data(n, p, seed=n * p)
    sw = w if weighted else None
    kw = dict(n_estimators=15, max_samples=max_samples, random_state=7)
    bag = BaggingRegressor(Ridge(alpha=0.8, fit_intercept=fit_intercept), **kw)
    bag.fit(X, y, sample_weight=sw)
    ours = BootstrapRidge(alpha=0.8, fit_intercept=fit_intercept, dtype="float64", **kw)
    ours.fit(X, y, sample_weight=sw)
    coef = np.array([e.coef_ for e in bag.estimators_])
    intercept = np.array([e.intercept_ for e in bag.estimators_])
    scale = np.abs(coef).max()
    np.testing.assert_allclose(ours.coef_, coef, rtol=0, atol=RTOL * scale)
    np.testing.assert_allclose(ours.intercept_, intercept, rtol=0, atol=RTOL * np.abs(y).max())
    np.testing.assert_allclose(ours.predict(X), bag.predict(X), rtol=RTOL)
    np.testing.assert_array_equal(ours.seeds_, bag._seeds)
    # the same rows: scikit-learn's drawn indices as counts
    counts = np.array([np.bincount(s, minlength=n) for s in bag.estimators_samples_])
    rows = banditkit._backend.MODULE.ridge_bootstrap_counts(
        n, 15, "sklearn", 0, ours.seeds_, ours.n_draws_, _cdf(sw)
    )
    np.testing.assert_array_equal(rows, counts)


def _cdf(sw):
    if sw is None:
        return None
    cdf = np.cumsum(sw / sw.sum())
    return cdf / cdf[-1]


def test_float32_storage_is_the_float64_fit_rounded():
    X, y, _ = _data(30, 80, seed=1)
    f32 = BootstrapRidge(n_estimators=20, random_state=3).fit(X, y)
    f64 = BootstrapRidge(n_estimators=20, random_state=3, dtype="float64").fit(X, y)
    assert f32.coef_.dtype == np.float32 and f64.coef_.dtype == np.float64
    np.testing.assert_array_equal(f32.coef_, f64.coef_.astype(np.float32))
    np.testing.assert_array_equal(f32.predict(X), f64.predict(X))  # the f64 mean model


def test_clone_pipeline_and_grid_search():
    X, y, _ = _data(40, 12, seed=2)
    est = BootstrapRidge(n_estimators=10, alpha=2.0, random_state=0)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "coef_")
    pipe = make_pipeline(StandardScaler(), BootstrapRidge(n_estimators=10, random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.5
    grid = GridSearchCV(
        BootstrapRidge(n_estimators=10, random_state=0), {"alpha": [0.1, 10.0]}, cv=3
    )
    grid.fit(X, y)
    assert grid.best_params_["alpha"] in (0.1, 10.0)
    assert grid.best_estimator_.coef_.shape == (10, 12)


def test_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    # Every check that applies (dense regression input). The one expected failure is
    # scikit-learn's own for BaggingRegressor: weights change the random rows drawn, so a
    # weighted fit cannot equal a fit on repeated rows bit for bit.
    xfail = {"check_sample_weight_equivalence_on_dense_data": "weights change the bootstrap draws"}
    check_estimator(BootstrapRidge(n_estimators=8, random_state=0), expected_failed_checks=xfail)
