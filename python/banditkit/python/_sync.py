"""One lock per bandit: every public method holds it across its whole read-modify-write.

NumPy releases the GIL inside BLAS calls, so without it two threads interleave inside one
update (lost updates, an `A_inv` that no longer inverts `A`). Readers take it too, so they see
a state between calls, never half of one. The lock is an `RLock` (a method may call another)
and is never pickled or deep-copied: a copy or an unpickled object gets a new one.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_LOCK = "_lock"


def synchronized(method: F) -> F:
    """Run `method` holding the object's lock."""

    @functools.wraps(method)
    def wrapper(self: Synchronized, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Synchronized:
    """Base of the reference bandits: owns the per-object lock and keeps it out of copies."""

    _lock: threading.RLock

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Here rather than in __init__, so that every path that makes an object (pickle's
        # protocol 2+ calls __new__ only) gives it a lock before any method can run.
        self = super().__new__(cls)
        self._lock = threading.RLock()
        return self

    def _state_without_lock(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != _LOCK}

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        with self._lock:
            new.__dict__.update(copy.deepcopy(self._state_without_lock(), memo))
        return new

    def __copy__(self) -> Any:
        # A shallow copy would share the arm dicts/arrays and the generator with the original.
        return copy.deepcopy(self)
