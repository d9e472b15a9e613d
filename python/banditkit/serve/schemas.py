"""The request bodies of the `/v1` API as pydantic models: the type checks of every request.

Strict models (no "1.5" -> 1.5, no true -> 1), unknown keys refused, and finite numbers only:
Python's json module parses `NaN` and `Infinity` (and 1e999 as inf), so `allow_inf_nan=False`
is what keeps them out of a model. What types cannot say (an arm the experiment does not have,
a context of the wrong length) is checked by the engine, before anything is logged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

# Names appear in URLs and in Prometheus labels: keep them to characters that need no quoting.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
POLICY_NAMES = ("tspar", "linear", "logistic", "linucb", "lints")
MAX_ARMS = 10_000
MAX_FEATURES = 100_000
MAX_ID = 200

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Arm = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID)] | StrictInt
ExperimentName = Annotated[StrictStr, Field(pattern=NAME_PATTERN)]
ClientId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID)]
Context = Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_FEATURES)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class CreateExperiment(_Body):
    """`POST /v1/experiments`."""

    name: ExperimentName
    policy: Literal[POLICY_NAMES]  # type: ignore[valid-type]
    arms: Annotated[list[Arm], Field(min_length=1, max_length=MAX_ARMS)]
    # Each policy's knobs are a pydantic model of their own (banditkit.serve.policies), checked
    # by the engine, which knows the policy; here only "an object".
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arms")
    @classmethod
    def _distinct_arms(cls, arms: list[str | int]) -> list[str | int]:
        seen: set[str | int] = set()
        for arm in arms:
            if arm in seen:
                raise ValueError(f"arm {arm!r} is listed twice")
            seen.add(arm)
        return arms


class RecommendRequest(_Body):
    id: ClientId
    context: Context | None = None
    candidates: Annotated[list[Arm], Field(min_length=1, max_length=MAX_ARMS)] | None = None


class RecommendBody(_Body):
    """`POST /v1/experiments/{name}/recommend`; the batch limit is a setting, checked by the app."""

    requests: Annotated[list[RecommendRequest], Field(min_length=1)]


class Reward(_Body):
    event_id: ClientId | None = None
    arm: Arm | None = None
    reward: FiniteFloat
    context: Context | None = None
    id: ClientId | None = None

    @model_validator(mode="after")
    def _says_what_it_rewards(self) -> Reward:
        if self.event_id is None and self.arm is None:
            raise ValueError("a reward needs the event_id of its decision, or an arm")
        return self


class RewardsBody(_Body):
    """`POST /v1/experiments/{name}/rewards`."""

    rewards: Annotated[list[Reward], Field(min_length=1)]
