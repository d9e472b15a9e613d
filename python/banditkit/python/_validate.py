"""Input validation shared by the reference bandits (LinearBandit, TSPar, LogisticBandit).

Every checker either returns clean values or raises ValueError with a message from the
drop-in contract (orts' messages, pinned by tests/test_*_contract.py; the policy is
docs/validation.md); none of them touches a bandit, so a caller can validate a whole
call before changing any state.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

METHODS = ("mc", "exact")
SEED_LIMIT = 2**64  # the Rust backend seeds from a u64


def _is_real(x: object) -> bool:
    """A real number that is not a bool (True/False are never counts or sizes)."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _finite_float(x: object) -> float | None:
    """`float(x)` for a finite real number (not bool), else None (also for overflowing ints)."""
    if not _is_real(x):
        return None
    try:
        value = float(x)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _is_integer(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def check_draw(draw: object) -> int:
    """Number of Monte Carlo draws: an integer (Python or NumPy, not bool) >= 1."""
    if not _is_integer(draw):
        raise ValueError(f"draw must be an integer, got {draw!r}")
    if draw <= 0:  # type: ignore[operator]
        raise ValueError(f"draw must be positive, got {draw}")
    return int(draw)  # type: ignore[call-overload]


def check_aggressive(aggressive: object) -> float:
    """The exponent applied to win counts: a finite real number > 0."""
    value = _finite_float(aggressive)
    if value is None or value <= 0.0:  # NaN and inf are not usable exponents either
        raise ValueError(f"aggressive must be positive, got {aggressive!r}")
    return value


def check_decay(decay: object) -> float:
    """Forgetting weight in [0, 1]; NaN is rejected."""
    value = _finite_float(decay)
    if value is None or not 0.0 <= value <= 1.0:
        raise ValueError(f"decay must be between 0.0 and 1.0, got {decay!r}")
    return value


def check_method(method: object) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be 'mc' or 'exact', got {method!r}")
    return str(method)


def check_seed(seed: object) -> int | None:
    """None (fresh OS entropy) or an integer in [0, 2**64)."""
    if seed is None:
        return None
    if not _is_integer(seed) or not 0 <= seed < SEED_LIMIT:  # type: ignore[operator]
        raise ValueError(f"seed must be a non-negative integer below 2**64, got {seed!r}")
    return int(seed)  # type: ignore[call-overload]


def check_select_n(n: object, n_arms: int) -> int:
    """How many arms `select` ranks: None (1) or an integer in [1, n_arms]; no arms is an error."""
    if n is not None and not _is_integer(n):
        raise ValueError(f"n must be an integer, got {n!r}")
    if n_arms == 0:
        raise ValueError("no arms to select from")
    count = 1 if n is None else int(n)  # type: ignore[call-overload]
    if count < 1:
        raise ValueError(f"n must be positive, got {count}")
    if count > n_arms:
        raise ValueError(f"n must be at most the number of arms ({n_arms}), got {count}")
    return count


def check_action_list(action_list: object) -> list[Hashable]:
    """Names for `win_prop`: any iterable of hashable names except a lone string; a repeated
    name counts once (the answer is a dict)."""
    if isinstance(action_list, (str, bytes)):
        raise ValueError(f"action_list must be a list of names, got the string {action_list!r}")
    if isinstance(action_list, np.ndarray):
        if action_list.ndim != 1:
            raise ValueError(f"action_list must be one-dimensional, got shape {action_list.shape}")
        action_list = action_list.tolist()
    try:
        names = list(action_list)  # type: ignore[call-overload]
    except TypeError:
        raise ValueError(
            f"action_list must be a list of names, got {type(action_list).__name__}"
        ) from None
    for name in names:
        if not isinstance(name, Hashable):
            raise ValueError(f"action names must be hashable, got {name!r}")
    return list(dict.fromkeys(names))


def _check_obs_mapping(obs: object) -> Mapping[Any, Any]:
    if not isinstance(obs, Mapping):
        raise ValueError(f"obs must be a dict of observations, got {type(obs).__name__}")
    if len(obs) == 0:
        raise ValueError("obs dictionary cannot be empty")
    return obs


def _check_count(value: object, which: str, name: object) -> float:
    """One of total/success: a finite whole number (2.0 is fine, 2.5 is not), non-negative."""
    count = _finite_float(value)
    if count is None or count != math.floor(count):
        raise ValueError(
            f"{which} count must be a finite whole number, got {value!r} for action '{name}'"
        )
    if count < 0:
        raise ValueError(f"{which} count must be non-negative, got {value} for action '{name}'")
    return count


def check_count_obs(obs: object) -> list[tuple[Hashable, float, float]]:
    """Validate `{name: [total, success]}` and return `[(name, total, success), ...]`."""
    mapping = _check_obs_mapping(obs)
    checked = []
    for name, values in mapping.items():
        shaped = isinstance(values, (list, tuple)) or (
            isinstance(values, np.ndarray) and values.ndim == 1
        )
        if not shaped or len(values) != 2:
            raise ValueError(
                "Each observation must be [total_count, success_count], "
                f"got {values} for action '{name}'"
            )
        total_raw, success_raw = values[0], values[1]
        total = _check_count(total_raw, "Total", name)
        success = _check_count(success_raw, "Success", name)
        if success > total:
            raise ValueError(
                f"Success count ({success_raw}) cannot exceed total count ({total_raw}) "
                f"for action '{name}'"
            )
        checked.append((name, total, success))
    return checked


def _rewards_array(values: object, name: object) -> np.ndarray:
    """One arm's rewards as a 1-D float array (a scalar is one reward)."""
    if _is_real(values):
        items: list[object] = [values]
    elif isinstance(values, (list, tuple, np.ndarray)):
        try:
            raw = np.asarray(values)
        except ValueError:  # ragged nesting
            raise ValueError(
                f"Rewards must be real numbers, got {values!r} for action '{name}'"
            ) from None
        if raw.ndim > 1:
            raise ValueError(
                f"Rewards must be one-dimensional, got shape {raw.shape} for action '{name}'"
            )
        if raw.dtype.kind in "iuf":  # fast path: already numeric
            rewards = raw.astype(float).reshape(-1)
            if not np.all(np.isfinite(rewards)):
                raise ValueError(f"Rewards must be finite, got {values!r} for action '{name}'")
            return rewards
        items = raw.reshape(-1).tolist()
        if not all(_is_real(x) for x in items):
            raise ValueError(f"Rewards must be real numbers, got {values!r} for action '{name}'")
    else:
        raise ValueError(
            "Rewards must be a number, list, tuple, or array, "
            f"got {type(values).__name__} for action '{name}'"
        )
    floats = [_finite_float(x) for x in items]
    if any(x is None for x in floats):
        raise ValueError(f"Rewards must be finite, got {values!r} for action '{name}'")
    return np.array(floats, dtype=float)


def check_reward_obs(obs: object) -> list[tuple[Hashable, np.ndarray]]:
    """Validate `{name: number | rewards}` and return `[(name, 1-D float rewards), ...]`."""
    mapping = _check_obs_mapping(obs)
    return [(name, _rewards_array(values, name)) for name, values in mapping.items()]


def check_positive(value: object, what: str) -> float:
    """A finite real number > 0 (default_sigma, obs_noise)."""
    number = _finite_float(value)
    if number is None or number <= 0.0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return number


def check_prior(prior: object, what: str, positive: bool) -> dict[Hashable, float]:
    """A prior dict `{name: value}` (LinearBandit's `mu` as what="mean", `sigma` as "sigma"):
    finite values, also > 0 if `positive`."""
    if prior is None:
        return {}
    if not isinstance(prior, Mapping):
        raise ValueError(
            f"prior {what} must be a dict of name -> number, got {type(prior).__name__}"
        )
    checked = {}
    for name, value in prior.items():
        number = _finite_float(value)
        if number is None or (positive and number <= 0.0):
            need = "positive and finite" if positive else "finite"
            raise ValueError(f"prior {what} must be {need}, got {value!r} for action '{name}'")
        checked[name] = number
    return checked
