"""The engine's reward path: each reward checked against its experiment and its decision,
then built as a `reward` event for the store's fast path (nothing is logged unless every
reward of the request passes)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from banditkit.serve import checks, payloads
from banditkit.serve.errors import InvalidInput
from banditkit.serve.experiment import Experiment
from banditkit.store import Event, EventRow

# A decision a reward refers to: (arm index, context fragment, propensity or None).
Decision = tuple[int, str, float | None]


def recalled(exp: Experiment, rewards: list[Any]) -> tuple[dict[str, Decision], list[str]]:
    """The decisions found in the experiment's recent cache, and the ids still missing."""
    found: dict[str, Decision] = {}
    missing: list[str] = []
    for item in rewards:
        eid = item.get("event_id") if isinstance(item, dict) else None
        if isinstance(eid, str) and eid not in found:
            hit = exp.recall(eid)
            if hit is None:
                missing.append(eid)
            else:
                found[eid] = hit
    return found, missing


def resolve(
    exp: Experiment,
    events: dict[str, Event],
    missing: list[str],
    found: dict[str, Decision],
) -> None:
    """Add to `found` the missing decisions that the store's `events` hold."""
    for eid in missing:
        one = payloads.decision_in(events, eid)
        k = None if one is None else exp.arm_index.get(one[0])
        if k is not None:
            found[eid] = (k, one[1], one[2])


def reward_rows(
    exp: Experiment,
    rewards: list[Any],
    found: dict[str, Decision],
    new_id: Callable[[], str],
) -> list[EventRow]:
    """The rewards as events; InvalidInput naming the field of the first bad one.

    Store id: "reward:<event_id>" (a retried reward for a decision counts once), else the
    client's id, else a fresh one. A reward for a decision takes its arm and context.
    """
    batch = uuid.uuid4().hex  # groups this request's rewards for apply
    now = time.time()
    events = []
    for i, item in enumerate(rewards):
        field = f"rewards[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput("a reward is an object", field=field)
        value = checks.check_reward_value(item.get("reward"), f"{field}.reward")
        if why := exp.policy.check_reward(value):
            raise InvalidInput(why, field=f"{field}.reward")
        event_id = checks.optional_str(item.get("event_id"), f"{field}.event_id")
        client_id = checks.optional_str(item.get("id"), f"{field}.id")
        arm = item.get("arm")
        fragment = ""  # the context, as JSON to splice into the payload
        propensity = None  # the decision's, when the reward names one
        if event_id is not None:
            decision = found.get(event_id)
            if decision is None:
                raise InvalidInput(f"unknown event_id {event_id!r}", f"{field}.event_id")
            k, fragment, propensity = decision
            if arm is not None and (not checks.is_arm(arm) or exp.arm_index.get(arm) != k):
                raise InvalidInput(
                    f"arm {arm!r} is not the arm of decision {event_id!r} "
                    f"({exp.arms[k]!r}): send one of event_id and arm",
                    field=f"{field}.arm",
                )
        elif arm is None:
            raise InvalidInput("a reward needs an event_id or an arm", field=field)
        else:
            k = exp.arm_index.get(arm) if checks.is_arm(arm) else None
            if k is None:
                raise InvalidInput(f"unknown arm {arm!r}", field=f"{field}.arm")
        if not fragment and item.get("context") is not None:
            values, text = checks.context_text(item["context"], exp.n_features, f"{field}.context")
            fragment = (
                payloads.text_fragment(text)
                if exp.n_features is None
                else payloads.row_fragment(np.array(values))
            )
        if not fragment and exp.n_features is not None:
            raise InvalidInput(
                f"context is required ({exp.n_features} numbers) for {exp.policy.name}",
                field=f"{field}.context",
            )
        if event_id is not None:
            store_id = "reward:" + event_id
        else:
            store_id = client_id or new_id()
        payload = payloads.reward_payload(
            exp.arm_json[k], fragment, event_id, batch, value, propensity
        )
        events.append(EventRow(store_id, "reward", now, payload))
    return events
