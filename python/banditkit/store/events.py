"""The event log's records: validation of what callers append, and what `events()` returns.

An event is a dict with a unique `id` (str) and a `kind`:

- `"decision"`: `arm` (str or int), `propensity` (the probability the policy gave the chosen arm,
  in (0, 1]), and optionally `context` (a list of finite floats) and `policy_version` (the model
  version that decided, an int >= 1);
- `"reward"`: `reward` (a finite float) and optionally `decision_id` (the decision it rewards),
  `arm` and `context` (the features it was observed with, as for a decision).

Both may carry `time` (seconds since the epoch; default: when appended) and `meta` (a JSON
object of your own). Unknown keys are refused, so a typo cannot vanish silently.
"""

from __future__ import annotations

import json
import math
import time as _time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from banditkit.store.errors import InvalidEvent

KINDS = ("decision", "reward")
_FIELDS = {
    "decision": ({"arm", "propensity"}, {"context", "policy_version", "time", "meta"}),
    "reward": ({"reward"}, {"decision_id", "arm", "context", "time", "meta"}),
}


class Event(NamedTuple):
    """One stored event: `seq` orders the events of a name (use it as `events(name, after=seq)`)."""

    seq: int
    id: str
    kind: str
    time: float
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The event as appended (with its time): `append_events` accepts it back."""
        return {"id": self.id, "kind": self.kind, "time": self.time, **self.data}


class EventRow(NamedTuple):
    """A validated event, ready for the database: the payload is canonical JSON."""

    id: str
    kind: str
    time: float
    payload: str


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent(f"{what} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise InvalidEvent(f"{what} must be finite, got {value!r}")
    return out


def _arm(value: Any, where: str) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidEvent(f"{where}: arm must be a str or an int, got {value!r}")
    return value


def _check(event: Mapping[str, Any], now: float) -> EventRow:
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"an event must be a dict, got {type(event).__name__}")
    eid = event.get("id")
    if not isinstance(eid, str) or not eid or "\x00" in eid:
        raise InvalidEvent(f"an event needs a non-empty str id, got {eid!r}")
    where = f"event {eid!r}"
    kind = event.get("kind")
    if kind not in _FIELDS:
        raise InvalidEvent(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    required, optional = _FIELDS[kind]
    keys = set(event) - {"id", "kind"}
    if missing := required - keys:
        raise InvalidEvent(f"{where}: missing {', '.join(sorted(missing))}")
    if unknown := keys - required - optional:
        raise InvalidEvent(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    data: dict[str, Any] = {}
    if "arm" in event:
        data["arm"] = _arm(event["arm"], where)
    if kind == "decision":
        p = _finite(event["propensity"], f"{where}: propensity")
        if not 0.0 < p <= 1.0:
            raise InvalidEvent(f"{where}: propensity must be in (0, 1], got {p!r}")
        data["propensity"] = p
        if event.get("policy_version") is not None:
            pv = event["policy_version"]
            if isinstance(pv, bool) or not isinstance(pv, int) or pv < 1:
                raise InvalidEvent(f"{where}: policy_version must be an int >= 1, got {pv!r}")
            data["policy_version"] = pv
    else:
        data["reward"] = _finite(event["reward"], f"{where}: reward")
        if event.get("decision_id") is not None:
            did = event["decision_id"]
            if not isinstance(did, str) or not did:
                raise InvalidEvent(f"{where}: decision_id must be a non-empty str")
            data["decision_id"] = did
    if event.get("context") is not None:
        ctx = event["context"]
        if isinstance(ctx, (str, bytes, Mapping)) or not isinstance(ctx, Iterable):
            raise InvalidEvent(f"{where}: context must be a list of numbers")
        data["context"] = [_finite(x, f"{where}: context") for x in ctx]
    if event.get("meta") is not None:
        if not isinstance(event["meta"], Mapping):
            raise InvalidEvent(f"{where}: meta must be a dict")
        data["meta"] = event["meta"]
    when = now if event.get("time") is None else _finite(event["time"], f"{where}: time")
    try:
        payload = json.dumps(data, allow_nan=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"{where}: not JSON-serialisable: {exc}") from None
    return EventRow(eid, kind, when, payload)


def validate(events: Iterable[Mapping[str, Any]]) -> list[EventRow]:
    """All events checked before any is written; an id repeated in the batch is kept once."""
    if isinstance(events, Mapping):
        raise InvalidEvent("append_events takes a list of events, got a single dict")
    now = _time.time()
    rows: dict[str, EventRow] = {}
    for event in events:
        row = _check(event, now)
        rows.setdefault(row.id, row)
    return list(rows.values())


def from_row(seq: int, eid: str, kind: str, when: float, payload: str) -> Event:
    return Event(int(seq), eid, kind, float(when), json.loads(payload))
