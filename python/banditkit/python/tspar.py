"""TSPar: Beta-Bernoulli Thompson sampling with independent Beta(1, 1) priors.

The NumPy reference for `banditkit_rs.TSPar`; the drop-in contract (orts' behaviour, its bugs
fixed) is pinned by tests/test_tspar_contract.py.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _persist
from ._sampling import open_mask, propensity_dict, rng_for_call, select_from_draw
from ._sync import Synchronized, synchronized
from ._validate import (
    check_count_obs,
    check_draw,
    check_method,
    check_seed,
    overflow_error,
    setting_integer,
    setting_number,
)
from .montecarlo import win_counts_beta


class TSPar(Synchronized, _persist.Persistent):
    """Per-arm Beta(alpha, beta) posteriors of the success rate.

    Attributes: `action_list` (names, in the order first seen), `alpha`, `beta` (float arrays).
    """

    def __init__(self, seed: int | None = None) -> None:
        seed = check_seed(seed)
        self.action_list: list[Hashable] = []
        self.alpha: np.ndarray = np.array([], dtype=float)
        self.beta: np.ndarray = np.array([], dtype=float)
        self._rng = np.random.default_rng(seed)

    @synchronized
    def get_models(self) -> list[Hashable]:
        return list(self.action_list)

    @synchronized
    def update(
        self,
        obs: Mapping[Hashable, Sequence[float]],
        alpha_0: float = 0.01,
        max_iter: int = 100,
    ) -> None:
        """Absorb `obs` (name -> [total, success]). New arms start at Beta(1, 1); known arms
        missing from `obs` are unchanged. `alpha_0` and `max_iter` are accepted and ignored."""
        checked = check_count_obs(obs)
        setting_number(alpha_0, "alpha_0")
        setting_integer(max_iter, "max_iter")
        names = list(self.action_list)
        index = {name: i for i, name in enumerate(names)}
        for name, _, _ in checked:
            if name not in index:
                index[name] = len(names)
                names.append(name)
        n_new = len(names) - len(self.action_list)
        alpha = np.concatenate([self.alpha, np.ones(n_new)])
        beta = np.concatenate([self.beta, np.ones(n_new)])
        for name, total, success in checked:
            with np.errstate(over="ignore"):  # reported below as a ValueError
                alpha[index[name]] += success
                beta[index[name]] += total - success
            if not (np.isfinite(alpha[index[name]]) and np.isfinite(beta[index[name]])):
                raise overflow_error(name)
        self.action_list, self.alpha, self.beta = names, alpha, beta

    @synchronized
    def win_prop(
        self, draw: int = 10000, seed: int | None = None, method: str = "mc"
    ) -> dict[Hashable, float]:
        """Probability that each arm has the highest success rate ({} with no arms)."""
        draw = check_draw(draw)
        seed = check_seed(seed)
        method = check_method(method)
        if not self.action_list:
            return {}
        if method == "exact":
            from .exact import prob_best_beta

            shares = np.asarray(prob_best_beta(self.alpha, self.beta), dtype=float)
        else:
            counts = win_counts_beta(self.alpha, self.beta, draw, rng_for_call(self._rng, seed))
            shares = counts / draw
        return dict(zip(self.action_list, shares.tolist(), strict=True))

    @synchronized
    def select(
        self,
        n: int = 1,
        seed: int | None = None,
        return_propensity: bool = False,
        available_arms: Sequence[Hashable] | None = None,
    ) -> Any:
        """Thompson sampling: one joint posterior draw; the best arm, or the n best as a list,
        among `available_arms` (default all). With `return_propensity` (n=1 only): `(arm, p)`,
        p the exact probability that this draw picks that arm."""
        seed = check_seed(seed)

        def draw() -> np.ndarray:
            return rng_for_call(self._rng, seed).beta(self.alpha, self.beta)

        return select_from_draw(
            self.action_list, n, available_arms, return_propensity, draw, self._open
        )

    @synchronized
    def propensities(self, available_arms: Sequence[Hashable] | None = None) -> dict:
        """Exact probability that `select(available_arms=...)` picks each arm: every arm in
        model order, unavailable arms 0 (`prob_best_beta` of the open arms' posteriors)."""
        mask = open_mask(self.action_list, available_arms)
        return propensity_dict(self.action_list, mask, self._open(mask))

    def _open(self, mask: np.ndarray) -> np.ndarray:
        from .exact import prob_best_beta

        return prob_best_beta(self.alpha[mask], self.beta[mask])

    @synchronized
    def __repr__(self) -> str:
        return f"TSPar(arms={len(self.action_list)})"

    @synchronized
    def to_bytes(self) -> bytes:
        """This model as a banditkit file (docs/format.md); labels must be str or int."""
        arrays = [("alpha", self.alpha), ("beta", self.beta)]
        return _persist.encode(self, {}, self.action_list, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> TSPar:
        """The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid."""
        doc = _persist.decode(data, cls)
        names = _persist.labels_in(doc)
        alpha = _persist.array(doc, "alpha", (len(names),))
        beta = _persist.array(doc, "beta", (len(names),))
        _persist.check_positive(alpha, "alpha")
        _persist.check_positive(beta, "beta")
        rng = _persist.rng_in(doc)
        new = cls()
        new.action_list, new.alpha, new.beta, new._rng = names, alpha, beta, rng
        return new
