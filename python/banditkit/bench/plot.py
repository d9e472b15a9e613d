"""Speedup bars from bench rows: how many times faster the Rust implementation is than each
other implementation of the same scenario, measured in the same run (matplotlib, Agg)."""

from __future__ import annotations

from banditkit.bench.report import TARGETS, _reference_impl, grouped, speedup
from banditkit.bench.timing import Row


def speedups(rows: list[Row]) -> list[tuple[str, str, str, float, float | None]]:
    """(scenario label, compared impl, reference impl, speedup, target ratio or None) per bar."""
    targets = {(t.group, t.case, t.fast, t.slow): t.ratio for t in TARGETS}
    bars = []
    for (group, case), impls in grouped(rows).items():
        ref = _reference_impl(impls)
        # Rust's speedups only: the serve rows' reference (in-process select) is the cost of
        # the service, not a backend to plot.
        if ref is None or not ref.startswith("rust"):
            continue
        for name in impls:
            if name == ref:
                continue
            ratio = speedup(impls, name, ref)
            bars.append(
                (f"{group} | {case}", name, ref, ratio, targets.get((group, case, ref, name)))
            )
    return bars


def speedup_plot(rows: list[Row], path: str, machine: dict[str, str] | None = None) -> None:
    """Horizontal bars (log scale), one per (scenario, compared impl); targets as black ticks."""
    # Agg canvas without pyplot: the caller's matplotlib backend and state are left alone.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter

    bars = speedups(rows)
    height = max(2.5, 0.32 * len(bars) + 1.6)
    fig = Figure(figsize=(10, height), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if not bars:
        ax.text(
            0.5,
            0.5,
            "no scenario with a Rust reference was measured",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        fig.savefig(path)
        return
    palette = matplotlib.colormaps["tab20"].colors  # one colour per baseline (up to 20)
    impls = sorted({impl for _, impl, _, _, _ in bars})
    colour = {impl: palette[i % len(palette)] for i, impl in enumerate(impls)}
    y = list(range(len(bars)))[::-1]  # first scenario on top
    # Bars grow from parity (1x): right when Rust is faster, left when it is slower.
    ax.barh(y, [b[3] - 1.0 for b in bars], left=1.0, color=[colour[b[1]] for b in bars], height=0.7)
    ax.set_ylim(-0.7, len(bars) - 0.3)
    for yi, (_, _, _, ratio, target) in zip(y, bars, strict=True):
        ax.text(max(ratio, 1.0), yi, f" {ratio:.1f}x", va="center", fontsize=8)
        if target is not None:
            ax.plot([target, target], [yi - 0.4, yi + 0.4], color="black", lw=2)
    ax.set_yticks(y, [f"{label}  vs {impl}" for label, impl, _, _, _ in bars], fontsize=8)
    ax.set_xscale("log")
    ratios = [b[3] for b in bars] + [b[4] for b in bars if b[4] is not None]
    ax.set_xlim(min(0.5, min(ratios) / 1.5), max(ratios) * 2.0)  # room for the labels
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.axvline(1.0, color="0.3", lw=1)
    ax.set_xlabel("speedup of the Rust implementation (same run; log scale; black tick = target)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    handles = [Rectangle((0, 0), 1, 1, color=colour[i]) for i in impls]
    ax.legend(
        handles, [f"vs {i}" for i in impls], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8
    )
    title = "banditkit bench: Rust speedups"
    if machine:
        title += (
            f"\n{machine.get('cpu', '')}, {machine.get('cores', '?')} cores, "
            f"Python {machine.get('python', '')}, {machine.get('date', '')}"
        )
    ax.set_title(title, fontsize=10)
    fig.savefig(path)
