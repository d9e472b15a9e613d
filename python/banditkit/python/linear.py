"""LinearBandit: Gaussian Thompson sampling with a conjugate normal update per arm.

The NumPy reference for `banditkit_rs.LinearBandit`; the drop-in contract (orts' behaviour,
its bug fixed) is pinned by tests/test_linear_contract.py.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _persist
from ._sampling import open_mask, propensity_dict, rng_for_call, select_from_draw, split_win_prop
from ._sync import Synchronized, synchronized
from ._validate import (
    check_action_list,
    check_aggressive,
    check_decay,
    check_draw,
    check_method,
    check_positive,
    check_prior,
    check_reward_obs,
    check_seed,
    overflow_error,
)
from .montecarlo import apply_aggressive, win_counts_gaussian


class LinearBandit(Synchronized, _persist.Persistent):
    """Independent Gaussian posteriors N(mu, sigma^2) per arm, with known observation noise.

    Attributes (plain dicts keyed by arm name, in the order arms were first seen): `mu`,
    `sigma` (posterior sd), `counts` (ints), `sum_rewards`; floats `default_sigma`, `obs_noise`.
    """

    def __init__(
        self,
        mu: Mapping[Hashable, float] | None = None,
        sigma: Mapping[Hashable, float] | None = None,
        default_sigma: float = 1.0,
        obs_noise: float = 1.0,
        seed: int | None = None,
    ) -> None:
        default_sigma = check_positive(default_sigma, "default_sigma")
        obs_noise = check_positive(obs_noise, "obs_noise")
        mu_prior = check_prior(mu, "mean", positive=False)
        sigma_prior = check_prior(sigma, "sigma", positive=True)
        seed = check_seed(seed)
        # An arm with a prior on either side is tracked; the missing side takes the default
        # (upstream crashed on the first update for a prior mean without a prior sd).
        names = list(mu_prior) + [name for name in sigma_prior if name not in mu_prior]
        self.default_sigma: float = default_sigma
        self.obs_noise: float = obs_noise
        self.mu: dict[Hashable, float] = {name: mu_prior.get(name, 0.0) for name in names}
        self.sigma: dict[Hashable, float] = {
            name: sigma_prior.get(name, default_sigma) for name in names
        }
        self.counts: dict[Hashable, int] = {name: 0 for name in names}
        self.sum_rewards: dict[Hashable, float] = {name: 0.0 for name in names}
        self._rng = np.random.default_rng(seed)

    @synchronized
    def get_models(self) -> list[Hashable]:
        return list(self.mu)

    @synchronized
    def update(self, obs: Mapping[Hashable, Any], decay: float = 0.0) -> None:
        """Absorb `obs` (name -> a reward or a sequence of rewards). Empty sequences are
        skipped. With decay > 0 each updated arm first drifts back toward the default prior."""
        checked = check_reward_obs(obs)
        decay = check_decay(decay)
        # An overflowing sum is reported below as a ValueError, not as NumPy's warning.
        with np.errstate(over="ignore"):
            sums = [float(rewards.sum()) for _, rewards in checked]
        for (name, _), total in zip(checked, sums, strict=True):
            if not math.isfinite(total):
                raise ValueError(f"Rewards are too large: their sum overflows for action '{name}'")
        # The new state is computed aside and committed only if every arm's is finite.
        mu, sigma = dict(self.mu), dict(self.sigma)
        counts, sum_rewards = dict(self.counts), dict(self.sum_rewards)
        for (name, rewards), total in zip(checked, sums, strict=True):
            if rewards.size == 0:
                continue
            prior = (mu.get(name, 0.0), sigma.get(name, self.default_sigma))
            mu[name], sigma[name] = self._posterior(*prior, rewards.size, total, decay)
            counts[name] = counts.get(name, 0) + rewards.size
            sum_rewards[name] = sum_rewards.get(name, 0.0) + total
            if not (
                math.isfinite(mu[name])
                and math.isfinite(sum_rewards[name])
                and 0.0 < sigma[name] < math.inf
            ):
                raise overflow_error(name)
        self.mu, self.sigma, self.counts, self.sum_rewards = mu, sigma, counts, sum_rewards

    def _posterior(
        self, mu: float, sigma: float, n: int, total: float, decay: float
    ) -> tuple[float, float]:
        """The conjugate update of N(mu, sigma^2) by n rewards summing to `total` (NaN or
        inf where it overflows, never an exception: the caller reports it)."""
        try:  # Python floats overflow to inf without a warning
            if decay > 0.0:
                sigma2 = (1.0 - decay) * sigma**2 + decay * self.default_sigma**2
                mu = (1.0 - decay) * mu
            else:
                sigma2 = sigma**2
            prec0 = 1.0 / sigma2
            prec_obs = n / self.obs_noise**2
            new_mu = (prec0 * mu + prec_obs * (total / n)) / (prec0 + prec_obs)
            new_sigma = 1.0 / math.sqrt(prec0 + prec_obs)
        except (ZeroDivisionError, OverflowError, ValueError):  # 1/0, x**2 > 1.8e308, sqrt(-)
            return math.nan, math.nan
        return new_mu, new_sigma

    @synchronized
    def win_prop(
        self,
        action_list: Sequence[Hashable] | None = None,
        draw: int = 100000,
        aggressive: float = 1.0,
        seed: int | None = None,
        method: str = "mc",
    ) -> dict[Hashable, float]:
        """Probability that each arm of `action_list` (default: all) has the highest mean."""
        names = self.get_models() if action_list is None else check_action_list(action_list)
        draw = check_draw(draw)
        aggressive = check_aggressive(aggressive)
        seed = check_seed(seed)
        method = check_method(method)

        def observed_shares(observed: list[Hashable]) -> np.ndarray:
            mu = np.array([self.mu[name] for name in observed])
            sigma = np.array([self.sigma[name] for name in observed])
            if method == "exact":
                from .exact import prob_best_gaussian

                weights = np.asarray(prob_best_gaussian(mu, sigma), dtype=float)
            else:
                weights = win_counts_gaussian(mu, sigma, draw, rng_for_call(self._rng, seed))
            return apply_aggressive(weights, aggressive)

        return split_win_prop(names, self.mu, observed_shares)

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
        names = self.get_models()
        seed = check_seed(seed)
        mu, sigma = self._arrays(names)

        def draw() -> np.ndarray:
            return mu + sigma * rng_for_call(self._rng, seed).standard_normal(len(names))

        return select_from_draw(
            names, n, available_arms, return_propensity, draw, lambda m: self._open(mu, sigma, m)
        )

    @synchronized
    def propensities(self, available_arms: Sequence[Hashable] | None = None) -> dict:
        """Exact probability that `select(available_arms=...)` picks each arm: every arm in
        model order, unavailable arms 0 (`prob_best_gaussian` of the open arms' posteriors)."""
        names = self.get_models()
        mask = open_mask(names, available_arms)
        mu, sigma = self._arrays(names)
        return propensity_dict(names, mask, self._open(mu, sigma, mask))

    def _arrays(self, names: list[Hashable]) -> tuple[np.ndarray, np.ndarray]:
        mu = np.array([self.mu[name] for name in names], dtype=float)
        return mu, np.array([self.sigma[name] for name in names], dtype=float)

    @staticmethod
    def _open(mu: np.ndarray, sigma: np.ndarray, mask: np.ndarray) -> np.ndarray:
        from .exact import prob_best_gaussian

        return prob_best_gaussian(mu[mask], sigma[mask])

    @synchronized
    def get_statistics(self) -> dict[Hashable, dict[str, float]]:
        return {
            name: {
                "mu": self.mu[name],
                "sigma": self.sigma[name],
                "count": self.counts[name],
                "mean_reward": (
                    self.sum_rewards[name] / self.counts[name] if self.counts[name] else 0.0
                ),
            }
            for name in self.mu
        }

    @synchronized
    def __repr__(self) -> str:
        return (
            f"LinearBandit(arms={len(self.mu)}, default_sigma={self.default_sigma}, "
            f"obs_noise={self.obs_noise})"
        )

    @synchronized
    def to_bytes(self) -> bytes:
        """This model as a banditkit file (docs/format.md); labels must be str or int."""
        names = self.get_models()
        params = {"default_sigma": self.default_sigma, "obs_noise": self.obs_noise}
        arrays = [
            ("mu", np.array([self.mu[n] for n in names], dtype=float)),
            ("sigma", np.array([self.sigma[n] for n in names], dtype=float)),
            ("counts", np.array([self.counts[n] for n in names], dtype=np.int64)),
            ("sum_rewards", np.array([self.sum_rewards[n] for n in names], dtype=float)),
        ]
        return _persist.encode(self, params, names, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearBandit:
        """The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid."""
        doc = _persist.decode(data, cls)
        names = _persist.labels_in(doc)
        k = len(names)
        default_sigma = _persist.finite_positive(doc, "default_sigma")
        obs_noise = _persist.finite_positive(doc, "obs_noise")
        mu, sigma = _persist.array(doc, "mu", (k,)), _persist.array(doc, "sigma", (k,))
        _persist.check_positive(sigma, "sigma")
        counts = _persist.array(doc, "counts", (k,), "i8")
        sums = _persist.array(doc, "sum_rewards", (k,))
        rng = _persist.rng_in(doc)
        new = cls(default_sigma=default_sigma, obs_noise=obs_noise)
        new.mu = dict(zip(names, mu.tolist(), strict=True))
        new.sigma = dict(zip(names, sigma.tolist(), strict=True))
        new.counts = dict(zip(names, counts.tolist(), strict=True))
        new.sum_rewards = dict(zip(names, sums.tolist(), strict=True))
        new._rng = rng
        return new
