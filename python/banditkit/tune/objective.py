"""What a trial measures: a policy's simulated regret, or its off-policy value on a log.

`Settings` fixes everything but the knobs, so a trial's value is a function of its knobs
alone: every trial plays the same simulated worlds with the same seeds (common random
numbers: differences between trials are the knobs' doing), or fits on the same part of the
same log and is evaluated on the same rest of it. Hence a trial gives the same value in this
process or in a Ray task, in any order. Nothing here imports Optuna or Ray.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from banditkit.simulate.envs import ENVIRONMENTS
from banditkit.simulate.policies import backend_module
from banditkit.simulate.runner import Config, run_task
from banditkit.tune.serveconfig import without_password
from banditkit.tune.spaces import SPACES, Context, Knobs

Objective = Literal["regret", "ope"]
OPE_FOLDS = 5  # cross-fitting folds of the reward model of the DR estimate


@dataclass(frozen=True)
class Settings:
    """A study's objective: the policy, and what its trials are measured on."""

    policy: str
    objective: Objective = "regret"
    backend: str = "auto"
    seed: int = 0
    # objective "regret": banditkit simulate's settings
    env: str = "linear"
    arms: int = 5
    rounds: int = 2000
    batch: int = 10
    repeats: int = 5
    features: int = 5
    window: int = 1000
    # objective "ope": a log file or a store URL (+ the name whose events to use)
    log: str | None = None
    name: str | None = None
    train_fraction: float = 0.5
    log_digest: str | None = None  # sha256 of the log's arrays (set once it is loaded)

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "minimize" if self.objective == "regret" else "maximize"

    def describe(self) -> dict[str, Any]:
        """The settings that decide trial values (kept with the study, compared on resume)."""
        keep = ["policy", "objective", "backend", "seed"]
        if self.objective == "regret":
            keep += ["env", "arms", "rounds", "batch", "repeats", "features", "window"]
        else:
            keep += ["log", "name", "train_fraction", "log_digest"]
        out = {k: v for k, v in dataclasses.asdict(self).items() if k in keep}
        if out.get("log"):  # kept in the database and printed: never a password
            out["log"] = without_password(out["log"])
        return out

    def context(self) -> Context:
        noise = ENVIRONMENTS[self.env].noise_sd if self.objective == "regret" else 1.0
        return Context(noise_sd=noise, window=self.window)

    def what(self) -> str:
        """One line saying what a trial's value is."""
        if self.objective == "regret":
            return (
                f"mean cumulative regret over {self.repeats} repeats of {self.rounds:,} rounds "
                f"on the {self.env} environment ({self.arms} arms), lower is better"
            )
        log = without_password(self.log or "")
        where = log if self.name is None else f"{log} ({self.name})"
        return (
            f"DR estimate of the policy's value on the last {1 - self.train_fraction:.0%} of "
            f"{where}, fitted on the rest, higher is better"
        )


@dataclass(frozen=True)
class LogData:
    """A log split in time order: the part a trial's policy is fitted on, and the part its
    action distribution is evaluated on (with the reward model's q of that part)."""

    n_actions: int
    arms: list[Any]  # the log's arm labels (action i is arms[i])
    fit_context: np.ndarray
    fit_action: np.ndarray
    fit_reward: np.ndarray
    fit_pscore: np.ndarray
    context: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    q: np.ndarray
    digest: str  # of the whole log's arrays: a study stays on the data it started on


def load_log(settings: Settings) -> LogData:
    """The log of an "ope" study, split and with q fitted (once per run, not per trial)."""
    import os

    from banditkit.ope import RewardModel, from_store, load_logged

    source = settings.log
    if source is None:
        raise ValueError("the ope objective needs a log (--log FILE or a store URL)")
    if "://" in source:
        if not settings.name:
            raise ValueError("a store URL as --log needs --name (whose event log to tune on)")
        log = from_store(source, settings.name)
    elif not os.path.exists(source):
        raise ValueError(f"no such file: {source}")
    else:
        log = load_logged(source)
    x = log["context"]
    if x.shape[1] == 0:
        raise ValueError("the log has no context: the contextual policies need one")
    n = len(log["reward"])
    cut = int(n * settings.train_fraction)
    if cut < 1 or n - cut < OPE_FOLDS:
        raise ValueError(
            f"the log has {n} events: too few to fit on {settings.train_fraction:.0%} of them and "
            f"evaluate on the rest (at least {OPE_FOLDS} events)"
        )
    k = int(log["n_actions"])
    a, r, p = log["action"], log["reward"], log["pscore"]
    q = RewardModel(k, n_folds=OPE_FOLDS, seed=settings.seed).fit_predict(x[cut:], a[cut:], r[cut:])
    arms = list(log["arms"]) if "arms" in log else list(range(k))
    digest = hashlib.sha256()
    for array in (x, a, r, p):
        digest.update(np.ascontiguousarray(array).tobytes())
    return LogData(
        k,
        arms,
        x[:cut],
        a[:cut],
        r[:cut],
        p[:cut],
        x[cut:],
        a[cut:],
        r[cut:],
        p[cut:],
        q,
        digest.hexdigest(),
    )


def simulated_regret(settings: Settings, knobs: Knobs) -> float:
    """Mean final cumulative regret of the policy with `knobs` over the repeats."""
    cfg = Config(
        env=settings.env,
        policies=(settings.policy,),
        arms=settings.arms,
        rounds=settings.rounds,
        batch=settings.batch,
        repeats=settings.repeats,
        seed=settings.seed,
        features=settings.features,
        window=settings.window,
        backend=settings.backend,
    )
    build = SPACES[settings.policy].build(knobs)
    finals = []
    for repeat in range(settings.repeats):
        result = run_task(cfg, settings.policy, repeat, build=build)
        if result.error is not None:
            raise RuntimeError(f"repeat {repeat}, {result.error}")
        finals.append(float(result.cumulative_regret[-1]))
    return float(np.mean(finals))


def action_distribution(model: Any, X: np.ndarray) -> np.ndarray:
    """(n, K) probability that the fitted `model` picks each arm for each row of X."""
    if hasattr(model, "propensities"):
        return np.asarray(model.propensities(X), dtype=float)
    # Until every class has `propensities`: LinUCB's ties share the argmax; LinTS draws one
    # N(theta_a.x, v^2 x'A_a^-1 x) score per arm, so its choice has exact win probabilities.
    from banditkit import prob_best_gaussian
    from banditkit.ope.policies import share_ties

    if hasattr(model, "alpha"):
        return share_ties(np.asarray(model.decision_function(X), dtype=float))
    theta = np.stack([np.asarray(model.theta(a)) for a in model.arms])
    a_inv = np.stack([np.asarray(model.a_inv(a)) for a in model.arms])
    means = X @ theta.T
    sds = model.v * np.sqrt(np.maximum(np.einsum("nd,kde,ne->nk", X, a_inv, X), 0.0))
    return np.stack([np.asarray(prob_best_gaussian(m, s)) for m, s in zip(means, sds, strict=True)])


def off_policy_value(settings: Settings, knobs: Knobs, data: LogData) -> float:
    """The DR estimate of the value of the policy fitted, with `knobs`, on the log's first
    part, evaluated on its remaining part."""
    from banditkit.ope import DR

    space = SPACES[settings.policy]
    cls = space.model_class(backend_module(settings.backend))
    model = cls(list(range(data.n_actions)), data.fit_context.shape[1], seed=settings.seed, **knobs)
    arms = data.fit_action.tolist()
    if space.logged_propensities:  # learners that weight the logged arm by 1/p
        model.partial_fit(data.fit_context, arms, data.fit_reward, data.fit_pscore)
    else:
        model.partial_fit(data.fit_context, arms, data.fit_reward)
    pi = action_distribution(model, data.context)
    return DR().estimate_policy_value(data.reward, data.action, data.pscore, pi, data.q)


def trial_value(
    settings: Settings, knobs: Knobs, data: LogData | None = None
) -> tuple[float | None, str | None]:
    """(value, None), or (None, why) when the policy failed: a failed trial is a result to
    record, not a crash (and a plain tuple crosses a Ray task boundary unchanged)."""
    try:
        if settings.objective == "regret":
            value = simulated_regret(settings, knobs)
        else:
            assert data is not None
            value = off_policy_value(settings, knobs, data)
    except Exception as exc:  # noqa: BLE001 - any policy error fails the trial only
        return None, f"{type(exc).__name__}: {exc}"
    if not math.isfinite(value):
        return None, f"the value is {value}"
    return value, None
