"""One adapter per policy name: the constructor's knobs (a pydantic model), how to build the
model, how to decide with exact propensities, and how to apply a group of rewards."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel

from banditkit.serve.errors import InvalidInput  # noqa: F401


class Policy:
    """Base class of the adapters (see the subclasses)."""

    name: str = ""
    contextual: bool = False
    params_model: type[BaseModel]
    reward_range: tuple[float, float] | None = None  # tspar/logistic: rewards in [0, 1]

    def parse_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The params checked and completed with defaults; InvalidInput(field="params.x")."""
        raise NotImplementedError

    def n_features(self, model: Any) -> int | None:
        raise NotImplementedError

    def create(self, arms: list[str | int], params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def decide(
        self,
        model: Any,
        contexts: np.ndarray | None,
        candidates: list[list[int] | None],
        rng: np.random.Generator,
        version: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(arm indices into the model's arms, propensities) for each request."""
        raise NotImplementedError

    def apply(
        self, model: Any, arms: list[Any], contexts: np.ndarray | None, rewards: np.ndarray
    ) -> None:
        raise NotImplementedError

    def win_probabilities(self, model: Any) -> dict[Any, float] | None:
        raise NotImplementedError


POLICIES: dict[str, Policy] = {}
