"""OffsetTree (docs/learners.md): both backends agree, it learns from uniform logs and live,
its propensities are what `select` does, bad input changes nothing, and it saves and loads."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

import banditkit
from banditkit.simulate import report
from banditkit.simulate.runner import Config, run_all

K, D = 8, 4


def aligned_problem() -> tuple[np.ndarray, np.ndarray]:
    """8 arms whose expected reward is ``0.5 + 0.15 sum_j s_j(a) x_j`` (clipped to [0, 1]),
    ``s_j(a) = +-1`` the j-th bit of a: the best arm is the sign pattern of x_0..x_2, which the
    tournament (pairs decide bit 0, then bit 1, then bit 2) can represent exactly."""
    signs = np.array([[1.0 if (a >> j) & 1 else -1.0 for j in range(3)] for a in range(K)])
    weights = np.zeros((K, D))
    weights[:, :3] = 0.15 * signs
    return weights, np.full(K, 0.5)


def means(X: np.ndarray, problem: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    w, b = problem
    return np.clip(X @ w.T + b, 0.0, 1.0)


def uniform_log(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    action = rng.integers(0, K, n)
    mu = means(X, aligned_problem())[np.arange(n), action]
    reward = (rng.random(n) < mu).astype(float)
    return {"context": X, "action": action, "reward": reward, "pscore": np.full(n, 1.0 / K)}


def trained(bk, n: int = 3000, seed: int = 0, **knobs):
    model = bk.OffsetTree(list(range(K)), D, seed=1, **knobs)
    model.fit(uniform_log(n, seed))
    return model


# --- parity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "knobs",
    [{}, {"l2": 0.01, "max_weight": 5.0}, {"offset": 0.3, "learning_rate": 0.7, "epsilon": 0.2}],
)
def test_backends_agree_on_every_deterministic_quantity(py_bk, rs_bk, knobs):
    log = uniform_log(2000, 3)
    models = []
    for bk in (py_bk, rs_bk):
        m = bk.OffsetTree(list(range(K)), D, seed=1, **knobs)
        m.fit(log)
        # Live rows: no propensity, the learner's own (the state changing row by row).
        m.partial_fit(log["context"][:300], log["action"][:300].tolist(), log["reward"][:300])
        m.update(3, log["context"][5], 0.25, propensity=0.5)
        models.append(m)
    a, b = models
    np.testing.assert_allclose(a.node_weights(), b.node_weights(), rtol=0, atol=1e-10)
    X = np.random.default_rng(9).normal(size=(500, D))
    for name in ("propensities", "decision_function", "predict_proba", "predict_expectations"):
        np.testing.assert_allclose(getattr(a, name)(X), getattr(b, name)(X), rtol=0, atol=1e-10)
    avail = [1, 6, 7]
    np.testing.assert_allclose(
        a.propensities(X, available_arms=avail), b.propensities(X, available_arms=avail), atol=1e-10
    )
    sa, sb = a.get_stats(), b.get_stats()
    assert sa["node_updates"] == sb["node_updates"] and sa["rows"] == sb["rows"] == 2301
    assert sa["offset"] == pytest.approx(sb["offset"], abs=1e-12)
    assert repr(a) == repr(b)


def test_propensities_are_epsilon_greedy_over_the_tournament(bk):
    model = trained(bk, epsilon=0.2)
    X = np.random.default_rng(4).normal(size=(300, D))
    p, g = model.propensities(X), model.decision_function(X)
    np.testing.assert_allclose(p, 0.8 * g + 0.2 / K, atol=1e-15)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0, atol=1e-12)
    q = model.propensities(X, available_arms=[2, 5])
    assert np.all(q[:, [0, 1, 3, 4, 6, 7]] == 0.0)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(q[:, [2, 5]] >= 0.1)  # epsilon / 2 each at least


def test_a_fresh_tree_shares_its_ties(bk):
    # All nodes at z = 0: every tie split in half down the tournament of 5 arms.
    model = bk.OffsetTree(list("abcde"), 2, epsilon=0.0, seed=0)
    g = model.propensities(np.zeros((1, 2)))[0]
    np.testing.assert_array_equal(g, [0.125, 0.125, 0.125, 0.125, 0.5])
    one = bk.OffsetTree(["only"], 2, seed=0)
    assert one.select([1.0, 2.0], return_propensity=True) == ("only", 1.0)
    one.update("only", [1.0, 2.0], 1.0)
    assert one.n_nodes == 0


# --- propensities are what select does ---------------------------------------------------


def assert_frequencies(chosen: np.ndarray, probs: np.ndarray) -> None:
    freq = np.bincount(chosen, minlength=len(probs)) / len(chosen)
    se = np.sqrt(np.maximum(probs * (1 - probs), 1e-12) / len(chosen))
    assert np.all(np.abs(freq - probs) <= 5 * se), (freq, probs)
    assert np.all(freq[probs == 0.0] == 0.0)


@pytest.mark.parametrize("avail", [None, [0, 3, 4, 7]])
def test_propensities_equal_select_frequencies(bk, avail):
    n = 20_000
    model = trained(bk, n=400, epsilon=0.3)  # little data: some nodes still undecided
    fresh = bk.OffsetTree(list(range(K)), D, epsilon=0.1, seed=2)  # ties everywhere
    x = np.array([0.3, -0.2, 0.8, 0.1])
    for m in (model, fresh):
        probs = m.propensities(x[None, :], available_arms=avail)[0]
        picks = [m.select(x, available_arms=avail, return_propensity=True) for _ in range(n // 5)]
        assert all(p == pytest.approx(probs[a], abs=1e-15) for a, p in picks[:50])
        assert_frequencies(np.array([a for a, _ in picks]), probs)
        batch = m.predict(np.tile(x, (n, 1)), available_arms=avail)
        assert_frequencies(np.array(batch), probs)


def test_same_seed_same_choices(bk):
    X = np.random.default_rng(0).normal(size=(200, D))
    a, b = trained(bk, epsilon=0.5), trained(bk, epsilon=0.5)
    assert a.predict(X) == [b.select(x) for x in X]


# --- learning ----------------------------------------------------------------------------


def test_learns_the_best_policy_offline_from_uniform_logs(bk):
    """20,000 uniform logs over 8 arms. An IPS estimate of a policy's value from such a log has
    a standard error of about sqrt(K Var(r) / n) = sqrt(8 * 0.25 / 20,000) = 0.01: policies
    closer than a few of those cannot be told apart by the data. So the learned greedy policy
    must come within 3 of them (0.03) of the best policy's value (its true value, computed from
    the known means on 20,000 fresh contexts, paired with the best policy's); uniform play is
    0.34 below the best."""
    model = bk.OffsetTree(list(range(K)), D, epsilon=0.0, seed=1)
    model.fit(uniform_log(20_000, 0))
    X = np.random.default_rng(1).normal(size=(20_000, D))
    mu = means(X, aligned_problem())
    learned = (model.decision_function(X) * mu).sum(axis=1)
    gap = mu.max(axis=1) - learned
    best_minus_uniform = float(mu.max(axis=1).mean() - mu.mean())
    assert best_minus_uniform > 0.3
    assert gap.mean() + 5 * gap.std() / math.sqrt(len(gap)) < 0.03, gap.mean()
    assert model.get_stats()["rows"] == 20_000


@pytest.mark.parametrize("backend", ["rust", "python"])
def test_regret_in_simulate_is_well_below_random(backend):
    repeats = 3 if backend == "rust" else 1
    for env in ("linear", "bernoulli"):
        cfg = Config(env=env, policies=("offset-tree", "random"), rounds=20_000, batch=100,
                     repeats=repeats, seed=2024, backend=backend)  # fmt: skip
        doc = report.summarise(cfg, run_all(cfg), {})
        assert not doc["failures"]
        regret = {k: v["final_regret"]["mean"] for k, v in doc["policies"].items()}
        assert regret["offset-tree"] < regret["random"] / 5, (env, regret)


def test_importance_weights_are_capped(bk):
    X = np.array([[1.0, 0.0, 0.0, 0.0]])
    a = bk.OffsetTree(list(range(K)), D, seed=0, max_weight=4.0)
    b = bk.OffsetTree(list(range(K)), D, seed=0, max_weight=4.0)
    a.update(2, X[0], 1.0, propensity=0.01)  # 1/p = 100, capped at 4
    b.update(2, X[0], 1.0, propensity=0.25)  # 1/p = 4
    np.testing.assert_array_equal(a.node_weights(), b.node_weights())
    assert a.get_stats()["arms"][2]["weight"] == 4.0


# --- bad input ---------------------------------------------------------------------------


def bad_calls(x: np.ndarray, X: np.ndarray):
    n = len(X)
    arms, r = [0] * n, np.ones(n)
    return [
        ("context", lambda m: m.update(0, [np.nan] * D, 1.0)),
        ("context", lambda m: m.update(0, x[:2], 1.0)),
        ("unknown arm", lambda m: m.update(99, x, 1.0)),
        ("reward", lambda m: m.update(0, x, math.inf)),
        ("propensit", lambda m: m.update(0, x, 1.0, propensity=0.0)),
        ("propensit", lambda m: m.update(0, x, 1.0, propensity=1.5)),
        ("propensit", lambda m: m.update(0, x, 1.0, propensity=math.nan)),
        ("rewards", lambda m: m.partial_fit(X, arms, np.r_[r[:-1], np.nan])),
        ("propensities", lambda m: m.partial_fit(X, arms, r, np.r_[np.full(n - 1, 0.5), 0.0])),
        ("same length", lambda m: m.partial_fit(X, arms[:-1], r)),
        ("columns", lambda m: m.fit(X[:, :2], arms, r)),
        ("unknown arm", lambda m: m.fit(X, [*arms[:-1], "zz"], r)),
        (
            "pscore",
            lambda m: m.fit({"context": X, "action": arms, "reward": r, "pscore": np.full(n, 2.0)}),
        ),  # fmt: skip
        ("action", lambda m: m.fit({"context": X, "action": [K] * n, "reward": r})),
        ("reward", lambda m: m.partial_fit({"context": X, "action": arms})),
        ("available_arms", lambda m: m.select(x, available_arms=[])),
        ("unknown arm", lambda m: m.propensities(X, available_arms=[0, 42])),
        ("context", lambda m: m.select([1.0, "a", 2.0, 3.0])),
        ("X", lambda m: m.predict(x)),
        # epsilon = 0 and an arm the tree never picks here: its own propensity is 0.
        (
            "propensity of arm",
            lambda m: m.update(int(np.argmin(m.decision_function(x[None, :])[0])), x, 1.0),
        ),
        ("fixed at construction", lambda m: m.add_arm(8)),
        ("fixed at construction", lambda m: m.remove_arm(0)),
    ]


def test_bad_input_is_refused_and_changes_nothing(bk):
    X = np.random.default_rng(3).normal(size=(6, D))
    x = X[0]
    for match, call in bad_calls(x, X):
        model = trained(bk, n=500, epsilon=0.0)
        before = model.to_bytes()
        with pytest.raises(ValueError, match=match):
            call(model)
        assert model.to_bytes() == before, match


def test_an_overflowing_batch_changes_nothing(bk):
    model = trained(bk, n=200)
    before = model.to_bytes()
    X = np.full((2, D), 1e200)
    with pytest.raises(ValueError, match="non-finite"):
        model.partial_fit(X, [0, 1], [1e300, -1e300])
    assert model.to_bytes() == before


@pytest.mark.parametrize(
    ("knobs", "error", "match"),
    [
        ({"n_features": 0}, ValueError, "n_features"),
        ({"n_features": 2.0}, TypeError, "n_features"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate"),
        ({"l2": -1.0}, ValueError, "l2"),
        ({"epsilon": 1.5}, ValueError, "epsilon"),
        ({"epsilon": math.nan}, ValueError, "epsilon"),
        ({"max_weight": 0.0}, ValueError, "max_weight"),
        ({"max_weight": math.nan}, ValueError, "max_weight"),
        ({"offset": math.inf}, ValueError, "offset"),
        ({"arms": []}, ValueError, "arms"),
        ({"arms": ["a", "a"]}, ValueError, "duplicate"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_knobs(bk, knobs, error, match):
    args = {"arms": ["a", "b"], "n_features": 2, **knobs}
    with pytest.raises(error, match=match):
        bk.OffsetTree(args.pop("arms"), args.pop("n_features"), **args)


def test_knobs_are_readable(bk):
    m = bk.OffsetTree(["a", "b", "c"], 3, learning_rate=0.2, l2=0.1, epsilon=0.3,
                      max_weight=9.0, offset=0.4, seed=0)  # fmt: skip
    assert (m.arms, m.n_features, m.learning_rate, m.l2) == (["a", "b", "c"], 3, 0.2, 0.1)
    assert (m.epsilon, m.max_weight, m.offset, m.n_nodes) == (0.3, 9.0, 0.4, 2)
    assert repr(m) == (
        "OffsetTree(n_arms=3, n_features=3, learning_rate=0.2, l2=0.1, epsilon=0.3, "
        "max_weight=9.0, offset=0.4)"
    )


# --- saving ------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["python", "rust"])
@pytest.mark.parametrize("reader", ["python", "rust"])
def test_files_load_in_either_backend(py_bk, rs_bk, writer, reader, tmp_path):
    mods = {"python": py_bk, "rust": rs_bk}
    model = trained(mods[writer], offset=0.2, max_weight=50.0)
    path = tmp_path / "tree.bkit"
    banditkit.save(model, path)
    loaded = mods[reader].OffsetTree.from_bytes(path.read_bytes())
    assert type(loaded).__module__.startswith("banditkit_rs" if reader == "rust" else "banditkit")
    X = np.random.default_rng(2).normal(size=(100, D))
    np.testing.assert_array_equal(loaded.node_weights(), model.node_weights())
    np.testing.assert_allclose(loaded.propensities(X), model.propensities(X), atol=1e-15)
    assert repr(loaded) == repr(model) and loaded.get_stats() == model.get_stats()
    assert type(banditkit.load(path)).__name__ == "OffsetTree"
    # Both continue learning the same way.
    log = uniform_log(300, 7)
    loaded.partial_fit(log)
    model.partial_fit(log)
    np.testing.assert_allclose(loaded.node_weights(), model.node_weights(), atol=1e-10)


def test_pickle_and_copies_continue_identically(bk):
    model = trained(bk, epsilon=0.4)
    X = np.random.default_rng(5).normal(size=(50, D))
    for duplicate in (lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy, copy.copy):
        twin = duplicate(model)
        assert twin.predict(X) == model.predict(X)  # same random stream position
        twin.update(1, X[0], 1.0, propensity=0.5)  # independent of the original
        assert model.get_stats()["rows"] == twin.get_stats()["rows"] - 1
    m2 = pickle.loads(pickle.dumps(model))
    m2.update(1, X[0], 1.0, propensity=0.5)
    model.update(1, X[0], 1.0, propensity=0.5)
    np.testing.assert_array_equal(m2.node_weights(), model.node_weights())


def test_memory_is_k_minus_1_nodes_whatever_the_rows(bk):
    model = bk.OffsetTree(list(range(K)), D, seed=0)
    model.fit(uniform_log(100, 0))
    size = len(model.to_bytes())
    model.partial_fit(uniform_log(5000, 1))
    assert len(model.to_bytes()) == size
    assert model.node_weights().shape == (K - 1, D + 1)


def test_fit_forgets_partial_fit_does_not(bk):
    log = uniform_log(500, 0)
    a, b = trained(bk, n=500), bk.OffsetTree(list(range(K)), D, seed=1)
    b.partial_fit(uniform_log(200, 9))
    b.fit(log)
    np.testing.assert_array_equal(a.node_weights(), b.node_weights())
    b.reset()
    assert not b.node_weights().any() and b.get_stats()["rows"] == 0


# --- serve -------------------------------------------------------------------------------


@pytest.fixture
def serve_tree(bk, monkeypatch: pytest.MonkeyPatch):
    """`bk` installed as banditkit's backend for the serve adapters (as serve_fixtures does)."""
    from banditkit import _saving

    monkeypatch.setattr(banditkit, "OffsetTree", bk.OffsetTree)
    monkeypatch.setattr(_saving, "MODULE", bk)
    return bk


@pytest.mark.usefixtures("serve_tree")
def test_serve_draws_match_its_propensities_and_select() -> None:
    from banditkit.serve.policies import POLICIES

    arms = ["a", "b", "c", "d", "e"]
    policy = POLICIES["offset-tree"]
    model = policy.create(arms, policy.parse_params({"n_features": 2, "epsilon": 0.3}))
    assert policy.params_of(model)["max_weight"] is None
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 2))
    played = [arms[i] for i in rng.integers(0, 5, 80)]
    policy.apply(model, played, X, (X[:, 0] > 0) * 1.0, [None] * 80)
    x = np.array([0.7, -0.4])
    n = 20_000
    for cand in (None, (1, 3, 4)):
        names = None if cand is None else [arms[i] for i in cand]
        probs = model.propensities(x[None, :], available_arms=names)[0]
        chosen, props = policy.decide(model, arms, np.tile(x, (n, 1)), [cand] * n, rng, {})
        np.testing.assert_allclose(props, probs[chosen], rtol=0, atol=1e-15)
        assert_frequencies(chosen, probs)
        picks = [model.select(x, available_arms=names) for _ in range(n // 5)]
        assert_frequencies(np.array([arms.index(p) for p in picks]), probs)


def test_serve_params_name_the_field() -> None:
    from banditkit.serve.errors import InvalidInput
    from banditkit.serve.policies import POLICIES

    for params, field in (
        ({}, "params.n_features"),
        ({"n_features": 2, "epsilon": 0}, "params.epsilon"),
        ({"n_features": 2, "max_weight": -1}, "params.max_weight"),
        ({"n_features": 2, "learning_rate": float("nan")}, "params.learning_rate"),
    ):
        with pytest.raises(InvalidInput) as err:
            POLICIES["offset-tree"].parse_params(params)
        assert err.value.field == field


def test_served_end_to_end(tmp_path) -> None:
    from serve_server import Server

    srv = Server(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, "--seed", "3")
    srv.start()
    try:
        srv.create("tree", "offset-tree", ["x", "y", "z"], n_features=2, epsilon=0.2)
        contexts = [[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]]
        results = srv.recommend(
            "tree", [{"id": str(i), "context": c} for i, c in enumerate(contexts)]
        )
        assert all(r["arm"] in ("x", "y", "z") and 0.2 / 3 <= r["propensity"] <= 1 for r in results)
        srv.reward("tree", [{"event_id": r["event_id"], "reward": 1.0} for r in results])
        state = srv.describe("tree")
        assert state["policy"] == "offset-tree" and state["version"] == 4
        assert state["params"]["max_weight"] is None and state["params"]["epsilon"] == 0.2
    finally:
        srv.close()
