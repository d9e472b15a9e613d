"""banditkit on a real local Ray cluster (tests/ray_cluster.py): the same numbers as a local
run, bit for bit, even when a worker node dies mid-sweep; and no Ray needed without --ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from banditkit.cli import main
from banditkit.simulate.on_ray import INSTALL_HINT, run_all_on_ray
from banditkit.simulate.runner import Config, TaskResult, run_all
from ray_cluster import PACKAGE_ROOT, RayCluster

SWEEP = ["--env", "bernoulli", "--policies", "ts,random", "--rounds", "2000", "--repeats", "3"]


def _same_results(a: list[TaskResult], b: list[TaskResult]) -> None:
    """Everything a task computes; its timings and memory readings belong to the process."""
    assert [(r.policy, r.repeat) for r in a] == [(r.policy, r.repeat) for r in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.cumulative_regret, y.cumulative_regret)
        np.testing.assert_array_equal(x.optimal_plays, y.optimal_plays)
        assert (x.reward, x.error) == (y.reward, y.error)


def _without_process_readings(doc: dict) -> dict:
    for p in doc["policies"].values():
        del p["decisions_per_second"], p["memory"]
    del doc["config"]["jobs"]
    return doc


@pytest.fixture
def driver(ray_cluster: RayCluster) -> Iterator[object]:
    """This process connected to the cluster as a Ray driver, for the length of one test."""
    import ray

    ray.init(address=ray_cluster.address, logging_level="ERROR")
    try:
        yield ray
    finally:
        ray.shutdown()


def test_cluster_runs_tasks_on_both_nodes(driver) -> None:
    ray = driver

    @ray.remote(num_cpus=1)
    def node_of(_: int) -> str:
        import time

        time.sleep(0.5)  # hold the CPU, so the other task has to go to the other node
        return ray.get_runtime_context().get_node_id()

    assert len(set(ray.get([node_of.remote(i) for i in range(2)]))) == 2


def test_simulate_on_ray_gives_the_local_report_and_plot(
    ray_cluster: RayCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local, remote = tmp_path / "local", tmp_path / "ray"
    for out, extra in ((local, ["--jobs", "1"]), (remote, ["--ray", ray_cluster.address])):
        args = [*SWEEP, "--json", f"{out}.json", "--plot", f"{out}.png", "--quiet", *extra]
        assert main(["simulate", *args]) == 0
    docs = [json.loads(Path(f"{out}.json").read_text()) for out in (local, remote)]
    assert _without_process_readings(docs[0]) == _without_process_readings(docs[1])
    assert Path(f"{local}.png").read_bytes() == Path(f"{remote}.png").read_bytes()
    capsys.readouterr()


def test_a_sweep_over_environments_on_ray_equals_local(
    ray_cluster: RayCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Environments x policies x repeats in flight together: each environment's report equals
    the local sweep's."""
    sweep = ["--env", "bernoulli,gaussian", "--policies", "linear,random", "--rounds", "1500"]
    local, remote = tmp_path / "local.json", tmp_path / "ray.json"
    for out, extra in ((local, ["--jobs", "1"]), (remote, ["--ray", ray_cluster.address])):
        args = [*sweep, "--repeats", "2", "--json", str(out), "--quiet", *extra]
        assert main(["simulate", *args]) == 0
    docs = [json.loads(p.read_text())["environments"] for p in (local, remote)]
    assert [d["environment"]["name"] for d in docs[1]] == ["bernoulli", "gaussian"]
    for a, b in zip(*docs, strict=True):
        assert _without_process_readings(a) == _without_process_readings(b)
    capsys.readouterr()


def test_a_sweep_survives_losing_a_worker_node(ray_cluster: RayCluster, driver: object) -> None:
    # Tasks of about half a second each on two one-CPU nodes: when the first one is done, the
    # worker node is running another, which dies with it and must be run again elsewhere.
    cfg = Config(env="bernoulli", policies=("ts", "logistic"), rounds=4_000, repeats=4, seed=7)
    expected = run_all(cfg)
    killed: list[int] = []

    def kill_after_first(_: int) -> None:
        if not killed:
            ray_cluster.kill_worker()
            killed.append(1)

    try:
        got = run_all_on_ray(cfg, ray_cluster.address, kill_after_first)
        assert killed
        ray_cluster.wait_for_nodes(1)  # the worker node is gone for good
    finally:
        ray_cluster.add_worker()  # for the tests after this one
    _same_results(expected, got)


def test_bootstrap_ridge_on_ray_has_the_local_coefficients(driver: object) -> None:
    pytest.importorskip("sklearn")
    import joblib
    from ray.util.joblib import register_ray

    from banditkit.ensemble import BootstrapRidge

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 12))
    y = X @ rng.normal(size=12) + rng.normal(size=60)
    register_ray()
    for sampling in ("sklearn", "fast"):
        params = dict(n_estimators=300, random_state=5, sampling=sampling)
        local = BootstrapRidge(**params).fit(X, y)
        with joblib.parallel_config(backend="ray"):  # 5 blocks of members on 2 workers
            remote = BootstrapRidge(**params).fit(X, y)
        for name in ("coef_", "intercept_", "coef_mean_", "intercept_mean_"):
            got, want = getattr(remote, name), getattr(local, name)
            np.testing.assert_array_equal(got, want, err_msg=f"{sampling}: {name}")


# --- without Ray ---


def test_ray_flag_without_ray_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert main(["simulate", *SWEEP, "--ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"banditkit simulate: error: --ray needs Ray: {INSTALL_HINT}"]
    assert INSTALL_HINT == "pip install 'banditkit[distributed]'"
    with pytest.raises(ImportError, match=r"pip install 'banditkit\[distributed\]'"):
        run_all_on_ray(Config(env="bernoulli", policies=("random",)))


def test_the_core_does_not_import_ray_or_optuna() -> None:
    code = (
        "import sys, contextlib, io\n"
        "import banditkit\n"
        "from banditkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['simulate', '--help'])\n"
        "print(sorted(m for m in ('ray', 'optuna') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": PACKAGE_ROOT},
    )
    assert out.stdout.strip() == "[]"
