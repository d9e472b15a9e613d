"""The JSON payloads of the events the engine logs, built as text directly (canonical: sorted
keys, no spaces) for the store's fast path, and the lookup of a logged decision.

A request's decisions are one `decisions` event (decision i is "<event id>/i"); a contextual
experiment logs their contexts as one base64 float64 matrix (`contexts_f8`), since formatting
floats as text costs about a microsecond each. A reward carries its decision's context (so
that a replay needs no join) as a *fragment* of JSON: `,"context_f8":"..."`, `,"context":[...]`
or nothing.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any

import numpy as np

from banditkit.store import Event
from banditkit.store.events import decode_matrix, encode_matrix


def decisions_payload(
    arm_json: list[str],
    chosen: list[int],
    propensities: list[float],
    version: int,
    matrix: np.ndarray | None,
    texts: list[str | None] | None,
) -> str:
    parts = ['{"arms":[', ",".join([arm_json[k] for k in chosen]), "]"]
    if texts is not None and any(t is not None for t in texts):
        parts += [',"contexts":[', ",".join(["null" if t is None else t for t in texts]), "]"]
    if matrix is not None:
        parts += [',"contexts_f8":"', encode_matrix(matrix), '"']
    # repr of a finite float is valid JSON and reads back as the same float; a batch of a
    # non-contextual policy has a few distinct propensities, each formatted once.
    text = {p: repr(p) for p in set(propensities)}
    parts += [f',"policy_version":{version},"propensities":[']
    parts += [",".join([text[p] for p in propensities]), "]}"]
    return "".join(parts)


def reward_payload(
    arm_json: str,
    fragment: str,
    event_id: str | None,
    batch: str,
    reward: float,
    propensity: float | None = None,
) -> str:
    """A reward event; `propensity` is the probability its decision was logged with (learners
    weigh the reward by it when it is applied)."""
    did = "" if event_id is None else f',"decision_id":{json.dumps(event_id)}'
    prop = "" if propensity is None else f',"propensity":{propensity!r}'
    meta = f',"meta":{{"batch":"{batch}"}}'
    return f'{{"arm":{arm_json}{fragment}{did}{meta}{prop},"reward":{reward!r}}}'


def row_fragment(row: np.ndarray) -> str:
    return f',"context_f8":"{encode_matrix(row)}"'


def text_fragment(text: str | None) -> str:
    return "" if text is None else f',"context":{text}'


def _probability(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and 0.0 < value <= 1.0 else None


def decision_in(events: dict[str, Event], eid: str) -> tuple[Hashable, str, float | None] | None:
    """(arm, context fragment, propensity or None) of decision `eid`: a `decision` event, or
    entry i of the `decisions` event "batch" for "batch/i"."""
    event = events.get(eid)
    if event is not None:
        if event.kind != "decision":
            return None
        ctx = event.data.get("context")
        p = _probability(event.data.get("propensity"))
        return event.data.get("arm"), text_fragment(_text(ctx)), p
    batch_id, _, i = eid.rpartition("/")
    event = events.get(batch_id)
    if event is None or event.kind != "decisions" or not i.isdigit():
        return None
    data, k = event.data, int(i)
    arms = data["arms"]
    if k >= len(arms):
        return None
    props = data.get("propensities")
    p = _probability(props[k]) if isinstance(props, list) and k < len(props) else None
    if data.get("contexts_f8") is not None:
        return arms[k], row_fragment(decode_matrix(data["contexts_f8"], len(arms))[k]), p
    contexts = data.get("contexts")
    return arms[k], text_fragment(None if contexts is None else _text(contexts[k])), p


def propensity_of(data: dict[str, Any]) -> float | None:
    """A logged reward's propensity (None when it was not logged with one)."""
    return _probability(data.get("propensity"))


def context_of(data: dict[str, Any]) -> Any:
    """A logged reward's context (a list, a float64 row, or None)."""
    ctx = data.get("context")
    if ctx is None and data.get("context_f8") is not None:
        return decode_matrix(data["context_f8"], 1)[0]
    return ctx


def _text(ctx: list[float] | None) -> str | None:
    return None if ctx is None else json.dumps(ctx, separators=(",", ":"))
