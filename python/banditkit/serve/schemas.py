"""The request bodies of the `/v1` API as pydantic schemas: the type checks of every request.

Strict (no "1.5" -> 1.5, no true -> 1), unknown keys refused, and finite numbers only: Python's
json module and pydantic's parser both read `NaN` and `Infinity` (and 1e999 as inf), so
`allow_inf_nan=False` is what keeps them out. What types cannot say (an arm the experiment does
not have, a context of the wrong length) is checked by the engine, before anything is logged.

TypedDicts validated from the raw body (`TypeAdapter.validate_json`) rather than BaseModels
behind FastAPI's parameter injection: the result is the dicts the engine takes, with no model
objects to build and dump, and pydantic's Rust JSON parser reads a batch of 100 contexts about
3x faster than `json.loads`. That is most of the HTTP layer's cost per decision.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter
from typing_extensions import NotRequired, TypedDict

# Names appear in URLs and in Prometheus labels: keep them to characters that need no quoting.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
POLICY_NAMES = (
    "tspar",
    "linear",
    "logistic",
    "linucb",
    "lints",
    "doubly-robust",
    "offset-tree",
    "context-tree",
)
MAX_ARMS = 10_000
MAX_FEATURES = 100_000
MAX_ID = 200

STRICT = ConfigDict(strict=True, extra="forbid")

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Arm = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID)] | StrictInt
ExperimentName = Annotated[StrictStr, Field(pattern=NAME_PATTERN)]
ClientId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID)]
Context = Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_FEATURES)]
Candidates = Annotated[list[Arm], Field(min_length=1, max_length=MAX_ARMS)]


def _distinct(arms: list[str | int]) -> list[str | int]:
    seen: set[str | int] = set()
    for arm in arms:
        if arm in seen:
            raise ValueError(f"arm {arm!r} is listed twice")
        seen.add(arm)
    return arms


class CreateExperiment(TypedDict):
    """`POST /v1/experiments`."""

    __pydantic_config__ = STRICT  # type: ignore[misc]
    name: ExperimentName
    policy: Literal[POLICY_NAMES]  # type: ignore[valid-type]
    arms: Annotated[list[Arm], Field(min_length=1, max_length=MAX_ARMS), AfterValidator(_distinct)]
    # Each policy's knobs are a pydantic model of their own (banditkit.serve.policies), checked
    # by the engine, which knows the policy; here only "an object".
    params: NotRequired[dict[str, Any]]


class RecommendRequest(TypedDict):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    id: ClientId
    context: NotRequired[Context | None]
    candidates: NotRequired[Candidates | None]


class RecommendBody(TypedDict):
    """`POST /v1/experiments/{name}/recommend`; the batch limit is a setting, checked by the app."""

    __pydantic_config__ = STRICT  # type: ignore[misc]
    requests: Annotated[list[RecommendRequest], Field(min_length=1)]


class RewardItem(TypedDict):
    __pydantic_config__ = STRICT  # type: ignore[misc]
    event_id: NotRequired[ClientId | None]
    arm: NotRequired[Arm | None]
    reward: FiniteFloat
    context: NotRequired[Context | None]
    id: NotRequired[ClientId | None]


def _says_what_it_rewards(reward: RewardItem) -> RewardItem:
    if reward.get("event_id") is None and reward.get("arm") is None:
        raise ValueError("a reward needs the event_id of its decision, or an arm")
    return reward


Reward = Annotated[RewardItem, AfterValidator(_says_what_it_rewards)]


class RewardsBody(TypedDict):
    """`POST /v1/experiments/{name}/rewards`."""

    __pydantic_config__ = STRICT  # type: ignore[misc]
    rewards: Annotated[list[Reward], Field(min_length=1)]


CREATE = TypeAdapter(CreateExperiment)
RECOMMEND = TypeAdapter(RecommendBody)
REWARDS = TypeAdapter(RewardsBody)
