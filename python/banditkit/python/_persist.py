"""What each reference class stores in a banditkit file (docs/format.md), and the checks that
make a file load only into a state its constructor could have produced. The container itself
(header, array table, CRC) is `_format.py`.

Every document has the same fields: "writer" (banditkit version and backend), "arms" (labels,
str or int), "params" (settings), "rng" (generator state), and its arrays.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections import deque
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

import numpy as np

from .._errors import FormatError
from .._version import __version__
from . import _format
from ._format import Document

T = TypeVar("T")
U64 = (1 << 64) - 1
INT_RANGE = (-(1 << 63), 1 << 64)  # what msgpack can hold


# --- labels ---


def labels_out(labels: list[Hashable]) -> list[str | int]:
    """Arm labels for a file: str and int only (NumPy integers are saved as int)."""
    out: list[str | int] = []
    for label in labels:
        if isinstance(label, str):
            out.append(str(label))
        elif isinstance(label, numbers.Integral) and not isinstance(label, (bool, np.bool_)):
            value = int(label)
            if not INT_RANGE[0] <= value < INT_RANGE[1]:
                raise TypeError(f"arm label {label!r} is too large to save (64-bit integers)")
            out.append(value)
        else:
            raise TypeError(
                f"arm labels must be str or int to be saved, got {label!r} ({type(label).__name__})"
            )
    return out


def labels_in(doc: Document) -> list[Hashable]:
    labels = doc.fields.get("arms")
    if not isinstance(labels, list) or not all(
        isinstance(x, (str, int)) and not isinstance(x, bool) for x in labels
    ):
        raise FormatError("invalid banditkit file: arm labels must be a list of str and int")
    if len(set(labels)) != len(labels):
        raise FormatError("invalid banditkit file: duplicate arm labels")
    return list(labels)


# --- fields and arrays ---


def _field(mapping: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"invalid banditkit file: {where}[{key!r}] must be {kind.__name__}")
    return value  # type: ignore[return-value]


def param(doc: Document, key: str, kind: type[T]) -> T:
    params = doc.fields.get("params")
    if not isinstance(params, dict):
        raise FormatError("invalid banditkit file: no params")
    return _field(params, key, kind, "params")


def array(doc: Document, name: str, shape: tuple[int, ...], dtype: str = "f8") -> np.ndarray:
    """A writable copy of array `name`, checked for shape, dtype and (f8) finiteness."""
    arr = doc.arrays.get(name)
    if arr is None:
        raise FormatError(f"invalid banditkit file: no array {name!r}")
    if arr.shape != shape or arr.dtype != _format.DTYPES[dtype]:
        raise FormatError(
            f"invalid banditkit file: array {name!r} must be {dtype} of shape {shape}, "
            f"got {arr.dtype.str[1:]} of shape {arr.shape}"
        )
    if dtype == "f8" and not np.all(np.isfinite(arr)):
        raise FormatError(f"invalid banditkit file: array {name!r} must be finite")
    if dtype == "i8" and np.any(arr < 0):
        raise FormatError(f"invalid banditkit file: array {name!r} must be non-negative")
    return np.array(arr, dtype=float if dtype == "f8" else np.int64)


def check_positive(values: np.ndarray, name: str) -> None:
    if np.any(values <= 0.0):
        raise FormatError(f"invalid banditkit file: {name} must be positive")


@functools.lru_cache(maxsize=8)
def packed_indices(d: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of a symmetric d x d matrix's packed upper triangle, in file order: row
    by row, each from the diagonal on (the Rust core's packed layout). Cached, read-only."""
    rows, cols = np.triu_indices(d)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def packed_symmetric(doc: Document, name: str, k: int, d: int) -> np.ndarray:
    """The `k` symmetric `d x d` matrices stored as packed upper triangles (shape
    `(k, d (d + 1) / 2)`), as full matrices, exactly symmetric by construction."""
    packed = array(doc, name, (k, d * (d + 1) // 2))
    rows, cols = packed_indices(d)
    full = np.empty((k, d, d))
    full[:, rows, cols] = packed
    full[:, cols, rows] = packed
    return full


# --- random generators ---


def _split(x: int) -> list[int]:
    return [x >> 64, x & U64]


def _join(pair: object) -> int:
    if not (isinstance(pair, list) and len(pair) == 2 and all(_is_u64(v) for v in pair)):
        raise FormatError("invalid banditkit file: a 128-bit value must be [hi, lo] u64 words")
    return (pair[0] << 64) | pair[1]


def _is_u64(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U64


def rng_out(rng: np.random.Generator) -> dict[str, Any]:
    """numpy's PCG64 state, exactly (128-bit words as [hi, lo])."""
    st = rng.bit_generator.state
    if st["bit_generator"] != "PCG64":
        raise TypeError(f"cannot save a {st['bit_generator']} generator")
    return {
        "kind": "pcg64",
        "state": _split(st["state"]["state"]),
        "inc": _split(st["state"]["inc"]),
        "has_uint32": int(st["has_uint32"]),
        "uinteger": int(st["uinteger"]),
    }


def rng_in(doc: Document) -> np.random.Generator:
    """The saved generator: exactly, if this backend wrote it; otherwise seeded from the
    foreign state (docs/format.md: a SplitMix64 state s -> default_rng(s); the Rust contextual
    stream (seed, events) -> default_rng([seed, events]))."""
    rng = doc.fields.get("rng")
    kind = rng.get("kind") if isinstance(rng, dict) else None
    if kind == "pcg64":
        state, inc = _join(rng.get("state")), _join(rng.get("inc"))
        has = _field(rng, "has_uint32", int, "rng")
        uint = _field(rng, "uinteger", int, "rng")
        if has not in (0, 1) or not 0 <= uint < 2**32 or inc % 2 == 0:
            raise FormatError("invalid banditkit file: bad PCG64 state")
        g = np.random.Generator(np.random.PCG64())
        g.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": state, "inc": inc},
            "has_uint32": has,
            "uinteger": uint,
        }
        return g
    if kind == "splitmix64":
        s = rng.get("state")
        if _is_u64(s):
            return np.random.default_rng(s)
    if kind == "xoshiro256pp-events":
        seed, events = rng.get("seed"), rng.get("events")
        if _is_u64(seed) and _is_u64(events):
            return np.random.default_rng([seed, events])
    raise FormatError(f"invalid banditkit file: unknown random generator state {rng!r}")


# --- documents ---


def fields(labels: list[Hashable], params: dict[str, Any], rng: np.random.Generator) -> dict:
    return {
        "writer": {"banditkit": __version__, "backend": "python"},
        "arms": labels_out(labels),
        "params": params,
        "rng": rng_out(rng),
    }


def encode(obj: Any, params: dict[str, Any], labels: list[Hashable], arrays: list) -> bytes:
    return _format.encode(type(obj).__name__, fields(labels, params, obj._rng), arrays)


def decode(data: bytes, cls: type) -> Document:
    """The document of `data`, which must hold a `cls` (the class is refused by name)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    doc = _format.decode(data)
    if doc.class_name != cls.__name__:
        raise FormatError(f"the file holds a {doc.class_name!r}, not a {cls.__name__!r}")
    return doc


def finite_positive(doc: Document, key: str) -> float:
    value = param(doc, key, float)
    if not (math.isfinite(value) and value > 0.0):
        raise FormatError(f"invalid banditkit file: {key} must be positive, got {value}")
    return value


def history(doc: Document, k: int, d: int, window: int, pulls: np.ndarray) -> list[deque]:
    """Per-arm windows of (x, r), oldest first, from the flat history arrays."""
    lens = array(doc, "window_len", (k,), "i8")
    if np.any(lens > (window if window else 0)) or np.any(lens > pulls):
        raise FormatError("invalid banditkit file: window_len exceeds the window or the pulls")
    n = int(lens.sum())
    xs, rs = array(doc, "history_x", (n, d)), array(doc, "history_r", (n,))
    out, start = [], 0
    for m in lens.tolist():
        out.append(deque((xs[i].copy(), float(rs[i])) for i in range(start, start + m)))
        start += m
    return out


class Persistent:
    """Pickle through the format (`__reduce__` -> `from_bytes`). Copies are not encoded: they
    stay plain deep copies (any labels), made under the lock by `_sync.Synchronized`."""

    def to_bytes(self) -> bytes:
        raise NotImplementedError

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (type(self).from_bytes, (self.to_bytes(),))  # type: ignore[attr-defined]
