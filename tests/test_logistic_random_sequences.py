"""LogisticBandit on seeded random update sequences, both backends: rates of 0 and 1, totals
from 1 to 10^9, Full-TS and ORTS, decay, remove_not_observed, reference changes and deletions.
Valid input never raises and never warns; every state is finite, symmetric, PSD; every query
answers; a rejected call changes nothing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bandit_state import assert_logistic_sane, logistic_state
from banditkit.python import _logistic_math as lm

ARMS = list("abcdefg")
TOTALS = [0, 1, 2, 10, 1_000, 100_000, 10**7, 10**9]
BAD_CALLS = [
    ({}, {}),
    ({"a": [1, 2]}, {}),
    ({"a": [-1, 0]}, {}),
    ({"a": [float("nan"), 0]}, {}),
    ({"a": [10, float("inf")]}, {}),
    ({"a": [10, 1, 3]}, {}),
    ({"a": [10, 1]}, {"decay": 1.5}),
    ({"a": [10, 1]}, {"decay": float("nan")}),
]


def random_batch(rng: np.random.Generator) -> dict[str, list[int]]:
    names = rng.choice(ARMS, size=int(rng.integers(1, 6)), replace=False)
    batch = {}
    for name in names:
        total = int(rng.choice(TOTALS))
        kind = rng.integers(0, 4)  # a quarter each: no success, all successes, two of any rate
        success = 0 if kind == 0 else total if kind == 1 else int(rng.integers(0, total + 1))
        batch[str(name)] = [total, success]
    return batch


def test_random_sequences(bk):
    rng = np.random.default_rng(20261201)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for case in range(60):
            bandit = bk.LogisticBandit(seed=case)
            for step in range(int(rng.integers(1, 7))):
                where = f"case {case} step {step}"
                bandit.update(
                    random_batch(rng),
                    odds_ratios_only=bool(rng.integers(0, 2)),
                    remove_not_observed=bool(rng.integers(0, 4) == 0),
                    decay=float(rng.choice([0.0, 0.0, 0.1, 0.5, 1.0])),
                )
                assert_logistic_sane(bandit, where)
                obs, kwargs = BAD_CALLS[int(rng.integers(0, len(BAD_CALLS)))]
                before = logistic_state(bandit)
                with pytest.raises(ValueError):
                    bandit.update(obs, **kwargs)
                assert logistic_state(bandit) == before, where
                arms = bandit.get_models()
                if not arms:
                    continue
                for shares in (bandit.win_prop(draw=500), bandit.win_prop(method="exact")):
                    assert sorted(shares) == sorted(arms), where
                    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-9), where
                assert set(bandit.select(n=len(arms))) == set(arms), where
                subset = [str(a) for a in rng.permutation(arms)[: max(1, len(arms) - 1)]]
                mu, sigma = bandit.get_par(subset)
                assert np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma)), where
                action = rng.integers(0, 4)  # now and then a new reference, or an arm fewer
                if action == 0:
                    bandit.transform(subset)
                elif action == 1 and len(arms) > 1:
                    bandit.delete(arms[int(rng.integers(0, len(arms)))])
                assert_logistic_sane(bandit, where)


# A state the random sequences reached (Full-TS, decay 1, clipped rates): arms 2..5 form a
# block whose level nothing identifies, and its zero eigenvalue comes out at -3.8e-11 (-2e-15
# relative to the largest). numpy.linalg.pinv inverts that into a variance of -2.6e10, which
# the contract's diagonal repair cannot mend: win_prop raised before the cut-off was fixed.
UNIDENTIFIED_BLOCK = np.array(
    [
        [1.2337934976493025e-04, 0, 0, 0, 0, 0, 0, 1.2337934976493025e-04],
        [0, 1.233793497648489e-04, 0, 0, 0, 0, 0, 1.233793497648489e-04],
        [0, 0, 2.2499976302226474, -1.1695263554535698e-05, -2.2377783681206624e-04,
         -2.249762157122281, 0, 0],
        [0, 0, -1.1695263554535698e-05, 11.104083760675895, -1.104382559906288e-03,
         -11.102967682852434, 0, 0],
        [0, 0, -2.2377783681206624e-04, -1.104382559906288e-03, 212.44614213805275,
         -212.44481397765605, 0, 0],
        [0, 0, -2.249762157122281, -11.102967682852434, -212.44481397765605,
         225.79754381747918, 0, 0],
        [0, 0, 0, 0, 0, 0, 9624.190560000006, 9624.190560000006],
        [1.2337934976493025e-04, 1.233793497648489e-04, 0, 0, 0, 0, 9624.190560000006,
         9624.314186108471],
    ]
)  # fmt: skip


def test_rounding_level_negative_eigenvalue_is_a_zero(bk):
    ev = np.linalg.eigvalsh(UNIDENTIFIED_BLOCK)
    assert -1e-14 * ev[-1] < ev[0] < 0  # the regression needs the rounding below zero
    # NumPy's own pinv gives the covariance block an eigenvalue of about -2.6e10.
    assert np.linalg.eigvalsh(np.linalg.pinv(UNIDENTIFIED_BLOCK)[:-1, :-1])[0] < -1e9
    mu = np.array([0.0, -98.1, 7.85, -6.91, 7.36, 7.39, -16.3, 14.1])
    bandit = bk.LogisticBandit(mu, UNIDENTIFIED_BLOCK, list("gbfahecd"), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no repair is needed, so none is announced
        for shares in (bandit.win_prop(draw=20_000), bandit.win_prop(method="exact")):
            assert sum(shares.values()) == pytest.approx(1.0, abs=1e-9)
        assert bandit.select() in bandit.get_models()


def test_pinv_sym_is_numpys_pinv_without_rounding_negatives():
    # No eigenvalue near the rounding level, where the two rules differ on purpose (below).
    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 6))
    psd = a @ a.T + 0.1 * np.eye(6)
    indefinite = psd - 3.0 * np.eye(6)
    singular = np.diag([2.0, 0.5, 0.0])  # an exact zero eigenvalue
    for m in (psd, indefinite, singular, np.zeros((3, 3))):
        expected = np.linalg.pinv(m, rcond=lm.PINV_RCOND)
        assert np.abs(lm.pinv_sym(m, lm.PINV_RCOND, lm.PSD_TOL) - expected).max() <= 1e-10
    d = np.diag([1.0, -1e-13])
    assert lm.pinv_sym(d, lm.PINV_RCOND, lm.PINV_RCOND)[1, 1] == pytest.approx(-1e13)
    assert lm.pinv_sym(d, lm.PINV_RCOND, lm.PSD_TOL)[1, 1] == 0.0


# A sequence the random sequences found: 10^12 trials on arm "a" under Full-TS, a reference
# change, then ORTS. The cancellations of those 1e11-sized precisions leave the stored state a
# negative eigenvalue of -4e-6 (-7.5e-13 of its largest; re-expressed for win_prop, -1.01e-12):
# rounding relative to numbers the state no longer holds. The update stores the PSD part.
HUGE_THEN_SMALL = [
    ({"a": [10, 1], "d": [0, 0]}, True, 0.0),
    ({"b": [10, 10], "d": [3, 1]}, True, 1.0),
    (
        {
            "f": [10**7, 8_932_012],
            "e": [3, 0],
            "c": [10**7, 5_469_180],
            "g": [3, 3],
            "a": [10**12, 286_562_406_633],
        },
        False,
        1.0,
    ),
    (["d", "c", "b", "f", "a", "g"], None, None),  # transform
    ({"h": [2, 0], "b": [2, 2], "g": [0, 0], "e": [10**7, 4_826_626]}, True, 0.0),
]


def test_stored_precision_is_psd_whatever_the_history(bk):
    bandit = bk.LogisticBandit(seed=0)
    for obs, odds_ratios_only, decay in HUGE_THEN_SMALL:
        if isinstance(obs, list):
            bandit.transform(obs)
        else:
            bandit.update(obs, odds_ratios_only=odds_ratios_only, decay=decay)
    ev = np.linalg.eigvalsh(np.asarray(bandit.sigma_inv))
    assert ev[0] >= -1e-14 * ev[-1]  # PSD to the rounding of its own entries (8 x 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for arms in (None, ["h", "d", "c", "f", "a", "b", "g"]):
            for method in ("mc", "exact"):
                shares = bandit.win_prop(action_list=arms, draw=2_000, method=method)
                assert sum(shares.values()) == pytest.approx(1.0, abs=1e-9)


# Found by the random sequences: an ORTS update whose carried prior gives the first arm a
# precision of 1e-23 (rounding of 0) tied by rounding-level entries to precisions of 2.5e7 (the
# state had seen 10^9 trials). The undamped Newton step along it was 1e18 and the MAP ended at
# 3.5e16; the solver's damping floor treats curvature that small as zero.
NEAR_ZERO_PRIOR_MEAN = [
    -13.813509557297106,
    -11.446888293692664,
    -13.813509557297106,
    -4.453269714293418,
    -18.944065749547434,
    11.360024492941971,
]
NEAR_ZERO_PRIOR_PRECISION = [
    [1.1779619986003206e-23, 1.726749709912095e-08, -1.7300093467621664e-08,
     3.120016723892963e-11, 1.3962012622483153e-12, 0.0],
    [1.726749709912095e-08, 25662785.65088364, -25312450.710197266, -346807.9465849174,
     -3526.9939301325835, 0.0],
    [-1.7300093467621664e-08, -25312450.710197266, 25414820.792737316, -101339.47258547475,
     -1030.609904444158, 0.0],
    [3.120016723892963e-11, -346807.9465849174, -101339.47258547475, 448161.5396412357,
     -14.12047014793771, 0.0],
    [1.3962012622483153e-12, -3526.9939301325835, -1030.609904444158, -14.12047014793771,
     4571.724304740864, 0.0],
    [0.0] * 6,
]  # fmt: skip


def test_rounding_level_curvature_does_not_move_the_map():
    problem = lm.MapProblem(
        k=6,
        obs_index=np.array([3, 4, 5]),
        totals=np.array([1.0, 1e9, 1.0]),
        successes=np.array([1.0, 335_344_178.0, 0.0]),
        prior_start=0,
        prior_mean=np.array(NEAR_ZERO_PRIOR_MEAN),
        prior_precision=0.9 * np.array(NEAR_ZERO_PRIOR_PRECISION),
    )
    w = lm.map_estimate(problem)
    assert np.abs(w).max() < 30.0
    g, _ = problem.gradient_hessian(w)
    assert np.abs(g).max() < 1e-12


# Found by the random sequences: 0 of 1000 on the reference, whose start (its prior mean, 7.1)
# puts p on the upper clip. One full Newton step crossed the whole interior and landed 1000
# log-odds units down on the lower plateau (every point of which is a MAP): the reference ended
# at -946, "c" at +948. The step bound keeps the MAP near the plateau's edge.
PLATEAU_OVERSHOOT = [
    ({"e": [2, 1], "b": [10, 0], "d": [10, 0], "c": [10, 10], "g": [1, 1]}, False, 0.1),
    ({"g": [0, 0], "d": [0, 0], "b": [2, 0], "a": [1, 1], "e": [10, 7]}, True, 0.0),
    ({"c": [10, 9], "a": [1000, 0]}, True, 1.0),
]


def test_newton_does_not_jump_across_a_plateau(bk):
    bandit = bk.LogisticBandit(seed=0)
    for obs, odds_ratios_only, decay in PLATEAU_OVERSHOOT:
        bandit.update(obs, odds_ratios_only=odds_ratios_only, decay=decay)
    names = bandit.action_list
    mu = np.asarray(bandit.mu)
    assert np.abs(mu).max() < 30.0
    # c's rate is matched exactly; the reference sits on its plateau, p = L(mu_a) <= 0.001.
    assert mu[names.index("c")] + mu[-1] == pytest.approx(np.log(9.0), abs=1e-9)
    assert lm.logistic(mu[-1]) <= lm.P_MIN


# Found by the random sequences: after these batches, re-expressing the state for a new
# reference gave a sigma_inv whose two triangles differed in the last digits (617591.9672232866
# against ...295): the product's triangles are summed in different orders.
HUGE_THEN_TRANSFORM = [
    ({"c": [3, 3], "a": [10, 3], "e": [1000, 862]}, True, 0.5),
    (
        {
            "g": [10**7, 3_104_819],
            "h": [10**12, 10**12],
            "b": [100_000, 8540],
            "e": [2, 2],
            "c": [10**12, 10**12],
        },
        True,
        0.5,
    ),
    ({"d": [2, 2], "f": [10**7, 1_410_226], "b": [10**12, 10**12]}, True, 0.0),
    ({"f": [100_000, 0]}, False, 0.5),
]


def test_transform_and_delete_keep_sigma_inv_exactly_symmetric(bk):
    bandit = bk.LogisticBandit(seed=0)
    for obs, odds_ratios_only, decay in HUGE_THEN_TRANSFORM:
        bandit.update(obs, odds_ratios_only=odds_ratios_only, decay=decay)
    order = ["a", "d", "f", "b", "g", "c", "h"]
    _, product = bandit.get_par(order)
    bandit.transform(order)
    sigma_inv = np.asarray(bandit.sigma_inv)
    assert np.array_equal(sigma_inv, sigma_inv.T)
    np.testing.assert_allclose(sigma_inv, product, rtol=0, atol=1e-15 * np.abs(product).max())
    bandit.delete("c")
    assert np.array_equal(np.asarray(bandit.sigma_inv), np.asarray(bandit.sigma_inv).T)
