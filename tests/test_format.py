"""The banditkit file format (docs/format.md): round trips on and across backends, pickle
through the format, refusal of bad files by name, save/load to a path."""

from __future__ import annotations

import copy
import pickle
import struct
import zlib

import numpy as np
import pytest

import banditkit
from banditkit.python import _format
from format_cases import MAKERS, next_answers, state_of

ALL = pytest.mark.parametrize("make", MAKERS, ids=lambda m: m.__name__)


def reload(b):
    return type(b).from_bytes(b.to_bytes())


@ALL
def test_round_trip_same_backend_continues_like_a_never_saved_twin(bk, make):
    b = make(bk)
    copy_ = reload(b)
    twin = make(bk)  # built the same way, never saved
    assert type(copy_) is type(b)
    assert state_of(copy_) == state_of(b) == state_of(twin)
    expected = next_answers(twin)
    assert next_answers(copy_) == expected
    assert next_answers(b) == expected  # saving did not move the original's generator


@ALL
@pytest.mark.parametrize("seed", [None, 0, 2**64 - 1])
def test_round_trip_any_seed(bk, make, seed):
    b = make(bk, seed=seed)
    copy_ = reload(b)
    assert state_of(copy_) == state_of(b)
    assert next_answers(copy_) == next_answers(b)


@ALL
def test_bytes_are_stable(bk, make):
    b = make(bk)
    assert b.to_bytes() == b.to_bytes() == reload(b).to_bytes()


@ALL
def test_rust_to_python_to_rust_is_bit_identical(py_bk, rs_bk, make):
    rs = make(rs_bk)
    py = getattr(py_bk, type(rs).__name__).from_bytes(rs.to_bytes())
    assert state_of(py) == state_of(rs)
    back = type(rs).from_bytes(py.to_bytes())
    assert state_of(back) == state_of(rs)
    # The generator state is foreign across backends: seeded deterministically from it.
    again = getattr(py_bk, type(rs).__name__).from_bytes(rs.to_bytes())
    assert next_answers(again) == next_answers(py)


@ALL
def test_python_to_rust_to_python_is_bit_identical(py_bk, rs_bk, make):
    py = make(py_bk)
    rs = getattr(rs_bk, type(py).__name__).from_bytes(py.to_bytes())
    assert state_of(rs) == state_of(py)
    assert state_of(type(py).from_bytes(rs.to_bytes())) == state_of(py)


@ALL
def test_documents_of_both_backends_agree(py_bk, rs_bk, make):
    """Same state, same document: only the writer field and the generator state differ."""
    docs = [_format.decode(make(m).to_bytes()) for m in (py_bk, rs_bk)]
    py, rs = docs
    assert py.class_name == rs.class_name
    assert py.fields["arms"] == rs.fields["arms"]
    assert py.fields["params"] == rs.fields["params"]
    assert [py.fields["writer"]["backend"], rs.fields["writer"]["backend"]] == ["python", "rust"]
    assert list(py.arrays) == list(rs.arrays)
    for name in py.arrays:
        assert py.arrays[name].dtype == rs.arrays[name].dtype, name
        assert py.arrays[name].shape == rs.arrays[name].shape, name


@ALL
def test_loads_gives_the_current_backend_class(py_bk, rs_bk, make):
    for m in (py_bk, rs_bk):
        b = make(m)
        out = banditkit.loads(b.to_bytes())
        assert type(out) is getattr(banditkit, type(b).__name__)
        assert state_of(out) == state_of(b)
        assert banditkit.dumps(b) == b.to_bytes()


@ALL
def test_pickle_goes_through_the_format(bk, make):
    b = make(bk)
    reduced = b.__reduce__()
    assert reduced[1] == (b.to_bytes(),)
    twin = pickle.loads(pickle.dumps(b))
    assert type(twin) is type(b)
    assert state_of(twin) == state_of(b)
    assert next_answers(twin) == next_answers(b)


@ALL
@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy])
def test_copies_are_independent_and_in_step(bk, make, duplicate):
    b = make(bk)
    twin = duplicate(b)
    assert state_of(twin) == state_of(b)
    assert next_answers(twin) == next_answers(b)


@ALL
def test_save_and_load_a_path(bk, make, tmp_path):
    b = make(bk)
    path = tmp_path / "model.bkit"
    banditkit.save(b, path)
    assert path.read_bytes() == b.to_bytes()
    assert state_of(banditkit.load(path)) == state_of(b)
    assert state_of(banditkit.load(str(path))) == state_of(b)
    assert [p.name for p in tmp_path.iterdir()] == ["model.bkit"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        banditkit.load(tmp_path / "nothing.bkit")


def test_format_error_is_a_value_error_everywhere(bk):
    assert issubclass(banditkit.FormatError, ValueError)
    for cls in (bk.TSPar, bk.LinUCB):
        with pytest.raises(banditkit.FormatError):
            cls.from_bytes(b"not a model")


def with_header(data: bytes, version: int) -> bytes:
    """`data` with another header version and a CRC that matches again."""
    body = data[:4] + struct.pack("<H", version) + data[6:-4]
    return body + struct.pack("<I", zlib.crc32(body))


@ALL
def test_a_newer_format_version_is_refused_by_name(bk, make):
    data = make(bk).to_bytes()
    for load in (type(make(bk)).from_bytes, banditkit.loads):
        with pytest.raises(banditkit.FormatError, match="format version 2 is newer"):
            load(with_header(data, 2))


def test_an_unknown_class_is_refused_by_name(bk):
    data = _format.encode("Pwned", {"arms": []}, [])
    with pytest.raises(banditkit.FormatError, match="unknown class 'Pwned'"):
        banditkit.loads(data)
    with pytest.raises(banditkit.FormatError, match="'Pwned'"):
        bk.TSPar.from_bytes(data)


def test_another_class_is_refused_by_name(bk):
    data = bk.TSPar(seed=1).to_bytes()
    with pytest.raises(banditkit.FormatError, match="'TSPar'.*'LinearBandit'"):
        bk.LinearBandit.from_bytes(data)


@pytest.mark.parametrize("label", [("t", 1), 1.5, None, True, b"x", 2**64])
def test_labels_other_than_str_and_int_are_refused_at_save(bk, label):
    b = bk.TSPar(seed=1)
    b.update({"a": [2, 1], label: [3, 1]})
    with pytest.raises(TypeError, match="str or int|too large"):
        b.to_bytes()
    with pytest.raises(TypeError):
        pickle.dumps(b)
    u = bk.LinUCB(["a", label], 2)
    with pytest.raises(TypeError):
        u.to_bytes()
    assert copy.deepcopy(u).arms == ["a", label]  # copies do not encode


def test_numpy_integer_labels_come_back_as_int(bk):
    b = bk.TSPar(seed=1)
    b.update({np.int64(4): [2, 1]})
    assert bk.TSPar.from_bytes(b.to_bytes()).action_list == [4]


def rewrite(data: bytes, edit) -> bytes:
    """`data` decoded, edited (fields and arrays) and encoded again, with a valid CRC."""
    doc = _format.decode(data)
    fields = copy.deepcopy(doc.fields)
    arrays = {k: np.array(v) for k, v in doc.arrays.items()}
    edit(fields, arrays)
    return _format.encode(doc.class_name, fields, list(arrays.items()))


def set_array(name, value):
    def edit(fields, arrays):
        arrays[name] = value(arrays[name])

    return edit


BAD_EDITS = {
    "TSPar": [
        set_array("alpha", lambda a: a[:-1]),
        set_array("beta", lambda a: np.where(np.arange(a.size) == 0, np.nan, a)),
        set_array("alpha", lambda a: -a),
        set_array("beta", lambda a: a.astype(np.int64)),
    ],
    "LinearBandit": [
        set_array("counts", lambda a: -a),
        set_array("sigma", lambda a: 0 * a),
        set_array("mu", lambda a: a.reshape(1, -1)),
        set_array("sum_rewards", lambda a: a + np.inf),
        lambda f, a: f["params"].update(obs_noise=-1.0),
        lambda f, a: f["arms"].append("extra"),
        lambda f, a: f.__setitem__("arms", ["x", "x", "y", "z", "w"]),
        lambda f, a: f.__setitem__("rng", {"kind": "mersenne"}),
    ],
    "LogisticBandit": [
        set_array("sigma_inv", lambda a: a + np.triu(np.ones_like(a))),
        set_array("sigma_inv", lambda a: a - 2 * np.abs(a).max() * np.eye(len(a))),
        set_array("mu", lambda a: np.where(np.arange(a.size) == 1, np.nan, a)),
        lambda f, a: a.pop("sigma_inv"),
    ],
    "LinUCB": [
        set_array("gram", lambda a: a[:, :-1]),
        set_array("gram", lambda a: np.zeros((a.shape[0], 4, 4))),  # full matrices: not packed
        set_array("a_inv", lambda a: np.where(np.arange(a.shape[1]) == 3, np.inf, a)),
        set_array("theta", lambda a: a * np.nan),
        set_array("pulls", lambda a: -a),
        set_array("window_len", lambda a: a + 1),
        lambda f, a: f["params"].update(gamma=1.5),
        lambda f, a: f["params"].update(n_features=0),
        lambda f, a: f["params"].update(alpha="high"),
    ],
}


@pytest.mark.parametrize("cls", sorted(BAD_EDITS))
def test_invalid_states_are_refused(bk, py_bk, cls):
    make = {m.__name__: m for m in MAKERS}[
        {"LinUCB": "linucb_plain", "LinearBandit": "linear", "TSPar": "tspar"}.get(cls, "logistic")
    ]
    data = make(py_bk).to_bytes()
    for i, edit in enumerate(BAD_EDITS[cls]):
        bad = rewrite(data, edit)
        with pytest.raises(banditkit.FormatError):
            getattr(bk, cls).from_bytes(bad)
            pytest.fail(f"edit {i} accepted")


def test_non_bytes_is_a_type_error(bk):
    with pytest.raises(TypeError):
        bk.TSPar.from_bytes("BKIT")
    with pytest.raises(TypeError):
        banditkit.loads(42)
    with pytest.raises(TypeError):
        banditkit.dumps(object())


@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_reloaded_contextual_model_keeps_learning_bit_for_bit(bk, cls):
    """Saving applies no rounding of its own: with gamma = 1 the saved and reloaded model and
    a twin never saved stay identical through further learning (refactors included)."""
    make = {m.__name__: m for m in MAKERS}[f"{cls.lower()}_plain"]
    b, twin = make(bk), make(bk)
    copy_ = reload(b)
    rng = np.random.default_rng(5)
    X, R = rng.standard_normal((40, 4)), rng.standard_normal(40)
    arms = (["a", 7, "c", "c"] * 10)[:40]
    for m in (b, twin, copy_):
        m.partial_fit(X, arms, R)
    assert state_of(copy_) == state_of(twin) == state_of(b)
    assert next_answers(copy_) == next_answers(twin)


@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_reloaded_forgetting_model_keeps_learning_to_rounding(bk, cls):
    """With gamma < 1 the Rust backend's pending Gram updates are folded in when saving: later
    states match the original to rounding (and exactly on the Python backend)."""
    make = {m.__name__: m for m in MAKERS}[f"{cls.lower()}_window_size_gamma"]
    b = make(bk)
    copy_ = reload(b)
    rng = np.random.default_rng(5)
    X, R = rng.standard_normal((40, 4)), rng.standard_normal(40)
    arms = (["a", 7, "c", "c"] * 10)[:40]
    for m in (b, copy_):
        m.partial_fit(X, arms, R)
    for k in b.arms:
        for get in ("theta", "a_inv", "gram", "b"):
            np.testing.assert_allclose(
                getattr(copy_, get)(k), getattr(b, get)(k), rtol=1e-12, atol=1e-12
            )
    assert copy_.predict(X) == b.predict(X)


def test_saving_while_another_thread_learns(rs_bk):
    """Every file written during concurrent updates is a whole, consistent state."""
    import threading

    b = rs_bk.LinUCB(["a", "b"], 30, seed=3, window_size=20)
    rng = np.random.default_rng(0)
    X, R = rng.standard_normal((300, 30)), rng.standard_normal(300)
    saved: list[bytes] = []

    def learn() -> None:
        for i in range(300):
            b.update("a" if i % 3 else "b", X[i], R[i])

    def save() -> None:
        for _ in range(40):
            saved.append(b.to_bytes())

    threads = [threading.Thread(target=learn), threading.Thread(target=save)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pulls = []
    for data in saved:
        copy_ = rs_bk.LinUCB.from_bytes(data)
        assert copy_.to_bytes() == data
        pulls.append(copy_.get_stats()["total_pulls"])
    assert pulls == sorted(pulls)  # files follow the updates, never a mix


@pytest.mark.parametrize("cls", ["LinUCB", "LinTS"])
def test_symmetric_matrices_are_stored_as_packed_upper_triangles(bk, cls):
    """docs/format.md: gram and a_inv are (k, d (d + 1) / 2), each row the upper triangle row
    by row; a_inv times a_inv_scale is the model's inverse."""
    b = {m.__name__: m for m in MAKERS}[f"{cls.lower()}_plain"](bk)
    doc = _format.decode(b.to_bytes())
    d, k = b.n_features, len(b.arms)
    rows, cols = np.triu_indices(d)
    assert doc.arrays["gram"].shape == doc.arrays["a_inv"].shape == (k, d * (d + 1) // 2)
    for i, arm in enumerate(b.arms):
        assert np.array_equal(doc.arrays["gram"][i], b.gram(arm)[rows, cols])
        scaled = doc.arrays["a_inv_scale"][i] * doc.arrays["a_inv"][i]
        assert np.array_equal(scaled, b.a_inv(arm)[rows, cols])
