"""One adapter per policy name: the constructor's knobs (a pydantic model), how to build the
model, how to decide with exact propensities, and how to apply a group of rewards.

Arms are addressed by their index in the experiment's arm list (`arms`); candidate sets are
tuples of indices (None: every arm). `decide` returns, per request, the chosen index and the
probability that the policy picks it for that request.

Thompson policies (tspar, linear, logistic) compute the exact win probabilities of a candidate
set once per model state and draw the arm from that categorical distribution: in distribution
this is Thompson sampling (P(arm) = P(its posterior draw is the highest)), and the propensity is
exact by construction. LinTS draws one score per arm, N(theta_a.x, v^2 x'A_a^-1 x),
independently, so its propensities are per context `prob_best_gaussian(means, sds)`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import banditkit
from banditkit.serve.errors import InvalidInput

Candidates = tuple[int, ...] | None
Cache = dict[Any, Any]  # per-model-state cache owned by the experiment, cleared on change


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class NoParams(_Params):
    pass


class LinearParams(_Params):
    default_sigma: float = Field(1.0, gt=0)
    obs_noise: float = Field(1.0, gt=0)


class _ContextualParams(_Params):
    n_features: int = Field(ge=1, le=100_000)
    l2_lambda: float = Field(1.0, gt=0)
    window_size: int = Field(0, ge=0)
    gamma: float = Field(1.0, gt=0, le=1)
    refactor_every: int | None = Field(None, ge=1)


class LinUCBParams(_ContextualParams):
    alpha: float = Field(1.0, ge=0)


class LinTSParams(_ContextualParams):
    v: float = Field(1.0, gt=0)


class DoublyRobustParams(_Params):
    n_features: int = Field(ge=1, le=100_000)
    alpha: float = Field(1.0, ge=0)
    l2_lambda: float = Field(1.0, gt=0)
    max_weight: float | None = Field(None, gt=0)  # None: no cap (JSON has no infinity)
    max_history: int = Field(10_000, ge=0)
    exploration: Literal["ucb", "epsilon", "softmax"] = "ucb"
    epsilon: float = Field(0.05, ge=0, le=1)
    temperature: float = Field(1.0, gt=0)


class OffsetTreeParams(_Params):
    n_features: int = Field(ge=1, le=100_000)
    learning_rate: float = Field(0.1, gt=0)
    l2: float = Field(0.0, ge=0)
    # Above 0: rewards are learned with the model's own propensity at apply time, which
    # must not be 0 for the arm that was played.
    epsilon: float = Field(0.05, gt=0, le=1)
    max_weight: float | None = Field(None, gt=0)  # None: no cap on 1/propensity
    offset: float | None = None  # None: the running mean reward


class ContextTreeParams(_Params):
    n_features: int = Field(ge=1, le=100_000)
    max_depth: int = Field(3, ge=0, le=64)
    min_samples_split: int = Field(20, ge=2)
    split_threshold: float = Field(0.01, ge=0)
    max_nodes: int = Field(2000, ge=1, le=1_000_000)
    n_quantiles: int = Field(8, ge=1, le=1024)
    prior: Literal["gaussian", "beta"] = "gaussian"


def _cdf(probs: np.ndarray) -> np.ndarray:
    """The cumulative sums of normalised `probs`, ending at +inf so that a uniform draw in
    [0, 1) always lands on an index (whatever the rounding of the sums)."""
    cdf = np.cumsum(probs)
    cdf[-1] = np.inf
    return cdf


def _draw(cdf: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n independent draws of an index from the categorical distribution of `cdf`."""
    return cdf.searchsorted(rng.random(n), side="right")


def _groups(candidates: list[Candidates]) -> dict[Candidates, list[int]]:
    """The requests' positions grouped by candidate set (most batches have one set)."""
    out: dict[Candidates, list[int]] = {}
    for i, c in enumerate(candidates):
        out.setdefault(c, []).append(i)
    return out


class Policy:
    """Base class of the adapters; one instance per policy name, without state."""

    name: ClassVar[str] = ""
    contextual: ClassVar[bool] = False
    params_model: ClassVar[type[_Params]] = NoParams
    bernoulli: ClassVar[bool] = False  # rewards must be 0 or 1 (a success count)
    model_class: ClassVar[str] = ""

    def parse_params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """The params checked and completed with defaults; InvalidInput(field="params.x")."""
        try:
            return self.params_model.model_validate(params or {}).model_dump()
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise InvalidInput(
                f"{self.name}: {err['msg']}", field=f"params.{loc}" if loc else "params"
            ) from None

    def params_of(self, model: Any) -> dict[str, Any]:
        """The params of a model stored without serve info (read from its getters)."""
        return {k: getattr(model, k) for k in self.params_model.model_fields}

    def n_features(self, params: dict[str, Any]) -> int | None:
        return params.get("n_features") if self.contextual else None

    def check_reward(self, reward: float) -> str | None:
        """Why this reward is refused, or None."""
        if not math.isfinite(reward):
            return "reward must be finite"
        if self.bernoulli and reward not in (0.0, 1.0):
            return f"reward must be 0 or 1 for {self.name} (a Bernoulli success), got {reward}"
        return None

    def create(self, arms: list[Hashable], params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def decide(
        self,
        model: Any,
        arms: list[Hashable],
        contexts: np.ndarray | None,
        candidates: list[Candidates],
        rng: np.random.Generator,
        cache: Cache,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(arm indices, propensities) for each request."""
        raise NotImplementedError

    def apply(
        self,
        model: Any,
        arms: list[Hashable],
        contexts: np.ndarray | None,
        rewards: np.ndarray,
        propensities: Sequence[float | None],
    ) -> None:
        """Absorb one group of rewards (`arms[i]` got `rewards[i]` in context `contexts[i]`,
        decided with probability `propensities[i]`, None when the reward named no decision)."""
        raise NotImplementedError

    def win_probabilities(self, model: Any, arms: list[Hashable], cache: Cache) -> list | None:
        """The exact win probability of every arm (None for contextual policies)."""
        return None


class _Thompson(Policy):
    """Non-contextual Thompson sampling by exact win probabilities of the candidate set."""

    def probabilities(self, model: Any, arms: list[Hashable], cand: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def _probs(
        self, model: Any, arms: list[Hashable], cand: Candidates, cache: Cache
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(arm indices, their win probabilities, the cdf), computed once per model state."""
        key = ("p", cand)
        hit = cache.get(key)
        if hit is None:
            idx = np.arange(len(arms)) if cand is None else np.asarray(cand)
            p = np.asarray(self.probabilities(model, arms, tuple(idx.tolist())), dtype=float)
            p = np.clip(p, 0.0, None)
            p = p / p.sum() if p.sum() > 0 else np.full(len(idx), 1.0 / len(idx))
            hit = cache[key] = (idx, p, _cdf(p))
        return hit

    def decide(self, model, arms, contexts, candidates, rng, cache):
        n = len(candidates)
        if candidates.count(None) == n:  # the usual batch: every arm a candidate
            idx, p, cdf = self._probs(model, arms, None, cache)
            k = _draw(cdf, n, rng)
            return idx[k], p[k]
        chosen = np.empty(n, dtype=np.int64)
        props = np.empty(n, dtype=float)
        for cand, where in _groups(candidates).items():
            idx, p, cdf = self._probs(model, arms, cand, cache)
            k = _draw(cdf, len(where), rng)
            chosen[where] = idx[k]
            props[where] = p[k]
        return chosen, props

    def win_probabilities(self, model, arms, cache):
        return self._probs(model, arms, None, cache)[1].tolist()

    @staticmethod
    def _by_arm(arms: list[Hashable], rewards: np.ndarray) -> dict[Hashable, list[float]]:
        out: dict[Hashable, list[float]] = {}
        for a, r in zip(arms, rewards.tolist(), strict=True):
            out.setdefault(a, []).append(r)
        return out


class TSParPolicy(_Thompson):
    name = "tspar"
    bernoulli = True
    model_class = "TSPar"

    def create(self, arms, params):
        model = banditkit.TSPar()
        model.update({a: [0, 0] for a in arms})  # every arm known, at Beta(1, 1)
        return model

    def probabilities(self, model, arms, cand):
        pos = {a: i for i, a in enumerate(model.action_list)}
        where = [pos[arms[i]] for i in cand]
        return banditkit.prob_best_beta(model.alpha[where], model.beta[where])

    def apply(self, model, arms, contexts, rewards, propensities):
        model.update({a: [len(r), sum(r)] for a, r in self._by_arm(arms, rewards).items()})


class LinearPolicy(_Thompson):
    name = "linear"
    params_model = LinearParams
    model_class = "LinearBandit"

    def create(self, arms, params):
        sigma = params["default_sigma"]
        return banditkit.LinearBandit(
            mu={a: 0.0 for a in arms}, sigma={a: sigma for a in arms}, **params
        )

    def probabilities(self, model, arms, cand):
        names = [arms[i] for i in cand]
        probs = model.win_prop(action_list=names, method="exact")
        return [probs[a] for a in names]

    def apply(self, model, arms, contexts, rewards, propensities):
        model.update(self._by_arm(arms, rewards))


class LogisticPolicy(_Thompson):
    name = "logistic"
    bernoulli = True
    model_class = "LogisticBandit"

    def create(self, arms, params):
        return banditkit.LogisticBandit()  # arms appear on their first reward

    def probabilities(self, model, arms, cand):
        names = [arms[i] for i in cand]
        # The exact method integrates by randomised QMC: a fixed seed gives every server the
        # same probabilities for the same state.
        probs = model.win_prop(action_list=names, method="exact", seed=0)
        return [probs[a] for a in names]

    def apply(self, model, arms, contexts, rewards, propensities):
        model.update({a: [len(r), sum(r)] for a, r in self._by_arm(arms, rewards).items()})


class _Contextual(Policy):
    contextual = True

    def apply(self, model, arms, contexts, rewards, propensities):
        model.partial_fit(contexts, arms, rewards)

    @staticmethod
    def _mask(arms: list[Hashable], candidates: Sequence[Candidates]) -> np.ndarray | None:
        if all(c is None for c in candidates):
            return None
        mask = np.ones((len(candidates), len(arms)), dtype=bool)
        for i, c in enumerate(candidates):
            if c is not None:
                mask[i] = False
                mask[i, list(c)] = True
        return mask

    @staticmethod
    def _columns(model: Any, arms: list[Hashable], cache: Cache) -> np.ndarray:
        """The column of each experiment arm in the model's own arm order."""
        hit = cache.get("cols")
        if hit is None:
            pos = {a: i for i, a in enumerate(model.arms)}
            hit = cache["cols"] = np.array([pos[a] for a in arms])
        return hit


class LinUCBPolicy(_Contextual):
    name = "linucb"
    params_model = LinUCBParams
    model_class = "LinUCB"

    def create(self, arms, params):
        return banditkit.LinUCB(arms, **params)

    def decide(self, model, arms, contexts, candidates, rng, cache):
        scores = np.asarray(model.decision_function(contexts))[:, self._columns(model, arms, cache)]
        mask = self._mask(arms, candidates)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        ties = scores == scores.max(axis=1, keepdims=True)
        n_ties = ties.sum(axis=1)
        # A uniform choice among the maxima: the k-th tie with k uniform in [0, n_ties).
        k = (rng.random(len(scores)) * n_ties).astype(np.int64)
        rank = np.cumsum(ties, axis=1) - 1
        chosen = np.argmax(ties & (rank == k[:, None]), axis=1)
        return chosen, 1.0 / n_ties


class LinTSPolicy(_Contextual):
    name = "lints"
    params_model = LinTSParams
    model_class = "LinTS"

    def _posterior(self, model: Any, arms: list[Hashable], cache: Cache):
        hit = cache.get("post")
        if hit is None:
            theta = np.stack([np.asarray(model.theta(a)) for a in arms])
            a_inv = np.stack([np.asarray(model.a_inv(a)) for a in arms])
            hit = cache["post"] = (theta, a_inv)
        return hit

    def create(self, arms, params):
        return banditkit.LinTS(arms, **params)

    def decide(self, model, arms, contexts, candidates, rng, cache):
        theta, a_inv = self._posterior(model, arms, cache)
        means = contexts @ theta.T
        # x' A_k^-1 x for every (row, arm): one batched matrix product (BLAS), then row sums.
        xa = np.matmul(contexts[None, :, :], a_inv)  # (arms, rows, d)
        var = np.einsum("knd,nd->nk", xa, contexts)
        sds = model.v * np.sqrt(np.maximum(var, 0.0))
        n = len(contexts)
        chosen = np.empty(n, dtype=np.int64)
        props = np.empty(n, dtype=float)
        u = rng.random(n)
        seen: dict[tuple[bytes, Candidates], np.ndarray] = {}  # a context repeated in a batch
        for i in range(n):
            idx = np.arange(len(arms)) if candidates[i] is None else np.asarray(candidates[i])
            key = (contexts[i].tobytes(), candidates[i])
            p = seen.get(key)
            if p is None:
                p = seen[key] = np.asarray(
                    banditkit.prob_best_gaussian(means[i, idx], sds[i, idx]), dtype=float
                )
            cdf = np.cumsum(p)
            k = min(int(np.searchsorted(cdf, u[i] * cdf[-1], side="right")), len(idx) - 1)
            chosen[i], props[i] = idx[k], p[k]
        return chosen, props


class _Learner(_Contextual):
    """A learner that reports its own exact propensities (docs/learners.md): the arm is drawn
    from them, so the logged propensity is exact by construction."""

    def create(self, arms, params):
        cap = params.get("max_weight", 1.0)
        kw = {**params, "max_weight": math.inf} if cap is None else params
        return getattr(banditkit, self.model_class)(arms, **kw)

    def params_of(self, model: Any) -> dict[str, Any]:
        out = super().params_of(model)
        if "max_weight" in out and math.isinf(out["max_weight"]):
            out["max_weight"] = None  # JSON has no infinity
        return out

    def decide(self, model, arms, contexts, candidates, rng, cache):
        cols = self._columns(model, arms, cache)
        n = len(contexts)
        chosen = np.empty(n, dtype=np.int64)
        props = np.empty(n, dtype=float)
        u = rng.random(n)
        for cand, where in _groups(candidates).items():
            names = None if cand is None else [arms[i] for i in cand]
            p = np.asarray(model.propensities(contexts[where], names))[:, cols]
            cdf = np.cumsum(p, axis=1)
            k = (cdf <= (u[where] * cdf[:, -1])[:, None]).sum(axis=1)  # the first cdf > u
            # Rounding can leave u past the last sum: take the last arm that can be played.
            last = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0.0, axis=1)
            k = np.minimum(k, last)
            chosen[where] = k
            props[where] = p[np.arange(len(where)), k]
        return chosen, props

    def apply(self, model, arms, contexts, rewards, propensities):
        # A reward for a logged decision is weighed by the probability it was decided with
        # (the learner's state has moved on since); one sent by arm alone uses the learner's
        # own current propensity (None).
        if all(p is not None for p in propensities):
            model.partial_fit(contexts, arms, rewards, np.asarray(propensities, dtype=float))
        elif all(p is None for p in propensities):
            model.partial_fit(contexts, arms, rewards)
        else:
            for arm, x, r, p in zip(arms, contexts, rewards, propensities, strict=True):
                model.update(arm, x, float(r), p)


class DoublyRobustPolicy(_Learner):
    name = "doubly-robust"
    params_model = DoublyRobustParams
    model_class = "DoublyRobust"


class OffsetTreePolicy(_Learner):
    name = "offset-tree"
    params_model = OffsetTreeParams
    model_class = "OffsetTree"


class ContextTreePolicy(_Learner):
    name = "context-tree"
    params_model = ContextTreeParams
    model_class = "ContextTree"


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        TSParPolicy(),
        LinearPolicy(),
        LogisticPolicy(),
        LinUCBPolicy(),
        LinTSPolicy(),
        DoublyRobustPolicy(),
        OffsetTreePolicy(),
        ContextTreePolicy(),
    )
}
BY_CLASS: dict[str, Policy] = {p.model_class: p for p in POLICIES.values()}


def policy_of(model: Any) -> Policy:
    """The adapter of a stored model's class (a model put by a user, without serve info)."""
    try:
        return BY_CLASS[type(model).__name__]
    except KeyError:
        raise InvalidInput(f"cannot serve a {type(model).__name__}") from None
