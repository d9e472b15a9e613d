"""Checks of the estimators' inputs: every bad input is a `ValueError` naming the field.

`action_dist` and `estimated_rewards` come as (n, K) or as OBP's (n, K, 1) (one slot per list
position; banditkit has one); both are returned as (n, K) float arrays.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Rows of action_dist must sum to 1 within this: float32 probabilities written by other tools
# carry about 1e-7 relative error per entry.
SUM_TOLERANCE = 1e-6


class Inputs(NamedTuple):
    reward: FloatArray
    action: IntArray
    pscore: FloatArray
    action_dist: FloatArray
    estimated_rewards: FloatArray | None

    @property
    def n(self) -> int:
        return int(self.reward.size)

    @property
    def n_actions(self) -> int:
        return int(self.action_dist.shape[1])


def _array(name: str, values: npt.ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be an array of numbers, got dtype {arr.dtype}")
    return arr


def vector(name: str, values: npt.ArrayLike) -> FloatArray:
    """A 1-D array of finite floats."""
    arr = _array(name, values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (n,), got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def matrix(name: str, values: npt.ArrayLike) -> FloatArray:
    """(n, K) or (n, K, 1) finite floats -> (n, K)."""
    arr = _array(name, values)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, K) or (n, K, 1), got {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def actions(values: npt.ArrayLike, n_actions: int | None = None) -> IntArray:
    """Integer arm indices in [0, n_actions) (floats with integral values are accepted)."""
    arr = _array("action", values)
    if arr.ndim != 1:
        raise ValueError(f"action must be one-dimensional (n,), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError("action contains NaN or infinite values")
        if (arr != np.round(arr)).any():
            raise ValueError("action must hold integer arm indices")
    elif arr.dtype.kind == "b":
        raise ValueError("action must hold integer arm indices, got booleans")
    out = arr.astype(np.intp)
    if out.size and out.min() < 0:
        raise ValueError(f"action must be in [0, K), got {int(out.min())}")
    if n_actions is not None and out.size and out.max() >= n_actions:
        raise ValueError(
            f"action must be in [0, {n_actions}) (K = {n_actions}), got {int(out.max())}"
        )
    return out


def pscores(values: npt.ArrayLike) -> FloatArray:
    arr = vector("pscore", values)
    bad = (arr <= 0.0) | (arr > 1.0)
    if bad.any():
        raise ValueError(f"pscore must be in (0, 1], got {arr[bad][0]!r}")
    return arr


def probabilities(name: str, values: npt.ArrayLike) -> FloatArray:
    arr = matrix(name, values)
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative")
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(f"{name} rows must sum to 1, row {row} sums to {sums[row]!r}")
    return arr


def same_length(named: dict[str, int]) -> None:
    lengths = set(named.values())
    if len(lengths) > 1:
        listing = ", ".join(f"{k} {v}" for k, v in named.items())
        raise ValueError(f"the inputs disagree on the number of events: {listing}")


def check(
    reward: npt.ArrayLike,
    action: npt.ArrayLike,
    pscore: npt.ArrayLike,
    action_dist: npt.ArrayLike,
    estimated_rewards: npt.ArrayLike | None = None,
) -> Inputs:
    """All inputs of `estimate_policy_value`, checked together before anything is computed."""
    r = vector("reward", reward)
    p = pscores(pscore)
    pi = probabilities("action_dist", action_dist)
    a = actions(action, pi.shape[1])
    q = None if estimated_rewards is None else matrix("estimated_rewards", estimated_rewards)
    named = {"reward": r.size, "action": a.size, "pscore": p.size, "action_dist": pi.shape[0]}
    if q is not None:
        named["estimated_rewards"] = q.shape[0]
    same_length(named)
    if q is not None and q.shape[1] != pi.shape[1]:
        raise ValueError(
            f"estimated_rewards has {q.shape[1]} arms but action_dist has {pi.shape[1]}"
        )
    if r.size == 0:
        raise ValueError("reward is empty: there is nothing to evaluate")
    return Inputs(r, a, p, pi, q)


def clip_level(lambda_: float) -> float:
    """The weight cap: a number >= 0 (infinity = no cap)."""
    if isinstance(lambda_, bool) or not isinstance(lambda_, (int, float, np.integer, np.floating)):
        raise TypeError(f"lambda_ must be a number, got {lambda_!r}")
    value = float(lambda_)
    if math.isnan(value) or value < 0:
        raise ValueError(f"lambda_ must be >= 0 (inf for no clipping), got {lambda_!r}")
    return value


def level(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise TypeError(f"alpha must be a number, got {alpha!r}")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def resamples(n_bootstrap: int) -> int:
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)):
        raise TypeError(f"n_bootstrap must be an integer, got {n_bootstrap!r}")
    if n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be at least 2, got {n_bootstrap}")
    return int(n_bootstrap)


def seed_value(seed: int | None) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be a non-negative integer below 2**64, got {seed!r}")
    return int(seed)
