"""LogisticBandit: odds-ratio Thompson sampling (ORTS, arXiv:2003.01905) and Full-TS.

The NumPy reference for `banditkit_rs.LogisticBandit`; the drop-in contract (orts' behaviour,
its flaws fixed) is pinned by tests/test_logistic_contract.py. The maths (re-expression,
priors, the MAP solve, sampling) lives in `_logistic_math.py`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _logistic_math as lm
from . import _persist
from ._sampling import open_mask, propensity_dict, rng_for_call, select_from_draw, split_win_prop
from ._sync import Synchronized, synchronized
from ._validate import (
    check_action_list,
    check_aggressive,
    check_count_obs,
    check_decay,
    check_draw,
    check_method,
    check_seed,
    overflow_error,
    setting_flag,
)
from .montecarlo import apply_aggressive, win_counts_mvn

SYMMETRY_TOL = 1e-9  # relative asymmetry accepted in a user-supplied sigma_inv
# A user-supplied sigma_inv may have eigenvalues this far below zero, relative to the largest
# (rounding, e.g. of a get_par output), and no further.
USER_PSD_TOL = 1e-9
# Error target (3.5 standard errors) of each `propensities` probability, and its QMC seed.
PROPENSITY_TOLERANCE = 1e-4
PROPENSITY_SEED = 0
PSD_TOL = 1e-9  # negative eigenvalue (relative to the largest entry) accepted in a saved sigma_inv


def _distinct_names(action_list: object) -> list[Hashable]:
    """Arm names for the state (constructor, get_par, transform): no name may repeat."""
    names = check_action_list(action_list)
    raw = action_list.tolist() if isinstance(action_list, np.ndarray) else list(action_list)  # type: ignore[call-overload]
    if len(raw) != len(names):
        raise ValueError(f"action_list must not contain duplicate names, got {raw!r}")
    return names


def _check_state(
    mu: object, sigma_inv: object, action_list: object
) -> tuple[np.ndarray, np.ndarray, list[Hashable]]:
    """Constructor arguments as (mu, sigma_inv, action_list) copies, consistent and finite."""
    names = [] if action_list is None else _distinct_names(action_list)
    k = len(names)
    mu_arr = np.zeros(0) if mu is None else np.array(mu, dtype=float)
    s_arr = np.zeros((0, 0)) if sigma_inv is None else np.array(sigma_inv, dtype=float)
    if k == 0 and mu_arr.size == 0 and s_arr.size == 0:  # any empty array is the empty state
        mu_arr, s_arr = np.zeros(0), np.zeros((0, 0))
    if mu_arr.shape != (k,):
        raise ValueError(f"mu must have shape ({k},) to match action_list, got {mu_arr.shape}")
    if s_arr.shape != (k, k):
        raise ValueError(f"sigma_inv must have shape ({k}, {k}), got {s_arr.shape}")
    if not (np.all(np.isfinite(mu_arr)) and np.all(np.isfinite(s_arr))):
        raise ValueError("mu and sigma_inv must be finite")
    if np.abs(s_arr - s_arr.T).max(initial=0.0) > SYMMETRY_TOL * np.abs(s_arr).max(initial=0.0):
        raise ValueError("sigma_inv must be symmetric")
    if k:
        values = np.linalg.eigvalsh(0.5 * (s_arr + s_arr.T))
        if values[0] < -USER_PSD_TOL * max(np.abs(values).max(), np.finfo(float).tiny):
            raise ValueError(
                f"sigma_inv must be positive semidefinite, got an eigenvalue of {values[0]:.3g}"
            )
    return mu_arr, s_arr, names


class LogisticBandit(Synchronized, _persist.Persistent):
    """Bernoulli arms under a logistic model, the reference arm last in `action_list`.

    Attributes: `mu` (length K: log-odds ratios against the reference, then the reference's
    own log-odds), `sigma_inv` (K x K posterior precision), `action_list` (names).

    Robustness (upstream raised LinAlgError on some valid sequences): the ORTS prior uses
    the Schur complement instead of a double inverse, so a singular prior precision is fine;
    the MAP solve leaves coordinates that nothing identifies where they start and damps a
    singular Hessian (Levenberg); covariances are pseudo-inverses (an eigenvalue of
    `sigma_inv` within rounding of zero, below it included, counts as zero). The state stays
    finite, with `sigma_inv` symmetric positive semidefinite: a user-supplied `sigma_inv`
    must be PSD up to rounding (its slightly negative eigenvalues are projected away when it
    becomes a prior), and an update whose result would not be finite raises ValueError. Where
    a rate of 0 or 1 puts a probability on its clip, every point of that plateau is a MAP; the
    solver keeps the first one it reaches (the two backends may then differ within the plateau).
    """

    # The MAP solver (a class attribute so that benchmarks can swap in a baseline solver).
    _solve = staticmethod(lm.map_estimate)

    def __init__(
        self,
        mu: np.ndarray | Sequence[float] | None = None,
        sigma_inv: np.ndarray | Sequence[Sequence[float]] | None = None,
        action_list: Sequence[Hashable] | None = None,
        seed: int | None = None,
    ) -> None:
        self.mu, self.sigma_inv, self.action_list = _check_state(mu, sigma_inv, action_list)
        self._rng = np.random.default_rng(check_seed(seed))

    @synchronized
    def get_models(self) -> list[Hashable]:
        return list(self.action_list)

    def _positions(self, names: Sequence[Hashable]) -> list[int]:
        known = {name: i for i, name in enumerate(self.action_list)}
        for name in names:
            if name not in known:
                raise ValueError(f"unknown arm {name!r}")
        return [known[name] for name in names]

    @synchronized
    def get_par(
        self, action_list: Sequence[Hashable] | None = None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """`(mu, sigma_inv)` re-expressed for `action_list` (known arms, last = reference)."""
        if action_list is None or len(action_list) == 0:
            return None, None
        names = _distinct_names(action_list)
        return lm.get_par(self.mu, self.sigma_inv, self._positions(names))

    @synchronized
    def transform(self, action_list: Sequence[Hashable]) -> None:
        """Replace the state by `get_par(action_list)` (a new order, reference or subset)."""
        names = _distinct_names(action_list)
        if not names:
            raise ValueError("action_list cannot be empty")
        with np.errstate(over="ignore", invalid="ignore"):
            mu, sigma_inv = lm.transform(self.mu, self.sigma_inv, self._positions(names))
        self._check_finite(mu, sigma_inv, names)
        self.mu, self.sigma_inv, self.action_list = mu, sigma_inv, names

    @synchronized
    def delete(self, name: Hashable) -> None:
        """Drop one arm (a subset re-expression); the reference stays unless it is dropped,
        then the last remaining arm becomes the reference."""
        self._positions([name])
        kept = [a for a in self.action_list if a != name]
        if not kept:
            self.mu, self.sigma_inv, self.action_list = np.zeros(0), np.zeros((0, 0)), []
            return
        self.transform(kept)

    @synchronized
    def update(
        self,
        obs: Mapping[Hashable, Any],
        odds_ratios_only: bool = True,
        remove_not_observed: bool = False,
        decay: float = 0.0,
    ) -> None:
        """Absorb `obs` (name -> [total, success]): ORTS if `odds_ratios_only`, else Full-TS.

        Arms with total 0 are ignored (none left: nothing changes). With
        `remove_not_observed`, known arms not observed here are dropped first.
        """
        checked = check_count_obs(obs)
        odds_ratios_only = setting_flag(odds_ratios_only, "odds_ratios_only")
        remove_not_observed = setting_flag(remove_not_observed, "remove_not_observed")
        decay = check_decay(decay)
        observed = [(name, t, s) for name, t, s in checked if t > 0]
        if not observed:
            return
        seen = {name for name, _, _ in observed}
        known = set(self.action_list)
        new = [row for row in observed if row[0] not in known]
        on = [row for row in observed if row[0] in known]
        off = [] if remove_not_observed else [a for a in self.action_list if a not in seen]
        carried = off + [name for name, _, _ in on]
        order = [name for name, _, _ in new] + carried
        n_new, k = len(new), len(order)

        prior_mean = prior_precision = None
        if carried:
            # Finite counts up to 1e308 can overflow the information: checked before commit.
            with np.errstate(over="ignore", invalid="ignore"):
                prior_mean, p0 = lm.get_par(self.mu, self.sigma_inv, self._positions(carried))
                if odds_ratios_only and len(carried) > 1:
                    p0 = lm.odds_ratio_precision(p0)
                self._check_finite(prior_mean, p0, carried)
                prior_precision = (1.0 - decay) * lm.nearest_psd(p0)

        rows = new + on
        problem = lm.MapProblem(
            k=k,
            obs_index=np.r_[np.arange(n_new), np.arange(k - len(on), k)].astype(int),
            totals=np.array([t for _, t, _ in rows]),
            successes=np.array([s for _, _, s in rows]),
            prior_start=n_new,
            prior_mean=prior_mean,
            prior_precision=prior_precision,
        )
        with np.errstate(over="ignore", invalid="ignore"):
            w = self._solve(problem)
            sigma_inv = lm.fisher_information(w, problem)
            if prior_precision is not None:
                sigma_inv[n_new:, n_new:] += prior_precision
            self._check_finite(w, sigma_inv, order)
            sigma_inv = lm.nearest_psd(0.5 * (sigma_inv + sigma_inv.T))
            self._check_finite(w, sigma_inv, order)  # an eigensolver near 1e308 can overflow
        self.mu, self.sigma_inv, self.action_list = w, sigma_inv, order

    @staticmethod
    def _check_finite(mu: np.ndarray, sigma_inv: np.ndarray, names: list[Hashable]) -> None:
        """ValueError naming the first arm whose part of a candidate state is not finite."""
        bad = ~np.isfinite(mu) | ~np.isfinite(sigma_inv).all(axis=1)
        if bad.any():
            raise overflow_error(names[int(np.argmax(bad))])

    def _sampler(self, names: list[Hashable]) -> tuple[np.ndarray, np.ndarray]:
        mu, sigma_inv = lm.get_par(self.mu, self.sigma_inv, self._positions(names))
        return lm.odds_ratio_sampler(mu, sigma_inv)

    @synchronized
    def win_prop(
        self,
        action_list: Sequence[Hashable] | None = None,
        draw: int = 100000,
        aggressive: float = 1.0,
        seed: int | None = None,
        method: str = "mc",
    ) -> dict[Hashable, float]:
        """Probability that each arm of `action_list` (default: all) has the highest
        success probability: joint draws of the odds ratios, the reference at 0."""
        names = self.get_models() if action_list is None else check_action_list(action_list)
        draw = check_draw(draw)
        aggressive = check_aggressive(aggressive)
        seed = check_seed(seed)
        method = check_method(method)

        def observed_shares(observed: list[Hashable]) -> np.ndarray:
            mean, low = self._sampler(observed)
            rng = rng_for_call(self._rng, seed)
            if method == "exact":
                from .exact import prob_best_mvn

                # Randomised QMC: its randomisation seed comes from this call's generator.
                qmc_seed = int(rng.integers(2**63))
                return apply_aggressive(prob_best_mvn(mean, low @ low.T, seed=qmc_seed), aggressive)
            counts = win_counts_mvn(mean, low, draw, rng)
            return apply_aggressive(counts, aggressive)

        return split_win_prop(names, set(self.action_list), observed_shares)

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
        p the probability that this draw picks that arm (as `propensities`)."""
        names = self.get_models()
        seed = check_seed(seed)

        def draw() -> np.ndarray:
            if len(names) == 1:
                return np.zeros(1)
            mean, low = self._sampler(names)
            return mean + low @ rng_for_call(self._rng, seed).standard_normal(len(names))

        return select_from_draw(
            names, n, available_arms, return_propensity, draw, lambda m: self._open(names, m)
        )

    @synchronized
    def propensities(self, available_arms: Sequence[Hashable] | None = None) -> dict:
        """Probability that `select(available_arms=...)` picks each arm: every arm in model
        order, unavailable arms 0. The odds ratios are correlated normals: `prob_best_mvn` to
        PROPENSITY_TOLERANCE with a fixed seed, so the same state gives the same answer."""
        names = self.get_models()
        mask = open_mask(names, available_arms)
        return propensity_dict(names, mask, self._open(names, mask))

    def _open(self, names: list[Hashable], mask: np.ndarray) -> np.ndarray:
        open_names = [name for name, m in zip(names, mask, strict=True) if m]
        if len(open_names) <= 1:
            return np.ones(len(open_names))  # no arms: an empty answer, as the other classes
        from .exact import prob_best_mvn

        mean, low = self._sampler(open_names)
        return prob_best_mvn(
            mean, low @ low.T, seed=PROPENSITY_SEED, tolerance=PROPENSITY_TOLERANCE
        )

    @synchronized
    def __repr__(self) -> str:
        ref = self.action_list[-1] if self.action_list else None
        return f"LogisticBandit(arms={len(self.action_list)}, reference={ref!r})"

    @synchronized
    def to_bytes(self) -> bytes:
        """This model as a banditkit file (docs/format.md); labels must be str or int."""
        arrays = [("mu", self.mu), ("sigma_inv", self.sigma_inv)]
        return _persist.encode(self, {}, self.action_list, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> LogisticBandit:
        """The model saved by `to_bytes` (either backend); `banditkit.FormatError` if invalid.
        The state is checked as the constructor checks its arguments, and `sigma_inv` must be
        positive semidefinite up to rounding."""
        doc = _persist.decode(data, cls)
        names = _persist.labels_in(doc)
        k = len(names)
        mu, sigma_inv = _persist.array(doc, "mu", (k,)), _persist.array(doc, "sigma_inv", (k, k))
        try:
            mu, sigma_inv, names = _check_state(mu, sigma_inv, names)
        except ValueError as exc:
            raise _persist.FormatError(f"invalid banditkit file: {exc}") from None
        if k and np.linalg.eigvalsh(sigma_inv)[0] < -PSD_TOL * np.abs(sigma_inv).max():
            raise _persist.FormatError(
                "invalid banditkit file: sigma_inv must be positive semidefinite"
            )
        rng = _persist.rng_in(doc)
        new = cls()
        new.mu, new.sigma_inv, new.action_list, new._rng = mu, sigma_inv, names, rng
        return new
