"""pytest-benchmark: the Thompson-sampling scenarios through the Python API, both backends.

Run with `python -m pytest benches/python --benchmark-only` (not part of the test suite;
`banditkit bench` reports the same scenarios as same-run ratios).
"""

from __future__ import annotations

import importlib

import pytest

from banditkit.bench.thompson import LINEAR_CASES, TSPAR_CASES, count_obs, linear_obs

BACKENDS = ["rust", "python"]


def module(name: str):
    return importlib.import_module("banditkit_rs" if name == "rust" else "banditkit.python")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("arms", "n_obs", "draws"), LINEAR_CASES)
def test_linear_win_prop(benchmark, backend, arms, n_obs, draws):
    bandit = module(backend).LinearBandit(seed=1)
    bandit.update(linear_obs(arms, n_obs))
    result = benchmark(bandit.win_prop, draw=draws)
    assert abs(sum(result.values()) - 1.0) < 1e-9


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("arms", "n_obs", "draws"), LINEAR_CASES)
def test_linear_update(benchmark, backend, arms, n_obs, draws):
    bandit = module(backend).LinearBandit(seed=1)
    benchmark(bandit.update, linear_obs(arms, n_obs))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("arms", "n_obs"), TSPAR_CASES)
def test_tspar_win_prop(benchmark, backend, arms, n_obs):
    bandit = module(backend).TSPar(seed=1)
    bandit.update(count_obs(arms, n_obs))
    result = benchmark(bandit.win_prop, draw=10_000)
    assert abs(sum(result.values()) - 1.0) < 1e-9
