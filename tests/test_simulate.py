"""`banditkit.simulate`: environments, policies, the runner and its statistics.

Statistical checks use fixed seeds and bounds of 5 standard errors of the sampling error.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from banditkit.simulate import policies, report, runner
from banditkit.simulate.envs import ENVIRONMENTS, make_env
from banditkit.simulate.policies import POLICIES, Policy, PolicySpec, unavailable_reason
from banditkit.simulate.runner import Config, run_all, run_task

# bootstrap-ts (one Python class on both backends) is covered by tests/test_ensemble_ts.py.
LEARNERS = [name for name, spec in POLICIES.items() if spec.learns and name != "bootstrap-ts"]


def _env(name: str, seed: int = 1, arms: int = 5, horizon: int = 20_000, features: int = 4):
    return make_env(name, arms, horizon, np.random.default_rng(seed), features)


# --- environments ---


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_rounds_do_not_depend_on_how_they_are_sliced(name):
    whole = _env(name).rounds(0, 9_000)
    sliced = _env(name)
    bounds = [0, 1, 7, 4_095, 4_096, 4_097, 8_200, 9_000]
    parts = [sliced.rounds(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for field in ("contexts", "means", "rewards"):
        joined = np.concatenate([getattr(p, field) for p in parts])
        np.testing.assert_array_equal(joined, getattr(whole, field))


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_same_seed_same_world_other_seed_other_world(name):
    a, b, c = (
        _env(name, 3).rounds(0, 500),
        _env(name, 3).rounds(0, 500),
        _env(name, 4).rounds(0, 500),
    )
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert not np.array_equal(a.rewards, c.rewards)


def test_bernoulli_pays_its_fixed_rates():
    env = _env("bernoulli")
    r = env.rounds(0, 20_000)
    np.testing.assert_allclose(env.rates, [0.04, 0.08, 0.12, 0.16, 0.20])
    np.testing.assert_array_equal(r.means, np.broadcast_to(env.rates, r.means.shape))
    assert set(np.unique(r.rewards)) <= {0.0, 1.0}
    se = np.sqrt(env.rates * (1 - env.rates) / 20_000)
    assert np.all(np.abs(r.rewards.mean(axis=0) - env.rates) < 5 * se)
    np.testing.assert_array_equal(r.contexts, np.ones((20_000, 1)))


def test_gaussian_noise_is_standard_normal():
    env = _env("gaussian")
    r = env.rounds(0, 20_000)
    noise = (r.rewards - r.means).ravel()
    n = noise.size
    assert abs(noise.mean()) < 5 / math.sqrt(n)
    assert abs(noise.std() - 1.0) < 5 / math.sqrt(2 * n)
    np.testing.assert_array_equal(r.means[0], env.arm_means)


def test_linear_means_are_linear_in_the_context():
    env = _env("linear", features=4)
    r = env.rounds(0, 20_000)
    assert r.contexts.shape == (20_000, 4)
    np.testing.assert_array_equal(r.contexts[:, 0], 1.0)
    np.testing.assert_allclose(r.means, r.contexts @ env.theta, rtol=0, atol=1e-12)
    noise = (r.rewards - r.means).ravel()
    assert abs(noise.std() - env.noise_sd) < 5 * env.noise_sd / math.sqrt(2 * noise.size)
    z = r.contexts[:, 1:].ravel()
    assert abs(z.mean()) < 5 / math.sqrt(z.size)


def test_drifting_rates_are_base_plus_season_plus_random_walk():
    env = _env("drifting")
    base = env.base.copy()
    r = env.rounds(0, 20_000)
    assert np.all((r.means > 0) & (r.means < 1))
    t = np.arange(20_000)
    season = env.SEASON_AMPLITUDE * np.sin(2 * np.pi * env.SEASON_CYCLES * t / 20_000)
    walk = np.log(r.means / (1 - r.means)) - base - season[:, None]
    steps = np.diff(walk, axis=0).ravel()
    sd = env.WALK_SD / math.sqrt(20_000)
    assert abs(steps.mean()) < 5 * sd / math.sqrt(steps.size)
    assert abs(steps.std() / sd - 1.0) < 5 / math.sqrt(2 * steps.size)
    assert set(np.unique(r.rewards)) <= {0.0, 1.0}


# --- policies, regret and the runner ---


def _cfg(**kw) -> Config:
    base = dict(
        env="bernoulli",
        policies=("random",),
        arms=5,
        rounds=2_000,
        batch=10,
        repeats=1,
        seed=11,
        features=3,
        window=200,
        backend="rust",
    )
    base.update(kw)
    return Config(**base)


def test_checkpoints_are_even_and_end_at_the_last_round():
    marks = runner.checkpoints(20_000)
    assert len(marks) == runner.MAX_CHECKPOINTS and marks[-1] == 20_000 and marks[0] == 100
    np.testing.assert_array_equal(runner.checkpoints(7), np.arange(1, 8))


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_oracle_has_zero_regret(env):
    res = run_task(_cfg(env=env, policies=("oracle",)), "oracle", 0)
    np.testing.assert_array_equal(res.cumulative_regret, 0.0)
    np.testing.assert_array_equal(res.optimal_plays, runner.checkpoints(2_000))


def test_random_regret_matches_its_expectation():
    cfg = _cfg(rounds=20_000, batch=1_000)
    res = run_task(cfg, "random", 0)
    env = make_env("bernoulli", 5, 20_000, np.random.default_rng(runner.env_seed(11, 0)), 3)
    gaps = env.rates.max() - env.rates
    expected, sd = 20_000 * gaps.mean(), math.sqrt(20_000 * gaps.var())
    assert abs(res.cumulative_regret[-1] - expected) < 5 * sd
    best_rate = 1 / 5
    assert abs(res.optimal_plays[-1] / 20_000 - best_rate) < 5 * math.sqrt(0.16 / 20_000)


def _applicable(env: str, backend: str) -> list[str]:
    binary = ENVIRONMENTS[env].binary_rewards
    return [p for p in POLICIES if unavailable_reason(p, binary, backend) is None]


@pytest.mark.parametrize("backend", ["rust", "python"])
@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_every_policy_runs_on_every_environment(env, backend):
    names = _applicable(env, backend)
    assert {"random", "oracle", "linear", "linucb", "lints"} <= set(names)
    if ENVIRONMENTS[env].binary_rewards:
        assert {"ts", "logistic", "logistic-full"} <= set(names)
    cfg = _cfg(env=env, policies=tuple(names), rounds=300, batch=20, backend=backend)
    for res in run_all(cfg):
        assert res.error is None, (res.policy, res.error)
        assert np.all(np.diff(res.cumulative_regret) >= -1e-12) and res.cumulative_regret[0] >= 0
        assert np.all(np.diff(res.optimal_plays) >= 0) and res.optimal_plays[-1] <= 300
        assert res.policy_seconds > 0 and np.all(res.rss_bytes > 0)


@pytest.mark.parametrize("env", ["gaussian", "linear"])
def test_bernoulli_only_policies_are_not_applicable_to_continuous_rewards(env):
    for name in ("ts", "logistic", "logistic-full"):
        reason = unavailable_reason(name, ENVIRONMENTS[env].binary_rewards, "python")
        assert reason is not None and "0/1 rewards" in reason


def test_results_do_not_depend_on_the_number_of_processes(monkeypatch):
    monkeypatch.setattr(runner, "PARALLEL_MIN_ROUNDS", 0)  # use the workers even for this
    cfg = _cfg(policies=("ts", "lints", "random"), repeats=2, rounds=1_000)
    serial, parallel = run_all(cfg), run_all(Config(**{**cfg.__dict__, "jobs": 2}))
    assert [(r.policy, r.repeat) for r in serial] == [(r.policy, r.repeat) for r in parallel]
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a.cumulative_regret, b.cumulative_regret)
        np.testing.assert_array_equal(a.optimal_plays, b.optimal_plays)
        assert a.reward == b.reward


def test_policies_of_a_repeat_face_the_same_world_and_repeats_differ():
    a = run_task(_cfg(policies=("random",)), "random", 0)
    b = run_task(_cfg(policies=("random",)), "random", 1)
    assert a.cumulative_regret[-1] != b.cumulative_regret[-1]
    assert runner.env_seed(11, 0) != runner.env_seed(11, 1)
    assert runner.policy_seed(11, 0, "ts") != runner.policy_seed(11, 0, "linear")


def _final_regrets(backend: str, names: list[str], rounds: int, repeats: int) -> dict[str, float]:
    cfg = _cfg(
        policies=tuple(names + ["random"]),
        rounds=rounds,
        batch=100,
        repeats=repeats,
        seed=2024,
        backend=backend,
        window=2_000,
        jobs=2,
    )
    doc = report.summarise(cfg, run_all(cfg), {})
    assert not doc["failures"]
    return {name: p["final_regret"]["mean"] for name, p in doc["policies"].items()}


def test_every_learning_policy_beats_a_fifth_of_random_rust():
    regret = _final_regrets("rust", LEARNERS, 20_000, repeats=3)
    for name in LEARNERS:
        assert regret[name] < regret["random"] / 5, (name, regret)


def test_learning_policies_beat_a_fifth_of_random_python():
    # The NumPy reference is slower, so one repeat. Its LogisticBandit.select re-expresses
    # the posterior and takes a pseudo-inverse per call (~0.25 ms), so the two logistic
    # policies get 8,000 rounds; the *-window variants wrap the same classes as linucb and
    # lints and are covered by the Rust run above.
    names = ["ts", "linear", "linucb", "lints"]
    regret = _final_regrets("python", names, 20_000, repeats=1)
    for name in names:
        assert regret[name] < regret["random"] / 5, (name, regret)
    regret = _final_regrets("python", ["logistic", "logistic-full"], 8_000, repeats=1)
    for name in ("logistic", "logistic-full"):
        assert regret[name] < regret["random"] / 5, (name, regret)


# --- failures and memory growth (policies injected into the registry) ---


class _Leaky(Policy):
    """Keeps 8 KiB per round forever: the memory check must flag it."""

    def __init__(self) -> None:
        self.kept: list[bytes] = []

    def choose(self, rounds):
        return np.zeros(len(rounds), dtype=np.int64)

    def learn(self, contexts, arms, rewards):
        self.kept.extend(bytes(8192) + bytes([i % 256]) for i in range(len(arms)))


class _Breaks(Policy):
    def __init__(self) -> None:
        self.played = 0

    def choose(self, rounds):
        self.played += len(rounds)
        if self.played > 500:
            raise ValueError("covariance matrix is not positive semidefinite")
        return np.zeros(len(rounds), dtype=np.int64)

    def learn(self, contexts, arms, rewards):
        pass


@pytest.fixture
def extra_policies(monkeypatch):
    extra = {
        "leaky": PolicySpec("leaky", "keeps every round", lambda *a: _Leaky()),
        "breaks": PolicySpec("breaks", "raises at round 500", lambda *a: _Breaks()),
    }
    monkeypatch.setattr(policies, "POLICIES", {**POLICIES, **extra})
    monkeypatch.setattr(runner, "POLICIES", {**POLICIES, **extra})
    monkeypatch.setattr(report, "POLICIES", {**POLICIES, **extra})


_MEMORY_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import test_simulate as t
from banditkit.simulate import policies, report, runner
from banditkit.simulate.policies import POLICIES, PolicySpec
extra = {**POLICIES, "leaky": PolicySpec("leaky", "keeps every round", lambda *a: t._Leaky())}
policies.POLICIES = runner.POLICIES = report.POLICIES = extra
cfg = t._cfg(policies=("oracle", "leaky"), rounds=5_000, batch=50)
doc = report.summarise(cfg, runner.run_all(cfg), {})
mem = {name: doc["policies"][name]["memory"] for name in ("leaky", "oracle")}
print(json.dumps({"memory": mem, "checkpoints": len(doc["checkpoints"]),
                  "table": report.table(doc)}, default=float))
"""


def test_memory_that_grows_with_the_rounds_is_flagged():
    # In a fresh interpreter: in the test process, RSS also moves with what earlier tests left
    # behind (freed heap for the leak to reuse, other tests' threads and pools allocating),
    # which once made the constant-memory oracle look as if it grew.
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(Path(__file__).resolve().parent)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    leaky, oracle = out["memory"]["leaky"], out["memory"]["oracle"]
    # 8 KiB x 5,000 rounds ~ 40 MiB kept.
    assert leaky["grows_with_rounds"] and leaky["rss_growth_mb"] > 20
    assert not oracle["grows_with_rounds"] and oracle["rss_growth_mb"] < report.GROWTH_FLAG_MB
    curve = leaky["rss_growth_curve_mb"]
    # Still rising in the second half.
    assert len(curve) == out["checkpoints"] and curve[-1] > curve[len(curve) // 2] + 5
    assert "memory keeps growing with the rounds: leaky" in out["table"]


def test_a_policy_that_raises_is_reported_not_fatal(extra_policies):
    cfg = _cfg(policies=("breaks", "random"), rounds=2_000, repeats=2)
    doc = report.summarise(cfg, run_all(cfg), {})
    assert "breaks" not in doc["policies"] and "random" in doc["policies"]
    assert len(doc["failures"]["breaks"]) == 2
    assert "round 500: ValueError: covariance matrix" in doc["failures"]["breaks"][0]
    assert "! breaks failed in 2 of 2 repeats" in report.table(doc)


# --- statistics ---


def test_t_quantiles_match_scipy():
    for df in range(1, 300):
        assert report.t95(df) == pytest.approx(stats.t.ppf(0.975, df), abs=2e-3)


def test_mean_interval_is_the_student_t_interval():
    x = np.random.default_rng(5).normal(size=(7, 3))
    mean, low, high = report.mean_interval(x)
    half = stats.t.ppf(0.975, 6) * x.std(axis=0, ddof=1) / math.sqrt(7)
    np.testing.assert_allclose(mean, x.mean(axis=0))
    np.testing.assert_allclose(high - mean, half, rtol=1e-3)
    np.testing.assert_allclose(mean - low, half, rtol=1e-3)
    assert np.isnan(report.mean_interval(x[:1])[1]).all()


def test_summary_statistics_agree_with_the_task_results():
    cfg = _cfg(policies=("ts", "random"), repeats=3, rounds=1_000)
    results = run_all(cfg)
    doc = report.summarise(cfg, results, {"logistic": "why not"})
    for name in ("ts", "random"):
        mine = [r for r in results if r.policy == name]
        finals = [r.cumulative_regret[-1] for r in mine]
        p = doc["policies"][name]
        assert p["final_regret"]["per_repeat"] == pytest.approx(finals)
        assert p["final_regret"]["mean"] == pytest.approx(np.mean(finals))
        assert p["regret_curve"]["mean"][-1] == pytest.approx(np.mean(finals))
        rate = np.mean([r.optimal_plays[-1] / 1_000 for r in mine])
        assert p["optimal_arm_rate"] == pytest.approx(rate)
    assert doc["skipped"] == {"logistic": "why not"}


def test_the_command_exits_1_when_a_policy_raised(extra_policies, capsys):
    from banditkit import cli

    code = cli.main(
        [
            "simulate",
            "--policies",
            "breaks,random",
            "--rounds",
            "1000",
            "--repeats",
            "1",
            "--jobs",
            "1",
            "--quiet",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert err == "banditkit simulate: policies raised errors: breaks (see the table)\n"
    assert "! breaks failed in 1 of 1 repeats" in out and "random" in out


def test_a_sweep_over_environments_equals_one_run_per_environment(tmp_path, capsys) -> None:
    """--env a,b: one report per environment, each the report of a run of that environment
    alone (the seeds come from the run seed and the task's coordinates), plots suffixed."""
    from banditkit import cli

    common = ["--rounds", "600", "--repeats", "2", "--jobs", "1", "--quiet", "--seed", "3"]
    policies = ["--policies", "linucb,random"]
    sweep = tmp_path / "sweep"
    args = ["--env", "linear,regions", *policies, *common]
    assert cli.main(["simulate", *args, "--json", f"{sweep}.json", "--plot", f"{sweep}.png"]) == 0
    docs = json.loads(sweep.with_suffix(".json").read_text())["environments"]
    assert [d["environment"]["name"] for d in docs] == ["linear", "regions"]
    for env, doc in zip(("linear", "regions"), docs, strict=True):
        one = tmp_path / env
        assert (
            cli.main(["simulate", "--env", env, *policies, *common, "--json", f"{one}.json"]) == 0
        )
        alone = json.loads(one.with_suffix(".json").read_text())
        assert _without_process_readings(doc) == _without_process_readings(alone)
        assert (tmp_path / f"sweep-{env}.png").stat().st_size > 0
    capsys.readouterr()


def _without_process_readings(doc: dict) -> dict:
    for p in doc["policies"].values():
        del p["decisions_per_second"], p["memory"]
    return doc
