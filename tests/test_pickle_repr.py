"""Pickle round trip (through the format), copy, deepcopy and repr: LinearBandit, TSPar."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from bandit_state import state_of


def linear(bk, seed: int | None = 5) -> Any:
    b = bk.LinearBandit(
        mu={"p": 0.2}, sigma={"p": 0.7}, default_sigma=2.5, obs_noise=0.1, seed=seed
    )
    b.update({"a": [1.0, 2.0], 3: [0.5], -7: 0.25})
    return b


def tspar(bk, seed: int | None = 5) -> Any:
    b = bk.TSPar(seed=seed)
    b.update({"a": [10, 3], 3: [12, 7], -7: [4, 4]})
    return b


MAKERS = [linear, tspar]


def next_answers(b: Any) -> list:
    """The next random answers: equal for two objects only if their generators are in step."""
    return [b.win_prop(draw=500), b.select(n=3), b.select(), b.win_prop(draw=500)]


def roundtrip(b: Any) -> Any:
    return pickle.loads(pickle.dumps(b))


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("duplicate", [roundtrip, copy.deepcopy, copy.copy])
def test_duplicate_has_same_state_and_continues_identically(bk, make, duplicate):
    b = make(bk)
    b.win_prop(draw=100)  # move the generator away from its seeded start
    twin = duplicate(b)
    assert type(twin) is type(b)
    assert state_of(twin) == state_of(b)
    assert next_answers(twin) == next_answers(b)


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("duplicate", [roundtrip, copy.deepcopy, copy.copy])
def test_duplicate_is_independent(bk, make, duplicate):
    b = make(bk)
    before = state_of(b)
    twin = duplicate(b)
    obs = {"a": [3, 1], "zz": [2, 2]} if make is tspar else {"a": [3.0], "zz": [2.0]}
    twin.update(obs)
    twin.win_prop(draw=100)
    assert state_of(b) == before
    assert "zz" in twin.get_models() and "zz" not in b.get_models()


@pytest.mark.parametrize("make", MAKERS)
def test_roundtrip_then_update_matches_original(bk, make):
    b = make(bk)
    twin = roundtrip(b)
    obs = {"a": [5, 2]} if make is tspar else {"a": [0.3, 0.9]}
    b.update(obs)
    twin.update(obs)
    assert state_of(twin) == state_of(b)
    assert next_answers(twin) == next_answers(b)


def test_pickle_empty_objects(bk):
    for b in (bk.LinearBandit(), bk.TSPar()):
        twin = roundtrip(b)
        assert state_of(twin) == state_of(b)
        assert twin.win_prop() == {}


def test_pickle_unseeded_object_keeps_its_generator(bk):
    b = linear(bk, seed=None)
    assert next_answers(roundtrip(b)) == next_answers(b)


def test_repr(bk):
    assert repr(bk.LinearBandit()) == "LinearBandit(arms=0, default_sigma=1.0, obs_noise=1.0)"
    assert repr(linear(bk)) == "LinearBandit(arms=4, default_sigma=2.5, obs_noise=0.1)"
    three = bk.LinearBandit()
    three.update({"x": 1.0, "y": 2.0, "z": [3.0]})
    assert repr(three) == "LinearBandit(arms=3, default_sigma=1.0, obs_noise=1.0)"
    assert repr(bk.TSPar()) == "TSPar(arms=0)"
    two = bk.TSPar()
    two.update({"x": [1, 0], "y": [2, 1]})
    assert repr(two) == "TSPar(arms=2)"
