"""The knob spaces `banditkit tune` searches, one entry per `banditkit simulate` policy name.

A `Space` names the library class, the serve policy that runs it, and its knobs with their
ranges. Adding a learner is one entry in `SPACES`; an entry whose class the backend lacks is
reported as unavailable, never imported. Default knobs (tune's trial 0) are read from a
fresh instance of the class (every knob is readable as an attribute), except the exploration
scale of LinUCB/LinTS, which `banditkit simulate` sets to the environment's noise sd.

Nothing here imports Optuna: `suggest` takes any object with Optuna's `suggest_float`,
`suggest_int` and `suggest_categorical`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, Protocol

from banditkit.simulate.policies import ContextualPolicy, backend_module

Kind = Literal["float", "log", "int", "logint", "choice"]
Knobs = dict[str, Any]


class Suggester(Protocol):
    """What `Space.suggest` needs of an Optuna trial."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = ...) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = ...) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Knob:
    """One constructor argument and its search range (widened to hold the default)."""

    name: str
    kind: Kind
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()
    when: tuple[str, Any] | None = None  # searched only when that knob has that value

    def range_with(self, default: Any) -> tuple[float, float]:
        """The range widened to contain `default`, so that the defaults are a valid trial."""
        return min(self.low, default), max(self.high, default)

    def suggest(self, trial: Suggester, default: Any) -> Any:
        if self.kind == "choice":
            choices = self.choices if default in self.choices else (*self.choices, default)
            return trial.suggest_categorical(self.name, list(choices))
        low, high = self.range_with(default)
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.name, int(low), int(high), log=self.kind == "logint")
        return trial.suggest_float(self.name, float(low), float(high), log=self.kind == "log")

    def searchable(self, default: Any) -> bool:
        """False when the default cannot be a point of the range (then it stays fixed):
        infinite, or not positive on a log scale."""
        if self.kind == "choice":
            return True
        if not isinstance(default, (int, float)) or not math.isfinite(default):
            return False
        return self.kind not in ("log", "logint") or default > 0


@dataclass(frozen=True)
class Context:
    """What the defaults depend on: the reward noise sd (simulate sets LinUCB's alpha and
    LinTS's v to it) and the simulate `--window` (the *-window policies' window_size)."""

    noise_sd: float = 1.0
    window: int = 1000


@dataclass(frozen=True)
class Space:
    policy: str  # the banditkit simulate name
    class_name: str
    serve_policy: str  # the banditkit serve policy that runs the class
    knobs: tuple[Knob, ...]
    scale_knob: str | None = None  # set to the noise sd by simulate (alpha, v)
    windowed: bool = False  # simulate's *-window policies: window_size = --window
    logged_propensities: bool = False  # fit on a log with its pscores (1/p weighting)

    def available(self, backend: str) -> str | None:
        """Why the space cannot be used with `backend` (None if it can)."""
        if not hasattr(backend_module(backend), self.class_name):
            return f"{self.class_name} is not available in the {backend} backend"
        return None

    def model_class(self, mod: ModuleType) -> Any:
        return getattr(mod, self.class_name)

    def defaults(self, backend: str, context: Context) -> Knobs:
        """Every knob's default: what `banditkit simulate` plays this policy with. (Trial 0
        plays `applying(defaults)`; the others' defaults set their search ranges.)"""
        probe = self.model_class(backend_module(backend))([0, 1], 1)
        missing = [k.name for k in self.knobs if not hasattr(probe, k.name)]
        if missing:
            raise ValueError(f"{self.class_name} has no knob {', '.join(missing)}")
        values = {k.name: getattr(probe, k.name) for k in self.knobs}
        if self.scale_knob is not None:
            values[self.scale_knob] = context.noise_sd
        if self.windowed:
            values["window_size"] = context.window
        return values

    def applying(self, values: Knobs) -> Knobs:
        """The knobs of `values` that apply, given the values of those they depend on."""
        return {
            k.name: values[k.name]
            for k in self.knobs
            if k.when is None or values.get(k.when[0]) == k.when[1]
        }

    def suggest(self, trial: Suggester, defaults: Knobs) -> Knobs:
        """One point of the space (knobs whose default cannot be searched stay at it)."""
        values: Knobs = {}
        for knob in self.knobs:
            if knob.when is not None and values.get(knob.when[0]) != knob.when[1]:
                continue
            default = defaults[knob.name]
            searched = knob.searchable(default)
            values[knob.name] = knob.suggest(trial, default) if searched else default
        return values

    def build(self, knobs: Knobs) -> Callable[[ModuleType, Any, int, int], ContextualPolicy]:
        """A `banditkit simulate` builder playing this class with `knobs`."""

        def build(mod: ModuleType, env: Any, seed: int, window: int) -> ContextualPolicy:
            cls = self.model_class(mod)
            return ContextualPolicy(
                cls(list(range(env.n_arms)), env.n_features, seed=seed, **knobs)
            )

        return build


_L2 = Knob("l2_lambda", "log", 0.01, 100.0)
_GAMMA = Knob("gamma", "float", 0.9, 1.0)  # discount per update; 1 remembers everything
# 0 keeps every observation; the others are the last n of each arm.
_WINDOW_ALL = Knob("window_size", "choice", choices=(0, 100, 300, 1000, 3000, 10_000))
_WINDOW = Knob("window_size", "logint", 10, 10_000)


def _linear(policy: str, cls: str, scale: str, windowed: bool) -> Space:
    serve = "linucb" if cls == "LinUCB" else "lints"
    window = _WINDOW if windowed else _WINDOW_ALL
    knobs = (Knob(scale, "log", 0.01, 10.0), _L2, window, _GAMMA)
    return Space(policy, cls, serve, knobs, scale_knob=scale, windowed=windowed)


SPACES: dict[str, Space] = {
    space.policy: space
    for space in (
        _linear("linucb", "LinUCB", "alpha", windowed=False),
        _linear("lints", "LinTS", "v", windowed=False),
        _linear("linucb-window", "LinUCB", "alpha", windowed=True),
        _linear("lints-window", "LinTS", "v", windowed=True),
        # The learners of LEARNERS-DESIGN.md: used only when the backend has the class.
        Space("doubly-robust", "DoublyRobust", "doubly-robust", (
            Knob("exploration", "choice", choices=("ucb", "epsilon", "softmax")),
            Knob("alpha", "log", 0.01, 10.0, when=("exploration", "ucb")),
            Knob("epsilon", "log", 0.005, 0.5, when=("exploration", "epsilon")),
            Knob("temperature", "log", 0.01, 10.0, when=("exploration", "softmax")),
            _L2,
        ), logged_propensities=True),
        Space("offset-tree", "OffsetTree", "offset-tree", (
            Knob("learning_rate", "log", 0.001, 1.0),
            Knob("l2", "float", 0.0, 0.1),
            Knob("epsilon", "float", 0.01, 0.3),
        ), logged_propensities=True),
        Space("context-tree", "ContextTree", "context-tree", (
            Knob("max_depth", "int", 1, 8),
            Knob("min_samples_split", "logint", 2, 200),
            Knob("split_threshold", "log", 1e-4, 0.3),
            Knob("n_quantiles", "int", 2, 32),
        )),
    )
}  # fmt: skip


def usable(backend: str) -> list[str]:
    """The policies tune can search with `backend`."""
    return [name for name, space in SPACES.items() if space.available(backend) is None]
