"""The serve layer's errors: each carries the HTTP status it maps to and the request field at
fault, so that the HTTP layer can answer `{"error": {"status", "field", "message"}}` without
knowing where the error came from."""

from __future__ import annotations


class ServeError(Exception):
    """Base class: `status` (HTTP), `field` (e.g. "requests[3].context", or None), `message`."""

    status: int = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, object]:
        """The body of the HTTP error response."""
        return {"error": {"status": self.status, "field": self.field, "message": self.message}}


class InvalidInput(ServeError):
    """A request that is well-typed but means nothing here (unknown arm, wrong context length)."""

    status = 422


class ExperimentNotFound(ServeError):
    """No experiment of that name (field "name")."""

    status = 404

    def __init__(self, message: str, field: str | None = "name") -> None:
        super().__init__(message, field)


class ExperimentExists(ServeError):
    """`create` of a name that is already taken (field "name")."""

    status = 409

    def __init__(self, message: str, field: str | None = "name") -> None:
        super().__init__(message, field)


class Unavailable(ServeError):
    """The store is down or the engine is not ready: retry later."""

    status = 503
