"""`banditkit tune`: an Optuna study over a policy's knobs, kept in the store's database.

Tiny horizons throughout: what is tested is the machinery (trial 0 = the defaults, the best no
worse than them, resuming, determinism, the serve config, the errors), not the tuning."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import banditkit
from banditkit.cli import main

optuna = pytest.importorskip("optuna")

from banditkit.simulate.runner import Config, run_task  # noqa: E402
from banditkit.tune import serveconfig, study  # noqa: E402
from banditkit.tune.objective import Settings, load_log, trial_value  # noqa: E402
from banditkit.tune.spaces import SPACES, Context  # noqa: E402

SMALL = ["--rounds", "150", "--repeats", "2", "--arms", "3", "--features", "3", "--quiet"]
SETTINGS = dict(rounds=150, repeats=2, arms=3, features=3)


def tune(tmp_path: Path, *args: str, store: str | None = None) -> int:
    return main(
        ["tune", *args, "--store", store or str(tmp_path / "bk.db"),
         "--config", str(tmp_path / "tuned.toml"), *SMALL]
    )  # fmt: skip


def load(tmp_path: Path, name: str) -> Any:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'bk.db'}")


def finished(s: Any) -> list[Any]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return s.get_trials(states=states)


@pytest.mark.parametrize("policy", ["linucb", "lints"])
def test_ten_trials_best_no_worse_than_the_defaults(
    tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "history.png"
    assert tune(tmp_path, policy, "--trials", "10", "--plot", str(plot)) == 0
    s = load(tmp_path, f"{policy}-regret")
    done = finished(s)
    assert [t.number for t in done] == list(range(10))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in done)
    first = done[0]
    assert first.user_attrs[study.DEFAULTS_ATTR] is True
    # Trial 0 plays exactly what `banditkit simulate --policies POLICY` plays.
    defaults = SPACES[policy].defaults("auto", Context(noise_sd=0.5))
    assert first.user_attrs[study.KNOBS_ATTR] == SPACES[policy].applying(defaults) == defaults
    assert defaults[SPACES[policy].scale_knob] == 0.5  # the linear env's noise sd
    cfg = Config(env="linear", policies=(policy,), **SETTINGS)
    simulated = [run_task(cfg, policy, r).cumulative_regret[-1] for r in range(2)]
    assert first.value == pytest.approx(float(np.mean(simulated)), rel=1e-12)
    assert s.best_value <= first.value
    assert s.best_value == min(t.value for t in done)
    assert s.direction == optuna.study.StudyDirection.MINIMIZE

    out = capsys.readouterr().out
    assert f"best (trial {s.best_trial.number}): {s.best_value:.6g}" in out
    assert f"default knobs (trial 0): {first.value:.6g}" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    body = serveconfig.experiment_body(str(tmp_path / "tuned.toml"))
    assert body["params"] == {"n_features": 3, **s.best_trial.user_attrs[study.KNOBS_ATTR]}


def test_a_trial_value_depends_on_its_knobs_only() -> None:
    settings = Settings(policy="linucb", **SETTINGS)
    knobs = {"alpha": 0.3, "l2_lambda": 2.0, "window_size": 0, "gamma": 0.99}
    assert trial_value(settings, knobs) == trial_value(settings, knobs)
    assert trial_value(settings, knobs) != trial_value(settings, {**knobs, "alpha": 3.0})


def test_resuming_continues_the_study_and_gives_the_same_trials(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert tune(a, "linucb", "--trials", "4", "--study", "s", "--parallel", "2") == 0
    assert tune(a, "linucb", "--trials", "4", "--study", "s", "--parallel", "2") == 0
    assert tune(b, "linucb", "--trials", "8", "--study", "s", "--parallel", "2") == 0
    resumed, once = finished(load(a, "s")), finished(load(b, "s"))
    assert [t.number for t in resumed] == list(range(8))
    assert sum(bool(t.user_attrs.get(study.DEFAULTS_ATTR)) for t in resumed) == 1
    # Samplers seeded by (seed, trial number): 4 + 4 trials are the 8 of one run.
    assert [t.params for t in resumed] == [t.params for t in once]
    assert [t.value for t in resumed] == [t.value for t in once]


def test_resuming_with_other_settings_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tune(tmp_path, "linucb", "--trials", "1", "--study", "s") == 0
    capsys.readouterr()
    code = main(["tune", "linucb", "--trials", "1", "--study", "s", "--store",
                 str(tmp_path / "bk.db"), "--rounds", "151", "--repeats", "2", "--arms", "3",
                 "--features", "3", "--config", str(tmp_path / "x.toml")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "rounds 150 (now 151)" in err and len(err.strip().splitlines()) == 1
    assert len(finished(load(tmp_path, "s"))) == 1
    assert not (tmp_path / "x.toml").exists()


def test_the_study_and_the_store_share_one_database(tmp_path: Path) -> None:
    from banditkit.store import open_store

    url = f"sqlite:///{tmp_path / 'bk.db'}"
    model = banditkit.LinUCB([0, 1], 2)
    with open_store(url) as store:  # the store first, then the study ...
        store.put("kept", model)
    assert tune(tmp_path, "linucb", "--trials", "2", store=url) == 0
    with open_store(url, create=False) as store:  # ... and the store still works after it
        assert store.names() == ["kept"]
        assert store.get("kept").to_bytes() == model.to_bytes()
        store.put("kept", model)
        assert [v.version for v in store.versions("kept")] == [1, 2]
    assert len(finished(load(tmp_path, "linucb-regret"))) == 2

    fresh = tmp_path / "fresh"
    fresh.mkdir()  # the study first, then the store: a path works as the SQLite file
    assert tune(fresh, "lints", "--trials", "1") == 0
    with open_store(f"sqlite:///{fresh / 'bk.db'}", create=False) as store:
        assert store.names() == []
        store.put("m", model)


def test_postgresql_holds_the_study_and_the_store(tmp_path: Path, postgres_url: str) -> None:
    pytest.importorskip("psycopg")
    from banditkit.store import open_store

    assert tune(tmp_path, "linucb", "--trials", "2", "--study", "pg", store=postgres_url) == 0
    assert tune(tmp_path, "linucb", "--trials", "1", "--study", "pg", store=postgres_url) == 0
    _, sqlalchemy_url = study.store_urls(postgres_url)
    s = optuna.load_study(study_name="pg", storage=sqlalchemy_url)
    assert len(finished(s)) == 3
    with open_store(postgres_url, create=False) as store:
        assert store.names() == []


def test_the_serve_config_starts_the_tuned_experiment(tmp_path: Path, capsys) -> None:
    """`banditkit serve --config` creates the config's experiment in the store before it
    serves (once: a second start serves the stored one), with the tuned knobs."""
    from banditkit.serve.cli import create_experiments
    from banditkit.serve.engine import Engine
    from banditkit.serve.settings import load_settings, read_experiments

    assert tune(tmp_path, "linucb", "--trials", "3") == 0
    path = tmp_path / "tuned.toml"
    settings = load_settings(path, environ={})
    assert settings.store == f"sqlite:///{tmp_path / 'bk.db'}"
    body = serveconfig.experiment_body(str(path))
    best = load(tmp_path, "linucb-regret").best_trial.user_attrs[study.KNOBS_ATTR]
    assert body["policy"] == "linucb" and body["arms"] == [0, 1, 2]

    assert read_experiments(path) == [body]
    assert create_experiments(settings, read_experiments(path)) is None
    assert create_experiments(settings, read_experiments(path)) is None
    err = capsys.readouterr().err
    assert "created experiment 'linucb-regret'" in err and "exists: serving it as stored" in err
    engine = Engine(settings.store, poll_interval=3600.0, snapshot_every_seconds=3600.0, seed=1)
    engine.start()
    try:
        created = engine.describe(body["name"])
        assert created["params"] == {**created["params"], "n_features": 3, **best}
        [decision] = engine.recommend(body["name"], [{"id": "u", "context": [1.0, 0.2, -0.3]}])
        assert decision["arm"] in (0, 1, 2) and 0 < decision["propensity"] <= 1
    finally:
        engine.close()


def test_ope_objective_on_a_log(tmp_path: Path) -> None:
    from banditkit.ope import DR, RewardModel, SyntheticBandit, save_logged

    world = SyntheticBandit(3, 3, seed=1)
    log_path = tmp_path / "log.npz"
    save_logged(world.sample(400, seed=2), log_path)
    assert tune(tmp_path, "linucb", "--trials", "6", "--log", str(log_path)) == 0
    s = load(tmp_path, "linucb-ope")
    assert s.direction == optuna.study.StudyDirection.MAXIMIZE
    done = finished(s)
    assert s.best_value >= done[0].value and done[0].user_attrs[study.DEFAULTS_ATTR]

    # Trial 0, recomputed by hand: LinUCB (alpha 1) fitted on the first half, DR on the rest.
    log = np.load(log_path)
    x, a, r, p = log["context"], log["action"], log["reward"], log["pscore"]
    model = banditkit.LinUCB([0, 1, 2], 3, seed=0)
    model.partial_fit(x[:200], a[:200].tolist(), r[:200])
    scores = np.asarray(model.decision_function(x[200:]))
    pi = (scores == scores.max(axis=1, keepdims=True)).astype(float)
    pi /= pi.sum(axis=1, keepdims=True)
    q = RewardModel(3, n_folds=5, seed=0).fit_predict(x[200:], a[200:], r[200:])
    assert done[0].value == pytest.approx(
        DR().estimate_policy_value(r[200:], a[200:], p[200:], pi, q)
    )


def test_lints_off_policy_distribution_is_exact(tmp_path: Path) -> None:
    """LinTS's action distribution (exact win probabilities) matches its own draws."""
    from banditkit.tune.objective import action_distribution

    rng = np.random.default_rng(3)
    model = banditkit.LinTS([0, 1, 2], 2, v=0.8, seed=5)
    x = rng.normal(size=(60, 2))
    model.partial_fit(x, rng.integers(0, 3, 60).tolist(), rng.normal(size=60))
    row = np.array([[0.3, -0.7]])
    pi = action_distribution(model, row)[0]
    draws = 4000
    counts = np.bincount([model.select(row[0]) for _ in range(draws)], minlength=3) / draws
    se = np.sqrt(pi * (1 - pi) / draws)
    assert np.all(np.abs(counts - pi) <= 5 * se + 1e-12)


def test_every_available_space_matches_its_class() -> None:
    """Knob names exist on the class, defaults are a point of the space (so trial 0 is valid),
    and every point of the space (conditional knobs included) builds the class."""
    for name, space in SPACES.items():
        if space.available("auto") is not None:
            continue
        defaults = space.defaults("auto", Context())
        trial_0 = space.applying(defaults)
        assert space.suggest(optuna.trial.FixedTrial(trial_0), defaults) == trial_0, name
        for knob in space.knobs:
            if knob.kind != "choice" and knob.searchable(defaults[knob.name]):
                low, high = knob.range_with(defaults[knob.name])
                assert low <= defaults[knob.name] <= high
        sampler = optuna.samplers.RandomSampler(seed=0)
        s = optuna.create_study(sampler=sampler)
        for _ in range(20):
            knobs = space.suggest(s.ask(), defaults)
            space.model_class(banditkit)([0, 1, 2], 2, **knobs).predict(np.ones((1, 2)))


def test_conditional_knobs_are_searched_only_when_they_apply() -> None:
    from banditkit.tune.spaces import Knob, Space

    space = Space("x", "X", "x", (
        Knob("mode", "choice", choices=("a", "b")),
        Knob("rate", "log", 0.01, 1.0, when=("mode", "b")),
    ))  # fmt: skip
    defaults = {"mode": "a", "rate": 0.05}
    assert space.applying(defaults) == {"mode": "a"}
    fixed = optuna.trial.FixedTrial({"mode": "b", "rate": 0.2})
    assert space.suggest(fixed, defaults) == {"mode": "b", "rate": 0.2}
    assert space.suggest(optuna.trial.FixedTrial({"mode": "a"}), defaults) == {"mode": "a"}


def test_missing_learners_are_reported_not_imported(capsys: pytest.CaptureFixture[str]) -> None:
    for name, space in SPACES.items():
        reason = space.available("auto")
        if reason is None:
            continue
        assert main(["tune", name, "--trials", "1"]) == 2
        assert f"cannot tune {name}: {space.class_name} is not available" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown policy 'nope'; tune can search linucb, lints"),
        (["linucb", "--plot", "h.jpg"], "--plot writes a PNG file"),
        (
            ["linucb", "--plot", "/no/such/dir/h.png"],
            "cannot write /no/such/dir/h.png: no directory",
        ),
        (["linucb", "--config", "/no/such/dir/t.toml"], "cannot write /no/such/dir/t.toml"),
        (["linucb", "--store", "/no/such/dir/bk.db"], "cannot open the store sqlite:////no/such"),
        (["linucb", "--store", "mysql://x/y"], "unsupported store URL"),
        (["linucb", "--name", "x"], "--name goes with a store URL as --log"),
        (["linucb", "--batch", "200"], "--batch (200) cannot exceed --rounds (150)"),
        (["linucb", "--arms", "1"], "--arms must be at least 2, got 1"),
        (["linucb", "--log", "/no/such/log.npz"], "no such file: /no/such/log.npz"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "--trials", "1", *SMALL, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("banditkit tune: error:"), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "linucb-regret.toml").exists()


@pytest.mark.parametrize("trials", ["0", "-3", "ten"])
def test_a_bad_trial_count_is_refused(trials: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["tune", "linucb", "--trials", trials])
    assert exc.value.code == 2
    assert "--trials: expected a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize(("module", "flags"), [("optuna", []), ("ray", ["--ray"])])
def test_without_the_extra_one_line_says_what_to_install(
    tmp_path: Path, module: str, flags: list[str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, module, None)  # `import optuna` now raises ImportError
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "linucb", *flags]) == 2
    err = capsys.readouterr().err.strip()
    what = "banditkit tune needs optuna" if module == "optuna" else "--ray needs ray"
    assert err == f"banditkit tune: error: {what}: pip install 'banditkit[distributed]'"
    assert list(tmp_path.iterdir()) == []  # nothing opened or written


def test_the_core_never_imports_optuna_or_ray() -> None:
    import subprocess

    code = (
        "import sys, banditkit, banditkit.cli, banditkit.tune.cli, banditkit.tune.objective\n"
        "banditkit.cli.build_parser()\n"
        "print(sorted(m for m in ('optuna', 'ray') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ten_trials_on_a_ray_cluster_equal_the_local_ones(tmp_path: Path, ray_cluster: Any) -> None:
    local, remote = tmp_path / "local", tmp_path / "ray"
    local.mkdir(), remote.mkdir()
    assert tune(local, "linucb", "--trials", "10", "--parallel", "5") == 0
    assert tune(remote, "linucb", "--trials", "10", "--parallel", "5",
                "--ray", ray_cluster.address) == 0  # fmt: skip
    here, there = finished(load(local, "linucb-regret")), finished(load(remote, "linucb-regret"))
    assert len(there) == 10 and all(t.state.name == "COMPLETE" for t in there)
    assert [t.params for t in there] == [t.params for t in here]
    assert [t.value for t in there] == [t.value for t in here]
    s = load(remote, "linucb-regret")
    assert s.best_value <= there[0].value and there[0].user_attrs[study.DEFAULTS_ATTR]


def test_load_log_needs_enough_events(tmp_path: Path) -> None:
    from banditkit.ope import SyntheticBandit, save_logged

    save_logged(SyntheticBandit(3, 2, seed=0).sample(8, seed=0), tmp_path / "tiny.npz")
    with pytest.raises(ValueError, match="has 8 events: too few"):
        load_log(Settings(policy="linucb", objective="ope", log=str(tmp_path / "tiny.npz")))


def test_an_interrupted_run_fails_its_trials_and_the_defaults_run_again(tmp_path: Path) -> None:
    url, storage = study.open_storage(str(tmp_path / "bk.db"))
    settings = Settings(policy="linucb", **SETTINGS)
    defaults = SPACES["linucb"].defaults("auto", settings.context())

    def interrupted(points: Any) -> Any:
        raise KeyboardInterrupt

    s = study.load_or_create(storage, "s", settings, defaults)
    with pytest.raises(KeyboardInterrupt):
        study.run_trials(s, settings, defaults, 4, 2, interrupted)
    assert [t.state.name for t in s.trials] == ["FAIL", "FAIL"]  # the batch asked, not told
    assert all(t.user_attrs[study.ERROR_ATTR] == study.INTERRUPTED for t in s.trials)
    first = s.trials[0]
    assert first.user_attrs[study.DEFAULTS_ATTR]

    s = study.load_or_create(storage, "s", settings, defaults)  # resumed: defaults first again
    with study.local_runner(settings, None) as run:
        study.run_trials(s, settings, defaults, 2, 2, run)
    best, default_trial = study.best_and_defaults(s)
    assert default_trial.number == 2 and default_trial.params == first.params
    assert best.value <= default_trial.value

    s = study.load_or_create(storage, "s", settings, defaults)  # settled: not enqueued again
    assert [t.state.name for t in s.trials] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    url, storage = study.open_storage(str(tmp_path / "bk.db"))
    settings = Settings(policy="linucb", **SETTINGS)
    defaults = SPACES["linucb"].defaults("auto", settings.context())
    outcomes = iter([(1.5, None), (None, "ValueError: no"), (0.5, None)])
    s = study.load_or_create(storage, "s", settings, defaults)
    study.run_trials(s, settings, defaults, 3, 1, lambda points: [next(outcomes)])
    assert [t.state.name for t in s.trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert s.trials[1].user_attrs[study.ERROR_ATTR] == "ValueError: no"
    assert study.best_and_defaults(s)[0].number == 2


def test_an_off_policy_study_stays_on_the_log_it_started_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from banditkit.ope import SyntheticBandit, save_logged

    log_path = tmp_path / "log.npz"
    world = SyntheticBandit(3, 2, seed=1)
    save_logged(world.sample(100, seed=2), log_path)
    assert tune(tmp_path, "lints", "--trials", "1", "--log", str(log_path)) == 0
    save_logged(world.sample(100, seed=3), log_path)  # same name, other events
    capsys.readouterr()
    assert tune(tmp_path, "lints", "--trials", "1", "--log", str(log_path)) == 2
    assert "was made with other settings: log_digest" in capsys.readouterr().err
