"""The off-policy estimators, with Open Bandit Pipeline's names for their verbs.

With `w_i = pi_e(a_i|x_i) / pscore_i`, a reward model `q(x, a)` (`estimated_rewards`) and
`DM_i = sum_a pi_e(a|x_i) q(x_i, a)`, each estimate is an average over the logged events:

| class | per-event term |
|---|---|
| `IPS` | `min(w, lambda) r` |
| `SNIPS` | `w r / mean(w)` (self-normalised) |
| `DM` | `DM_i` |
| `DR` | `DM_i + min(w, lambda) (r - q(x_i, a_i))` |
| `SNDR` | `DM_i + w (r - q(x_i, a_i)) / mean(w)` |
| `SwitchDR` | `DM_i + 1[w <= lambda] w (r - q(x_i, a_i))` |
| `DRos` | `DM_i + lambda w / (w^2 + lambda) (r - q(x_i, a_i))` |

`lambda_` defaults to infinity (no clipping); SNIPS and SNDR clip before normalising (with the
default they are OBP's). Standard errors are the sample standard deviation of the per-event
terms over sqrt(n) (the delta method for the self-normalised two); intervals are normal
(estimate +- z se) or bootstrap percentiles from the deterministic kernels of
`banditkit_rs`/`banditkit.python` (`bootstrap_means`, `bootstrap_self_normalised`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from banditkit.ope import _inputs
from banditkit.ope._inputs import FloatArray, Inputs


@dataclass(frozen=True)
class Terms:
    """An estimate as `mean(base) + sum(numer) / sum(denom)` (no ratio when `numer` is None)."""

    base: FloatArray
    numer: FloatArray | None = None
    denom: FloatArray | None = None

    def value(self) -> float:
        value = float(self.base.mean())
        if self.numer is not None and self.denom is not None:
            value += float(self.numer.sum() / self.denom.sum())
        return value

    def influence(self) -> FloatArray:
        """Per-event influence: its mean is 0 and its sd / sqrt(n) is the standard error."""
        out = self.base - self.base.mean()
        if self.numer is not None and self.denom is not None:
            mean_denom = self.denom.mean()
            ratio = self.numer.sum() / self.denom.sum()
            out = out + (self.numer - ratio * self.denom) / mean_denom
        return out

    def standard_error(self) -> float:
        n = self.base.size
        if n < 2:
            return math.nan
        return float(self.influence().std(ddof=1) / math.sqrt(n))

    def bootstrap(self, n_bootstrap: int, seed: int | None, kernels: ModuleType) -> FloatArray:
        if self.numer is None or self.denom is None:
            return kernels.bootstrap_means(self.base, n_bootstrap, seed)
        return kernels.bootstrap_self_normalised(
            self.base, self.numer, self.denom, n_bootstrap, seed
        )


@dataclass(frozen=True)
class Estimate:
    """One estimator's answer: the value, its standard error, a normal interval and (when a
    bootstrap ran) the bootstrap mean and percentile interval, at level `1 - alpha`."""

    estimator: str
    value: float
    se: float
    lower: float
    upper: float
    alpha: float
    n: int
    boot_mean: float | None = None
    boot_lower: float | None = None
    boot_upper: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _default_kernels() -> ModuleType:
    from banditkit._backend import MODULE

    return MODULE


def percentile_interval(means: FloatArray, alpha: float) -> dict[str, float]:
    """OBP's summary of bootstrap means: their mean and the alpha/2, 1 - alpha/2 percentiles.
    NaN resamples (a self-normalised resample that drew only zero weights) are left out."""
    kept = means[np.isfinite(means)]
    if kept.size == 0:
        return {"mean": math.nan, "lower": math.nan, "upper": math.nan}
    lower, upper = np.quantile(kept, [alpha / 2, 1 - alpha / 2])
    return {"mean": float(kept.mean()), "lower": float(lower), "upper": float(upper)}


class OffPolicyEstimator:
    """The verbs every estimator shares; subclasses define `_terms`."""

    name: ClassVar[str]
    needs_model: ClassVar[bool] = False

    def __init__(self, lambda_: float = math.inf) -> None:
        self.lambda_ = _inputs.clip_level(lambda_)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lambda_={self.lambda_!r})"

    def _terms(self, x: Inputs, w: FloatArray) -> Terms:
        raise NotImplementedError

    def terms(
        self,
        reward: npt.ArrayLike,
        action: npt.ArrayLike,
        pscore: npt.ArrayLike,
        action_dist: npt.ArrayLike,
        estimated_rewards: npt.ArrayLike | None = None,
    ) -> Terms:
        """The per-event terms of the estimate (checked inputs)."""
        x = _inputs.check(reward, action, pscore, action_dist, estimated_rewards)
        if self.needs_model and x.estimated_rewards is None:
            raise ValueError(
                f"estimated_rewards is required by {self.name} (a reward model's (n, K) "
                "predictions, e.g. from banditkit.ope.RewardModel)"
            )
        w = x.action_dist[np.arange(x.n), x.action] / x.pscore
        return self._terms(x, w)

    def estimate_policy_value(
        self,
        reward: npt.ArrayLike,
        action: npt.ArrayLike,
        pscore: npt.ArrayLike,
        action_dist: npt.ArrayLike,
        estimated_rewards: npt.ArrayLike | None = None,
    ) -> float:
        """The estimated value of the evaluation policy `action_dist`."""
        return self.terms(reward, action, pscore, action_dist, estimated_rewards).value()

    def standard_error(
        self,
        reward: npt.ArrayLike,
        action: npt.ArrayLike,
        pscore: npt.ArrayLike,
        action_dist: npt.ArrayLike,
        estimated_rewards: npt.ArrayLike | None = None,
    ) -> float:
        return self.terms(reward, action, pscore, action_dist, estimated_rewards).standard_error()

    def estimate_interval(
        self,
        reward: npt.ArrayLike,
        action: npt.ArrayLike,
        pscore: npt.ArrayLike,
        action_dist: npt.ArrayLike,
        estimated_rewards: npt.ArrayLike | None = None,
        alpha: float = 0.05,
        n_bootstrap: int = 1000,
        seed: int | None = None,
        *,
        kernels: ModuleType | None = None,
    ) -> dict[str, float]:
        """Bootstrap percentile interval at level 1 - alpha: dict(mean, lower, upper), `mean`
        being the mean of the bootstrap estimates (as OBP). The same seed gives the same
        interval on any number of threads. `kernels` picks a backend (default: banditkit's)."""
        alpha, b = _inputs.level(alpha), _inputs.resamples(n_bootstrap)
        seed = _inputs.seed_value(seed)
        terms = self.terms(reward, action, pscore, action_dist, estimated_rewards)
        means = terms.bootstrap(b, seed, kernels or _default_kernels())
        return percentile_interval(means, alpha)

    def estimate(
        self,
        reward: npt.ArrayLike,
        action: npt.ArrayLike,
        pscore: npt.ArrayLike,
        action_dist: npt.ArrayLike,
        estimated_rewards: npt.ArrayLike | None = None,
        alpha: float = 0.05,
        n_bootstrap: int | None = 1000,
        seed: int | None = None,
        *,
        kernels: ModuleType | None = None,
    ) -> Estimate:
        """Value, standard error, normal interval and (unless `n_bootstrap` is None) the
        bootstrap interval, in one pass over the inputs."""
        alpha = _inputs.level(alpha)
        b = None if n_bootstrap is None else _inputs.resamples(n_bootstrap)
        seed = _inputs.seed_value(seed)
        terms = self.terms(reward, action, pscore, action_dist, estimated_rewards)
        value, se = terms.value(), terms.standard_error()
        z = NormalDist().inv_cdf(1 - alpha / 2)
        boot: dict[str, float | None] = {"mean": None, "lower": None, "upper": None}
        if b is not None:
            boot.update(
                percentile_interval(terms.bootstrap(b, seed, kernels or _default_kernels()), alpha)
            )
        return Estimate(
            estimator=self.name,
            value=value,
            se=se,
            lower=value - z * se,
            upper=value + z * se,
            alpha=alpha,
            n=int(terms.base.size),
            boot_mean=boot["mean"],
            boot_lower=boot["lower"],
            boot_upper=boot["upper"],
        )


def _dm(x: Inputs) -> FloatArray:
    assert x.estimated_rewards is not None
    return (x.action_dist * x.estimated_rewards).sum(axis=1)


def _residual(x: Inputs) -> FloatArray:
    assert x.estimated_rewards is not None
    return x.reward - x.estimated_rewards[np.arange(x.n), x.action]


class IPS(OffPolicyEstimator):
    """Inverse propensity scoring: mean of min(w, lambda_) r."""

    name = "IPS"

    def _terms(self, x: Inputs, w: FloatArray) -> Terms:
        return Terms(np.minimum(w, self.lambda_) * x.reward)


class SNIPS(OffPolicyEstimator):
    """Self-normalised IPS: sum w r / sum w (w clipped at lambda_ first)."""

    name = "SNIPS"

    def _terms(self, x: Inputs, w: FloatArray) -> Terms:
        w = np.minimum(w, self.lambda_)
        return Terms(np.zeros(x.n), w * x.reward, w)


class DM(OffPolicyEstimator):
    """Direct method: mean of sum_a pi_e(a|x) q(x, a). Uses neither rewards nor propensities
    (they are still checked, so that every estimator sees the same log)."""

    name = "DM"
    needs_model = True

    def __init__(self) -> None:
        super().__init__(math.inf)

    def __repr__(self) -> str:
        return "DM()"

    def _terms(self, x: Inputs, w: FloatArray) -> Terms:
        return Terms(_dm(x))


class DR(OffPolicyEstimator):
    """Doubly robust: DM_i + min(w, lambda_) (r - q(x_i, a_i))."""

    name = "DR"
    needs_model = True

    def _terms(self, x: Inputs, w: FloatArray) -> Terms:
        return Terms(_dm(x) + np.minimum(w, self.lambda_) * _residual(x))


class SNDR(OffPolicyEstimator):
    """Self-normalised DR: mean(DM_i) + sum w (r - q) / sum w (w clipped at lambda_ first)."""

    name = "SNDR"
    needs_model = True

    def _terms(self, x: Inputs, w: FloatArray) -> Terms:
        w = np.minimum(w, self.lambda_)
        return Terms(_dm(x), w * _residual(x), w)


class SwitchDR(OffPolicyEstimator):
    """Switch-DR: DM_i + 1[w <= lambda_] w (r - q): the correction only where w is small."""

    name = "SwitchDR"
    needs_model = True

    def _terms(self, x: Inputs, w: FloatArray) -> Terms:
        return Terms(_dm(x) + np.where(w <= self.lambda_, w, 0.0) * _residual(x))


class DRos(OffPolicyEstimator):
    """DR with optimistic shrinkage: DM_i + lambda_ w / (w^2 + lambda_) (r - q). lambda_ = inf
    is plain DR, lambda_ = 0 is DM."""

    name = "DRos"
    needs_model = True

    def _terms(self, x: Inputs, w: FloatArray) -> Terms:
        if math.isinf(self.lambda_):
            shrunk = w
        elif self.lambda_ == 0.0:
            shrunk = np.zeros_like(w)
        else:
            shrunk = self.lambda_ * w / (w**2 + self.lambda_)
        return Terms(_dm(x) + shrunk * _residual(x))


ESTIMATORS: dict[str, type[OffPolicyEstimator]] = {
    cls.name: cls for cls in (IPS, SNIPS, DM, DR, SNDR, SwitchDR, DRos)
}
