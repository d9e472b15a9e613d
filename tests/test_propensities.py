"""`propensities()` and `select(..., return_propensity=True)` on the five policies: the exact
probability that `select` picks each arm (spec/ope.md, "Propensities from our own policies").

Statistical checks compare the exact probabilities with the selection frequencies of `select`
itself (fixed seeds, 5 standard errors); deterministic quantities are compared across backends.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import backend_module

ARMS = ["a", 7, "c"]


def five_se(p: np.ndarray, n: int) -> np.ndarray:
    return 5.0 * np.sqrt(p * (1.0 - p) / n)


def thompson(bk, cls: str):
    """A Thompson model whose three arms all win with probability well inside (0, 1)."""
    if cls == "LinearBandit":
        b = bk.LinearBandit(seed=3)
        b.update({"a": [0.1, 0.4, 0.2], 7: [0.5, 0.0], "c": [0.3]})
    elif cls == "TSPar":
        b = bk.TSPar(seed=3)
        b.update({"a": [20, 8], 7: [15, 7], "c": [30, 11]})
    else:
        b = bk.LogisticBandit(seed=3)
        b.update({"a": [200, 40], 7: [150, 33], "c": [300, 57]})
    return b


THOMPSON = ["LinearBandit", "TSPar", "LogisticBandit"]


def frequencies(picks: list, labels: list) -> np.ndarray:
    return np.array([sum(1 for p in picks if p == a) for a in labels]) / len(picks)


# --- Thompson classes ---


@pytest.mark.parametrize("cls", THOMPSON)
def test_thompson_propensities_match_select_frequencies(bk, cls):
    b = thompson(bk, cls)
    p = b.propensities()
    assert list(p) == b.get_models() == ARMS
    probs = np.array(list(p.values()))
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert probs.min() > 0.05  # every arm wins often enough to be tested
    n = 6000
    got = frequencies([b.select() for _ in range(n)], ARMS)
    assert np.all(np.abs(got - probs) < five_se(probs, n)), (got, probs)


@pytest.mark.parametrize("cls", THOMPSON)
def test_thompson_available_arms(bk, cls):
    b = thompson(bk, cls)
    p = b.propensities(available_arms=["c", "a", "c"])
    assert list(p) == ARMS and p[7] == 0.0
    assert p["a"] + p["c"] == pytest.approx(1.0, abs=1e-12)
    n = 4000
    picks = [b.select(available_arms=["c", "a"]) for _ in range(n)]
    assert 7 not in picks
    got = frequencies(picks, ARMS)
    probs = np.array(list(p.values()))
    assert np.all(np.abs(got - probs) <= five_se(probs, n)), (got, probs)
    assert b.propensities(available_arms=[7]) == {"a": 0.0, 7: 1.0, "c": 0.0}
    assert b.select(available_arms=[7], return_propensity=True) == (7, 1.0)


@pytest.mark.parametrize("cls", THOMPSON)
def test_thompson_select_returns_its_propensity(bk, cls):
    b = thompson(bk, cls)
    p = b.propensities()
    for _ in range(20):
        arm, q = b.select(return_propensity=True)
        assert q == pytest.approx(p[arm], abs=1e-12)
    # The same seed picks the same arm with or without the propensity.
    assert b.select(seed=5, return_propensity=True)[0] == b.select(seed=5)


@pytest.mark.parametrize("cls", THOMPSON)
def test_thompson_backends_agree(cls):
    py = thompson(backend_module("python"), cls).propensities()
    rs = thompson(backend_module("rust"), cls).propensities()
    assert list(py) == list(rs)
    # Independent arms: the two backends' quadratures agree to ~1e-11 (banditkit.python.exact).
    # LogisticBandit: correlated odds ratios by randomised QMC to a 1e-4 error target in each.
    tol = 2e-4 if cls == "LogisticBandit" else 1e-11
    np.testing.assert_allclose(list(py.values()), list(rs.values()), rtol=0, atol=tol)


@pytest.mark.parametrize("cls", THOMPSON)
@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.propensities(available_arms=["nope"]),
        lambda b: b.propensities(available_arms=[]),
        lambda b: b.propensities(available_arms="ac"),
        lambda b: b.select(available_arms=["a", "nope"]),
        lambda b: b.select(available_arms=[]),
        lambda b: b.select(n=2, return_propensity=True),
        lambda b: b.select(n=3, available_arms=["a", "c"]),
    ],
)
def test_thompson_bad_input_changes_nothing(bk, cls, call):
    b = thompson(bk, cls)
    before = b.to_bytes()
    with pytest.raises(ValueError):
        call(b)
    assert b.to_bytes() == before


def test_thompson_without_arms(bk):
    for cls in THOMPSON:
        b = getattr(bk, cls)(seed=1)
        assert b.propensities() == {}
        with pytest.raises(ValueError):
            b.select(return_propensity=True)


# --- LinUCB: ties shared, broken uniformly at random ---


def test_linucb_ties_are_shared_and_broken_at_random(bk):
    b = bk.LinUCB(list(ARMS), 3, seed=4)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(b.propensities(x[None, :]), [[1 / 3] * 3])
    n = 3000
    picks = [b.select(x) for _ in range(n)]
    probs = np.full(3, 1 / 3)
    assert np.all(np.abs(frequencies(picks, ARMS) - probs) < five_se(probs, n))
    # predict breaks ties the same way select does.
    twin = bk.LinUCB(list(ARMS), 3, seed=4)
    assert twin.predict(np.tile(x, (n, 1))) == picks
    # Available arms: the tie is among them only.
    half = b.propensities(np.tile(x, (2, 1)), available_arms=["c", 7])
    np.testing.assert_array_equal(half, [[0.0, 0.5, 0.5]] * 2)
    picks = [b.select(x, available_arms=["c", 7]) for _ in range(n)]
    got = frequencies(picks, ARMS)
    assert got[0] == 0.0 and abs(got[1] - 0.5) < 5 * math.sqrt(0.25 / n)
    assert b.select(x, available_arms=[7], return_propensity=True) == (7, 1.0)


def test_linucb_partial_ties_and_clear_winner(bk):
    b = bk.LinUCB(list(ARMS), 2, alpha=0.5, seed=1)
    b.update("a", [1.0, 0.0], 5.0)  # a is far ahead for x = (1, 0); 7 and c tie
    x = np.array([[1.0, 0.0], [-1.0, 0.0]])
    p = b.propensities(x)
    np.testing.assert_array_equal(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(p[1], [0.0, 0.5, 0.5])
    assert b.select(x[0], return_propensity=True) == ("a", 1.0)
    arm, q = b.select(x[1], return_propensity=True)
    assert arm in (7, "c") and q == 0.5


def test_linucb_ties_are_deterministic_per_seed(bk):
    x = np.ones(3)
    runs = [[bk.LinUCB(list(ARMS), 3, seed=s).select(x) for _ in range(1)] for s in (9, 9)]
    assert runs[0] == runs[1]
    one, two = bk.LinUCB(list(ARMS), 3, seed=9), bk.LinUCB(list(ARMS), 3, seed=9)
    assert [one.select(x) for _ in range(50)] == [two.select(x) for _ in range(50)]


# --- LinTS: per context, exact Gaussian win probabilities ---


def trained(bk, cls: str, d: int = 4, seed: int = 0, **kw):
    b = getattr(bk, cls)(list(ARMS), d, seed=seed, **kw)
    rng = np.random.default_rng(7)
    X = rng.standard_normal((60, d))
    arms = [ARMS[i % 3] for i in range(60)]
    true = rng.standard_normal((3, d)) * 0.3
    rewards = [X[i] @ true[i % 3] + 0.5 * rng.standard_normal() for i in range(60)]
    b.fit(X, arms, rewards)
    return b, X


def test_lints_propensities_match_select_frequencies_per_context(bk):
    b, X = trained(bk, "LinTS", v=2.0, seed=5)
    P = b.propensities(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    # A context where every arm is a real contender.
    i = int(np.argmax(P.min(axis=1)))
    assert P[i].min() > 0.05
    n = 6000
    picks = [b.select(X[i]) for _ in range(n)]
    assert np.all(np.abs(frequencies(picks, ARMS) - P[i]) < five_se(P[i], n)), P[i]
    picks = b.predict(np.tile(X[i], (n, 1)), available_arms=[7, "c"])
    sub = b.propensities(X[i : i + 1], available_arms=[7, "c"])[0]
    assert sub[0] == 0.0 and sub.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.abs(frequencies(picks, ARMS) - sub) <= five_se(sub, n))


def test_lints_select_returns_its_propensity(bk):
    b, X = trained(bk, "LinTS", seed=2)
    P = b.propensities(X[:10])
    for j, x in enumerate(X[:10]):
        arm, q = b.select(x, return_propensity=True)
        assert q == pytest.approx(P[j, ARMS.index(arm)], abs=1e-12)


def test_lints_zero_context_ties_are_shared(bk):
    """x = 0: every score is exactly 0, a tie among all arms, broken at random."""
    b, _ = trained(bk, "LinTS", seed=1)
    x = np.zeros(4)
    np.testing.assert_allclose(b.propensities(x[None, :]), [[1 / 3] * 3], atol=1e-15)
    n = 3000
    probs = np.full(3, 1 / 3)
    got = frequencies([b.select(x) for _ in range(n)], ARMS)
    assert np.all(np.abs(got - probs) < five_se(probs, n))


@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_contextual_backends_agree(cls):
    py, X = trained(backend_module("python"), cls, seed=3)
    rs, _ = trained(backend_module("rust"), cls, seed=3)
    Z = np.random.default_rng(1).standard_normal((50, 4))
    for avail in (None, ["c", "a"]):
        # The two backends' quadratures agree to ~1e-11 (banditkit.python.exact).
        np.testing.assert_allclose(
            py.propensities(Z, available_arms=avail),
            rs.propensities(Z, available_arms=avail),
            rtol=0,
            atol=1e-11,
        )


@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.propensities(np.ones((2, 3))),
        lambda b: b.propensities(np.ones(4)),
        lambda b: b.propensities([[1.0, np.nan, 0.0, 0.0]]),
        lambda b: b.propensities(np.ones((2, 4)), available_arms=["nope"]),
        lambda b: b.propensities(np.ones((2, 4)), available_arms=[]),
        lambda b: b.select(np.ones(4), available_arms=["nope"], return_propensity=True),
        lambda b: b.select(np.ones(3), return_propensity=True),
    ],
)
def test_contextual_bad_input_changes_nothing(bk, cls, call):
    b, _ = trained(bk, cls, seed=3)
    before = b.to_bytes()
    with pytest.raises(ValueError):
        call(b)
    assert b.to_bytes() == before


def test_propensities_use_no_random_draw(bk):
    b, X = trained(bk, "LinTS", seed=8)
    twin, _ = trained(bk, "LinTS", seed=8)
    b.propensities(X)
    assert [b.select(x) for x in X[:20]] == [twin.select(x) for x in X[:20]]


# --- the batched kernel ---


def test_prob_best_gaussian_rows_equals_row_by_row(bk):
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal((20, 5)), rng.uniform(0.1, 2.0, (20, 5))
    sigma[3] = 0.0  # only point masses: argmax
    mu[4, :2] = 9.0
    sigma[4, :2] = 0.0  # two point masses tied at the top
    rows = bk.prob_best_gaussian_rows(mu, sigma)
    for i in range(20):
        np.testing.assert_array_equal(rows[i], bk.prob_best_gaussian(mu[i], sigma[i]))
    shared = bk.prob_best_gaussian_rows(mu, sigma, share_ties=True)
    np.testing.assert_array_equal(
        np.delete(shared, 4, axis=0), np.maximum(np.delete(rows, 4, axis=0), 0.0)
    )
    assert shared[4, 0] == shared[4, 1] == pytest.approx(rows[4, 0] / 2, abs=1e-15)
    np.testing.assert_allclose(shared.sum(axis=1), 1.0, atol=1e-12)


def test_prob_best_gaussian_rows_backends_agree():
    rng = np.random.default_rng(1)
    mu, sigma = rng.standard_normal((30, 6)), rng.uniform(0.01, 3.0, (30, 6))
    py = backend_module("python").prob_best_gaussian_rows(mu, sigma)
    rs = backend_module("rust").prob_best_gaussian_rows(mu, sigma)
    np.testing.assert_allclose(py, rs, rtol=0, atol=1e-11)  # the kernels' documented agreement


@pytest.mark.parametrize(
    "args",
    [
        (np.zeros(3), np.ones(3)),
        (np.zeros((2, 3)), np.ones((3, 2))),
        (np.zeros((2, 3)), -np.ones((2, 3))),
        (np.full((2, 3), np.nan), np.ones((2, 3))),
    ],
)
def test_prob_best_gaussian_rows_bad_input(bk, args):
    with pytest.raises(ValueError):
        bk.prob_best_gaussian_rows(*args)
