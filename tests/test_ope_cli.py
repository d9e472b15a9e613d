"""`banditkit evaluate`: on log files and store event logs, and `--simulate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from banditkit.cli import main
from banditkit.ope import SyntheticBandit, save_logged


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ope_cli")
    world = SyntheticBandit(n_actions=3, n_features=2, seed=4)
    log = world.sample(400, 0)
    save_logged({k: log[k] for k in ("context", "action", "reward", "pscore")}, folder / "log.npz")
    save_logged(dict(log, n_actions=3), folder / "full.npz")  # with behaviour_dist
    np.savez(folder / "pi.npz", action_dist=world.target(log["expected_reward"]))
    return folder


@pytest.mark.parametrize("policy", ["uniform", "greedy", "linucb", "lints", "pi.npz"])
def test_evaluate_a_log(files, policy, capsys):
    spec = str(files / policy) if policy.endswith(".npz") else policy
    out_json = files / f"{policy}.json"
    code = main(
        [
            "evaluate",
            str(files / "log.npz"),
            "--policy",
            spec,
            "--n-bootstrap",
            "200",
            "--json",
            str(out_json),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    for name in ("IPS", "SNIPS", "DM", "DR", "SNDR", "SwitchDR", "DRos"):
        assert name in text
    doc = json.loads(out_json.read_text())
    assert doc["events"] == 400 and doc["arms"] == 3
    for row in doc["rows"]:
        assert row["boot_lower"] <= row["value"] <= row["boot_upper"]


def test_logged_policy_is_an_on_policy_check(files, capsys):
    assert (
        main(
            [
                "evaluate",
                str(files / "log.npz"),
                "--policy",
                "logged",
                "--json",
                str(files / "l.json"),
            ]
        )
        == 0
    )
    rows = json.loads((files / "l.json").read_text())["rows"]
    assert [r["estimator"] for r in rows] == ["IPS", "SNIPS"]  # no full distribution: no DM
    mean_reward = np.load(files / "log.npz")["reward"].mean()
    assert rows[0]["value"] == pytest.approx(mean_reward)
    assert (
        main(["evaluate", str(files / "log.npz"), "--policy", "logged", "--estimators", "DR"]) == 2
    )
    assert "IPS or SNIPS" in capsys.readouterr().err
    # With the logging policy's whole distribution in the log, every estimator runs.
    assert (
        main(["evaluate", str(files / "full.npz"), "--policy", "logged", "--n-bootstrap", "0"]) == 0
    )


def test_evaluate_a_store_event_log(tmp_path, capsys):
    from banditkit.store import open_store

    url = f"sqlite:///{tmp_path / 's.db'}"
    rng = np.random.default_rng(0)
    events = []
    for i in range(60):
        arm = int(rng.integers(2))
        events.append(
            {
                "id": f"d{i}",
                "kind": "decision",
                "arm": arm,
                "propensity": 0.5,
                "context": [float(i % 3)],
            }
        )
        events.append(
            {"id": f"r{i}", "kind": "reward", "reward": float(arm), "decision_id": f"d{i}"}
        )
    with open_store(url) as store:
        store.append_events("home", events)
    assert (
        main(["evaluate", url, "--name", "home", "--policy", "greedy", "--n-bootstrap", "100"]) == 0
    )
    out = capsys.readouterr().out
    assert "60 events, 2 arms" in out
    assert main(["evaluate", url, "--policy", "uniform"]) == 2
    assert "--name" in capsys.readouterr().err


def test_simulate_with_json_and_plot(tmp_path, capsys):
    args = ["evaluate", "--simulate", "--repeats", "8", "--events", "300", "--arms", "4"]
    args += ["--json", str(tmp_path / "s.json"), "--plot", str(tmp_path / "s.png")]
    assert main(args) == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert {r["estimator"] for r in doc["rows"]} == {
        "IPS",
        "SNIPS",
        "DM",
        "DR",
        "SNDR",
        "SwitchDR",
        "DRos",
    }
    assert all(r["rmse"] >= abs(r["bias"]) for r in doc["rows"])
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert "bias" in capsys.readouterr().out


def test_plot_of_a_log(files):
    out = files / "e.png"
    assert (
        main(["evaluate", str(files / "log.npz"), "--n-bootstrap", "50", "--plot", str(out)]) == 0
    )
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "LOG"),
        (["LOG", "--simulate"], "not both"),
        (["missing.npz"], "no such file"),
        (["LOG", "--policy", "best"], "unknown policy"),
        (["LOG", "--estimators", "IPS,XYZ"], "unknown estimator"),
        (["LOG", "--plot", "x.jpg"], "png"),
        (["LOG", "--json", "/no/such/dir/x.json"], "no directory"),
        (["LOG", "--alpha", "2"], "alpha"),
    ],
)
def test_errors(files, capsys, args, message):
    args = [str(files / "log.npz") if a == "LOG" else a for a in args]
    assert main(["evaluate", *args]) == 2
    assert message in capsys.readouterr().err


def test_bench_topic_runs_small(monkeypatch):
    from banditkit.bench import ope as bench_ope
    from banditkit.cli import BENCH_TOPICS

    assert "ope" in BENCH_TOPICS
    monkeypatch.setattr(bench_ope, "EVENTS", 2000)
    monkeypatch.setattr(bench_ope, "RESAMPLES", 20)
    rows = bench_ope.run(quick=True)
    assert {r["impl"] for r in rows} >= {"python"}
    for r in rows:
        assert r["group"] == "ope.dr_interval" and r["per"] == 40_000 and r["median_s"] > 0


def test_lints_policy_is_exact_thompson_on_the_ridge_model():
    """`--policy lints`: per event, the exact win probabilities of N(q, (alpha width)^2),
    which Thompson draws from the same scores reproduce within 5 standard errors."""
    from banditkit.ope import policies
    from banditkit.ope.reward_model import RewardModel
    from banditkit.python.exact import prob_best_gaussian

    log = SyntheticBandit(n_actions=3, n_features=2, seed=4).sample(300, 0)
    log = dict(log, n_actions=3)
    pi = policies.action_dist("lints", log, alpha=2.0)
    model = RewardModel(3, n_folds=1).fit(log["context"], log["action"], log["reward"])
    q, width = model.predict(log["context"]), model.ridge.widths(log["context"])
    assert pi.shape == (300, 3)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, atol=1e-12)
    for i in range(0, 300, 37):
        np.testing.assert_allclose(pi[i], prob_best_gaussian(q[i], 2.0 * width[i]), atol=1e-12)
    draws = 20_000
    rng = np.random.default_rng(0)
    z = q[0] + 2.0 * width[0] * rng.standard_normal((draws, 3))
    freq = np.bincount(np.argmax(z, axis=1), minlength=3) / draws
    assert np.all(np.abs(freq - pi[0]) <= 5 * np.sqrt(pi[0] * (1 - pi[0]) / draws))
