"""TSPar: every rule of spec/thompson.md, on both backends (the `bk` fixture)."""

from __future__ import annotations

import numpy as np
import orts
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_state import five_se, prob_best_beta_quad, tspar_state
from conftest import backend_module

OBS = {"a": [40, 12], "b": [50, 18], "c": [30, 8]}


def fitted(bk, seed: int | None = None):
    b = bk.TSPar(seed=seed)
    b.update(OBS)
    return b


def test_new_model_is_empty(bk):
    b = bk.TSPar()
    assert b.get_models() == [] and b.action_list == []
    assert isinstance(b.alpha, np.ndarray) and b.alpha.shape == (0,) and b.alpha.dtype == float
    assert isinstance(b.beta, np.ndarray) and b.beta.shape == (0,) and b.beta.dtype == float


def test_update_adds_counts_to_beta_one_one(bk):
    b = fitted(bk)
    assert b.get_models() == ["a", "b", "c"]
    assert b.alpha.tolist() == [13.0, 19.0, 9.0]
    assert b.beta.tolist() == [29.0, 33.0, 23.0]
    b.update({"b": (10, 10)})
    assert b.alpha.tolist() == [13.0, 29.0, 9.0]
    assert b.beta.tolist() == [29.0, 33.0, 23.0]


def test_arms_first_seen_later_are_added(bk):
    """Upstream bug: arms new after the first update were silently ignored."""
    b = fitted(bk)
    b.update({"d": [10, 4], "a": [10, 1]})
    assert b.get_models() == ["a", "b", "c", "d"]
    assert b.alpha.tolist() == [14.0, 19.0, 9.0, 5.0]
    assert b.beta.tolist() == [38.0, 33.0, 23.0, 7.0]


def test_known_arm_missing_from_obs_is_unchanged(bk):
    """Upstream bug: a known arm absent from obs raised KeyError."""
    b = fitted(bk)
    b.update({"c": [5, 5]})
    assert b.alpha.tolist() == [13.0, 19.0, 14.0]
    assert b.beta.tolist() == [29.0, 33.0, 23.0]


def test_count_forms(bk):
    b = bk.TSPar()
    b.update(
        {
            "list": [4, 1],
            "tuple": (4, 1),
            "array": np.array([4, 1]),
            "floats": [4.0, 1.0],
            "numpy_scalars": [np.int64(4), np.float32(1.0)],
            "zero": [0, 0],
        }
    )
    assert b.alpha.tolist() == [2.0] * 5 + [1.0]
    assert b.beta.tolist() == [4.0] * 5 + [1.0]


def test_alpha_0_and_max_iter_are_accepted_and_ignored(bk):
    plain, extra = fitted(bk), bk.TSPar()
    extra.update(OBS, alpha_0=0.5, max_iter=3)
    extra2 = bk.TSPar()
    extra2.update(OBS, 0.5, 3)
    assert tspar_state(plain) == tspar_state(extra) == tspar_state(extra2)


def test_any_hashable_name(bk):
    b = bk.TSPar()
    b.update({1: [3, 1], ("x", 2): [3, 2]})
    assert b.get_models() == [1, ("x", 2)]
    assert set(b.win_prop(draw=100)) == {1, ("x", 2)}


def test_get_models_is_a_copy(bk):
    b = fitted(bk)
    b.get_models().append("zzz")
    assert b.get_models() == ["a", "b", "c"]


# ---- win_prop ----


def test_win_prop_empty_model(bk):
    """Upstream bug: win_prop on an empty model raised."""
    assert bk.TSPar().win_prop() == {}


def test_win_prop_single_arm(bk):
    b = bk.TSPar()
    b.update({"only": [10, 3]})
    assert b.win_prop() == {"only": 1.0}


def test_win_prop_is_counts_over_draw(bk):
    b = fitted(bk, seed=1)
    p = b.win_prop(draw=777)
    assert list(p) == ["a", "b", "c"]
    counts = np.array(list(p.values())) * 777
    assert np.allclose(counts, np.rint(counts), atol=1e-6)
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-12)


def test_win_prop_default_draw_is_10000(bk):
    p = fitted(bk, seed=2).win_prop()
    counts = np.array(list(p.values())) * 10_000
    assert np.allclose(counts, np.rint(counts), atol=1e-6)


def test_win_prop_matches_integration(bk):
    b = fitted(bk, seed=3)
    b.update({"d": [12, 5]})
    draw = 100_000
    exact = prob_best_beta_quad(b.alpha.tolist(), b.beta.tolist())
    assert exact.sum() == pytest.approx(1.0, abs=1e-9)
    got = np.array(list(b.win_prop(draw=draw).values()))
    assert np.all(np.abs(got - exact) < five_se(exact, draw))


def test_win_prop_small_shapes_match_integration(bk):
    """Shapes below 1 (U-shaped densities) and very unequal counts."""
    b = bk.TSPar(seed=4)
    b.update({"fresh": [0, 0], "lucky": [2, 2], "busy": [500, 260]})
    draw = 100_000
    exact = prob_best_beta_quad(b.alpha.tolist(), b.beta.tolist())
    got = np.array(list(b.win_prop(draw=draw).values()))
    assert np.all(np.abs(got - exact) < five_se(exact, draw))


def test_same_seed_same_sequence(bk):
    runs = []
    for _ in range(2):
        b = fitted(bk, seed=99)
        runs.append([b.win_prop(draw=1000), b.select(n=3), b.win_prop(draw=1000), b.select()])
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][2]


def test_per_call_seed_leaves_object_generator(bk):
    b, twin = fitted(bk, seed=5), fitted(bk, seed=5)
    assert b.win_prop(draw=2000, seed=12) == b.win_prop(draw=2000, seed=12)
    assert b.select(n=3, seed=12) == b.select(n=3, seed=12)
    assert b.win_prop(draw=2000) == twin.win_prop(draw=2000)
    assert b.select(n=3) == twin.select(n=3)


def test_different_seeds_differ(bk):
    assert fitted(bk, seed=1).win_prop(draw=20_000) != fitted(bk, seed=2).win_prop(draw=20_000)


# ---- select ----


def test_select(bk):
    b = fitted(bk, seed=6)
    assert b.select() in OBS
    assert sorted(b.select(n=3)) == ["a", "b", "c"]
    for seed in range(20):
        assert b.select(seed=seed) == b.select(n=3, seed=seed)[0]


def test_select_separated_arms_in_order(bk):
    b = bk.TSPar()
    b.update({"low": [10_000, 100], "high": [10_000, 9_000], "mid": [10_000, 5_000]})
    assert b.select(n=3) == ["high", "mid", "low"]


def test_select_frequency_matches_win_probability(bk):
    b = bk.TSPar(seed=7)
    b.update({"a": [20, 6], "b": [20, 9]})
    exact = prob_best_beta_quad(b.alpha.tolist(), b.beta.tolist())
    calls = 4000
    freq_b = sum(b.select() == "b" for _ in range(calls)) / calls
    assert abs(freq_b - exact[1]) < five_se(exact[1], calls)


def test_select_errors(bk):
    with pytest.raises(ValueError, match="^no arms to select from"):
        bk.TSPar().select()
    b = fitted(bk)
    for bad in (0, 4, -2):
        with pytest.raises(ValueError, match="^n must be"):
            b.select(n=bad)
    for bad in (2.0, False):  # a setting of the wrong type (docs/validation.md)
        with pytest.raises(TypeError, match="^n must be an integer"):
            b.select(n=bad)


# ---- parity and drop-in ----


def test_parity_between_backends(py_bk, rs_bk):
    draw = 100_000
    bandits = [fitted(m, seed=8) for m in (py_bk, rs_bk)]
    for b in bandits:
        b.update({"d": [12, 5], "a": [3, 3]})
    assert tspar_state(bandits[0]) == tspar_state(bandits[1])
    p_py, p_rs = (np.array(list(b.win_prop(draw=draw).values())) for b in bandits)
    assert np.all(np.abs(p_py - p_rs) < np.sqrt(2) * five_se(p_py, draw))


COUNT_PAIRS = st.integers(0, 1000).flatmap(
    lambda total: st.tuples(st.just(total), st.integers(0, total))
)
COUNT_BATCHES = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), COUNT_PAIRS, min_size=1),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40, deadline=None)
@given(batches=COUNT_BATCHES)
def test_update_parity_property(batches):
    """Same obs sequence: identical state on both backends and in upstream orts."""
    models = [backend_module(name).TSPar() for name in ("python", "rust")] + [orts.TSPar()]
    for obs in batches:
        for m in models:
            m.update({k: list(v) for k, v in obs.items()})
    states = [tspar_state(m) for m in models]
    assert states[0] == states[1] == states[2]


def orts_user_script(TSPar) -> tuple:
    """How an orts user drives TSPar."""
    model = TSPar()
    model.update({"x": [100, 10], "y": [100, 12]})
    model.update({"x": [50, 5], "z": [10, 1]}, alpha_0=0.01, max_iter=100)
    probs = model.win_prop(draw=5000)
    return model.get_models(), list(model.alpha), list(model.beta), probs


def test_drop_in_script_matches_orts(bk):
    models, alpha, beta, probs = orts_user_script(bk.TSPar)
    want_models, want_alpha, want_beta, _ = orts_user_script(orts.TSPar)
    assert (models, alpha, beta) == (want_models, want_alpha, want_beta)
    assert list(probs) == models and sum(probs.values()) == pytest.approx(1.0)
