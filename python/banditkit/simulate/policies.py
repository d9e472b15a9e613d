"""Policies for `banditkit simulate`: adapters from the library's bandits to one interface.

A policy plays a batch of rounds from its current posterior (`choose`, a fresh Thompson draw
per round) and then learns from the whole batch at once (`learn`), as an A/B test that updates
its allocation every `--batch` rounds. Arms are the integers 0..n_arms-1.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from banditkit.simulate.envs import Environment, Rounds

BACKENDS = ("auto", "rust", "python")


def backend_module(backend: str) -> ModuleType:
    """`banditkit` (its own backend choice), `banditkit_rs` or `banditkit.python`."""
    return importlib.import_module(
        {"auto": "banditkit", "rust": "banditkit_rs", "python": "banditkit.python"}[backend]
    )


class Policy(ABC):
    @abstractmethod
    def choose(self, rounds: Rounds) -> np.ndarray:
        """The arm played in each round of `rounds` (only the oracle reads `rounds.means`)."""

    @abstractmethod
    def learn(self, contexts: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        """Absorb the rewards of the arms played in a batch."""


class RandomPolicy(Policy):
    def __init__(self, n_arms: int, seed: int) -> None:
        self.n_arms, self.rng = n_arms, np.random.default_rng(seed)

    def choose(self, rounds: Rounds) -> np.ndarray:
        return self.rng.integers(0, self.n_arms, len(rounds))

    def learn(self, contexts: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        pass


class OraclePolicy(Policy):
    """Plays the arm with the highest expected reward in every round: zero regret."""

    def choose(self, rounds: Rounds) -> np.ndarray:
        return np.argmax(rounds.means, axis=1)

    def learn(self, contexts: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        pass


class ThompsonPolicy(Policy):
    """LinearBandit, TSPar or LogisticBandit: `select()` per round, `update(obs)` per batch.

    `obs_kind` is "rewards" (LinearBandit: name -> list of rewards) or "counts" (TSPar and
    LogisticBandit: name -> [plays, successes]). Arms the model does not know yet
    (LogisticBandit learns its arms from observations) are played round-robin until it does.
    """

    def __init__(
        self, model: Any, n_arms: int, obs_kind: str, update_kwargs: dict | None = None
    ) -> None:
        self.model, self.n_arms, self.obs_kind = model, n_arms, obs_kind
        self.update_kwargs = update_kwargs or {}
        self.played = 0

    def choose(self, rounds: Rounds) -> np.ndarray:
        n = len(rounds)
        start, self.played = self.played, self.played + n
        if len(self.model.get_models()) < self.n_arms:
            return np.arange(start, start + n) % self.n_arms
        select = self.model.select
        return np.fromiter((select() for _ in range(n)), dtype=np.int64, count=n)

    def learn(self, contexts: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        played = np.unique(arms)
        if self.obs_kind == "rewards":
            obs: dict = {int(a): rewards[arms == a] for a in played}
        else:
            plays = np.bincount(arms, minlength=self.n_arms)
            wins = np.bincount(arms, weights=rewards, minlength=self.n_arms)
            obs = {int(a): [int(plays[a]), int(round(wins[a]))] for a in played}
        self.model.update(obs, **self.update_kwargs)


class ContextualPolicy(Policy):
    """LinUCB or LinTS: batch `predict` (a fresh LinTS draw per row), then `partial_fit`."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def choose(self, rounds: Rounds) -> np.ndarray:
        return np.asarray(self.model.predict(rounds.contexts), dtype=np.int64)

    def learn(self, contexts: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        self.model.partial_fit(contexts, arms.tolist(), rewards)


@dataclass(frozen=True)
class PolicySpec:
    """A policy name, what it needs, and how to build it for an environment."""

    name: str
    description: str
    build: Callable[[ModuleType, Environment, int, int], Policy]
    needs_binary_rewards: bool = False
    needs_class: str | None = None  # the library class it wraps, if any
    learns: bool = True


def _arms(env: Environment) -> list[int]:
    return list(range(env.n_arms))


def _linear(mod: ModuleType, env: Environment, seed: int, window: int) -> Policy:
    prior = {a: 0.0 for a in _arms(env)}
    model = mod.LinearBandit(mu=prior, obs_noise=env.noise_sd, seed=seed)
    return ThompsonPolicy(model, env.n_arms, "rewards")


def _tspar(mod: ModuleType, env: Environment, seed: int, window: int) -> Policy:
    model = mod.TSPar(seed=seed)
    model.update({a: [0, 0] for a in _arms(env)})  # registers the arms at Beta(1, 1)
    return ThompsonPolicy(model, env.n_arms, "counts")


def _logistic(odds_ratios_only: bool) -> Callable[[ModuleType, Environment, int, int], Policy]:
    def build(mod: ModuleType, env: Environment, seed: int, window: int) -> Policy:
        model = mod.LogisticBandit(seed=seed)
        kwargs = {"odds_ratios_only": odds_ratios_only}
        return ThompsonPolicy(model, env.n_arms, "counts", kwargs)

    return build


def _contextual(cls_name: str, windowed: bool) -> Callable[..., Policy]:
    def build(mod: ModuleType, env: Environment, seed: int, window: int) -> Policy:
        # The exploration scale follows the reward noise (alpha for LinUCB, v for LinTS).
        scale = {"alpha" if cls_name == "LinUCB" else "v": env.noise_sd}
        model = getattr(mod, cls_name)(
            _arms(env), env.n_features, window_size=window if windowed else 0, seed=seed, **scale
        )
        return ContextualPolicy(model)

    return build


def _doubly_robust(mod: ModuleType, env: Environment, seed: int, window: int) -> Policy:
    # The UCB bonus follows the reward noise, as LinUCB's alpha does. Simulate never calls
    # refit(), so a small refit buffer: memory is flat after its first 1,000 rounds.
    model = mod.DoublyRobust(
        _arms(env), env.n_features, alpha=env.noise_sd, max_history=1000, seed=seed
    )
    return ContextualPolicy(model)


class LoggedContextualPolicy(ContextualPolicy):
    """An off-policy learner played live: it learns each row with the exact propensity its
    arm had when chosen (the state at the batch's start), not the one after earlier rows."""

    def choose(self, rounds: Rounds) -> np.ndarray:
        self.props = np.asarray(self.model.propensities(rounds.contexts))
        return super().choose(rounds)

    def learn(self, contexts: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        p = self.props[np.arange(len(arms)), arms]
        self.model.partial_fit(contexts, arms.tolist(), rewards, p)


def _offset_tree(mod: ModuleType, env: Environment, seed: int, window: int) -> Policy:
    return LoggedContextualPolicy(mod.OffsetTree(_arms(env), env.n_features, seed=seed))


def _bootstrap_ts(mod: ModuleType, env: Environment, seed: int, window: int) -> Policy:
    from banditkit.ensemble import BootstrapTS  # one class for both backends

    return ContextualPolicy(BootstrapTS(_arms(env), env.n_features, n_estimators=30, seed=seed))


def _context_tree(mod: ModuleType, env: Environment, seed: int, window: int) -> Policy:
    return ContextualPolicy(mod.ContextTree(_arms(env), env.n_features, seed=seed))


POLICIES: dict[str, PolicySpec] = {
    spec.name: spec
    for spec in (
        PolicySpec("ts", "TSPar: Beta-Bernoulli Thompson sampling", _tspar,
                   needs_binary_rewards=True, needs_class="TSPar"),
        PolicySpec("linear", "LinearBandit: Gaussian Thompson sampling", _linear,
                   needs_class="LinearBandit"),
        PolicySpec("logistic", "LogisticBandit, odds-ratio Thompson sampling (ORTS)",
                   _logistic(odds_ratios_only=True), needs_binary_rewards=True,
                   needs_class="LogisticBandit"),
        PolicySpec("logistic-full", "LogisticBandit, full Thompson sampling",
                   _logistic(odds_ratios_only=False), needs_binary_rewards=True,
                   needs_class="LogisticBandit"),
        PolicySpec("linucb", "LinUCB (alpha = reward noise sd)",
                   _contextual("LinUCB", windowed=False), needs_class="LinUCB"),
        PolicySpec("lints", "LinTS (v = reward noise sd)",
                   _contextual("LinTS", windowed=False), needs_class="LinTS"),
        PolicySpec("linucb-window", "LinUCB on the last --window rounds of each arm",
                   _contextual("LinUCB", windowed=True), needs_class="LinUCB"),
        PolicySpec("lints-window", "LinTS on the last --window rounds of each arm",
                   _contextual("LinTS", windowed=True), needs_class="LinTS"),
        PolicySpec("doubly-robust", "DoublyRobust: policy model on DR pseudo-rewards, UCB bonus",
                   _doubly_robust, needs_class="DoublyRobust"),
        PolicySpec("context-tree", "ContextTree: Thompson sampling per arm at the leaves of a "
                   "context tree", _context_tree, needs_class="ContextTree"),
        PolicySpec("bootstrap-ts", "BootstrapTS: Thompson by one of 30 bootstrap ridge members",
                   _bootstrap_ts),
        PolicySpec("offset-tree", "OffsetTree: tournament of logistic nodes, epsilon-greedy 0.05",
                   _offset_tree, needs_class="OffsetTree"),
        PolicySpec("random", "uniformly random arm (baseline)",
                   lambda mod, env, seed, window: RandomPolicy(env.n_arms, seed), learns=False),
        PolicySpec("oracle", "the arm with the highest expected reward (baseline)",
                   lambda mod, env, seed, window: OraclePolicy(), learns=False),
    )
}  # fmt: skip


def unavailable_reason(name: str, binary_rewards: bool, backend: str) -> str | None:
    """Why policy `name` cannot run here (None if it can)."""
    spec = POLICIES[name]
    if spec.needs_binary_rewards and not binary_rewards:
        return "needs 0/1 rewards; this environment's rewards are continuous"
    if spec.needs_class and not hasattr(backend_module(backend), spec.needs_class):
        return f"{spec.needs_class} is not available in the {backend} backend"
    return None
