"""docs/ensemble-band.png: a 10,000-member BootstrapRidge on 150 weekly rows x 598 features,
predicting 52 new weeks with the members' 95% band (the seed's use). Run:
`PYTHONPATH=python python benches/ensemble_band.py`."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from banditkit import BootstrapRidge  # noqa: E402


def weekly_data(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """202 weeks: 598 noisy features (lags, rates, seasonal terms) driving weekly sales."""
    rng = np.random.default_rng(seed)
    weeks = np.arange(202)
    season = np.stack([np.sin(2 * np.pi * k * weeks / 52) for k in (1, 2, 3)], axis=1)
    drivers = np.cumsum(rng.normal(size=(202, 5)), axis=0) / 5
    base = np.hstack([season, drivers])
    X = base @ rng.normal(size=(8, 598)) + 0.5 * rng.normal(size=(202, 598))
    y = 100 + 8 * season[:, 0] + 3 * drivers[:, 0] - 2 * drivers[:, 1] + rng.normal(size=202)
    return X, y


def main(path: str = "docs/ensemble-band.png") -> None:
    X, y = weekly_data()
    train, test = slice(0, 150), slice(150, 202)
    model = BootstrapRidge(n_estimators=10_000, alpha=1.0, random_state=42)
    model.fit(X[train], y[train])
    mean, lower, upper = model.predict_interval(X[test], level=0.95)
    weeks = np.arange(150, 202)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(np.arange(150), y[train], color="0.6", lw=1, label="training weeks")
    ax.fill_between(weeks, lower, upper, color="tab:blue", alpha=0.25, label="95% band (members)")
    ax.plot(weeks, mean, color="tab:blue", lw=1.5, label="ensemble mean")
    ax.plot(weeks, y[test], "k.", ms=4, label="actual")
    ax.set_xlabel("week")
    ax.set_ylabel("sales")
    ax.set_title("BootstrapRidge: 10,000 members, 150 weeks x 598 features")
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    inside = np.mean((lower <= y[test]) & (y[test] <= upper))
    print(f"wrote {path}; {100 * inside:.0f}% of the 52 actual weeks inside the band")


if __name__ == "__main__":
    main()
