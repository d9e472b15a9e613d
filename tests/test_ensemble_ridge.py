"""BootstrapRidge: the Rust kernel against its NumPy reference, thread-count independence,
intervals (coverage on a known linear model), block-wise prediction, bad input, saving."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import NotFittedError  # noqa: E402

import banditkit  # noqa: E402
import banditkit.python as py_bk  # noqa: E402
import banditkit_rs as rs_bk  # noqa: E402
from banditkit import FormatError  # noqa: E402
from banditkit.ensemble import BootstrapRidge, _blocks, ridge  # noqa: E402


def _data(n, p, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + offset
    y = X @ rng.normal(size=p) + rng.normal(size=n)
    return X, y


def _cdf(w):
    c = np.cumsum(w / w.sum())
    return c / c[-1]


@pytest.mark.parametrize("sampling", ["sklearn", "fast"])
@pytest.mark.parametrize("n,p,fit_intercept,weighted", [
    (15, 40, True, False), (15, 40, False, True), (40, 6, True, True), (40, 6, False, False),
])  # fmt: skip
def test_rust_kernel_equals_numpy_reference(sampling, n, p, fit_intercept, weighted):
    X, y = _data(n, p, seed=n + p, offset=50.0)  # large offsets: the shift must keep digits
    cdf = _cdf(np.random.default_rng(0).uniform(0, 1, n)) if weighted else None
    seeds = np.random.RandomState(5).randint(2**31 - 1, size=12).astype(np.uint32)
    args = (X, y, 0.7, fit_intercept, 12, sampling, 99, seeds, n, cdf, "float64")
    rs, ref = rs_bk.ridge_ensemble_fit(*args), py_bk.ridge_ensemble_fit(*args)
    scale = np.abs(ref[0]).max()
    np.testing.assert_allclose(rs[0], ref[0], rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(rs[1], ref[1], rtol=0, atol=1e-10 * np.abs(ref[1]).max() + 1e-12)
    np.testing.assert_allclose(rs[2], ref[2], rtol=0, atol=1e-10 * scale)
    counts = (n, 12, sampling, 99, seeds, n, cdf)
    np.testing.assert_array_equal(
        rs_bk.ridge_bootstrap_counts(*counts), py_bk.ridge_bootstrap_counts(*counts)
    )


@pytest.mark.parametrize("sampling", ["sklearn", "fast"])
def test_results_do_not_depend_on_the_thread_count(sampling):
    X, y = _data(30, 90, seed=4)
    fits = [
        BootstrapRidge(n_estimators=300, random_state=1, sampling=sampling, n_jobs=j).fit(X, y)
        for j in (1, 2, None)
    ]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.coef_, fits[0].coef_)
        np.testing.assert_array_equal(other.intercept_, fits[0].intercept_)
        np.testing.assert_array_equal(other.coef_mean_, fits[0].coef_mean_)


def test_fast_sampling_draws_rows_uniformly():
    # 2,000 members x 50 draws over 10 rows: each row's total count is Binomial(1e5, 0.1).
    counts = rs_bk.ridge_bootstrap_counts(10, 2000, "fast", 3, None, 50).sum(axis=0)
    sd = np.sqrt(1e5 * 0.1 * 0.9)
    assert np.all(np.abs(counts - 1e4) < 5 * sd), counts


def test_ensemble_quantiles_and_intervals_are_those_of_the_members(monkeypatch):
    X, y = _data(25, 30, seed=5)
    est = BootstrapRidge(n_estimators=50, random_state=2, dtype="float64").fit(X, y)
    monkeypatch.setattr(ridge, "BLOCK_VALUES", 7 * 30)  # several blocks of members and rows
    members = est.predict_ensemble(X[:9])
    direct = X[:9] @ est.coef_.T + est.intercept_
    np.testing.assert_allclose(members, direct, rtol=1e-12)
    np.testing.assert_allclose(members.mean(axis=1), est.predict(X[:9]), rtol=1e-10)
    q = est.predict_quantiles(X[:9], [0.1, 0.5])
    np.testing.assert_allclose(q, np.quantile(direct, [0.1, 0.5], axis=1).T, rtol=1e-12)
    mean, lo, hi = est.predict_interval(X[:9], level=0.9)
    np.testing.assert_allclose(lo, np.percentile(direct, 5, axis=1), rtol=1e-12)
    np.testing.assert_allclose(hi, np.percentile(direct, 95, axis=1), rtol=1e-12)
    assert np.all(lo <= mean) and np.all(mean <= hi)
    assert est.predict_quantiles(X[:2], 0.5).shape == (2,)


def test_interval_coverage_on_a_known_linear_model():
    # 400 data sets from y = 1 + X b + N(0, 1) (n = 80, p = 4); at one fixed x0 per data set
    # the 95% bootstrap interval of the mean prediction should cover the true mean 1 + x0 b.
    # Rule: the number of covering intervals is within 5 binomial standard errors of 95%
    # (sd = sqrt(400 * 0.95 * 0.05) = 4.4 intervals, so 358..402 of 400).
    rng = np.random.default_rng(2026)
    beta = np.array([1.0, -0.5, 0.25, 2.0])
    x0 = np.array([[0.5, -1.0, 1.0, 0.2]])
    covered, reps = 0, 400
    for r in range(reps):
        X = rng.normal(size=(80, 4))
        y = 1.0 + X @ beta + rng.normal(size=80)
        est = BootstrapRidge(n_estimators=300, alpha=1e-3, random_state=r, sampling="fast")
        _, lo, hi = est.fit(X, y).predict_interval(x0)
        covered += int(lo[0] <= 1.0 + x0[0] @ beta <= hi[0])
    sd = np.sqrt(reps * 0.95 * 0.05)
    assert abs(covered - 0.95 * reps) <= 5 * sd, covered


# --- bad input: scikit-learn's errors, nothing half-fitted ---


BAD_FITS = ["nan_x", "inf_x", "nan_y", "short_y", "alpha0", "alpha_neg", "n_est0", "sampling",
            "dtype", "neg_weight", "weights_len"]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_FITS)
def test_bad_fit_input_is_refused_and_changes_nothing(bad):
    X, y = _data(12, 5, seed=6)
    est = BootstrapRidge(n_estimators=5, random_state=0).fit(X, y)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(est).items()}
    Xb, yb, kw = X.copy(), y.copy(), {}
    match = None
    if bad == "nan_x":
        Xb[3, 2], match = np.nan, "Input X contains NaN"
    elif bad == "inf_x":
        Xb[0, 0], match = np.inf, "Input X contains infinity"
    elif bad == "nan_y":
        yb[1], match = np.nan, "Input y contains NaN"
    elif bad == "short_y":
        yb, match = y[:-1], "inconsistent numbers of samples"
    elif bad == "neg_weight":
        kw["sample_weight"], match = -np.ones(12), "non-negative"
    elif bad == "weights_len":
        kw["sample_weight"], match = np.ones(11), "sample_weight.shape"
    else:
        key, value = {
            "alpha0": ("alpha", 0.0), "alpha_neg": ("alpha", -1.0), "n_est0": ("n_estimators", 0),
            "sampling": ("sampling", "slow"), "dtype": ("dtype", "float16"),
        }[bad]  # fmt: skip
        est.set_params(**{key: value})
        before[key] = value
        match = f"The '{key}' parameter of BootstrapRidge must be"
    with pytest.raises(ValueError, match=match):
        est.fit(Xb, yb, **kw)
    assert set(vars(est)) == set(before)
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(getattr(est, k), v)
        else:
            assert getattr(est, k) == v


def test_a_failed_first_fit_leaves_the_estimator_unfitted():
    X, y = _data(12, 5, seed=7)
    X[0, 0] = np.nan
    est = BootstrapRidge(n_estimators=5)
    with pytest.raises(ValueError):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_") and not hasattr(est, "coef_")
    with pytest.raises(NotFittedError, match="This BootstrapRidge instance is not fitted yet"):
        est.predict(X)


def test_predict_checks_its_input():
    X, y = _data(12, 5, seed=8)
    est = BootstrapRidge(n_estimators=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features, but BootstrapRidge is expecting 5"):
        est.predict(X[:, :4])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict_interval(np.full((1, 5), np.nan))
    with pytest.raises(ValueError, match="level"):
        est.predict_interval(X, level=1.5)
    with pytest.raises(ValueError, match="q must be"):
        est.predict_quantiles(X, [0.5, 2.0])


# --- saving ---


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_load_round_trip(tmp_path, dtype):
    X, y = _data(20, 30, seed=9)
    est = BootstrapRidge(n_estimators=40, random_state=3, dtype=dtype).fit(X, y)
    path = tmp_path / "model.bk"
    banditkit.save(est, path)
    back = banditkit.load(path)
    assert type(back) is BootstrapRidge and back.get_params() == est.get_params()
    assert back.coef_.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.coef_, est.coef_)
    np.testing.assert_array_equal(back.seeds_, est.seeds_)
    np.testing.assert_array_equal(back.predict_interval(X)[1], est.predict_interval(X)[1])
    assert BootstrapRidge.from_bytes(est.to_bytes()).n_draws_ == est.n_draws_


def test_corrupted_or_foreign_files_are_refused():
    X, y = _data(20, 30, seed=10)
    data = bytearray(BootstrapRidge(n_estimators=4, random_state=0).fit(X, y).to_bytes())
    data[len(data) // 2] ^= 1
    with pytest.raises(FormatError, match="checksum"):
        banditkit.loads(bytes(data))
    other = banditkit.dumps(py_bk.TSPar(seed=1))
    with pytest.raises(FormatError, match="not a 'BootstrapRidge'"):
        BootstrapRidge.from_bytes(other)
    with pytest.raises(NotFittedError):
        BootstrapRidge().to_bytes()


@pytest.mark.parametrize("members,workers", [(1, 1), (64, 2), (300, 2), (640, 1), (1000, 7)])
def test_member_blocks_cover_the_members_on_kernel_block_boundaries(members, workers):
    sizes = _blocks.block_sizes(members, workers)
    assert sum(sizes) == members and min(sizes) >= 1
    assert all(s % _blocks.KERNEL_BLOCK == 0 for s in sizes[:-1])


@pytest.mark.parametrize("sampling", ["sklearn", "fast"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_fit_in_blocks_is_the_single_call_fit_bit_for_bit(bk, sampling, weighted):
    import joblib

    X, y = _data(20, 30, seed=6)
    cdf = _cdf(np.random.default_rng(1).uniform(0, 1, 20)) if weighted else None
    seeds = np.random.RandomState(8).randint(2**31 - 1, size=150).astype(np.uint32)
    whole = bk.ridge_ensemble_fit(X, y, 0.5, True, 150, sampling, 42, seeds, 20, cdf, "float32")
    pb = _blocks.Problem(bk.__name__, X, y, 0.5, True, sampling, 42, 20, cdf, "float32")
    with joblib.parallel_config(backend="threading"):
        blocks = _blocks.fit_in_blocks(pb, 150, seeds, n_jobs=2)  # blocks of 64, 64, 22
    for got, want in zip(blocks, whole, strict=True):
        np.testing.assert_array_equal(got, want)


def test_bootstrap_ridge_under_a_process_backend_fits_in_blocks_with_the_same_bits(monkeypatch):
    import joblib

    X, y = _data(40, 6, seed=7)
    real, calls = _blocks.fit_in_blocks, []

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(_blocks, "fit_in_blocks", spy)
    local = BootstrapRidge(n_estimators=200, random_state=4).fit(X, y)
    assert not calls  # by default: one kernel call on Rayon threads
    with joblib.parallel_config(backend="loky"):
        pooled = BootstrapRidge(n_estimators=200, random_state=4, n_jobs=2).fit(X, y)
    assert len(calls) == 1
    for name in ("coef_", "intercept_", "coef_mean_", "intercept_mean_"):
        np.testing.assert_array_equal(getattr(pooled, name), getattr(local, name), err_msg=name)
