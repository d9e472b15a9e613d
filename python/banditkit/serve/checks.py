"""The engine's checks of meaning (types are already checked by pydantic in the HTTP layer,
but the engine is also used directly, so it refuses wrong types too). Every check runs before
anything is logged; the error names the field, e.g. `requests[3].context`."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from banditkit.serve.errors import InvalidInput
from banditkit.store.base import MAX_NAME


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or "\x00" in name:
        raise InvalidInput(
            f"an experiment name is a non-empty string of at most {MAX_NAME} characters",
            field="name",
        )
    return name


def is_arm(arm: object) -> bool:
    return isinstance(arm, (str, int)) and not isinstance(arm, bool)


def check_arms(arms: object) -> list[Hashable]:
    if not isinstance(arms, (list, tuple)) or not arms:
        raise InvalidInput("arms must be a non-empty list", field="arms")
    seen: set[Hashable] = set()
    for i, arm in enumerate(arms):
        if not is_arm(arm):
            raise InvalidInput(f"an arm is a string or an integer, got {arm!r}", f"arms[{i}]")
        if arm in seen:
            raise InvalidInput(f"arm {arm!r} is listed twice", f"arms[{i}]")
        seen.add(arm)
    return list(arms)


def check_list(value: object, field: str) -> list[Any]:
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidInput(f"{field} must be a non-empty list", field=field)
    return list(value)


def context_text(ctx: object, n_features: int | None, field: str) -> tuple[list[float], str]:
    """A context checked (finite numbers, of length n_features when given) with its JSON."""
    if not isinstance(ctx, (list, tuple, np.ndarray)):
        raise InvalidInput("context must be a list of numbers", field=field)
    if n_features is not None and len(ctx) != n_features:
        raise InvalidInput(f"context must have {n_features} numbers, got {len(ctx)}", field)
    try:
        values = [float(x) for x in ctx if not isinstance(x, (bool, str, bytes))]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float
        values = []
    if len(values) != len(ctx) or not all(map(math.isfinite, values)):
        raise InvalidInput("context must be a list of finite numbers", field=field)
    # repr of a finite float is valid JSON and round-trips exactly.
    return values, "[" + ",".join(map(repr, values)) + "]"


def contexts_matrix(contexts: list[Any], n_features: int, policy: str) -> np.ndarray:
    """The requests' contexts as one (n, n_features) float matrix, converted in one call;
    only when that fails are the rows checked one by one, to name the bad one."""
    try:
        matrix = np.array(contexts, dtype=float)
        if matrix.shape == (len(contexts), n_features) and np.isfinite(matrix).all():
            return matrix
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float
        pass
    for i, ctx in enumerate(contexts):
        field = f"requests[{i}].context"
        if ctx is None:
            raise InvalidInput(f"context is required ({n_features} numbers) for {policy}", field)
        context_text(ctx, n_features, field)
    raise InvalidInput("contexts must be lists of finite numbers", field="requests")


def candidate_set(
    cands: object, arm_index: dict[Hashable, int], field: str
) -> tuple[int, ...] | None:
    if cands is None:
        return None
    if not isinstance(cands, (list, tuple)) or not cands:
        raise InvalidInput("candidates must be a non-empty list of arms", field=field)
    out = []
    for j, arm in enumerate(cands):
        i = arm_index.get(arm) if is_arm(arm) else None
        if i is None:
            raise InvalidInput(f"unknown arm {arm!r}", field=f"{field}[{j}]")
        out.append(i)
    if len(set(out)) != len(out):
        raise InvalidInput("candidates must not repeat an arm", field=field)
    return tuple(out)


def check_reward_value(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"reward must be a number, got {value!r}", field=field)
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise InvalidInput("reward must be finite", field=field)
    return out


def optional_str(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidInput(f"{field.rsplit('.', 1)[-1]} must be a non-empty string", field)
    return value


def stack(contexts: Sequence[list[float]]) -> np.ndarray:
    return np.array(contexts, dtype=float)
