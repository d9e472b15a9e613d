"""Cumulative regret curves with 95% bands, one line per policy (matplotlib, Agg backend)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BASELINE_STYLE = {"random": ("0.45", "--"), "oracle": ("0.0", ":")}


def regret_plot(doc: dict[str, Any], path: str) -> None:
    """Write the regret curves of a `report.summarise` document to `path` (PNG)."""
    regret_figure(doc).savefig(path)


def regret_figure(doc: dict[str, Any]) -> Figure:
    """The figure itself. Built on matplotlib's Agg canvas without pyplot, so it never
    changes the caller's matplotlib backend or global state."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    x = [0] + doc["checkpoints"]
    cfg = doc["config"]
    fig = Figure(figsize=(8, 5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Legend order = final regret, highest first, so it reads top-down like the curves.
    order = sorted(doc["policies"].items(), key=lambda kv: -kv[1]["final_regret"]["mean"])
    # tab10 without its grey, which the random baseline uses.
    palette = [c for i, c in enumerate(matplotlib.colormaps["tab10"].colors) if i != 7]
    colours = iter(palette * 3)
    for name, p in order:
        colour, style = BASELINE_STYLE.get(name, (None, "-"))
        colour = colour or next(colours)
        curve = p["regret_curve"]
        fr = p["final_regret"]
        label = (
            f"{name}  ({fr['mean']:,.0f})" if fr["mean"] >= 100 else f"{name}  ({fr['mean']:.1f})"
        )
        ax.plot(x, [0.0] + curve["mean"], style, color=colour, lw=1.8, label=label)
        if curve["ci95_low"][0] is not None:
            ax.fill_between(
                x,
                [0.0] + curve["ci95_low"],
                [0.0] + curve["ci95_high"],
                color=colour,
                alpha=0.08 if name in BASELINE_STYLE else 0.15,
                lw=0,
            )
    ax.set_xlim(0, x[-1])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative regret (expected reward lost)")
    thousands = FuncFormatter(lambda v, _: f"{v:,.0f}" if float(v).is_integer() else f"{v:.2g}")
    ax.xaxis.set_major_formatter(thousands)
    ax.yaxis.set_major_formatter(thousands)
    ax.grid(True, alpha=0.3)
    bands = "mean and 95% interval" if cfg["repeats"] > 1 else "one repeat"
    ax.set_title(
        f"{doc['environment']['name']} environment: {cfg['arms']} arms, batch {cfg['batch']}, "
        f"{cfg['repeats']} repeats ({bands}), {doc['versions']['backend']} backend",
        fontsize=11,
    )
    ax.legend(
        title="policy (final regret)", loc="upper left", fontsize=9, title_fontsize=9, frameon=True
    )
    return fig
