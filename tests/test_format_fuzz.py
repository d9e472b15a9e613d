"""Fuzzing the loader: truncations and byte flips of valid files of every class give a
`banditkit.FormatError` (a ValueError) or the identical object, never a crash or a
half-built object, on both backends."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import banditkit
from conftest import backend_module
from format_cases import MAKERS, state_of

CASES = [(backend, make) for backend in ("python", "rust") for make in MAKERS]


@cache
def original(i: int) -> tuple[Any, bytes]:
    backend, make = CASES[i]
    b = make(backend_module(backend))
    return b, b.to_bytes()


def load_or_refuse(i: int, data: bytes) -> None:
    b, good = original(i)
    for load in (type(b).from_bytes, banditkit.loads):
        try:
            out = load(data)
        except banditkit.FormatError:
            continue
        assert data == good, "a damaged file loaded"
        assert state_of(out) == state_of(b)


FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@FUZZ
@given(i=st.integers(0, len(CASES) - 1), data=st.data())
def test_truncated_files_are_refused(i, data):
    good = original(i)[1]
    cut = data.draw(st.integers(0, len(good) - 1))
    load_or_refuse(i, good[:cut])


@FUZZ
@given(
    i=st.integers(0, len(CASES) - 1),
    data=st.data(),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=4),
)
def test_byte_flips_are_refused(i, data, flips):
    buf = bytearray(original(i)[1])
    for where, xor in flips:
        buf[int(where * len(buf))] ^= xor
    load_or_refuse(i, bytes(buf))


@FUZZ
@given(i=st.integers(0, len(CASES) - 1), extra=st.binary(min_size=1, max_size=16))
def test_appended_bytes_are_refused(i, extra):
    good = original(i)[1]
    load_or_refuse(i, good + extra)


@pytest.mark.parametrize("i", range(len(CASES)))
def test_every_single_byte_of_the_header_and_metadata_is_checked(i):
    good = original(i)[1]
    for pos in range(min(len(good), 400)):
        buf = bytearray(good)
        buf[pos] ^= 0x41
        load_or_refuse(i, bytes(buf))
