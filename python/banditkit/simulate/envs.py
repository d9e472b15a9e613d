"""Simulated environments: what each arm would pay in each round, generated vectorised.

An environment produces rounds in order. For every round it gives the context shown to the
policy, the expected reward of every arm (for regret and the oracle) and the reward every arm
would pay (the policy sees only its own arm's). Rounds are generated in fixed chunks from the
environment's own generator, so the same seed gives the same world whatever the policy does and
whatever `--batch` is: every policy of a repeat faces identical draws (common random numbers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

CHUNK_ROUNDS = 4096


@dataclass
class Rounds:
    """A run of consecutive rounds: `contexts` (n, d), `means` and `rewards` (n, n_arms)."""

    contexts: np.ndarray
    means: np.ndarray
    rewards: np.ndarray

    def __len__(self) -> int:
        return self.means.shape[0]


def logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Environment(ABC):
    """`n_arms` arms over `horizon` rounds, drawn from `rng` (a fresh generator per repeat)."""

    name: ClassVar[str]
    description: ClassVar[str]
    binary_rewards: ClassVar[bool]  # rewards are 0/1 (required by TSPar and LogisticBandit)
    noise_sd: ClassVar[float]  # reward noise scale, used to set Gaussian policies' priors

    def __init__(self, n_arms: int, horizon: int, rng: np.random.Generator, n_features: int = 1):
        self.n_arms, self.horizon, self.rng = n_arms, horizon, rng
        self.n_features = n_features  # context length given to contextual policies
        self._buffer: Rounds | None = None
        self._buffer_start = 0  # round index of the buffer's first row
        self._generated = 0

    @abstractmethod
    def _generate(self, start: int, size: int) -> Rounds:
        """Rounds [start, start + size), in order (called with consecutive starts)."""

    def rounds(self, start: int, stop: int) -> Rounds:
        """Rounds [start, stop). Calls must move forward: earlier rounds are forgotten."""
        while self._generated < stop:
            chunk = self._generate(self._generated, CHUNK_ROUNDS)
            self._generated += CHUNK_ROUNDS
            if self._buffer is None or self._buffer_start + len(self._buffer) <= start:
                self._buffer, self._buffer_start = chunk, self._generated - CHUNK_ROUNDS
            else:
                keep = start - self._buffer_start
                old = self._buffer
                self._buffer = Rounds(
                    np.concatenate([old.contexts[keep:], chunk.contexts]),
                    np.concatenate([old.means[keep:], chunk.means]),
                    np.concatenate([old.rewards[keep:], chunk.rewards]),
                )
                self._buffer_start = start
        assert self._buffer is not None and start >= self._buffer_start
        lo, hi = start - self._buffer_start, stop - self._buffer_start
        b = self._buffer
        return Rounds(b.contexts[lo:hi], b.means[lo:hi], b.rewards[lo:hi])

    def _intercept(self, size: int) -> np.ndarray:
        return np.ones((size, 1))

    def _bernoulli(self, rates: np.ndarray) -> np.ndarray:
        return (self.rng.random(rates.shape) < rates).astype(np.float64)


def click_rates(n_arms: int) -> np.ndarray:
    """The click rates of the Bernoulli worlds: evenly spaced from 4% to 20%."""
    return np.linspace(0.04, 0.20, n_arms)


class BernoulliEnv(Environment):
    name = "bernoulli"
    description = "0/1 rewards, fixed click rates evenly spaced from 4% to 20%"
    binary_rewards = True
    noise_sd = 0.5  # the largest sd of a 0/1 reward

    def __init__(self, n_arms: int, horizon: int, rng: np.random.Generator, n_features: int = 1):
        super().__init__(n_arms, horizon, rng)
        self.rates = click_rates(n_arms)

    def _generate(self, start: int, size: int) -> Rounds:
        means = np.broadcast_to(self.rates, (size, self.n_arms)).copy()
        return Rounds(self._intercept(size), means, self._bernoulli(means))


class GaussianEnv(Environment):
    name = "gaussian"
    description = "continuous rewards N(mean_k, 1), arm means drawn from N(0, 1) per repeat"
    binary_rewards = False
    noise_sd = 1.0

    def __init__(self, n_arms: int, horizon: int, rng: np.random.Generator, n_features: int = 1):
        super().__init__(n_arms, horizon, rng)
        self.arm_means = rng.standard_normal(n_arms)

    def _generate(self, start: int, size: int) -> Rounds:
        means = np.broadcast_to(self.arm_means, (size, self.n_arms)).copy()
        rewards = means + self.noise_sd * self.rng.standard_normal(means.shape)
        return Rounds(self._intercept(size), means, rewards)


class LinearEnv(Environment):
    name = "linear"
    description = (
        "linear contextual rewards x.theta_k + N(0, 0.5^2); x = (1, z), z ~ N(0, I); "
        "theta_k ~ N(0, I/d) per repeat"
    )
    binary_rewards = False
    noise_sd = 0.5

    def __init__(self, n_arms: int, horizon: int, rng: np.random.Generator, n_features: int = 5):
        super().__init__(n_arms, horizon, rng, n_features)
        self.theta = rng.standard_normal((n_features, n_arms)) / np.sqrt(n_features)

    def _generate(self, start: int, size: int) -> Rounds:
        x = np.empty((size, self.n_features))
        x[:, 0] = 1.0
        x[:, 1:] = self.rng.standard_normal((size, self.n_features - 1))
        means = x @ self.theta
        rewards = means + self.noise_sd * self.rng.standard_normal(means.shape)
        return Rounds(x, means, rewards)


class DriftingEnv(Environment):
    """Click rates that move: logit p_k(t) = base_k + season(t) + walk_k(t).

    The seasonal term moves every arm's log-odds together (a weekly cycle: the odds ratios
    stay put, which is what ORTS models); the per-arm random walks reorder the arms over the
    run (what windows and decay are for).
    """

    name = "drifting"
    description = (
        "0/1 rewards; logit rates = the bernoulli rates' logits + a seasonal swing shared by "
        "all arms (amplitude 1, 3 cycles per run) + a random walk per arm (sd 1.5 over the run)"
    )
    binary_rewards = True
    noise_sd = 0.5
    SEASON_AMPLITUDE = 1.0
    SEASON_CYCLES = 3
    WALK_SD = 1.5

    def __init__(self, n_arms: int, horizon: int, rng: np.random.Generator, n_features: int = 1):
        super().__init__(n_arms, horizon, rng)
        rates = click_rates(n_arms)
        self.base = np.log(rates / (1.0 - rates))
        self.walk = np.zeros(n_arms)  # the walk's value at the last generated round
        self.step_sd = self.WALK_SD / np.sqrt(horizon)

    def _generate(self, start: int, size: int) -> Rounds:
        t = np.arange(start, start + size)
        season = self.SEASON_AMPLITUDE * np.sin(2 * np.pi * self.SEASON_CYCLES * t / self.horizon)
        steps = self.step_sd * self.rng.standard_normal((size, self.n_arms))
        walk = self.walk + np.cumsum(steps, axis=0)
        self.walk = walk[-1].copy()
        means = logistic(self.base + season[:, None] + walk)
        return Rounds(self._intercept(size), means, self._bernoulli(means))


class RegionsEnv(Environment):
    """0/1 rewards whose best arm depends on the region of two context features.

    x = (1, z), z ~ U(-1, 1)^(d-1). Four regions: z1 <= 0 or > 0, times the band |z2| < 0.5
    or outside it; region (z1 > 0) * 2 + (|z2| >= 0.5) belongs to that arm (modulo n_arms). The
    owning arm pays at rate HIGH, the other region arms at LOW, any further arm at MID
    everywhere. The band is symmetric in z2, so the two arms of each half of z1 have the same
    best linear fit: no per-arm linear model can tell them apart, and a tree of depth 3 can.
    """

    name = "regions"
    description = (
        "0/1 rewards; x = (1, z), z ~ U(-1, 1)^(d-1); 4 regions of (z1, z2) (the sign of z1 "
        "times |z2| < 0.5 or not) each with its own best arm (rate 0.8, the others 0.1, arms "
        "beyond 4 at 0.3): not representable by per-arm linear models"
    )
    binary_rewards = True
    noise_sd = 0.5
    HIGH, LOW, MID = 0.8, 0.1, 0.3

    def __init__(self, n_arms: int, horizon: int, rng: np.random.Generator, n_features: int = 5):
        if n_features < 3:
            raise ValueError(f"the regions environment needs --features >= 3, got {n_features}")
        super().__init__(n_arms, horizon, rng, n_features)

    @staticmethod
    def region(z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
        """2 * (z1 > 0) + (|z2| >= 0.5): 0..3."""
        return 2 * (z1 > 0) + (np.abs(z2) >= 0.5)

    def _generate(self, start: int, size: int) -> Rounds:
        x = np.empty((size, self.n_features))
        x[:, 0] = 1.0
        x[:, 1:] = self.rng.uniform(-1.0, 1.0, (size, self.n_features - 1))
        owner = self.region(x[:, 1], x[:, 2]) % self.n_arms
        means = np.full((size, self.n_arms), self.MID)
        means[:, : min(4, self.n_arms)] = self.LOW
        means[np.arange(size), owner] = self.HIGH
        return Rounds(x, means, self._bernoulli(means))


ENVIRONMENTS: dict[str, type[Environment]] = {
    env.name: env for env in (BernoulliEnv, GaussianEnv, LinearEnv, DriftingEnv, RegionsEnv)
}


def make_env(
    name: str, n_arms: int, horizon: int, rng: np.random.Generator, n_features: int
) -> Environment:
    cls = ENVIRONMENTS[name]
    if cls in (LinearEnv, RegionsEnv):  # the contextual worlds take --features
        return cls(n_arms, horizon, rng, n_features)
    return cls(n_arms, horizon, rng)
