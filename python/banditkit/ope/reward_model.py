"""`RewardModel`: the q(x, a) of DM and the DR family, cross-fitted so that no event's
prediction comes from a model that saw it (the correction term of DR then stays unbiased).

The default is one ridge regression per arm in closed form on [1, x], fitted to the rewards
minus their overall mean (so an arm with no events predicts the overall mean, not 0). Any
scikit-learn regressor can stand in (`base_model=`): it is cloned once per arm and fold.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import numpy.typing as npt

from banditkit.ope import _inputs
from banditkit.ope._inputs import FloatArray, IntArray


def _clone(model: Any) -> Any:
    try:
        from sklearn.base import clone
    except ImportError:  # not a scikit-learn estimator then: a fresh deep copy will do
        return copy.deepcopy(model)
    return clone(model)


class RidgeArms:
    """Per-arm ridge on [1, x]: theta_a = (X_a'X_a + alpha I)^-1 X_a'(y_a - mean(y)).

    Also keeps each arm's inverse Gram matrix, from which the CLI's fitted LinUCB and LinTS
    evaluation policies take their uncertainty."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(
        self, context: FloatArray, action: IntArray, reward: FloatArray, n_actions: int
    ) -> RidgeArms:
        design = np.hstack([np.ones((context.shape[0], 1)), context])
        d = design.shape[1]
        self.offset = float(reward.mean()) if reward.size else 0.0
        self.theta = np.zeros((n_actions, d))
        self.gram_inv = np.zeros((n_actions, d, d))
        for arm in range(n_actions):
            rows = action == arm
            xa = design[rows]
            gram = xa.T @ xa + self.alpha * np.eye(d)
            self.gram_inv[arm] = np.linalg.inv(gram)
            self.theta[arm] = self.gram_inv[arm] @ (xa.T @ (reward[rows] - self.offset))
        return self

    def predict(self, context: FloatArray) -> FloatArray:
        design = np.hstack([np.ones((context.shape[0], 1)), context])
        return design @ self.theta.T + self.offset

    def widths(self, context: FloatArray) -> FloatArray:
        """sqrt(x' A_a^-1 x) per event and arm: the confidence width of each arm's score."""
        design = np.hstack([np.ones((context.shape[0], 1)), context])
        quad = np.einsum("ni,aij,nj->na", design, self.gram_inv, design)
        return np.sqrt(np.maximum(quad, 0.0))


class _SklearnArms:
    def __init__(self, base_model: Any) -> None:
        self.base_model = base_model

    def fit(
        self, context: FloatArray, action: IntArray, reward: FloatArray, n_actions: int
    ) -> _SklearnArms:
        self.offset = float(reward.mean()) if reward.size else 0.0
        self.models: list[Any] = []
        for arm in range(n_actions):
            rows = action == arm
            if rows.any():
                model = _clone(self.base_model)
                model.fit(context[rows], reward[rows])
                self.models.append(model)
            else:
                self.models.append(None)
        return self

    def predict(self, context: FloatArray) -> FloatArray:
        out = np.full((context.shape[0], len(self.models)), self.offset)
        for arm, model in enumerate(self.models):
            if model is not None:
                out[:, arm] = np.asarray(model.predict(context), dtype=float).reshape(-1)
        return out


class RewardModel:
    """q(x, a) per arm, cross-fitted over `n_folds` folds.

    `RewardModel(n_actions)` fits per-arm ridge (`alpha`); `RewardModel(n_actions,
    base_model=GradientBoostingRegressor())` any scikit-learn regressor. `fit_predict(context,
    action, reward)` returns (n, K) predictions, each row from a model fitted without the fold
    holding that row (folds drawn with `seed`); `n_folds=1` fits and predicts in-sample.
    `fit` + `predict` fit once on everything (for building policies, not for DR's q).
    """

    def __init__(
        self,
        n_actions: int,
        base_model: Any = None,
        *,
        alpha: float = 1.0,
        n_folds: int = 5,
        seed: int = 0,
    ) -> None:
        if (
            isinstance(n_actions, bool)
            or not isinstance(n_actions, (int, np.integer))
            or n_actions < 1
        ):
            raise ValueError(f"n_actions must be a positive integer, got {n_actions!r}")
        if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 1:
            raise ValueError(f"n_folds must be a positive integer, got {n_folds!r}")
        if not (isinstance(alpha, (int, float)) and alpha > 0):
            raise ValueError(f"alpha must be positive, got {alpha!r}")
        if base_model is not None and not (
            hasattr(base_model, "fit") and hasattr(base_model, "predict")
        ):
            raise TypeError(
                "base_model must have fit(X, y) and predict(X) (a scikit-learn regressor)"
            )
        self.n_actions = int(n_actions)
        self.base_model = base_model
        self.alpha = float(alpha)
        self.n_folds = int(n_folds)
        self.seed = _inputs.seed_value(seed) or 0
        self._fitted: RidgeArms | _SklearnArms | None = None

    def __repr__(self) -> str:
        model = "ridge" if self.base_model is None else repr(self.base_model)
        return f"RewardModel(n_actions={self.n_actions}, model={model}, n_folds={self.n_folds})"

    def _new(self) -> RidgeArms | _SklearnArms:
        return RidgeArms(self.alpha) if self.base_model is None else _SklearnArms(self.base_model)

    def _check(
        self, context: npt.ArrayLike, action: npt.ArrayLike, reward: npt.ArrayLike
    ) -> tuple[FloatArray, IntArray, FloatArray]:
        x = _inputs.matrix("context", context)
        a = _inputs.actions(action, self.n_actions)
        r = _inputs.vector("reward", reward)
        _inputs.same_length({"context": x.shape[0], "action": a.size, "reward": r.size})
        if r.size == 0:
            raise ValueError("reward is empty: there is nothing to fit")
        return x, a, r

    def fit_predict(
        self, context: npt.ArrayLike, action: npt.ArrayLike, reward: npt.ArrayLike
    ) -> FloatArray:
        """Cross-fitted (n, K) predictions: row i never comes from a model that saw event i."""
        x, a, r = self._check(context, action, reward)
        n = r.size
        if self.n_folds == 1:
            return self._new().fit(x, a, r, self.n_actions).predict(x)
        if n < self.n_folds:
            raise ValueError(
                f"cross-fitting over {self.n_folds} folds needs at least as many events, got {n}"
            )
        folds = np.random.default_rng(self.seed).permutation(n) % self.n_folds
        out = np.empty((n, self.n_actions))
        for fold in range(self.n_folds):
            held = folds == fold
            model = self._new().fit(x[~held], a[~held], r[~held], self.n_actions)
            out[held] = model.predict(x[held])
        return out

    def fit(
        self, context: npt.ArrayLike, action: npt.ArrayLike, reward: npt.ArrayLike
    ) -> RewardModel:
        """One model on all events (for a policy built from the log, not for DR's q)."""
        x, a, r = self._check(context, action, reward)
        self._fitted = self._new().fit(x, a, r, self.n_actions)
        return self

    def predict(self, context: npt.ArrayLike) -> FloatArray:
        if self._fitted is None:
            raise RuntimeError("RewardModel.predict before fit")
        return self._fitted.predict(_inputs.matrix("context", context))

    @property
    def ridge(self) -> RidgeArms | None:
        """The fitted per-arm ridge (None before `fit` or with a scikit-learn model)."""
        return self._fitted if isinstance(self._fitted, RidgeArms) else None
