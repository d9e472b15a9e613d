"""Type stubs for the native module `banditkit_rs._banditkit_rs`."""

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

__version__: str

class _SupportsArray(Protocol):
    """pandas Series and other array-likes: accepted wherever numbers are (numeric dtype)."""

    def __array__(self) -> npt.NDArray[Any]: ...

Method = Literal["mc", "exact"]
Rewards = float | Sequence[float] | npt.NDArray[np.floating[Any]] | _SupportsArray
Counts = Sequence[float] | npt.NDArray[Any] | _SupportsArray

def win_counts_gaussian(
    mu: npt.NDArray[np.float64], sigma: npt.NDArray[np.float64], draws: int, seed: int | None = None
) -> npt.NDArray[np.uint64]: ...
def win_counts_beta(
    alpha: npt.NDArray[np.float64],
    beta: npt.NDArray[np.float64],
    draws: int,
    seed: int | None = None,
) -> npt.NDArray[np.uint64]: ...
def win_counts_mvn(
    mean: npt.NDArray[np.float64],
    chol_lower: npt.NDArray[np.float64],
    draws: int,
    seed: int | None = None,
) -> npt.NDArray[np.uint64]: ...
def ridge_ensemble_fit(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    alpha: float,
    fit_intercept: bool,
    n_estimators: int,
    sampling: str,
    seed: int,
    seeds: npt.NDArray[np.uint32] | None,
    n_draws: int,
    cdf: npt.NDArray[np.float64] | None = None,
    dtype: str = "float32",
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.float64], npt.NDArray[np.float64], float]: ...
def ridge_bootstrap_counts(
    n_rows: int,
    n_estimators: int,
    sampling: str,
    seed: int,
    seeds: npt.NDArray[np.uint32] | None,
    n_draws: int,
    cdf: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]: ...
def bootstrap_means(
    terms: npt.NDArray[np.float64], n_bootstrap: int, seed: int | None = None
) -> npt.NDArray[np.float64]: ...
def bootstrap_self_normalised(
    base: npt.NDArray[np.float64],
    numer: npt.NDArray[np.float64],
    denom: npt.NDArray[np.float64],
    n_bootstrap: int,
    seed: int | None = None,
) -> npt.NDArray[np.float64]: ...

class LinearBandit:
    def __init__(
        self,
        mu: Mapping[Hashable, float] | None = None,
        sigma: Mapping[Hashable, float] | None = None,
        default_sigma: float = 1.0,
        obs_noise: float = 1.0,
        seed: int | None = None,
    ) -> None: ...
    @property
    def mu(self) -> dict[Hashable, float]: ...
    @property
    def sigma(self) -> dict[Hashable, float]: ...
    @property
    def counts(self) -> dict[Hashable, int]: ...
    @property
    def sum_rewards(self) -> dict[Hashable, float]: ...
    @property
    def default_sigma(self) -> float: ...
    @property
    def obs_noise(self) -> float: ...
    def get_models(self) -> list[Hashable]: ...
    def update(self, obs: Mapping[Hashable, Rewards], decay: float = 0.0) -> None: ...
    def win_prop(
        self,
        action_list: Iterable[Hashable] | None = None,
        draw: int = 100000,
        aggressive: float = 1.0,
        seed: int | None = None,
        method: Method = "mc",
    ) -> dict[Hashable, float]: ...
    def select(
        self,
        n: int = 1,
        seed: int | None = None,
        return_propensity: bool = False,
        available_arms: Sequence[Hashable] | None = None,
    ) -> Any: ...
    def propensities(
        self, available_arms: Sequence[Hashable] | None = None
    ) -> dict[Hashable, float]: ...
    def get_statistics(self) -> dict[Hashable, dict[str, float]]: ...
    def to_bytes(self) -> bytes: ...
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> LinearBandit: ...
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...

class TSPar:
    def __init__(self, seed: int | None = None) -> None: ...
    @property
    def action_list(self) -> list[Hashable]: ...
    @property
    def alpha(self) -> npt.NDArray[np.float64]: ...
    @property
    def beta(self) -> npt.NDArray[np.float64]: ...
    def get_models(self) -> list[Hashable]: ...
    def update(
        self, obs: Mapping[Hashable, Counts], alpha_0: float = 0.01, max_iter: int = 100
    ) -> None: ...
    def win_prop(
        self, draw: int = 10000, seed: int | None = None, method: Method = "mc"
    ) -> dict[Hashable, float]: ...
    def select(
        self,
        n: int = 1,
        seed: int | None = None,
        return_propensity: bool = False,
        available_arms: Sequence[Hashable] | None = None,
    ) -> Any: ...
    def propensities(
        self, available_arms: Sequence[Hashable] | None = None
    ) -> dict[Hashable, float]: ...
    def to_bytes(self) -> bytes: ...
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> TSPar: ...
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...

class LogisticBandit:
    def __init__(
        self,
        mu: npt.ArrayLike | None = None,
        sigma_inv: npt.ArrayLike | None = None,
        action_list: Sequence[Hashable] | None = None,
        seed: int | None = None,
    ) -> None: ...
    @property
    def mu(self) -> npt.NDArray[np.float64]: ...
    @property
    def sigma_inv(self) -> npt.NDArray[np.float64]: ...
    @property
    def action_list(self) -> list[Hashable]: ...
    def get_models(self) -> list[Hashable]: ...
    def get_par(
        self, action_list: Sequence[Hashable] | None = None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | tuple[None, None]: ...
    def transform(self, action_list: Sequence[Hashable]) -> None: ...
    def delete(self, name: Hashable) -> None: ...
    def update(
        self,
        obs: Mapping[Hashable, Counts],
        odds_ratios_only: bool = True,
        remove_not_observed: bool = False,
        decay: float = 0.0,
    ) -> None: ...
    def win_prop(
        self,
        action_list: Iterable[Hashable] | None = None,
        draw: int = 100000,
        aggressive: float = 1.0,
        seed: int | None = None,
        method: Method = "mc",
    ) -> dict[Hashable, float]: ...
    def select(
        self,
        n: int = 1,
        seed: int | None = None,
        return_propensity: bool = False,
        available_arms: Sequence[Hashable] | None = None,
    ) -> Any: ...
    def propensities(
        self, available_arms: Sequence[Hashable] | None = None
    ) -> dict[Hashable, float]: ...
    def to_bytes(self) -> bytes: ...
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> LogisticBandit: ...
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...

ArrayLike1 = Sequence[float] | npt.NDArray[np.floating[Any]] | _SupportsArray
ArrayLike2 = Sequence[Sequence[float]] | npt.NDArray[np.floating[Any]] | _SupportsArray

class _LinearBandit:
    @property
    def arms(self) -> list[Hashable]: ...
    @property
    def n_features(self) -> int: ...
    @property
    def l2_lambda(self) -> float: ...
    @property
    def window_size(self) -> int: ...
    @property
    def gamma(self) -> float: ...
    @property
    def refactor_every(self) -> int: ...
    def select(
        self,
        x: ArrayLike1,
        available_arms: Sequence[Hashable] | None = None,
        return_propensity: bool = False,
    ) -> Any: ...
    def propensities(
        self, X: ArrayLike2, available_arms: Sequence[Hashable] | None = None
    ) -> npt.NDArray[np.float64]: ...
    def update(self, arm: Hashable, x: ArrayLike1, reward: float) -> None: ...
    def partial_fit(self, X: ArrayLike2, arms: Iterable[Hashable], rewards: ArrayLike1) -> None: ...
    def fit(self, X: ArrayLike2, arms: Iterable[Hashable], rewards: ArrayLike1) -> None: ...
    def predict(
        self, X: ArrayLike2, available_arms: Sequence[Hashable] | None = None
    ) -> list[Any]: ...
    def decision_function(self, X: ArrayLike2) -> npt.NDArray[np.float64]: ...
    def predict_expectations(self, X: ArrayLike2) -> npt.NDArray[np.float64]: ...
    def add_arm(self, arm: Hashable) -> None: ...
    def remove_arm(self, arm: Hashable) -> None: ...
    def reset(self) -> None: ...
    def get_stats(self) -> dict[str, Any]: ...
    def theta(self, arm: Hashable) -> npt.NDArray[np.float64]: ...
    def a_inv(self, arm: Hashable) -> npt.NDArray[np.float64]: ...
    def gram(self, arm: Hashable) -> npt.NDArray[np.float64]: ...
    def b(self, arm: Hashable) -> npt.NDArray[np.float64]: ...
    def to_bytes(self) -> bytes: ...
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...

class LinUCB(_LinearBandit):
    def __init__(
        self,
        arms: Iterable[Hashable],
        n_features: int,
        alpha: float = 1.0,
        l2_lambda: float = 1.0,
        window_size: int = 0,
        gamma: float = 1.0,
        seed: int | None = None,
        refactor_every: int | None = None,
    ) -> None: ...
    @property
    def alpha(self) -> float: ...
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> LinUCB: ...

class LinTS(_LinearBandit):
    def __init__(
        self,
        arms: Iterable[Hashable],
        n_features: int,
        v: float = 1.0,
        l2_lambda: float = 1.0,
        window_size: int = 0,
        gamma: float = 1.0,
        seed: int | None = None,
        refactor_every: int | None = None,
    ) -> None: ...
    @property
    def v(self) -> float: ...
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> LinTS: ...

MVN_TOLERANCE: float

def _format_reencode(data: bytes) -> bytes: ...
def prob_best_gaussian(mu: npt.ArrayLike, sigma: npt.ArrayLike) -> npt.NDArray[np.float64]: ...
def prob_best_gaussian_rows(
    mu: npt.ArrayLike, sigma: npt.ArrayLike, share_ties: bool = False
) -> npt.NDArray[np.float64]: ...
def prob_best_beta(alpha: npt.ArrayLike, beta: npt.ArrayLike) -> npt.NDArray[np.float64]: ...
def prob_best_mvn(
    mean: npt.ArrayLike,
    cov: npt.ArrayLike,
    seed: int | None = None,
    tolerance: float = ...,
) -> npt.NDArray[np.float64]: ...
