"""Figures of the benchmarks: accuracy against energy, one curve per strategy, one style.

matplotlib is imported only when a figure is drawn (``--plot``), with the Agg backend (no
display); every strategy keeps its colour and marker in every figure (:data:`STYLE`).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# strategy -> (marker, colour)
STYLE = {
    "graft": ("o", "tab:blue"),
    "random": ("s", "tab:orange"),
    "infobatch": ("^", "tab:green"),
    "full": ("*", "k"),
}


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def axes_row(n: int, width: float, height: float) -> tuple[Any, Any]:
    """A figure of ``n`` axes side by side, each ``width`` x ``height`` inches: (fig, axes)."""
    fig, axes = pyplot().subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def step_curve(ax: Any, points: Sequence[tuple[float, float]], **style: Any) -> None:
    """``(x, y)`` points as a post-step curve (a best-so-far value holds until it changes)."""
    x, y = zip(*points, strict=True)
    ax.step(x, y, where="post", **style)


def settings_fronts(ax: Any, rows: Iterable[Mapping[str, Any]]) -> None:
    """Each strategy's settings as a front: mean accuracy ± std (%) against median energy (Wh),
    each point labelled with its setting (``r=`` for InfoBatch's prune ratio); full data as a
    star with a dotted line across.

    ``rows``: summary rows with ``strategy``, ``fraction`` (the setting), ``n`` (runs; rows
    without any are skipped), ``energy_median`` (kWh), ``acc_mean`` and ``acc_std`` (%).
    """
    rows = list(rows)
    for strategy, (marker, color) in STYLE.items():
        pts = sorted(
            (r for r in rows if r["strategy"] == strategy and r["n"]), key=lambda r: r["fraction"]
        )
        if not pts:
            continue
        x = [1000 * r["energy_median"] for r in pts]
        ax.errorbar(
            x,
            [r["acc_mean"] for r in pts],
            yerr=[r["acc_std"] for r in pts],
            marker=marker,
            color=color,
            linestyle="-" if strategy != "full" else "none",
            markersize=11 if strategy == "full" else 6,
            capsize=3,
            label=strategy,
        )
        if strategy == "full":
            ax.axhline(pts[0]["acc_mean"], color=color, linestyle=":", linewidth=1)
            continue
        for r, xi in zip(pts, x, strict=True):
            ax.annotate(
                f"r={r['fraction']:g}" if strategy == "infobatch" else f"{r['fraction']:g}",
                (xi, r["acc_mean"]),
                textcoords="offset points",
                xytext=(5, -10 if strategy == "random" else 5),
                fontsize=8,
                color=color,
            )


def label(
    ax: Any,
    title: str,
    xlabel: str,
    ylabel: str | None = None,
    *,
    title_size: float = 10,
    legend: str | None = None,
    legend_size: float = 8,
) -> None:
    """Title, axis labels, a light grid and, if ``legend`` (its ``loc``) is given, a legend."""
    ax.set_title(title, fontsize=title_size)
    ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend is not None:
        ax.legend(loc=legend, fontsize=legend_size)


def save_figure(fig: Any, path: Path) -> None:
    """Lay the figure out tightly, write it as a PNG (folders created) and free it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
