"""The optimisation history: every finished trial's value and the best so far (matplotlib,
Agg canvas without pyplot, so the caller's matplotlib state is left alone)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def history_plot(trials: Sequence[Any], direction: str, title: str, ylabel: str, path: str) -> None:
    """Write the history of `trials` (Optuna FrozenTrials, COMPLETE ones) to `path` (PNG).
    The trial that played the default knobs is marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from banditkit.tune.study import DEFAULTS_ATTR

    numbers = [t.number for t in trials]
    values = [float(t.value) for t in trials]
    pick = min if direction == "minimize" else max
    best = [pick(values[: i + 1]) for i in range(len(values))]

    fig = Figure(figsize=(8, 4.5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(numbers, values, "o", color="tab:blue", alpha=0.7, label="trial")
    ax.step(numbers, best, where="post", color="tab:red", lw=1.8, label="best so far")
    marked = [(t.number, float(t.value)) for t in trials if t.user_attrs.get(DEFAULTS_ATTR)]
    if marked:
        ax.plot(*zip(*marked, strict=True), "s", ms=9, mfc="none", mec="0.1", mew=1.5,
                label="default knobs")  # fmt: skip
    if min(values) > 0 and max(values) > 10 * min(values):
        ax.set_yscale("log")  # a few awful trials would flatten the rest against the axis
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=9)
    fig.savefig(path)
