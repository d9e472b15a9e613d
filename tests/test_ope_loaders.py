"""Logs in and out (dict, NPZ, CSV, Parquet, the store's event log) and the reward model."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from banditkit.ope import (
    DR,
    RewardModel,
    SyntheticBandit,
    check_logged,
    from_events,
    from_store,
    load_logged,
    save_logged,
)


@pytest.fixture(scope="module")
def log():
    full = SyntheticBandit(n_actions=4, n_features=3, seed=2).sample(300, 1)
    return {k: full[k] for k in ("context", "action", "reward", "pscore", "n_actions")}


def _same(a, b):
    assert a["n_actions"] == b["n_actions"]
    for key in ("context", "action", "reward", "pscore"):
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("ext", ["npz", "csv", "parquet"])
def test_round_trip(tmp_path, log, ext):
    if ext == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"log.{ext}"
    save_logged(log, path)
    back = load_logged(path, n_actions=None if ext != "csv" else 4)
    _same(check_logged(log), back)


def test_npz_keeps_arm_labels_and_distributions(tmp_path, log):
    extra = dict(log, arms=["a", 2, "c", "d"], behaviour_dist=np.full((300, 4), 0.25))
    save_logged(extra, tmp_path / "log.npz")
    back = load_logged(tmp_path / "log.npz")
    assert back["arms"] == ["a", 2, "c", "d"]
    np.testing.assert_array_equal(back["behaviour_dist"], extra["behaviour_dist"])


def test_parquet_without_pyarrow_names_the_extra(tmp_path, log, monkeypatch):
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ImportError, match=r"banditkit\[ope\]"):
        save_logged(log, tmp_path / "log.parquet")
    assert not (tmp_path / "log.parquet").exists()


def test_bad_logs_name_the_field(tmp_path, log):
    with pytest.raises(ValueError, match="pscore"):
        check_logged(dict(log, pscore=np.r_[log["pscore"][:-1], 0.0]))
    with pytest.raises(ValueError, match="action"):
        check_logged(dict(log, n_actions=2))
    with pytest.raises(ValueError, match="context"):
        check_logged(dict(log, context=log["context"][:10]))
    with pytest.raises(ValueError, match="lacks reward"):
        check_logged({k: v for k, v in log.items() if k != "reward"})
    with pytest.raises(ValueError, match=r"\.npz, \.csv or \.parquet"):
        save_logged(log, tmp_path / "log.txt")
    assert not (tmp_path / "log.txt").exists()
    (tmp_path / "bad.csv").write_text("action,reward,pscore\n0,1,x\n")
    with pytest.raises(ValueError, match="number"):
        load_logged(tmp_path / "bad.csv")


def _events():
    return [
        {"id": "d1", "kind": "decision", "arm": "red", "propensity": 0.5, "context": [1.0, 0.0]},
        {"id": "d2", "kind": "decision", "arm": "blue", "propensity": 0.25, "context": [0.0, 1.0]},
        {"id": "d3", "kind": "decision", "arm": "red", "propensity": 0.5, "context": [1.0, 1.0]},
        {"id": "d4", "kind": "decision", "arm": "green", "propensity": 1.0, "context": [2.0, 2.0]},
        {"id": "r1", "kind": "reward", "reward": 1.0, "decision_id": "d1"},
        {"id": "r2", "kind": "reward", "reward": 0.0, "decision_id": "d2"},
        {"id": "r3a", "kind": "reward", "reward": 1.0, "decision_id": "d3"},
        {"id": "r3b", "kind": "reward", "reward": 2.0, "decision_id": "d3"},
        {"id": "r9", "kind": "reward", "reward": 5.0, "decision_id": "nope"},
        {"id": "r0", "kind": "reward", "reward": 5.0},
    ]


def test_from_a_sqlite_store_event_log(tmp_path):
    from banditkit.store import open_store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_store(url) as store:
        store.append_events("home", _events())
        got = from_store(store, "home")
    # d4 has no reward and is left out; d3's two rewards add up; r9/r0 name no decision.
    assert got["arms"] == ["red", "blue"]
    np.testing.assert_array_equal(got["action"], [0, 1, 0])
    np.testing.assert_array_equal(got["reward"], [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(got["pscore"], [0.5, 0.25, 0.5])
    np.testing.assert_array_equal(got["context"], [[1, 0], [0, 1], [1, 1]])
    by_url = from_store(url, "home", arms=["blue", "red", "green"])
    assert by_url["n_actions"] == 3
    np.testing.assert_array_equal(by_url["action"], [1, 0, 1])
    # And it is a log the estimators take.
    dist = np.full((3, 3), 1 / 3)
    q = np.zeros((3, 3))
    assert np.isfinite(
        DR().estimate_policy_value(by_url["reward"], by_url["action"], by_url["pscore"], dist, q)
    )


def test_from_events_errors():
    with pytest.raises(ValueError, match="no decision with a reward"):
        from_events(_events()[:4])
    with pytest.raises(ValueError, match="not in arms"):
        from_events(_events(), arms=["red"])


def test_reward_model_is_cross_fitted(log):
    model = RewardModel(4, n_folds=5, seed=3)
    q = model.fit_predict(log["context"], log["action"], log["reward"])
    assert q.shape == (300, 4)
    # Changing one event's reward leaves its own prediction unchanged (its fold's model never
    # saw it) but moves other folds' predictions.
    changed = log["reward"].copy()
    changed[0] += 100.0
    q2 = model.fit_predict(log["context"], log["action"], changed)
    np.testing.assert_array_equal(q2[0], q[0])
    assert not np.allclose(q2, q)


def test_reward_model_fits_linear_rewards(log):
    world = SyntheticBandit(n_actions=4, n_features=3, seed=2)
    big = world.sample(5000, 4)
    q = RewardModel(4).fit_predict(big["context"], big["action"], big["reward"])
    assert np.sqrt(np.mean((q - big["expected_reward"]) ** 2)) < 0.1


def test_reward_model_with_a_sklearn_regressor(log):
    linear = pytest.importorskip("sklearn.linear_model")
    q = RewardModel(4, linear.LinearRegression(), n_folds=3).fit_predict(
        log["context"], log["action"], log["reward"]
    )
    ridge = RewardModel(4, alpha=1e-9, n_folds=3).fit_predict(
        log["context"], log["action"], log["reward"]
    )
    np.testing.assert_allclose(q, ridge, atol=1e-6)


def test_reward_model_errors(log):
    with pytest.raises(ValueError, match="n_folds"):
        RewardModel(4, n_folds=0)
    with pytest.raises(TypeError, match="base_model"):
        RewardModel(4, base_model=object())
    with pytest.raises(ValueError, match="action"):
        RewardModel(2).fit_predict(log["context"], log["action"], log["reward"])
    with pytest.raises(ValueError, match="context"):
        RewardModel(4).fit_predict(log["context"][:5], log["action"], log["reward"])
