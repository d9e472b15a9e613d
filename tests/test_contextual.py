"""LinUCB / LinTS contract: API, choices, parity between backends, determinism, bad input."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

ARMS = ["a", 7, "c"]


def make(bk, cls: str = "LinUCB", d: int = 5, arms=None, **kw):
    return getattr(bk, cls)(list(ARMS if arms is None else arms), d, **kw)


def stream(n: int, d: int, seed: int = 0, scale: np.ndarray | None = None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if scale is not None:
        X *= scale
    return X, rng.standard_normal(n)


def play(b, X, R, available=None):
    """select + update on each row; returns the choices."""
    picks = []
    for x, r in zip(X, R, strict=True):
        k = b.select(x, available_arms=available)
        b.update(k, x, r)
        picks.append(k)
    return picks


def fingerprint(b) -> list:
    """Everything observable about the learned state."""
    out: list = [b.arms, b.get_stats()]
    for k in b.arms:
        out += [b.theta(k).tolist(), b.a_inv(k).tolist(), b.gram(k).tolist(), b.b(k).tolist()]
    return out


@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_interface_and_shapes(bk, cls):
    d = 4
    b = make(bk, cls, d, seed=3)
    X, R = stream(40, d)
    b.fit(X, [ARMS[i % 3] for i in range(40)], R)
    assert b.arms == ARMS
    assert b.n_features == d
    assert b.predict_expectations(X).shape == (40, 3)
    assert b.decision_function(X).shape == (40, 3)
    picks = b.predict(X)
    assert len(picks) == 40 and set(picks) <= set(ARMS)
    assert b.select(X[0]) in ARMS
    assert b.theta(7).shape == (d,) and b.a_inv("a").shape == (d, d)
    stats = b.get_stats()
    assert stats["total_pulls"] == 40 and stats["n_arms"] == 3 and stats["n_features"] == d
    assert [stats["arms"][k]["pulls"] for k in ARMS] == [14, 13, 13]
    for k in ARMS:
        s = stats["arms"][k]
        assert s["theta_norm"] == pytest.approx(np.linalg.norm(b.theta(k)))
        A = b.gram(k)
        assert s["condition_estimate"] == pytest.approx(
            np.linalg.norm(A, 1) * np.linalg.norm(np.linalg.inv(A), 1), rel=1e-8
        )
    # expectations are theta^T x exactly as documented
    want = np.stack([X @ b.theta(k) for k in ARMS], axis=1)
    np.testing.assert_allclose(b.predict_expectations(X), want, rtol=1e-12, atol=1e-12)
    assert cls in repr(b)


def test_linucb_scores_are_the_formula(bk):
    d = 6
    b = make(bk, "LinUCB", d, alpha=0.7, l2_lambda=2.0)
    X, R = stream(60, d, seed=1)
    b.partial_fit(X, [ARMS[i % 3] for i in range(60)], R)
    scores = b.decision_function(X[:10])
    for j, k in enumerate(ARMS):
        var = np.einsum("ij,jk,ik->i", X[:10], np.linalg.inv(b.gram(k)), X[:10])
        want = X[:10] @ b.theta(k) + 0.7 * np.sqrt(var)
        np.testing.assert_allclose(scores[:, j], want, rtol=1e-10)


def test_untrained_ties_are_broken_among_the_tied_arms(bk):
    """Ties are broken uniformly at random (frequencies: tests/test_propensities.py)."""
    b = make(bk, "LinUCB", 3, seed=2)
    assert {b.select([1.0, 2.0, 3.0]) for _ in range(60)} == set(ARMS)
    assert {b.select([1.0, 2.0, 3.0], available_arms=["c", 7]) for _ in range(40)} == {7, "c"}
    assert b.predict(np.ones((4, 3)), available_arms=["c"]) == ["c"] * 4


@pytest.mark.parametrize("d", [8, 200])  # 200: large enough for the split (two-task) kernels
@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_predict_equals_repeated_select(bk, cls, d):
    b = make(bk, cls, d, seed=11, alpha=0.5) if cls == "LinUCB" else make(bk, cls, d, seed=11)
    X, R = stream(300, d, seed=2)
    play(b, X[:200], R[:200])
    twin = copy.deepcopy(b)
    avail = [7, "c"]
    batch = b.predict(X[200:], available_arms=avail)
    singles = [twin.select(x, available_arms=avail) for x in X[200:]]
    assert batch == singles
    assert set(batch) <= set(avail)
    # both consumed the same events: the next draws agree too
    np.testing.assert_array_equal(b.decision_function(X[:5]), twin.decision_function(X[:5]))


def test_lints_repeatable_by_seed(bk):
    d = 6
    X, R = stream(400, d, seed=3)
    runs = [play(make(bk, "LinTS", d, seed=s), X, R) for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_linucb_is_deterministic(bk):
    """The seed only breaks exact ties: once every arm has seen a different context, none
    arise, and any seed plays the same."""
    d = 6
    X, R = stream(300, d, seed=4)
    runs = []
    for seed in (1, 2):
        b = make(bk, "LinUCB", d, seed=seed)
        for k, arm in enumerate(ARMS):
            b.update(arm, X[k], R[k])
        runs.append(play(b, X[3:], R[3:]))
    assert runs[0] == runs[1]
    assert play(make(bk, "LinUCB", d, seed=3), X, R) == play(make(bk, "LinUCB", d, seed=3), X, R)


def test_lints_draws_have_the_posterior_law(bk):
    """Scores of one context: N(theta^T x, v^2 x^T A^-1 x) per arm (5 standard errors)."""
    d, n, v = 5, 20000, 0.8
    b = make(bk, "LinTS", d, v=v, seed=9)
    X, R = stream(90, d, seed=5)
    b.partial_fit(X, [ARMS[i % 3] for i in range(90)], R)
    x = X[0]
    scores = b.decision_function(np.tile(x, (n, 1)))
    for j, k in enumerate(ARMS):
        mean = x @ b.theta(k)
        sd = v * np.sqrt(x @ b.a_inv(k) @ x)
        assert abs(scores[:, j].mean() - mean) < 5 * sd / np.sqrt(n)
        assert abs(scores[:, j].var() / sd**2 - 1) < 5 * np.sqrt(2 / n)


@pytest.mark.parametrize("kw", [{}, {"window_size": 30}, {"gamma": 0.98}, {"l2_lambda": 0.3}])
def test_backends_agree_on_linucb(py_bk, rs_bk, kw):
    d = 10
    X, R = stream(1500, d, seed=6)
    p, r = make(py_bk, "LinUCB", d, **kw), make(rs_bk, "LinUCB", d, **kw)
    # One observation per arm first: untrained arms tie, and ties are broken at random.
    for b in (p, r):
        b.partial_fit(X[:3], ARMS, R[:3])
    assert play(p, X[3:], R[3:]) == play(r, X[3:], R[3:])
    for k in ARMS:
        np.testing.assert_allclose(r.theta(k), p.theta(k), rtol=0, atol=1e-10)
        np.testing.assert_allclose(r.gram(k), p.gram(k), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(r.decision_function(X[:50]), p.decision_function(X[:50]), atol=1e-10)
    assert r.predict(X[:200]) == p.predict(X[:200])
    assert r.get_stats()["arms"]["a"]["pulls"] == p.get_stats()["arms"]["a"]["pulls"]
    assert [s["refactors"] for s in r.get_stats()["arms"].values()] == [
        s["refactors"] for s in p.get_stats()["arms"].values()
    ]


def test_periodic_refactorisation(bk):
    """`refactor_every` rebuilds A^-1 from the exact A on schedule; the state stays exact."""
    d = 5
    b = make(bk, "LinUCB", d, refactor_every=50)
    X, R = stream(300, d, seed=13)
    b.partial_fit(X, ["a"] * 300, R)
    assert b.get_stats()["arms"]["a"]["refactors"] == 6
    A = np.eye(d) + X.T @ X
    np.testing.assert_allclose(b.a_inv("a"), np.linalg.inv(A), rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.theta("a"), np.linalg.solve(A, X.T @ R), rtol=0, atol=1e-12)


def test_inputs_lists_float32_noncontiguous(bk):
    d = 4
    b = make(bk, "LinUCB", d)
    X, R = stream(30, d, seed=7)
    X32 = X.astype(np.float32)
    b.partial_fit(X32.tolist(), [ARMS[i % 3] for i in range(30)], R.tolist())
    ref = make(bk, "LinUCB", d)
    ref.partial_fit(X32.astype(np.float64), [ARMS[i % 3] for i in range(30)], R)
    assert fingerprint(b) == fingerprint(ref)
    wide = np.hstack([X, X])[:, :d]  # a strided (non-contiguous) view equal to X
    assert b.predict(wide) == b.predict(X) == b.predict(np.asfortranarray(X))
    assert b.select(list(X32[3])) == b.select(X32[3].astype(np.float64))
    assert b.select(wide[3]) == b.select(X[3])
    b.update("a", X32[0], np.float32(0.5))
    ref.update("a", X32[0].astype(np.float64), 0.5)
    assert fingerprint(b) == fingerprint(ref)


def test_add_remove_reset(bk):
    d = 3
    b = make(bk, "LinUCB", d)
    X, R = stream(20, d, seed=8)
    b.partial_fit(X, ["a"] * 20, R)
    b.add_arm(("new", 1))
    assert b.arms == [*ARMS, ("new", 1)]
    assert np.array_equal(b.theta(("new", 1)), np.zeros(d))
    b.update(("new", 1), X[0], 1.0)
    b.remove_arm(7)
    assert b.arms == ["a", "c", ("new", 1)]
    assert b.decision_function(X).shape == (20, 3)
    theta_a = b.theta("a")
    assert np.linalg.norm(theta_a) > 0
    b.reset()
    assert b.get_stats()["total_pulls"] == 0
    assert np.array_equal(b.theta("a"), np.zeros(d))
    assert np.array_equal(b.a_inv("c"), np.eye(d))
    for k in list(b.arms):
        b.remove_arm(k)
    assert b.arms == []
    with pytest.raises(ValueError, match="no arms"):
        b.select(X[0])


@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_pickle_and_deepcopy_continue_identically(bk, cls):
    d = 5
    b = make(bk, cls, d, seed=21, window_size=15, gamma=0.99)
    X, R = stream(200, d, seed=9)
    play(b, X[:100], R[:100])
    clones = [pickle.loads(pickle.dumps(b)), copy.deepcopy(b)]
    for c in clones:
        assert type(c) is type(b)
        assert fingerprint(c) == fingerprint(b)
    want = play(b, X[100:], R[100:])
    for c in clones:
        assert play(c, X[100:], R[100:]) == want
        for k in ARMS:
            np.testing.assert_allclose(c.theta(k), b.theta(k), rtol=0, atol=1e-12)


# --- bad input: ValueError, and the object is left exactly as it was ---


@pytest.mark.parametrize(
    ("cls", "kw", "match"),
    [
        ("LinUCB", {"alpha": 0.0}, "alpha"),
        ("LinUCB", {"alpha": float("nan")}, "alpha"),
        ("LinUCB", {"alpha": -1.0}, "alpha"),
        ("LinTS", {"v": 0.0}, "v must be positive"),
        ("LinTS", {"v": float("inf")}, "v must be positive"),
        ("LinUCB", {"l2_lambda": 0.0}, "l2_lambda"),
        ("LinTS", {"l2_lambda": float("nan")}, "l2_lambda"),
        ("LinUCB", {"window_size": -1}, "window_size"),
        ("LinUCB", {"gamma": 0.0}, "gamma"),
        ("LinTS", {"gamma": 1.5}, "gamma"),
        ("LinUCB", {"gamma": float("nan")}, "gamma"),
        ("LinUCB", {"refactor_every": 0}, "refactor_every"),
        ("LinUCB", {"seed": -1}, "seed"),
    ],
)
def test_bad_constructor_arguments(bk, cls, kw, match):
    with pytest.raises(ValueError, match=match):
        make(bk, cls, 3, **kw)


def test_bad_constructor_shapes(bk):
    with pytest.raises(ValueError, match="n_features"):
        bk.LinUCB(["a"], 0)
    with pytest.raises(ValueError, match="duplicate"):
        bk.LinTS(["a", "b", "a"], 3)
    with pytest.raises(ValueError, match="hashable"):
        bk.LinUCB([["unhashable"]], 3)


NAN = float("nan")
INF = float("inf")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda b: b.select([1.0, 2.0]), "3 features"),
        (lambda b: b.select([1.0, NAN, 2.0]), "finite"),
        (lambda b: b.select([1.0, INF, 2.0]), "finite"),
        (lambda b: b.select(np.ones((2, 3))), "1-D"),
        (lambda b: b.select([1.0, 2.0, 3.0], available_arms=[]), "empty"),
        (lambda b: b.select([1.0, 2.0, 3.0], available_arms=["zz"]), "unknown arm"),
        (lambda b: b.update("zz", [1.0, 2.0, 3.0], 1.0), "unknown arm"),
        (lambda b: b.update("a", [1.0, 2.0], 1.0), "3 features"),
        (lambda b: b.update("a", [1.0, NAN, 2.0], 1.0), "finite"),
        (lambda b: b.update("a", [1.0, 2.0, 3.0], NAN), "finite"),
        (lambda b: b.update("a", [1.0, 2.0, 3.0], -INF), "finite"),
        (lambda b: b.update("a", [1.0, 2.0, 3.0], "x"), "number"),
        (lambda b: b.partial_fit(np.ones((2, 3)), ["a"], [1.0, 2.0]), "same length"),
        (lambda b: b.partial_fit(np.ones((2, 3)), ["a", "zz"], [1.0, 2.0]), "unknown arm"),
        (lambda b: b.partial_fit(np.ones((2, 3)), ["a", 7], [1.0, NAN]), "finite"),
        (lambda b: b.partial_fit(np.ones((2, 4)), ["a", 7], [1.0, 2.0]), "3 columns"),
        (lambda b: b.partial_fit([[1.0, NAN, 0.0]], ["a"], [1.0]), "finite"),
        (lambda b: b.fit(np.ones((2, 3)), ["a", "zz"], [1.0, 2.0]), "unknown arm"),
        (lambda b: b.predict(np.ones((2, 4))), "3 columns"),
        (lambda b: b.predict(np.ones(3)), "2-D"),
        (lambda b: b.predict([[1.0, 2.0, INF]]), "finite"),
        (lambda b: b.predict(np.ones((2, 3)), available_arms=[]), "empty"),
        (lambda b: b.decision_function(np.ones((2, 2))), "3 columns"),
        (lambda b: b.predict_expectations([[NAN, 0.0, 0.0]]), "finite"),
        (lambda b: b.add_arm(7), "already exists"),
        (lambda b: b.add_arm(["list"]), "hashable"),
        (lambda b: b.remove_arm("zz"), "unknown arm"),
        (lambda b: b.theta("zz"), "unknown arm"),
        (lambda b: b.a_inv("zz"), "unknown arm"),
    ],
)
@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_bad_input_leaves_object_unchanged(bk, cls, call, match):
    b = make(bk, cls, 3, seed=4, window_size=5)
    X, R = stream(12, 3, seed=10)
    play(b, X, R)
    before = copy.deepcopy(b)
    with pytest.raises(ValueError, match=match):
        call(b)
    assert fingerprint(b) == fingerprint(before)
    # the random stream did not move either
    np.testing.assert_array_equal(b.decision_function(X), before.decision_function(X))


def test_concurrent_threads_wait_instead_of_failing(bk):
    """Heavy calls run with the GIL released; other threads using the object wait for them."""
    from concurrent.futures import ThreadPoolExecutor

    d = 200  # large enough for the Rust backend to release the GIL on one-event calls
    b = make(bk, "LinUCB", d)
    X, R = stream(120, d, seed=12)
    b.partial_fit(X[:60], [ARMS[i % 3] for i in range(60)], R[:60])
    want = [b.select(x) for x in X[60:]]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(b.select, X[60:]))
        list(pool.map(lambda i: b.update("a", X[i], R[i]), range(60, 90)))
    assert got == want
    assert b.get_stats()["arms"]["a"]["pulls"] == 20 + 30
