"""pydantic's validation errors as the one field and message of the API's error JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The members of a union (an arm is a str or an int) show up in pydantic's `loc` under these
# tags; they name a type, not a field, so they are left out of the field path.
UNION_TAGS = frozenset({"str", "int", "constrained-str"})
SOURCES = frozenset({"body", "query", "path", "header"})
MAX_SHOWN = 60


def field_path(loc: Sequence[str | int]) -> str | None:
    """("body", "requests", 3, "context") -> "requests[3].context"."""
    parts = list(loc)
    if parts and parts[0] in SOURCES:
        if parts[0] == "body" and len(parts) == 1:  # the body as a whole
            return "body"
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in UNION_TAGS:
            out += f".{part}" if out else str(part)
    return out or None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def describe_validation_error(errors: Sequence[dict[str, Any]]) -> tuple[str | None, str]:
    """The field and message of the first error. The errors of one union field (an arm that is
    neither a str nor an int) are merged into one message."""
    if not errors:
        return None, "invalid request"
    first = errors[0]
    field = field_path(first["loc"])
    if first["type"] == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return "body", f"the body is not valid JSON{': ' + detail if detail else ''}"
    messages = [e["msg"] for e in errors if field_path(e["loc"]) == field]
    prefix = "Input should be a valid "
    if len(messages) > 1 and all(m.startswith(prefix) for m in messages):
        message = prefix + " or ".join(m[len(prefix) :] for m in messages)
    else:
        message = first["msg"]
    if first["type"] == "missing":
        return field, f"{field or 'the body'} is required"
    if first["type"] == "extra_forbidden":
        return field, f"unknown field {field!r}"
    if "input" in first and first["type"] not in ("value_error", "assertion_error"):
        message += f", got {_shown(first['input'])}"
    return field, message.removeprefix("Value error, ")
