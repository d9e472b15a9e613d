"""`win_prop(method="exact")` on LinearBandit, TSPar and LogisticBandit (both backends).

Exact equals the `prob_best_*` kernel on the posterior (with `aggressive` and the
unobserved-arm rules on top), and agrees with `method="mc"` within 5 standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from banditkit.python import exact as py_exact

DRAWS = 200_000


def _within_mc(exact: dict, mc: dict, draws: int, extra: float = 0.0) -> None:
    assert exact.keys() == mc.keys()
    for name, p in exact.items():
        se = np.sqrt(p * (1 - p) / draws + extra**2)
        assert abs(mc[name] - p) <= 5 * se + 1e-12, (name, p, mc[name])


def _linear(bk):
    bandit = bk.LinearBandit(seed=3)
    rng = np.random.default_rng(0)
    bandit.update({f"arm{i}": rng.normal(0.1 * i, 1.0, 20 + 10 * i) for i in range(5)})
    return bandit


def test_linear_exact_is_the_gaussian_kernel(bk):
    bandit = _linear(bk)
    names = bandit.get_models()
    got = bandit.win_prop(method="exact")
    mu = np.array([bandit.mu[n] for n in names])
    sigma = np.array([bandit.sigma[n] for n in names])
    want = py_exact.prob_best_gaussian(mu, sigma)
    np.testing.assert_allclose([got[n] for n in names], want, atol=1e-10, rtol=0)
    _within_mc(got, bandit.win_prop(draw=DRAWS, seed=1), DRAWS)


def test_linear_exact_aggressive_and_unobserved(bk):
    bandit = _linear(bk)
    names = bandit.get_models()
    base = bandit.win_prop(method="exact")
    p = np.array([base[n] for n in names])
    sharp = bandit.win_prop(aggressive=3.0, method="exact")
    np.testing.assert_allclose([sharp[n] for n in names], p**3 / np.sum(p**3), atol=1e-10)
    # Two unobserved arms: each gets 1/(n_obs + n_unobs); the observed share is scaled.
    mixed = bandit.win_prop(action_list=[*names, "new1", "new2"], method="exact")
    assert mixed["new1"] == pytest.approx(1 / 7) and mixed["new2"] == pytest.approx(1 / 7)
    np.testing.assert_allclose([mixed[n] for n in names], p * 5 / 7, atol=1e-10)
    # Exactly one observed arm among unobserved ones.
    one = bandit.win_prop(action_list=[names[0], "new"], method="exact")
    assert one == pytest.approx({names[0]: 0.5, "new": 0.5})
    # draw is ignored by the exact method.
    assert bandit.win_prop(draw=1, method="exact") == pytest.approx(base, abs=1e-12)


def test_tspar_exact_is_the_beta_kernel(bk):
    bandit = bk.TSPar(seed=2)
    bandit.update({f"arm{i}": [1000, 20 + 2 * i] for i in range(6)})
    got = bandit.win_prop(method="exact")
    want = py_exact.prob_best_beta(np.asarray(bandit.alpha), np.asarray(bandit.beta))
    np.testing.assert_allclose([got[n] for n in bandit.action_list], want, atol=1e-10, rtol=0)
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-12)
    _within_mc(got, bandit.win_prop(draw=DRAWS, seed=1), DRAWS)


def test_tspar_exact_empty_is_empty(bk):
    assert bk.TSPar().win_prop(method="exact") == {}


def test_logistic_exact_agrees_with_monte_carlo(bk):
    bandit = bk.LogisticBandit(seed=4)
    bandit.update({f"arm{i}": [5000, 100 + 8 * i] for i in range(5)})
    got = bandit.win_prop(method="exact")
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-12)
    mc = bandit.win_prop(draw=DRAWS, seed=1)
    _within_mc(got, mc, DRAWS, extra=py_exact.MVN_TOLERANCE / 3.5)
    sharp = bandit.win_prop(aggressive=2.0, method="exact", seed=9)
    base = bandit.win_prop(method="exact", seed=9)
    p = np.array([base[n] for n in base])
    np.testing.assert_allclose([sharp[n] for n in base], p**2 / np.sum(p**2), atol=1e-12)


def test_logistic_exact_two_arms_is_closed_form(bk):
    bandit = bk.LogisticBandit()
    bandit.update({"a": [1000, 30], "b": [1000, 40]})
    got = bandit.win_prop(method="exact")
    mc = bandit.win_prop(draw=DRAWS, seed=2)
    _within_mc(got, mc, DRAWS)


@pytest.mark.parametrize("model", ["LinearBandit", "TSPar", "LogisticBandit"])
def test_unknown_method_is_rejected(bk, model):
    with pytest.raises(ValueError, match="method must be 'mc' or 'exact'"):
        getattr(bk, model)().win_prop(method="quadrature")
