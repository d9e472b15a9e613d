"""Exceptions shared by both backends (the Rust bindings raise these same classes)."""

from __future__ import annotations


class FormatError(ValueError):
    """A saved model (`from_bytes`, `banditkit.load`/`loads`, a pickle) that cannot be loaded:
    not a banditkit file, a newer format version, an unknown class, truncated or corrupted
    bytes, arrays of the wrong shape, values the model forbids. Nothing is half-built."""
