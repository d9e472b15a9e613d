"""The banditkit file container, NumPy reference (docs/format.md). Its Rust twin is
`rust/banditkit-core/src/format.rs`; both turn the same document into the same bytes.

    magic "BKIT" | u16 version | u16 reserved (0) | u32 metadata length   (little-endian)
    metadata: one msgpack map {"format", "class", <fields...>, "arrays": [[name, dtype, shape]]}
    zero padding to a multiple of 8 bytes
    the arrays, in table order, raw little-endian float64 ("f8") / int64 ("i8"), C order
    CRC-32 (IEEE, zlib.crc32) of every byte before it, as a u32

Only the container lives here; what each class stores is in `_persist.py`.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from .._errors import FormatError

MAGIC = b"BKIT"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sHHI")
CRC = struct.Struct("<I")
DTYPES = {"f8": np.dtype("<f8"), "i8": np.dtype("<i8")}
# Far above any real model, far below what would let a forged length allocate memory.
MAX_METADATA = 1 << 24


@dataclass
class Document:
    """A decoded file: class name, metadata fields (without "format", "class", "arrays") and
    the arrays by name (read-only views of the input bytes)."""

    class_name: str
    fields: dict[str, Any]
    arrays: dict[str, np.ndarray]


def _padded(n: int) -> int:
    return (n + 7) & ~7


def encode(
    class_name: str, fields: Mapping[str, Any], arrays: Sequence[tuple[str, np.ndarray]]
) -> bytes:
    """One file. `fields` must hold msgpack-able values only (str, int, float, bool, None,
    lists, str-keyed maps); every array must be float64 or int64."""
    table = []
    blocks = []
    for name, arr in arrays:
        a = np.asarray(arr)
        kind = {"f": "f8", "i": "i8"}.get(a.dtype.kind)
        if kind is None or a.dtype.itemsize != 8:
            raise TypeError(f"array {name!r} must be float64 or int64, got {a.dtype}")
        table.append([name, kind, list(a.shape)])
        blocks.append(np.ascontiguousarray(a, dtype=DTYPES[kind]))
    meta = {"format": FORMAT_VERSION, "class": class_name, **fields, "arrays": table}
    packed = msgpack.packb(meta, use_bin_type=True)
    head = HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(packed)) + packed
    body = b"".join([head, bytes(_padded(len(head)) - len(head)), *(b.data for b in blocks)])
    return body + CRC.pack(zlib.crc32(body))


def _header(buf: memoryview) -> tuple[int, int]:
    """(version, metadata length), refusing what is not a banditkit file of a known version."""
    if len(buf) < HEADER.size + CRC.size or bytes(buf[:4]) != MAGIC:
        raise FormatError("not a banditkit file (no BKIT header)")
    _, version, reserved, meta_len = HEADER.unpack_from(buf)
    if version > FORMAT_VERSION:
        raise FormatError(
            f"format version {version} is newer than this banditkit reads "
            f"(up to {FORMAT_VERSION}); upgrade banditkit to load this file"
        )
    if version == 0 or reserved != 0:
        raise FormatError(f"corrupted banditkit file (bad header: version {version})")
    if meta_len > MAX_METADATA or HEADER.size + meta_len > len(buf) - CRC.size:
        raise FormatError("corrupted or truncated banditkit file (metadata length)")
    return version, meta_len


def _metadata(buf: memoryview, version: int, meta_len: int) -> tuple[dict[str, Any], str]:
    try:
        meta = msgpack.unpackb(
            buf[HEADER.size : HEADER.size + meta_len], raw=False, strict_map_key=True
        )
    except Exception as exc:  # msgpack raises several types for malformed input
        raise FormatError(f"corrupted banditkit file (metadata: {exc})") from None
    if not isinstance(meta, dict):
        raise FormatError("corrupted banditkit file (metadata is not a map)")
    if meta.get("format") != version:
        raise FormatError("corrupted banditkit file (format version mismatch)")
    class_name = meta.get("class")
    if not isinstance(class_name, str):
        raise FormatError("corrupted banditkit file (no class name)")
    return meta, class_name


def class_name(data: bytes | bytearray | memoryview) -> str:
    """The class a file names (header and metadata only; `decode` checks the rest)."""
    buf = memoryview(data).cast("B")
    version, meta_len = _header(buf)
    return _metadata(buf, version, meta_len)[1]


def decode(data: bytes | bytearray | memoryview) -> Document:
    """The document in `data`, after checking everything the container knows: magic,
    version, CRC, the metadata map and the array table against the file's length."""
    buf = memoryview(data).cast("B")
    version, meta_len = _header(buf)
    body = buf[: len(buf) - CRC.size]
    (crc,) = CRC.unpack_from(buf, len(body))
    if zlib.crc32(body) != crc:
        raise FormatError("corrupted or truncated banditkit file (checksum mismatch)")
    meta, name = _metadata(buf, version, meta_len)
    offset = _padded(HEADER.size + meta_len)
    if offset > len(body) or any(body[HEADER.size + meta_len : offset]):
        raise FormatError("corrupted banditkit file (padding)")
    arrays: dict[str, np.ndarray] = {}
    for entry_name, kind, shape in _table(meta.get("arrays")):
        count = math.prod(shape)
        end = offset + 8 * count
        if end > len(body):
            raise FormatError(f"truncated banditkit file (array {entry_name!r})")
        flat = np.frombuffer(body[offset:end], dtype=DTYPES[kind])
        arrays[entry_name] = flat.reshape(shape)
        offset = end
    if offset != len(body):
        raise FormatError("corrupted banditkit file (trailing bytes)")
    fields = {k: v for k, v in meta.items() if k not in ("format", "class", "arrays")}
    return Document(name, fields, arrays)


def _table(table: object) -> list[tuple[str, str, tuple[int, ...]]]:
    if not isinstance(table, list):
        raise FormatError("corrupted banditkit file (no array table)")
    out: list[tuple[str, str, tuple[int, ...]]] = []
    seen = set()
    for entry in table:
        ok = (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], str)
            and entry[1] in DTYPES
            and isinstance(entry[2], list)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry[2])
        )
        if not ok or entry[0] in seen:
            raise FormatError(f"corrupted banditkit file (array table entry {entry!r})")
        seen.add(entry[0])
        out.append((entry[0], entry[1], tuple(entry[2])))
    return out
