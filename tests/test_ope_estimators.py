"""banditkit.ope estimators against their formulas on a log small enough to do by hand, and
their validation (docs/ope.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from banditkit.ope import DM, DR, IPS, SNDR, SNIPS, DRos, Estimate, SwitchDR

# Four events, two arms. w = pi(a_i|x_i) / pscore_i = [2, 1, 2, 1.25].
ACTION = np.array([0, 1, 0, 1])
REWARD = np.array([1.0, 0.0, 1.0, 1.0])
PSCORE = np.array([0.5, 0.5, 0.25, 0.8])
PI = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]])
Q = np.array([[0.5, 0.2], [0.4, 0.6], [1.0, 0.0], [0.1, 0.3]])
W = np.array([2.0, 1.0, 2.0, 1.25])
DM_I = np.array([0.5, 0.5, 0.5, 0.3])  # sum_a pi(a|x_i) q(x_i, a)
RESID = np.array([0.5, -0.6, 0.0, 0.7])  # r_i - q(x_i, a_i)
ARGS = (REWARD, ACTION, PSCORE, PI, Q)


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        (IPS(), (2 + 0 + 2 + 1.25) / 4),
        (IPS(lambda_=1.5), (1.5 + 0 + 1.5 + 1.25) / 4),
        (SNIPS(), 5.25 / 6.25),
        (DM(), 1.8 / 4),
        (DR(), 0.45 + (1.0 - 0.6 + 0.0 + 0.875) / 4),
        (DR(lambda_=1.0), 0.45 + (0.5 - 0.6 + 0.0 + 0.7) / 4),
        (SNDR(), 0.45 + 1.275 / 6.25),
        (SwitchDR(lambda_=1.5), 0.45 + (-0.6 + 0.875) / 4),
        (SwitchDR(), 0.45 + 1.275 / 4),
        (DRos(lambda_=1.0), 0.45 + np.mean(W / (W**2 + 1) * RESID)),
        (DRos(), 0.45 + 1.275 / 4),
        (DRos(lambda_=0.0), 0.45),
    ],
    ids=repr,
)
def test_point_estimates_match_the_formulas(estimator, expected):
    assert estimator.estimate_policy_value(*ARGS) == pytest.approx(expected, rel=1e-12)


def test_obp_three_dimensional_inputs_give_the_same_estimates():
    for est in (IPS(), SNIPS(), DM(), DR(), SNDR(), SwitchDR(2.0), DRos(3.0)):
        flat = est.estimate_policy_value(*ARGS)
        assert (
            est.estimate_policy_value(REWARD, ACTION, PSCORE, PI[:, :, None], Q[:, :, None]) == flat
        )


def test_ips_and_snips_need_no_reward_model_but_the_dr_family_does():
    assert IPS().estimate_policy_value(REWARD, ACTION, PSCORE, PI) == pytest.approx(1.3125)
    for est in (DM(), DR(), SNDR(), SwitchDR(), DRos()):
        with pytest.raises(ValueError, match="estimated_rewards is required"):
            est.estimate_policy_value(REWARD, ACTION, PSCORE, PI)


def test_standard_errors():
    n = 4
    ips_terms = W * REWARD
    assert IPS().standard_error(*ARGS) == pytest.approx(ips_terms.std(ddof=1) / math.sqrt(n))
    dr_terms = DM_I + W * RESID
    assert DR().standard_error(*ARGS) == pytest.approx(dr_terms.std(ddof=1) / math.sqrt(n))
    # Delta method for the ratio sum(w r) / sum(w): influence (w r - V w) / mean(w).
    v = 5.25 / 6.25
    infl = (W * REWARD - v * W) / W.mean()
    assert SNIPS().standard_error(*ARGS) == pytest.approx(infl.std(ddof=1) / math.sqrt(n))
    c = (W * RESID).sum() / W.sum()
    infl = DM_I - DM_I.mean() + (W * RESID - c * W) / W.mean()
    assert SNDR().standard_error(*ARGS) == pytest.approx(infl.std(ddof=1) / math.sqrt(n))


def test_estimate_gives_value_se_and_both_intervals():
    result = DR().estimate(*ARGS, alpha=0.1, n_bootstrap=200, seed=3)
    assert isinstance(result, Estimate)
    assert result.value == pytest.approx(DR().estimate_policy_value(*ARGS))
    z = 1.6448536269514722
    assert result.lower == pytest.approx(result.value - z * result.se)
    assert result.upper == pytest.approx(result.value + z * result.se)
    assert result.boot_lower <= result.boot_mean <= result.boot_upper
    interval = DR().estimate_interval(*ARGS, alpha=0.1, n_bootstrap=200, seed=3)
    assert interval == {
        "mean": result.boot_mean,
        "lower": result.boot_lower,
        "upper": result.boot_upper,
    }
    assert DR().estimate(*ARGS, n_bootstrap=None).boot_mean is None


def test_interval_is_deterministic_per_seed():
    a = SNDR().estimate_interval(*ARGS, n_bootstrap=300, seed=11)
    assert a == SNDR().estimate_interval(*ARGS, n_bootstrap=300, seed=11)
    assert a != SNDR().estimate_interval(*ARGS, n_bootstrap=300, seed=12)


def _with(**changes):
    args = {"reward": REWARD, "action": ACTION, "pscore": PSCORE, "action_dist": PI}
    args["estimated_rewards"] = Q
    args.update(changes)
    return args


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pscore": np.array([0.5, 0.0, 0.25, 0.8])}, "pscore"),
        ({"pscore": np.array([0.5, 1.2, 0.25, 0.8])}, "pscore"),
        ({"pscore": np.array([0.5, np.nan, 0.25, 0.8])}, "pscore"),
        ({"action_dist": PI * 0.9}, "action_dist"),
        ({"action_dist": np.array([[1.1, -0.1], *PI[1:]])}, "action_dist"),
        ({"action_dist": PI[:3]}, "action_dist"),
        ({"action_dist": PI[:, :, None].repeat(2, axis=2)}, "action_dist"),
        ({"reward": np.array([1.0, np.nan, 1.0, 1.0])}, "reward"),
        ({"reward": REWARD[:3]}, "reward"),
        ({"reward": REWARD[:, None]}, "reward"),
        ({"action": np.array([0, 2, 0, 1])}, "action"),
        ({"action": np.array([0, -1, 0, 1])}, "action"),
        ({"action": np.array([0, 0.5, 0, 1])}, "action"),
        ({"estimated_rewards": Q[:, :1]}, "estimated_rewards"),
        ({"estimated_rewards": np.where(Q > 0.9, np.inf, Q)}, "estimated_rewards"),
        ({"estimated_rewards": Q[:2]}, "estimated_rewards"),
    ],
)
def test_bad_inputs_raise_value_errors_naming_the_field(changes, field):
    for est in (IPS(), DR()):
        with pytest.raises(ValueError, match=field):
            est.estimate_policy_value(**_with(**changes))


def test_bad_settings():
    with pytest.raises(ValueError, match="lambda_"):
        IPS(lambda_=-1.0)
    with pytest.raises(ValueError, match="lambda_"):
        DR(lambda_=math.nan)
    with pytest.raises(TypeError, match="lambda_"):
        DR(lambda_="1")
    with pytest.raises(ValueError, match="alpha"):
        IPS().estimate_interval(*ARGS, alpha=1.5)
    with pytest.raises(ValueError, match="n_bootstrap"):
        IPS().estimate_interval(*ARGS, n_bootstrap=1)
    with pytest.raises(ValueError, match="seed"):
        IPS().estimate_interval(*ARGS, seed=-1)
