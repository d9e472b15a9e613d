"""DoublyRobust (docs/learners.md): both backends agree, propensities are exact, the policy
learnt from skewed logs beats the direct method's when the reward model is misspecified, bad
input changes nothing, and files and pickles cross backends."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from serve_fixtures import serve_bk  # noqa: F401

import banditkit
from conftest import backend_module

EXPLORATIONS = ("ucb", "epsilon", "softmax")


def _logged(n: int, seed: int, d: int = 3, k: int = 3):
    """Linear rewards logged by a skewed (context-dependent) policy, with its propensities."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, d - 1))])
    theta = rng.normal(size=(k, d))
    logits = 2.0 * X[:, 1:2] * np.arange(k)
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    arms = (rng.random(n)[:, None] > P.cumsum(axis=1)).sum(axis=1).clip(0, k - 1)
    rewards = (X @ theta.T)[np.arange(n), arms] + rng.normal(0, 0.5, n)
    return X, arms, rewards, P[np.arange(n), arms]


def _trained(bk, exploration: str = "ucb", n: int = 300, **kw):
    X, arms, rewards, p = _logged(n, seed=1)
    dr = bk.DoublyRobust(["a", "b", "c"], 3, exploration=exploration, seed=5, **kw)
    dr.fit(X, [["a", "b", "c"][i] for i in arms], rewards, p)
    return dr


def _state(dr) -> bytes:
    return dr.to_bytes()


# --- parity between backends ---------------------------------------------------------------


@pytest.mark.parametrize("exploration", EXPLORATIONS)
def test_backends_agree_on_every_deterministic_quantity(exploration: str) -> None:
    py, rs = backend_module("python"), backend_module("rust")
    kw = {"alpha": 0.7, "max_weight": 20.0, "epsilon": 0.2, "temperature": 0.3}
    a, b = _trained(py, exploration, **kw), _trained(rs, exploration, **kw)
    X = np.random.default_rng(9).normal(size=(50, 3))
    for method in ("decision_function", "predict_expectations", "policy_values", "propensities"):
        np.testing.assert_allclose(
            getattr(a, method)(X), getattr(b, method)(X), rtol=1e-9, atol=1e-12, err_msg=method
        )
    np.testing.assert_allclose(a.propensities(X, ["a", "c"]), b.propensities(X, ["a", "c"]))
    sa, sb = a.get_stats(), b.get_stats()
    assert sa["total_updates"] == sb["total_updates"] == 300
    assert sa["history_len"] == sb["history_len"] == 300
    for arm in ("a", "b", "c"):
        assert sa["arms"][arm]["pulls"] == sb["arms"][arm]["pulls"]
        assert sa["arms"][arm]["policy_theta_norm"] == pytest.approx(
            sb["arms"][arm]["policy_theta_norm"], rel=1e-9
        )
    assert repr(a) == repr(b)


def test_live_feedback_agrees_between_backends() -> None:
    """propensity=None: each backend uses its own (identical) propensity of the arm."""
    X, arms, rewards, _ = _logged(120, seed=4)
    out = []
    for name in ("python", "rust"):
        dr = backend_module(name).DoublyRobust([0, 1, 2], 3, exploration="epsilon", epsilon=0.3)
        for i in range(60):
            dr.update(int(arms[i]), X[i], rewards[i])
        dr.partial_fit(X[60:], arms[60:].tolist(), rewards[60:])
        out.append(dr.policy_values(X[:10]))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-9, atol=1e-12)


def test_pseudo_rewards_by_hand(bk) -> None:
    """One row: Gamma_logged = q + w (r - q) with q = 0 before the row, others q = 0."""
    dr = bk.DoublyRobust(["x", "y"], 1, l2_lambda=1.0, max_weight=3.0)
    dr.update("x", [1.0], 2.0, propensity=0.25)  # w = min(4, 3) = 3: Gamma = 6, ridge halves
    np.testing.assert_allclose(dr.policy_values([[1.0]]), [[3.0, 0.0]])
    np.testing.assert_allclose(dr.predict_expectations([[1.0]]), [[1.0, 0.0]])
    dr.update("x", [1.0], 2.0, propensity=1.0)  # q = 1 before: Gamma = 1 + (2 - 1) = 2
    np.testing.assert_allclose(dr.policy_values([[1.0]]), [[8.0 / 3.0, 0.0]])  # q_y = 0


# --- propensities ---------------------------------------------------------------------------


@pytest.mark.parametrize("exploration", EXPLORATIONS)
def test_propensities_are_distributions(bk, exploration: str) -> None:
    dr = _trained(bk, exploration, epsilon=0.1)
    X = np.random.default_rng(2).normal(size=(40, 3))
    P = dr.propensities(X)
    assert P.shape == (40, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    Q = dr.propensities(X, available_arms=["c", "a"])
    assert np.all(Q[:, 1] == 0.0)
    np.testing.assert_allclose(Q.sum(axis=1), 1.0)


def test_fresh_learner_shares_ties(bk) -> None:
    for exploration in EXPLORATIONS:
        dr = bk.DoublyRobust([1, 2, 3, 4], 2, exploration=exploration)
        np.testing.assert_allclose(dr.propensities([[0.3, -1.0]]), [[0.25] * 4])
        np.testing.assert_allclose(dr.propensities([[1.0, 1.0]], [2, 4]), [[0, 0.5, 0, 0.5]])


@pytest.mark.parametrize("exploration", EXPLORATIONS)
def test_select_frequencies_match_propensities(bk, exploration: str) -> None:
    """Within 5 standard errors, at a context where the three arms are close (softmax, epsilon)
    or tied (a fresh learner, ucb)."""
    n = 6000
    if exploration == "ucb":
        dr = bk.DoublyRobust(["a", "b", "c"], 3, seed=3)
        avail = ["a", "c"]
    else:
        dr = _trained(bk, exploration, epsilon=0.3, temperature=2.0)
        avail = None
    x = np.array([1.0, 0.2, -0.1])
    probs = dr.propensities(x[None, :], avail)[0]
    picks = [dr.select(x, avail, return_propensity=True) for _ in range(n)]
    idx = np.array([["a", "b", "c"].index(a) for a, _ in picks])
    freq = np.bincount(idx, minlength=3) / n
    se = np.sqrt(np.maximum(probs * (1 - probs), 1e-12) / n)
    assert np.all(np.abs(freq - probs) <= 5 * se + 1e-12), (freq, probs)
    for arm, p in picks[:50]:
        assert p == pytest.approx(probs[["a", "b", "c"].index(arm)], rel=1e-12)
    # predict draws the same way (one event per row).
    rows = dr.predict(np.tile(x, (n, 1)), avail)
    freq = np.bincount([["a", "b", "c"].index(a) for a in rows], minlength=3) / n
    assert np.all(np.abs(freq - probs) <= 5 * se + 1e-12), (freq, probs)


def test_same_seed_same_decisions(bk) -> None:
    X = np.random.default_rng(0).normal(size=(30, 3))
    a, b = _trained(bk, "softmax"), _trained(bk, "softmax")
    assert a.predict(X) == b.predict(X)
    assert [a.select(x) for x in X] == [b.select(x) for x in X]


# --- learning -------------------------------------------------------------------------------


def _v_shaped(seed: int, n: int = 5000):
    """Arm 0 pays |z|, arm 1 pays 0.3; the logger plays arm 0 with probability 0.9 for z < 0
    and 0.1 for z >= 0. A linear reward model of arm 0 then sees the falling half of the V:
    it predicts arm 0 is bad for z > 0 (where it is best), while the DR pseudo-rewards are
    unbiased over the whole range, so the linear policy model learns arm 0's mean (0.5) there."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1.0, 1.0, n)
    p0 = np.where(z < 0.0, 0.9, 0.1)
    arms = (rng.random(n) >= p0).astype(int)
    means = np.column_stack([np.abs(z), np.full(n, 0.3)])
    rewards = means[np.arange(n), arms] + rng.normal(0.0, 0.3, n)
    pscore = np.where(arms == 0, p0, 1.0 - p0)
    return {"context": np.column_stack([np.ones(n), z]), "action": arms, "reward": rewards,
            "pscore": pscore}  # fmt: skip


def _true_value(choice_of: object) -> float:
    """The exact value of a policy over z ~ U(-1, 1) (midpoint rule on a fine grid)."""
    z = np.linspace(-1.0, 1.0, 20_001)
    z = 0.5 * (z[1:] + z[:-1])
    choice = np.asarray(choice_of(np.column_stack([np.ones_like(z), z])))
    return float(np.where(choice == 0, np.abs(z), 0.3).mean())


def test_doubly_robust_beats_the_direct_method_offline(bk) -> None:
    """Over 8 seeds, the DR policy's true value minus the DM policy's (argmax of the same
    learner's reward model) is positive by more than 5 standard errors of the mean difference;
    the DR policy is also better than the uniform logger's (0.4)."""
    diffs, values = [], []
    for seed in range(8):
        dr = bk.DoublyRobust([0, 1], 2, exploration="epsilon", epsilon=0.0, seed=seed)
        dr.fit(_v_shaped(seed))
        v_dr = _true_value(lambda X: np.argmax(dr.policy_values(X), axis=1))  # noqa: B023
        v_dm = _true_value(lambda X: np.argmax(dr.predict_expectations(X), axis=1))  # noqa: B023
        diffs.append(v_dr - v_dm)
        values.append(v_dr)
    d = np.array(diffs)
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert d.mean() > 5 * se and d.mean() > 0.05, d
    assert np.mean(values) > 0.4 + 0.05


def test_regret_well_below_random_in_simulate(bk) -> None:
    """On simulate's linear environment (5 arms, d = 5, batches of 20), live DoublyRobust
    (propensity None: its own) has under 40% of a random policy's regret."""
    from banditkit.simulate.envs import LinearEnv
    from banditkit.simulate.policies import POLICIES

    horizon, batch = 4000, 20
    regrets = {}
    for name in ("doubly-robust", "random"):
        env = LinearEnv(5, horizon, np.random.default_rng(0), n_features=5)
        policy = POLICIES[name].build(bk, env, 7, 0)
        regret = 0.0
        for start in range(0, horizon, batch):
            rounds = env.rounds(start, start + batch)
            arms = policy.choose(rounds)
            picked = rounds.means[np.arange(batch), arms]
            regret += float((rounds.means.max(axis=1) - picked).sum())
            policy.learn(rounds.contexts, arms, rounds.rewards[np.arange(batch), arms])
        regrets[name] = regret
    assert regrets["doubly-robust"] < 0.4 * regrets["random"], regrets


# --- refit, history, memory -----------------------------------------------------------------


def test_history_is_bounded_and_refit_uses_the_current_reward_model(bk) -> None:
    X, arms, rewards, p = _logged(200, seed=3)
    dr = bk.DoublyRobust([0, 1, 2], 3, max_history=50)
    dr.fit(X, arms.tolist(), rewards, p)
    assert dr.get_stats()["history_len"] == 50
    # Refit on the last 50 rows = a fresh policy model fitted on them with the final q.
    q = dr.predict_expectations(X[150:])
    dr.refit()
    ref = bk.DoublyRobust([0, 1, 2], 3)
    gamma = q.copy()
    w = 1.0 / p[150:]
    gamma[np.arange(50), arms[150:]] += w * (rewards[150:] - q[np.arange(50), arms[150:]])
    for k in range(3):  # the policy model of arm k is ridge on (x, Gamma_k)
        A = np.eye(3) + X[150:].T @ X[150:]
        theta = np.linalg.solve(A, X[150:].T @ gamma[:, k])
        np.testing.assert_allclose(dr.policy_values(X[:5])[:, k], X[:5] @ theta, rtol=1e-8)
    del ref
    before = dr.to_bytes()
    dr.refit()
    np.testing.assert_allclose(
        type(dr).from_bytes(before).policy_values(X[:5]), dr.policy_values(X[:5])
    )


def test_memory_is_flat(bk) -> None:
    """Nothing grows with the updates once the history ring is full (file size = memory)."""
    X, arms, rewards, p = _logged(2000, seed=6)
    dr = bk.DoublyRobust([0, 1, 2], 3, max_history=100)
    dr.partial_fit(X[:1000], arms[:1000].tolist(), rewards[:1000], p[:1000])
    size = len(dr.to_bytes())
    dr.partial_fit(X[1000:], arms[1000:].tolist(), rewards[1000:], p[1000:])
    assert len(dr.to_bytes()) == size


# --- input ----------------------------------------------------------------------------------


def test_logged_mapping_equals_explicit_arguments(bk) -> None:
    X, arms, rewards, p = _logged(100, seed=8)
    a = bk.DoublyRobust(["u", "v", "w"], 3)
    a.fit({"context": X, "action": arms, "reward": rewards, "pscore": p})
    b = bk.DoublyRobust(["u", "v", "w"], 3)
    b.fit(X, [["u", "v", "w"][i] for i in arms], rewards, p)
    np.testing.assert_array_equal(a.policy_values(X[:5]), b.policy_values(X[:5]))
    a.partial_fit({"context": X, "action": arms, "reward": rewards})  # no pscore: its own
    assert a.get_stats()["total_updates"] == 200


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda d: d.update("a", [1.0, np.nan, 0.0], 1.0), "context"),
        (lambda d: d.update("a", [1.0, 0.0], 1.0), "context"),
        (lambda d: d.update("zz", [1.0, 0.0, 0.0], 1.0), "unknown arm"),
        (lambda d: d.update("a", [1.0, 0.0, 0.0], math.inf), "reward"),
        (lambda d: d.update("a", [1.0, 0.0, 0.0], 1.0, propensity=0.0), "propensity"),
        (lambda d: d.update("a", [1.0, 0.0, 0.0], 1.0, propensity=1.5), "propensity"),
        (lambda d: d.partial_fit(np.ones((2, 3)), ["a", "b"], [1.0, 2.0], [0.5, -1]), "propens"),
        (lambda d: d.partial_fit(np.ones((2, 3)), ["a", "b"], [1.0, 2.0], [0.5]), "propens"),
        (lambda d: d.partial_fit(np.ones((2, 3)), ["a", "q"], [1.0, 2.0]), "unknown arm"),
        (lambda d: d.partial_fit(np.ones((2, 3)), ["a", "b"], [1.0]), "same length"),
        (lambda d: d.partial_fit(np.ones((2, 3)), ["a", "b"], [1.0, np.nan]), "rewards"),
        (lambda d: d.fit(np.ones((2, 4)), ["a", "b"], [1.0, 1.0]), "columns"),
        (lambda d: d.fit({"context": np.ones((1, 3)), "action": [3], "reward": [1.0]}), "action"),
        (lambda d: d.fit({"context": np.ones((1, 3)), "reward": [1.0]}), "action"),
        (lambda d: d.fit(np.ones((2, 3))), "arms and rewards"),
        (lambda d: d.select([1.0, 0.0, 0.0], available_arms=[]), "available_arms"),
        (lambda d: d.propensities(np.ones((2, 3)), ["nope"]), "unknown arm"),
        (lambda d: d.update("a", [1e200, 0.0, 0.0], 1e300, propensity=1e-300), "non-finite"),
        (lambda d: d.partial_fit(np.full((2, 3), 1e200), ["a", "b"], [1e300, 1.0]), "non-finite"),
        (lambda d: d.add_arm("d"), "cannot add arms"),
        (lambda d: d.remove_arm("a"), "cannot remove arms"),
    ],
)
def test_bad_input_raises_and_changes_nothing(bk, call, field: str) -> None:
    dr = _trained(bk, "epsilon")
    before = _state(dr)
    with pytest.raises(ValueError, match=field):
        call(dr)
    assert _state(dr) == before


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"n_features": 0}, "n_features"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
        ({"l2_lambda": 0.0}, "l2_lambda"),
        ({"max_weight": 0.0}, "max_weight"),
        ({"max_weight": math.nan}, "max_weight"),
        ({"max_history": -1}, "max_history"),
        ({"exploration": "thompson"}, "exploration"),
        ({"epsilon": 1.5}, "epsilon"),
        ({"temperature": 0.0}, "temperature"),
    ],
)
def test_bad_knobs(bk, kw: dict, field: str) -> None:
    args = {"n_features": 3, **kw}
    with pytest.raises(ValueError, match=field):
        bk.DoublyRobust(["a", "b"], **args)


def test_knobs_are_readable(bk) -> None:
    dr = bk.DoublyRobust(["a", 2], 4, alpha=0.5, max_weight=10.0, max_history=7,
                         exploration="softmax", epsilon=0.2, temperature=0.4)  # fmt: skip
    assert dr.arms == ["a", 2] and dr.n_features == 4 and dr.alpha == 0.5
    assert dr.max_weight == 10.0 and dr.max_history == 7 and dr.exploration == "softmax"
    assert dr.epsilon == 0.2 and dr.temperature == 0.4 and dr.l2_lambda == 1.0
    assert "exploration='softmax'" in repr(dr) and "max_history=7" in repr(dr)
    assert bk.DoublyRobust(["a"], 1).max_weight == math.inf


# --- saving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["python", "rust"])
@pytest.mark.parametrize("reader", ["python", "rust"])
def test_files_cross_backends(writer: str, reader: str) -> None:
    dr = _trained(backend_module(writer), "softmax", max_history=40, temperature=0.5)
    loaded = backend_module(reader).DoublyRobust.from_bytes(dr.to_bytes())
    X = np.random.default_rng(1).normal(size=(20, 3))
    for method in ("policy_values", "predict_expectations", "propensities"):
        np.testing.assert_allclose(getattr(loaded, method)(X), getattr(dr, method)(X), rtol=1e-12)
    assert repr(loaded) == repr(dr)
    loaded.refit()
    dr.refit()
    np.testing.assert_allclose(loaded.policy_values(X), dr.policy_values(X), rtol=1e-9)


def test_save_load_pickle_copy(bk, tmp_path, monkeypatch) -> None:
    dr = _trained(bk, "ucb")
    X = np.random.default_rng(1).normal(size=(10, 3))
    for other in (pickle.loads(pickle.dumps(dr)), copy.deepcopy(dr), bk.DoublyRobust.from_bytes(
            dr.to_bytes())):  # fmt: skip
        np.testing.assert_array_equal(other.decision_function(X), dr.decision_function(X))
        assert other.predict(X) == copy.copy(dr).predict(X)
    banditkit.save(dr, tmp_path / "dr.bkit")
    loaded = banditkit.load(tmp_path / "dr.bkit")
    assert type(loaded).__name__ == "DoublyRobust"
    np.testing.assert_allclose(loaded.propensities(X), dr.propensities(X), rtol=1e-12)


def test_damaged_file_is_refused(bk) -> None:
    data = bytearray(_trained(bk).to_bytes())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(banditkit.FormatError):
        bk.DoublyRobust.from_bytes(bytes(data))
    with pytest.raises(banditkit.FormatError):
        bk.DoublyRobust.from_bytes(bk.LinUCB(["a"], 3).to_bytes())


# --- serve ----------------------------------------------------------------------------------


def _served_model(arms: list[str], **params):
    from banditkit.serve.policies import POLICIES

    policy = POLICIES["doubly-robust"]
    model = policy.create(arms, policy.parse_params({"n_features": 3, **params}))
    X, idx, rewards, pscore = _logged(90, seed=2)
    policy.apply(model, [arms[i] for i in idx], X, rewards, list(pscore))
    return policy, model


@pytest.mark.usefixtures("serve_bk")
@pytest.mark.parametrize("exploration", EXPLORATIONS)
def test_serve_draws_match_propensities_and_select(exploration: str) -> None:
    """The serve adapter's draws follow the learner's exact propensities (within 5 SE), and
    so does the learner's own `select`."""
    from test_serve_policies import assert_frequencies

    arms = ["a", "b", "c"]
    policy, model = _served_model(arms, exploration=exploration, epsilon=0.3, temperature=2.0)
    rng = np.random.default_rng(4)
    x = np.array([1.0, 0.1, -0.2])
    n = 6000
    for cand in (None, (0, 2)):
        names = None if cand is None else [arms[i] for i in cand]
        probs = model.propensities(x[None, :], names)[0]
        chosen, props = policy.decide(model, arms, np.tile(x, (n, 1)), [cand] * n, rng, {})
        np.testing.assert_allclose(props, probs[chosen], rtol=1e-12)
        assert_frequencies(chosen, probs, 3)
        picks = [model.select(x, available_arms=names) for _ in range(n)]
        assert_frequencies(np.array([arms.index(p) for p in picks]), probs, 3)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "params.n_features"),
        ({"n_features": 3, "alpha": -1}, "params.alpha"),
        ({"n_features": 3, "exploration": "greedy"}, "params.exploration"),
        ({"n_features": 3, "epsilon": 2}, "params.epsilon"),
        ({"n_features": 3, "max_weight": 0}, "params.max_weight"),
        ({"n_features": 3, "max_history": -5}, "params.max_history"),
    ],
)
def test_serve_bad_params_name_the_field(params: dict, field: str) -> None:
    from banditkit.serve.errors import InvalidInput
    from banditkit.serve.policies import POLICIES

    with pytest.raises(InvalidInput) as err:
        POLICIES["doubly-robust"].parse_params(params)
    assert err.value.field == field and err.value.status == 422


@pytest.mark.usefixtures("serve_bk")
def test_serve_engine_recommends_logs_and_learns(tmp_path) -> None:
    """In process on SQLite: decisions carry the learner's exact propensities, rewards (by
    event id and by arm) are applied, and the served model's params read back."""
    from banditkit.serve import Engine

    eng = Engine(f"sqlite:///{tmp_path / 's.db'}", poll_interval=3600.0,
                 snapshot_every_seconds=3600.0, seed=7)  # fmt: skip
    eng.start()
    try:
        params = {"n_features": 3, "exploration": "epsilon", "epsilon": 0.2}
        eng.create("dr", "doubly-robust", ["a", "b", "c"], params)
        reqs = [{"id": str(i), "context": [1.0, 0.1 * i, -0.5]} for i in range(20)]
        reqs[3]["candidates"] = ["b"]
        results = eng.recommend("dr", reqs)
        model = eng._experiment("dr").model
        for req, res in zip(reqs, results, strict=True):
            names = req.get("candidates")
            p = model.propensities([req["context"]], names)[0][["a", "b", "c"].index(res["arm"])]
            assert res["propensity"] == pytest.approx(p, rel=1e-12)
        assert results[3]["arm"] == "b" and results[3]["propensity"] == 1.0
        rewards = [{"event_id": r["event_id"], "reward": 1.0 if r["arm"] == "c" else 0.0}
                   for r in results]  # fmt: skip
        rewards.append({"arm": "a", "context": [1.0, 0.0, 0.0], "reward": 0.5})
        assert eng.reward("dr", rewards) == 21
        eng.catch_up("dr")
        model = eng._experiment("dr").model
        assert model.get_stats()["total_updates"] == 21
        # Each reward went in with the propensity its decision was logged with (the one sent
        # by arm alone with the learner's own): the same as replaying them by hand.
        replay = banditkit.DoublyRobust(["a", "b", "c"], 3, exploration="epsilon", epsilon=0.2)
        for req, res in zip(reqs, results, strict=True):
            reward = 1.0 if res["arm"] == "c" else 0.0
            replay.update(res["arm"], req["context"], reward, res["propensity"])
        replay.update("a", [1.0, 0.0, 0.0], 0.5)
        X = np.random.default_rng(0).normal(size=(6, 3))
        np.testing.assert_array_equal(model.policy_values(X), replay.policy_values(X))
        desc = eng.describe("dr")
        assert desc["policy"] == "doubly-robust"
        assert desc["params"]["max_weight"] is None and desc["params"]["epsilon"] == 0.2
    finally:
        eng.close()
