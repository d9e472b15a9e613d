"""The store keeps banditkit models: `put(obj)` stores `obj.to_bytes()`, `get` returns the class
named in the bytes on the current backend with the identical state. On SQLite and PostgreSQL,
for models made by either backend."""

from __future__ import annotations

import pytest

import banditkit
from banditkit.python import _format
from banditkit.store import ModelNotFound
from format_cases import MAKERS, next_answers, state_of


@pytest.mark.parametrize("make", MAKERS, ids=lambda m: m.__name__)
def test_every_class_round_trips(store, bk, make):
    model = make(bk)
    assert store.put("m", model) == 1
    assert store.get_bytes("m") == model.to_bytes()
    loaded = store.get("m")
    assert type(loaded) is getattr(banditkit, type(model).__name__)  # the current backend's
    assert state_of(loaded) == state_of(model)


def test_a_reloaded_model_continues_the_same_random_sequence(store):
    model = banditkit.TSPar(seed=3)
    model.update({"a": [100, 40], "b": [100, 45]})
    store.put("m", model)
    assert next_answers(store.get("m")) == next_answers(model)


def test_versions_keep_each_state(store):
    model = banditkit.TSPar(seed=1)
    for i in range(3):
        model.update({"a": [10, i]})
        assert store.put("m", model) == i + 1
    alphas = [float(store.get("m", v).alpha[0]) for v in (1, 2, 3)]
    assert alphas == [1.0, 2.0, 4.0]


def test_an_unknown_class_is_a_format_error_and_changes_nothing(store):
    store.put("m", banditkit.TSPar(seed=1))
    store.put_bytes("m", _format.encode("Pwned", {"arms": []}, []))
    with pytest.raises(banditkit.FormatError, match="unknown class 'Pwned'"):
        store.get("m")
    assert [v.version for v in store.versions("m")] == [1, 2]
    assert type(store.get("m", 1)).__name__ == "TSPar"


def test_a_corrupted_state_is_a_format_error(store):
    blob = bytearray(banditkit.TSPar(seed=1).to_bytes())
    blob[len(blob) // 2] ^= 0xFF
    store.put_bytes("m", bytes(blob))
    with pytest.raises(banditkit.FormatError):
        store.get("m")


def test_get_of_a_missing_name_is_model_not_found(store):
    with pytest.raises(ModelNotFound):
        store.get("nope")
