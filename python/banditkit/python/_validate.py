"""Input validation shared by every reference bandit: the policy of docs/validation.md.

Settings (constructor parameters and keyword options) of the wrong type raise TypeError and of
a wrong value ValueError; data (observations, contexts, rewards, lists of arms, saved state)
raises ValueError; `draw` and `seed` raise ValueError (the drop-in contract, pinned by
tests/test_*_contract.py).
Every checker either returns clean values or raises; none of them touches a bandit, so a caller
can validate a whole call before changing any state.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
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


# ----------------------------------------------------------------------------- settings


def setting_number(value: object, name: str) -> float:
    """A setting that is a number (int, float or a NumPy scalar of either, never a bool or a
    string): TypeError otherwise. The value (NaN included) is for the caller to check."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError(f"{name} is too large, got {value!r}") from None


def setting_integer(value: object, name: str) -> int:
    """A setting that is an integer (never a bool, never a float, even a whole one)."""
    if not _is_integer(value):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def setting_flag(value: object, name: str) -> bool:
    """A setting that is a flag: a Python bool or np.bool_ (not 1, not "no")."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_positive(value: object, what: str) -> float:
    """A finite number > 0 (default_sigma, obs_noise, l2_lambda, alpha, v)."""
    number = setting_number(value, what)
    if not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"{what} must be positive, got {value!r}")
    return number


# ----------------------------------------------------------------------------- data


def is_number(x: object) -> bool:
    """A real number in data: not a bool, not a string; a 0-d numeric array counts."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return x.dtype.kind in "iuf"
    return _is_real(x)


def numeric_array(values: object) -> np.ndarray | None:
    """`values` as a float array if it is an array-like of real numbers (lists, tuples, NumPy
    arrays of an integer or floating dtype, pandas Series, anything with `__array__`), else
    None. Strings, bytes, mappings and booleans are never numbers."""
    if isinstance(values, (str, bytes, Mapping)) or values is None:
        return None
    try:
        raw = np.asarray(values)
    except (ValueError, TypeError):  # ragged nesting, odd objects
        return None
    if raw.dtype.kind in "iuf":
        return raw.astype(np.float64, copy=False)
    if raw.dtype.kind != "O":
        return None  # bool, str, bytes, complex, datetime...
    items = raw.reshape(-1).tolist()
    if not all(_is_real(x) for x in items):
        return None
    floats = [_finite_float(x) for x in items]  # ints beyond float range: not finite
    return np.array([math.inf if f is None else f for f in floats]).reshape(raw.shape)


def check_arm_list(arms: object, what: str) -> list[Any]:
    """A list of arm names from any iterable except a lone string (never a list of characters)."""
    if isinstance(arms, (str, bytes)):
        raise ValueError(f"{what} must be a list of arms, got the string {arms!r}")
    if isinstance(arms, np.ndarray):
        if arms.ndim != 1:
            raise ValueError(f"{what} must be one-dimensional, got shape {arms.shape}")
        arms = arms.tolist()
    if isinstance(arms, Mapping):
        raise ValueError(f"{what} must be a list of arms, got {type(arms).__name__}")
    try:
        return list(arms)  # type: ignore[call-overload]
    except TypeError:
        raise ValueError(f"{what} must be a list of arms, got {type(arms).__name__}") from None


def check_draw(draw: object) -> int:
    """Number of Monte Carlo draws: an integer (Python or NumPy, not bool) >= 1."""
    if not _is_integer(draw):
        raise ValueError(f"draw must be an integer, got {draw!r}")
    if draw <= 0:  # type: ignore[operator]
        raise ValueError(f"draw must be positive, got {draw}")
    return int(draw)  # type: ignore[call-overload]


def check_aggressive(aggressive: object) -> float:
    """The exponent applied to win counts: a finite real number > 0."""
    value = setting_number(aggressive, "aggressive")
    if not math.isfinite(value) or value <= 0.0:  # NaN and inf are not usable exponents either
        raise ValueError(f"aggressive must be positive, got {aggressive!r}")
    return value


def check_decay(decay: object) -> float:
    """Forgetting weight in [0, 1]; NaN is rejected."""
    value = setting_number(decay, "decay")
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(f"decay must be between 0.0 and 1.0, got {decay!r}")
    return value


def check_method(method: object) -> str:
    if not isinstance(method, str):
        raise TypeError(f"method must be 'mc' or 'exact', got {method!r}")
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
        raise TypeError(f"n must be an integer, got {n!r}")
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
    names = check_arm_list(action_list, "action_list")
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


def shaped_pair(values: object) -> bool:
    """A one-dimensional array-like of exactly two entries (not a string or a mapping)."""
    if isinstance(values, (str, bytes, Mapping)):
        return False
    try:
        return np.ndim(values) == 1 and len(values) == 2  # type: ignore[arg-type]
    except (ValueError, TypeError):  # ragged nesting, no length
        return False


def check_count_obs(obs: object) -> list[tuple[Hashable, float, float]]:
    """Validate `{name: [total, success]}` and return `[(name, total, success), ...]`.

    Any array-like of two numbers is an observation (a list, a tuple, a NumPy array, a pandas
    Series); a string, a scalar or a mapping is not."""
    mapping = _check_obs_mapping(obs)
    checked = []
    for name, values in mapping.items():
        if not shaped_pair(values):
            raise ValueError(
                "Each observation must be [total_count, success_count], "
                f"got {values} for action '{name}'"
            )
        pair = list(values) if not isinstance(values, np.ndarray) else values.tolist()
        total_raw, success_raw = pair
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
    if (
        isinstance(values, (str, bytes, Mapping))
        or values is None
        or not (is_number(values) or hasattr(values, "__array__") or hasattr(values, "__iter__"))
    ):
        raise ValueError(
            "Rewards must be a number, list, tuple, or array, "
            f"got {type(values).__name__} for action '{name}'"
        )
    rewards = numeric_array(values)
    if rewards is None:
        raise ValueError(f"Rewards must be real numbers, got {values!r} for action '{name}'")
    if rewards.ndim > 1:
        raise ValueError(
            f"Rewards must be one-dimensional, got shape {rewards.shape} for action '{name}'"
        )
    rewards = rewards.reshape(-1)
    if not np.all(np.isfinite(rewards)):
        raise ValueError(f"Rewards must be finite, got {values!r} for action '{name}'")
    return rewards


def check_reward_obs(obs: object) -> list[tuple[Hashable, np.ndarray]]:
    """Validate `{name: number | rewards}` and return `[(name, 1-D float rewards), ...]`."""
    mapping = _check_obs_mapping(obs)
    return [(name, _rewards_array(values, name)) for name, values in mapping.items()]


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


def overflow_error(arm: object) -> ValueError:
    """The error of an update whose finite input would make the state non-finite."""
    return ValueError(f"update would make the state of arm {arm!r} non-finite (overflow)")


# ----------------------------------------------------------------------------- contextual data


def check_context(x: object, n_features: int) -> np.ndarray:
    """One context: a 1-D array-like of `n_features` finite numbers."""
    v = numeric_array(x)
    if v is None or v.ndim != 1:
        raise ValueError("context must be a 1-D array of numbers")
    if v.shape[0] != n_features:
        raise ValueError(f"context must have {n_features} features, got {v.shape[0]}")
    if not np.isfinite(v).all():
        raise ValueError("context must be finite")
    return v


def check_contexts(X: object, n_features: int) -> np.ndarray:
    """A batch of contexts: a 2-D array-like with `n_features` columns of finite numbers."""
    m = numeric_array(X)
    if m is None or m.ndim != 2:
        raise ValueError("X must be a 2-D array of numbers")
    if m.shape[1] != n_features:
        raise ValueError(f"X must have {n_features} columns, got {m.shape[1]}")
    if not np.isfinite(m).all():
        raise ValueError("contexts must be finite")
    return m


def check_reward(reward: object) -> float:
    """One contextual reward: a finite number (not a bool, not a string)."""
    if not is_number(reward):
        raise ValueError(f"reward must be a number, got {reward!r}")
    r = _finite_float(reward.item() if isinstance(reward, np.ndarray) else reward)
    if r is None:
        raise ValueError(f"reward must be finite, got {reward!r}")
    return r


def check_rewards(rewards: object) -> np.ndarray:
    """A batch of contextual rewards: an array-like of finite numbers, flattened."""
    r = numeric_array(rewards)
    if r is None:
        raise ValueError("rewards must be a 1-D array of numbers")
    r = r.reshape(-1)
    if not np.isfinite(r).all():
        raise ValueError("rewards must be finite")
    return r


def arm_position(labels: Sequence[Any], arm: object) -> int:
    """The index of `arm` among `labels` (identity first, then equality), else ValueError."""
    for k, label in enumerate(labels):
        if label is arm or label == arm:
            return k
    raise ValueError(f"unknown arm {arm!r}")


def arm_mask(labels: Sequence[Any], available_arms: object) -> np.ndarray | None:
    """A boolean mask over `labels` of the arms in `available_arms` (None: every arm)."""
    if available_arms is None:
        return None
    idx = [arm_position(labels, a) for a in check_arm_list(available_arms, "available_arms")]
    if not idx:
        raise ValueError("available_arms must not be empty")
    mask = np.zeros(len(labels), dtype=bool)
    mask[idx] = True
    return mask
