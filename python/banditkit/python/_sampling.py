"""Turning posterior samples into answers, shared by the reference bandits.

`win_prop` splits the requested names into observed (tracked) and unobserved arms the same
way for every model; `select` ranks the arms by one joint posterior draw.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Hashable, Sequence

import numpy as np


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
