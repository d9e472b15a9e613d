"""The store's exceptions. Each is a `StoreError`, and the ones caused by bad input are also the
built-in a caller would expect (`ValueError`, `KeyError`, `FileNotFoundError`)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the store raises itself."""


class UnsupportedURL(StoreError, ValueError):
    """The URL's scheme is not `sqlite` or `postgresql` (or the URL is malformed)."""


class StoreNotFound(StoreError, FileNotFoundError, ValueError):
    """`open_store(url, create=False)` on a SQLite file that does not exist."""

    def __str__(self) -> str:  # OSError's str() would prefix "[Errno 2]"
        return str(self.strerror)


class ModelNotFound(StoreError, KeyError):
    """No model of that name (or no such version of it) in the store."""

    def __init__(self, name: str, version: int | None = None) -> None:
        super().__init__(name, version)
        self.name = name
        self.version = version

    def __str__(self) -> str:  # KeyError's str() would show the args tuple
        if self.version is None:
            return f"no model named {self.name!r} in the store"
        return f"model {self.name!r} has no version {self.version}"


class VersionConflict(StoreError):
    """`put(..., expected_version=v)` found another version stored: nothing was written."""

    def __init__(self, name: str, expected: int, actual: int | None) -> None:
        super().__init__(name, expected, actual)
        self.name = name
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        now = "no version" if self.actual is None else f"version {self.actual}"
        return (
            f"model {self.name!r}: expected version {self.expected}, the store has {now} "
            "(another writer got there first: get, update and put again)"
        )


class InvalidEvent(StoreError, ValueError):
    """An event that does not follow the event schema; no event of the batch was written."""


class SchemaError(StoreError, ValueError):
    """The database's schema is newer than this banditkit knows, or is not a banditkit store."""
