"""`banditkit.save`/`load`/`loads`/`dumps`: a model to and from a banditkit file
(docs/format.md), on the backend in use whichever backend wrote it."""

from __future__ import annotations

import os
from typing import Any

from banditkit._backend import MODULE
from banditkit._errors import FormatError

# The classes a file may name; anything else is refused by name.
CLASSES = (
    "LinearBandit",
    "TSPar",
    "LogisticBandit",
    "LinUCB",
    "LinTS",
    "BootstrapRidge",
    "DoublyRobust",
    "OffsetTree",
    "ContextTree",
)
# Classes defined once for both backends (in banditkit itself, not in a backend module).
PACKAGE_CLASSES = ("BootstrapRidge",)


def dumps(obj: Any) -> bytes:
    """`obj.to_bytes()`: the model as bytes."""
    to_bytes = getattr(obj, "to_bytes", None)
    if type(obj).__name__ not in CLASSES or to_bytes is None:
        raise TypeError(f"cannot save a {type(obj).__name__}: not a banditkit model")
    return to_bytes()


def loads(data: bytes) -> Any:
    """The model in `data`, as an object of the current backend (`banditkit.LinUCB`, ...)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    from banditkit.python import _format  # here: `import banditkit` stays free of the reference

    name = _format.class_name(data)
    if name not in CLASSES:
        raise FormatError(f"unknown class {name!r} in banditkit file")
    if name in PACKAGE_CLASSES:
        from banditkit import ensemble

        return getattr(ensemble, name).from_bytes(data)
    return getattr(MODULE, name).from_bytes(data)


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write `obj` to `path` (replaced atomically: a crash leaves the old file or the new)."""
    data = dumps(obj)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: str | os.PathLike[str]) -> Any:
    """The model saved at `path` (FileNotFoundError if there is none)."""
    with open(path, "rb") as f:
        return loads(f.read())
