"""Turning posterior samples into answers, shared by the reference bandits.

`win_prop` splits the requested names into observed (tracked) and unobserved arms the same
way for every model; `select` ranks the arms by one joint posterior draw.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Hashable, Sequence

import numpy as np

from ._validate import arm_mask, check_select_n


def rng_for_call(own: np.random.Generator, seed: int | None) -> np.random.Generator:
    """A per-call seed gets a fresh generator and leaves the object's own one untouched."""
    return own if seed is None else np.random.default_rng(seed)


def split_win_prop(
    names: Sequence[Hashable],
    known: Container[Hashable],
    observed_shares: Callable[[list[Hashable]], np.ndarray],
) -> dict[Hashable, float]:
    """The contract's win_prop rules around the model-specific part.

    Empty -> {}; one name -> {name: 1.0}; at most one observed arm -> uniform. Otherwise
    `observed_shares(observed)` (win shares summing to 1, `aggressive` already applied) is
    scaled by n_observed / n_total and every unobserved arm gets 1 / n_total.
    Keys follow the order of `names`.
    """
    if len(names) == 0:
        return {}
    if len(names) == 1:
        return {names[0]: 1.0}
    observed = [name for name in names if name in known]
    n_total = len(names)
    if len(observed) <= 1:
        return {name: 1.0 / n_total for name in names}
    shares = observed_shares(observed) * (len(observed) / n_total)
    by_name = dict(zip(observed, shares.tolist(), strict=True))
    return {name: by_name.get(name, 1.0 / n_total) for name in names}


def rank_by_draw(names: Sequence[Hashable], sample: np.ndarray, n: int) -> object:
    """`select`'s answer from one joint draw: the best name (n == 1) or the n best, best first.

    Ties go to the earlier arm, as `numpy.argmax` does.
    """
    order = np.argsort(-np.asarray(sample), kind="stable")[:n]
    if n == 1:
        return names[int(order[0])]
    return [names[int(i)] for i in order]


def open_mask(names: Sequence[Hashable], available_arms: object) -> np.ndarray:
    """The arms `select` may pick: a boolean mask over `names` (None: every arm)."""
    mask = arm_mask(names, available_arms)
    return np.ones(len(names), dtype=bool) if mask is None else mask


def close_others(sample: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The draw with the arms outside `mask` unable to rank."""
    return np.where(mask, sample, -np.inf)


def check_propensity_count(return_propensity: bool, n: int) -> None:
    """`return_propensity` needs one arm: the probability of a ranked list is not computed."""
    if return_propensity and n != 1:
        raise ValueError(
            f"return_propensity=True needs n=1 (the probability of a ranking of {n} arms "
            "is not computed)"
        )


def propensity_dict(
    names: Sequence[Hashable], mask: np.ndarray, open_probs: np.ndarray
) -> dict[Hashable, float]:
    """Every arm in model order: `open_probs` on the arms in `mask` (the integrators'
    rounding below 0, ~1e-22, as 0), 0 elsewhere."""
    probs = np.zeros(len(names))
    probs[mask] = np.maximum(open_probs, 0.0)
    return dict(zip(names, probs.tolist(), strict=True))


def select_from_draw(
    names: Sequence[Hashable],
    n: object,
    available_arms: object,
    return_propensity: bool,
    draw: Callable[[], np.ndarray],
    open_probs: Callable[[np.ndarray], np.ndarray],
) -> object:
    """The Thompson classes' `select`: validate everything, then rank one joint draw
    (`draw()`, every arm) among the available arms; with `return_propensity`, `(arm, p)`,
    p from `open_probs(mask)` (the probabilities of the arms in `mask`, in arm order)."""
    check_select_n(n, len(names))
    mask = open_mask(names, available_arms)
    count = check_select_n(n, int(mask.sum()))
    check_propensity_count(return_propensity, count)
    chosen = rank_by_draw(names, close_others(draw(), mask), count)
    if not return_propensity:
        return chosen
    best = next(i for i, name in enumerate(names) if name is chosen)
    return chosen, max(0.0, float(open_probs(mask)[int(mask[:best].sum())]))
