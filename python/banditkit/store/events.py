"""The event log's records: validation of what callers append, and what `events()` returns.

An event is a dict with a unique `id` (str) and a `kind`:

- `"decision"`: `arm` (str or int), `propensity` (the probability the policy gave the chosen arm,
  in (0, 1]), and optionally `context` (a list of finite floats) and `policy_version` (the model
  version that decided, an int >= 1);
- `"reward"`: `reward` (a finite float) and optionally `decision_id` (the decision it rewards),
  `arm` and `context` (the features it was observed with, as for a decision).

- `"decisions"`: a batch of decisions in one event (what `banditkit serve` logs: one row per
  request instead of one per decision): `arms` and `propensities` (lists of one length),
  optionally `contexts` (a list of the same length of contexts or nulls) and `policy_version`.
  Decision `i` of event `E` is known as `E/i` (see `expand_decisions`). Instead of
  `contexts`, `contexts_f8`: the contexts as one matrix (a row per decision) of little-endian
  float64, base64-encoded; what the server writes, because formatting floats as text costs
  about a microsecond each and a batch of 100 contexts of 67 features holds 6,700.

A reward's context may likewise be `context_f8` (one row); `event_context(data)` reads either.

All may carry `time` (seconds since the epoch; default: when appended) and `meta` (a JSON
object of your own). Unknown keys are refused, so a typo cannot vanish silently.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time as _time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from banditkit.store.errors import InvalidEvent

KINDS = ("decision", "reward", "decisions")
_FIELDS = {
    "decision": ({"arm", "propensity"}, {"context", "policy_version", "time", "meta"}),
    "decisions": (
        {"arms", "propensities"},
        {"contexts", "contexts_f8", "policy_version", "time", "meta"},
    ),
    "reward": ({"reward"}, {"decision_id", "arm", "context", "context_f8", "time", "meta"}),
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
        data["propensity"] = _propensity(event["propensity"], f"{where}: propensity")
    if kind != "reward":
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
    if kind == "decisions":
        data.update(_batch(event, where))
    if event.get("context") is not None:
        data["context"] = _context(event["context"], f"{where}: context")
    if event.get("context_f8") is not None:
        if "context" in data:
            raise InvalidEvent(f"{where}: give context or context_f8, not both")
        _matrix(event["context_f8"], 1, f"{where}: context_f8")
        data["context_f8"] = event["context_f8"]
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


def _propensity(value: Any, what: str) -> float:
    p = _finite(value, what)
    if not 0.0 < p <= 1.0:
        raise InvalidEvent(f"{what} must be in (0, 1], got {p!r}")
    return p


def _context(ctx: Any, what: str) -> list[float]:
    if isinstance(ctx, (str, bytes, Mapping)) or not isinstance(ctx, Iterable):
        raise InvalidEvent(f"{what} must be a list of numbers")
    return [_finite(x, what) for x in ctx]


def _batch(event: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The fields of a `decisions` event: lists of one length."""
    arms, props = event["arms"], event["propensities"]
    if not isinstance(arms, list) or not isinstance(props, list) or len(arms) != len(props):
        raise InvalidEvent(f"{where}: arms and propensities must be lists of one length")
    if not arms:
        raise InvalidEvent(f"{where}: a decisions event needs at least one decision")
    out: dict[str, Any] = {
        "arms": [_arm(a, where) for a in arms],
        "propensities": [_propensity(p, f"{where}: propensity") for p in props],
    }
    if event.get("contexts_f8") is not None:
        if event.get("contexts") is not None:
            raise InvalidEvent(f"{where}: give contexts or contexts_f8, not both")
        _matrix(event["contexts_f8"], len(arms), f"{where}: contexts_f8")
        out["contexts_f8"] = event["contexts_f8"]
    contexts = event.get("contexts")
    if contexts is not None:
        if not isinstance(contexts, list) or len(contexts) != len(arms):
            raise InvalidEvent(f"{where}: contexts must be a list as long as arms")
        out["contexts"] = [
            None if c is None else _context(c, f"{where}: context") for c in contexts
        ]
    return out


def _matrix(text: Any, rows: int, what: str) -> np.ndarray:
    """A base64 float64 matrix of `rows` rows, checked: whole rows of finite numbers."""
    if not isinstance(text, str):
        raise InvalidEvent(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEvent(f"{what} is not valid base64") from None
    if not raw or len(raw) % (8 * rows):
        raise InvalidEvent(f"{what} must hold {rows} whole row(s) of float64")
    out = np.frombuffer(raw, dtype="<f8").reshape(rows, -1)
    if not np.isfinite(out).all():
        raise InvalidEvent(f"{what} must be finite")
    return out


def encode_matrix(matrix: np.ndarray) -> str:
    """The `*_f8` form of a float matrix (or of one row)."""
    return base64.b64encode(np.ascontiguousarray(matrix, dtype="<f8").tobytes()).decode("ascii")


def decode_matrix(text: str, rows: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").reshape(rows, -1)


def event_context(data: dict[str, Any]) -> list[float] | None:
    """A reward's (or single decision's) context, whichever form it was stored in."""
    if data.get("context") is not None:
        return data["context"]
    if data.get("context_f8") is not None:
        return decode_matrix(data["context_f8"], 1)[0].tolist()
    return None


def expand_decisions(event: Event) -> list[dict[str, Any]]:
    """The single decisions of a `decisions` event (ids `E/0`, `E/1`, ...), or `[event]` as a
    dict for a `decision`: what an off-policy evaluation reads."""
    if event.kind != "decisions":
        return [event.as_dict()]
    data = event.data
    if data.get("contexts_f8") is not None:
        contexts = decode_matrix(data["contexts_f8"], len(data["arms"])).tolist()
    else:
        contexts = data.get("contexts") or [None] * len(data["arms"])
    out = []
    for i, (arm, p, ctx) in enumerate(
        zip(data["arms"], data["propensities"], contexts, strict=True)
    ):
        one: dict[str, Any] = {"id": f"{event.id}/{i}", "kind": "decision", "time": event.time}
        one.update(arm=arm, propensity=p)
        if ctx is not None:
            one["context"] = ctx
        for key in ("policy_version", "meta"):
            if key in data:
                one[key] = data[key]
        out.append(one)
    return out


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
