"""The two container codecs (Rust core `format.rs`, Python `_format.py`) are one format: the same
document gives the same bytes, in both directions, and both refuse the same damaged files."""

from __future__ import annotations

import numpy as np
import pytest

import banditkit
from banditkit.python import _format
from banditkit_rs import _banditkit_rs as native
from conftest import backend_module
from format_cases import MAKERS

DOCS = [
    ("Empty", {}, []),
    (
        "Kinds",
        {
            "ints": [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32, 2**64 - 1],
            "negative": [-1, -32, -33, -128, -129, -32768, -32769, -(2**31) - 1, -(2**63)],
            "floats": [0.0, -0.0, 1.5, 1e308, 5e-324, float("inf")],
            "strings": ["", "a" * 31, "b" * 32, "c" * 255, "d" * 256, "é€😀"],
            "nested": {"map": {"x": None, "y": True, "z": False}, "list": [[], [[1]]]},
        },
        [
            ("f", np.arange(12.0).reshape(3, 4)),
            ("i", np.array([-5, 0, 2**62], dtype=np.int64)),
            ("empty", np.zeros((0, 7))),
            ("scalar", np.array(3.25)),
        ],
    ),
]


@pytest.mark.parametrize("doc", DOCS, ids=[d[0] for d in DOCS])
def test_python_document_rust_reencodes_to_the_same_bytes(doc):
    data = _format.encode(*doc)
    assert native._format_reencode(data) == data


@pytest.mark.parametrize("make", MAKERS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("backend", ["python", "rust"])
def test_class_files_reencode_identically_in_both_codecs(make, backend):
    data = make(backend_module(backend)).to_bytes()
    doc = _format.decode(data)
    python_again = _format.encode(doc.class_name, doc.fields, list(doc.arrays.items()))
    assert python_again == data
    assert native._format_reencode(data) == data


def test_both_codecs_refuse_the_same_damage():
    data = _format.encode(*DOCS[1])
    for cut in range(0, len(data), 7):
        for decode in (_format.decode, native._format_reencode):
            with pytest.raises(banditkit.FormatError):
                decode(data[:cut])
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x08
        for decode in (_format.decode, native._format_reencode):
            with pytest.raises(banditkit.FormatError):
                decode(bytes(bad))


def test_layout():
    data = _format.encode("T", {"x": 1}, [("a", np.array([1.0, 2.0]))])
    assert data[:4] == b"BKIT"
    assert int.from_bytes(data[4:6], "little") == _format.FORMAT_VERSION == 1
    meta_len = int.from_bytes(data[8:12], "little")
    start = (12 + meta_len + 7) // 8 * 8
    assert np.frombuffer(data[start : start + 16], "<f8").tolist() == [1.0, 2.0]
    assert len(data) == start + 16 + 4
