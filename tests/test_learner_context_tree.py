"""ContextTree (docs/learners.md): parity between backends, learning on the regions world,
exact propensities, bounded nodes, bad input, save/load."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from serve_fixtures import serve_bk  # noqa: F401

import banditkit
from banditkit.simulate.envs import ENVIRONMENTS, RegionsEnv
from conftest import backend_module

ARMS = list(range(5))


def logged_rows(n: int, seed: int = 1, binary: bool = True):
    """Rows of the regions world played by a uniform policy: (X, arms, rewards)."""
    env = RegionsEnv(5, n, np.random.default_rng(seed), 5)
    r = env.rounds(0, n)
    arms = np.random.default_rng(seed + 100).integers(0, 5, n)
    rewards = r.rewards[np.arange(n), arms]
    if not binary:
        rewards = rewards + np.random.default_rng(seed + 200).normal(0.0, 0.3, n)
    return r.contexts, arms, rewards


def trained(mod, n: int = 3000, prior: str = "gaussian", seed: int = 3, **kw):
    model = mod.ContextTree(ARMS, 5, prior=prior, seed=seed, **kw)
    X, arms, rewards = logged_rows(n, binary=prior == "beta")
    model.partial_fit(X, arms.tolist(), rewards)
    return model


# --- parity ---


@pytest.mark.parametrize("prior", ["gaussian", "beta"])
def test_backends_build_the_same_tree(prior):
    py, rs = backend_module("python"), backend_module("rust")
    X, arms, rewards = logged_rows(2500, binary=prior == "beta")
    a = py.ContextTree(ARMS, 5, prior=prior, seed=1)
    b = rs.ContextTree(ARMS, 5, prior=prior, seed=1)
    for m in (a, b):  # a batch, single updates, another batch
        m.partial_fit(X[:1000], arms[:1000].tolist(), rewards[:1000])
        for i in range(1000, 1100):
            m.update(int(arms[i]), X[i], rewards[i])
        m.partial_fit(X[1100:], arms[1100:].tolist(), rewards[1100:])
    assert a.tree() == b.tree()  # bit-identical splits and statistics
    assert len(a.tree()) > 1
    assert a.get_stats() == b.get_stats()
    grid = np.random.default_rng(5).uniform(-1, 1, (400, 5))
    np.testing.assert_array_equal(a.predict_expectations(grid), b.predict_expectations(grid))
    np.testing.assert_array_equal(a.decision_function(grid), b.decision_function(grid))
    np.testing.assert_array_equal(a.apply(grid), b.apply(grid))
    # The exact win-probability kernels agree to ~1e-11 (banditkit.python.exact).
    np.testing.assert_allclose(a.propensities(grid), b.propensities(grid), rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        a.propensities(grid, [1, 3]), b.propensities(grid, [1, 3]), rtol=0, atol=1e-10
    )


def test_arm_changes_keep_the_backends_equal():
    trees = [trained(backend_module(n), n=1500) for n in ("python", "rust")]
    X, arms, rewards = logged_rows(500, seed=9)
    for m in trees:
        m.add_arm("new")
        m.partial_fit(X, [("new" if a == 4 else int(a)) for a in arms], rewards)
        m.remove_arm(1)
    assert trees[0].tree() == trees[1].tree()
    assert trees[0].arms == trees[1].arms == [0, 2, 3, 4, "new"]


def test_logged_feedback_mapping_is_the_same_as_arrays(bk):
    X, arms, rewards = logged_rows(800)
    a, b = bk.ContextTree(ARMS, 5, seed=0), bk.ContextTree(ARMS, 5, seed=0)
    a.fit(X, arms.tolist(), rewards, propensities=np.full(800, 0.2))
    b.fit({"context": X, "action": arms, "reward": rewards, "pscore": np.full(800, 0.2)})
    assert a.tree() == b.tree()


# --- learning ---


def regret(model, seed: int, horizon: int, batch: int = 10) -> float:
    env = RegionsEnv(5, horizon, np.random.default_rng(seed), 5)
    total = 0.0
    for start in range(0, horizon, batch):
        r = env.rounds(start, start + batch)
        played = np.asarray(model.predict(r.contexts))
        rows = np.arange(len(played))
        total += float((r.means.max(axis=1) - r.means[rows, played]).sum())
        model.partial_fit(r.contexts, played.tolist(), r.rewards[rows, played])
    return total


def test_beats_linucb_on_the_regions_world(bk):
    repeats, horizon = 10, 6000
    tree = np.array([regret(bk.ContextTree(ARMS, 5, seed=s), s, horizon) for s in range(repeats)])
    lin = np.array(
        [regret(bk.LinUCB(ARMS, 5, alpha=0.5, seed=s), s, horizon) for s in range(repeats)]
    )
    gap = lin - tree  # common random numbers: the same world per repeat
    se = gap.std(ddof=1) / np.sqrt(repeats)
    assert gap.mean() > 3 * se, (tree.mean(), lin.mean(), se)
    # Random play loses the mean gap between the best arm (0.8) and the average arm.
    env = RegionsEnv(5, horizon, np.random.default_rng(0), 5)
    r = env.rounds(0, horizon)
    random_regret = float((r.means.max(axis=1) - r.means.mean(axis=1)).sum())
    assert tree.mean() < 0.5 * random_regret


@pytest.mark.parametrize("prior", ["gaussian", "beta"])
def test_propensities_match_select_frequencies(bk, prior):
    model = trained(bk, n=1500, prior=prior)
    rng = np.random.default_rng(0)
    for x, available in ((rng.uniform(-1, 1, 5), None), (rng.uniform(-1, 1, 5), [0, 2, 4])):
        p = model.propensities(x[None, :], available)[0]
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        n = 4000
        picks = [model.select(x, available) for _ in range(n)]
        freq = np.array([picks.count(a) for a in ARMS]) / n
        se = np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs(freq - p) <= 5 * se + 1e-9), (freq, p)
        if available is not None:
            assert np.all(p[[1, 3]] == 0.0)
        arm, q = model.select(x, available, return_propensity=True)
        assert q == pytest.approx(p[ARMS.index(arm)], abs=1e-12)


def test_node_count_never_exceeds_max_nodes(bk):
    model = bk.ContextTree(ARMS, 5, max_depth=10, max_nodes=6, min_samples_split=10, seed=0)
    X, arms, rewards = logged_rows(6000)
    for start in range(0, 6000, 200):
        model.partial_fit(X[start : start + 200], arms[start : start + 200].tolist(),
                          rewards[start : start + 200])  # fmt: skip
        assert model.get_stats()["n_nodes"] <= 6
    assert model.get_stats()["n_nodes"] == 5  # splits add two nodes at a time


def test_memory_is_bounded(bk):
    """The saved state (everything the model holds) stops growing: no rows are kept."""
    model = bk.ContextTree(ARMS, 5, seed=0)
    X, arms, rewards = logged_rows(30000, seed=4)
    model.partial_fit(X[:10000], arms[:10000].tolist(), rewards[:10000])
    size = len(model.to_bytes())
    model.partial_fit(X[10000:], arms[10000:].tolist(), rewards[10000:])
    leaves = model.get_stats()["n_leaves"]
    bound = leaves * (3 * 5 * 8 + 5 * 9 * 5 * 3 * 8) + 64 * 7 * 8 * leaves + 4096
    assert len(model.to_bytes()) <= max(size, bound)


# --- bad input ---


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.update(0, [np.nan] * 5, 1.0),
        lambda m: m.update(0, [0.0] * 4, 1.0),
        lambda m: m.update(9, [0.0] * 5, 1.0),
        lambda m: m.update(0, [0.0] * 5, np.inf),
        lambda m: m.update(0, [0.0] * 5, 1.0, propensity=0.0),
        lambda m: m.update(0, [0.0] * 5, 1.0, propensity=1.5),
        lambda m: m.partial_fit(np.zeros((3, 5)), [0, 1], [1.0, 0.0, 1.0]),
        lambda m: m.partial_fit(np.zeros((2, 5)), [0, 7], [1.0, 0.0]),
        lambda m: m.partial_fit(np.zeros((2, 5)), [0, 1], [1.0, 0.0], propensities=[0.5, 0]),
        lambda m: m.partial_fit(np.zeros((2, 5)), [0, 1], [1e200, 1e200]),
        lambda m: m.partial_fit({"context": np.zeros((2, 5)), "action": [0, 5], "reward": [1, 0]}),
        lambda m: m.fit(np.zeros((2, 5)), [0, 1], [1.0, np.nan]),
        lambda m: m.select([0.0] * 5, available_arms=[]),
        lambda m: m.propensities(np.zeros((2, 4))),
    ],
)
def test_bad_input_raises_and_changes_nothing(bk, call):
    model = trained(bk, n=700)
    before = model.to_bytes()
    with pytest.raises(ValueError):
        call(model)
    assert model.to_bytes() == before


def test_beta_prior_needs_rewards_in_unit_interval(bk):
    model = bk.ContextTree(ARMS, 5, prior="beta")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.update(0, [0.0] * 5, 2.0)


@pytest.mark.parametrize(
    "kw",
    [
        {"max_depth": -1},
        {"min_samples_split": 1},
        {"split_threshold": -0.1},
        {"split_threshold": float("nan")},
        {"max_nodes": 0},
        {"n_quantiles": 0},
        {"prior": "poisson"},
        {"n_features": 0},
    ],
)
def test_bad_knobs(bk, kw):
    args = {"arms": ARMS, "n_features": 5, **kw}
    with pytest.raises(ValueError, match=next(iter(kw))):
        bk.ContextTree(**args)


def test_knobs_are_attributes_and_repr(bk):
    m = bk.ContextTree(["a", "b"], 3, max_depth=2, split_threshold=0.5, prior="beta")
    assert (m.arms, m.n_features, m.max_depth, m.min_samples_split) == (["a", "b"], 3, 2, 20)
    assert (m.split_threshold, m.max_nodes, m.n_quantiles, m.prior) == (0.5, 2000, 8, "beta")
    assert repr(m) == (
        "ContextTree(n_arms=2, n_features=3, max_depth=2, min_samples_split=20, "
        "split_threshold=0.5, max_nodes=2000, n_quantiles=8, prior='beta')"
    )
    with pytest.raises(TypeError):
        bk.ContextTree(ARMS, 5, prior=1)


# --- saving ---


@pytest.mark.parametrize("writer", ["python", "rust"])
@pytest.mark.parametrize("reader", ["python", "rust"])
def test_files_load_in_either_backend(tmp_path, writer, reader):
    model = trained(backend_module(writer), n=1200)
    fresh_leaves = logged_rows(30, seed=8)[0]  # rows that leave some leaves mid-sketch
    model.partial_fit(fresh_leaves, [0] * 30, [1.0] * 30)
    path = tmp_path / "tree.bk"
    banditkit.save(model, path)
    loaded = backend_module(reader).ContextTree.from_bytes(path.read_bytes())
    assert loaded.tree() == model.tree()
    grid = np.random.default_rng(1).uniform(-1, 1, (50, 5))
    np.testing.assert_array_equal(
        loaded.predict_expectations(grid), model.predict_expectations(grid)
    )
    assert type(banditkit.load(path)).__name__ == "ContextTree"
    # It keeps learning as the original does.
    X, arms, rewards = logged_rows(600, seed=11)
    for m in (model, loaded):
        m.partial_fit(X, arms.tolist(), rewards)
    assert loaded.tree() == model.tree()


def test_pickle_round_trip(bk):
    model = trained(bk, n=900)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.tree() == model.tree()
    assert copy.arms == model.arms


def test_damaged_file_is_refused(bk):
    data = bytearray(trained(bk, n=300).to_bytes())
    data[-10] ^= 0xFF
    with pytest.raises(banditkit.FormatError):
        bk.ContextTree.from_bytes(bytes(data))


# --- the environment ---


def test_regions_environment():
    assert ENVIRONMENTS["regions"] is RegionsEnv and "regions" in RegionsEnv.description.lower()
    env = RegionsEnv(5, 2000, np.random.default_rng(0), 5)
    r = env.rounds(0, 2000)
    z1, z2 = r.contexts[:, 1], r.contexts[:, 2]
    best = np.argmax(r.means, axis=1)
    np.testing.assert_array_equal(best, 2 * (z1 > 0) + (np.abs(z2) >= 0.5))
    assert np.all(r.means.max(axis=1) == 0.8) and set(np.unique(r.rewards)) <= {0.0, 1.0}
    # Each half of z1 has two arms whose best linear fits coincide: least squares on (1, z)
    # gives arms 0 and 1 (and 2 and 3) the same coefficients up to sampling noise.
    coef = np.linalg.lstsq(r.contexts, r.means, rcond=None)[0]
    np.testing.assert_allclose(coef[:, 0], coef[:, 1], atol=0.05)
    np.testing.assert_allclose(coef[:, 2], coef[:, 3], atol=0.05)
    with pytest.raises(ValueError, match="features"):
        RegionsEnv(5, 10, np.random.default_rng(0), 2)


# --- serving ---


@pytest.mark.usefixtures("serve_bk")
def test_serve_adapter_draws_with_exact_propensities():
    from banditkit.serve.errors import InvalidInput
    from banditkit.serve.policies import POLICIES

    arms = ["a", "b", "c"]
    policy = POLICIES["context-tree"]
    model = policy.create(arms, policy.parse_params({"n_features": 3, "min_samples_split": 40}))
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (900, 3))
    picked = [arms[i] for i in rng.integers(0, 3, 900)]
    best = np.where(X[:, 0] > 0, "a", "c")
    rewards = (np.array(picked) == best).astype(float)
    policy.apply(model, picked, X, rewards, [None] * len(picked))
    assert model.get_stats()["n_nodes"] > 1
    n = 20_000
    for x in (np.array([0.5, 0.1, -0.3]), np.array([-0.5, 0.1, -0.3])):
        for cand in (None, (1, 2)):
            contexts = np.tile(x, (n, 1))
            chosen, props = policy.decide(model, arms, contexts, [cand] * n, rng, {})
            want = model.propensities(x[None, :], None if cand is None else [arms[i] for i in cand])
            np.testing.assert_allclose(props, want[0][chosen], rtol=0, atol=1e-15)
            freq = np.bincount(chosen, minlength=3) / n
            se = np.sqrt(np.maximum(want[0] * (1 - want[0]), 1e-12) / n)
            assert np.all(np.abs(freq - want[0]) <= 5 * se), (freq, want)
    with pytest.raises(InvalidInput) as err:
        policy.parse_params({"n_features": 3, "max_depth": -1})
    assert err.value.field == "params.max_depth"
