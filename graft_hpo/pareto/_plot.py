"""A PNG of a sweep's trials with its Pareto front highlighted (matplotlib, no display)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from graft_hpo._names import CO2_KG
from graft_hpo._names import CPU_ENERGY_KWH
from graft_hpo._names import DURATION_S
from graft_hpo._names import ENERGY_KWH
from graft_hpo._names import EPOCHS_COMPLETED
from graft_hpo._names import FRACTION_EFFECTIVE
from graft_hpo._names import GPU_ENERGY_KWH
from graft_hpo._names import RAM_ENERGY_KWH
from graft_hpo._names import SELECTION_S
from graft_hpo._names import TAG_STRATEGY
from graft_hpo._names import TRAIN_LOSS
from graft_hpo._names import VAL_ACC
from graft_hpo._names import VAL_LOSS
from graft_hpo.exceptions import ConfigError
from graft_hpo.pareto._dominance import pareto_mask
from graft_hpo.pareto._front import is_front_candidate
from graft_hpo.pareto._front import normalize_objectives

__all__ = ["plot_front"]

# axis labels with units; unknown metrics are labelled by name
_LABELS = {
    VAL_ACC: "validation accuracy (fraction)",
    VAL_LOSS: "validation loss",
    TRAIN_LOSS: "training loss",
    CO2_KG: "emissions (kg CO2eq)",
    ENERGY_KWH: "energy (kWh)",
    CPU_ENERGY_KWH: "CPU energy (kWh)",
    GPU_ENERGY_KWH: "GPU energy (kWh)",
    RAM_ENERGY_KWH: "RAM energy (kWh)",
    DURATION_S: "duration (s)",
    SELECTION_S: "subset selection time (s)",
    FRACTION_EFFECTIVE: "data fraction seen per epoch",
    EPOCHS_COMPLETED: "epochs completed",
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _label(metric: str, mode: str) -> str:
    better = "higher" if mode == "max" else "lower"
    return f"{_LABELS.get(metric, metric)}, {better} is better"


def plot_front(
    records: Sequence[Any],
    objectives: Sequence[Any] | None,
    path: str,
    *,
    front: Sequence[Any] | None = None,
) -> str:
    """Scatter every trial, by ``strategy``, and draw the Pareto front over it.

    Finished trials are coloured by their ``strategy`` tag with one marker per strategy;
    early-stopped or unfinished ones are grey crosses. The front (computed like
    :func:`pareto_front`) is ringed and connected.

    Args:
        records: runs with ``metrics`` and ``tags`` (and optionally ``status``):
            ``RunRecord`` or ``ParetoPoint``.
        objectives: ``[(metric, mode), ...]``; the first two are plotted (x, y).
            ``None`` -> val_acc max, co2_kg min.
        path: PNG file to write (folders are created).
        front: the front already computed (points with a ``run_id``, e.g. from
            :func:`front_of`); ``None`` -> computed here from the first two objectives.

    Returns:
        ``path``.

    Raises:
        ConfigError: fewer than two objectives.
    """
    objs = normalize_objectives(objectives)
    if len(objs) < 2:
        raise ConfigError(f"plot_front needs two objectives; got {objs!r}")
    (mx, mode_x), (my, mode_y) = objs[0], objs[1]
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    def xy(record: Any) -> tuple[float, float]:
        return record.metrics.get(mx, math.nan), record.metrics.get(my, math.nan)

    plotted = [r for r in records if all(math.isfinite(v) for v in xy(r))]
    done = [r for r in plotted if is_front_candidate(r)]
    fig = Figure(figsize=(7.0, 5.0), dpi=120)
    ax = fig.subplots()
    stopped = [xy(r) for r in plotted if not is_front_candidate(r)]
    if stopped:
        pts = np.array(stopped)
        ax.scatter(pts[:, 0], pts[:, 1], c="0.7", marker="x", label="stopped early / unfinished")
    _scatter_by_strategy(ax, done, xy)
    if front is not None:
        on_front = {p.run_id for p in front}
        best = np.array([xy(r) for r in done if r.run_id in on_front]).reshape(-1, 2)
    else:
        values = np.array([xy(r) for r in done]).reshape(-1, 2)
        best = values[pareto_mask(values, [mode_x == "max", mode_y == "max"])]
    _draw_front(ax, best)
    ax.set_xlabel(_label(mx, mode_x))
    ax.set_ylabel(_label(my, mode_y))
    ax.set_title(f"{len(plotted)} trials: {mx} vs {my}")
    ax.grid(True, alpha=0.3)
    if plotted:
        ax.legend(loc="best", fontsize="small")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _scatter_by_strategy(ax: Any, done: Sequence[Any], xy: Any) -> None:
    """Finished trials, one colour and marker per ``strategy`` tag."""
    strategies = sorted({r.tags.get(TAG_STRATEGY, "unknown") for r in done})
    for i, strategy in enumerate(strategies):
        pts = np.array([xy(r) for r in done if r.tags.get(TAG_STRATEGY, "unknown") == strategy])
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            color=f"C{i % 10}",
            marker=_MARKERS[i % len(_MARKERS)],
            alpha=0.8,
            label=strategy,
        )


def _draw_front(ax: Any, best: np.ndarray) -> None:
    """The front's points ringed, connected in order of the x objective."""
    if not len(best):
        return
    best = best[np.lexsort((best[:, 1], best[:, 0]))]
    ax.plot(best[:, 0], best[:, 1], color="black", linewidth=1.2, zorder=3)
    ax.scatter(
        best[:, 0],
        best[:, 1],
        s=140,
        facecolors="none",
        edgecolors="black",
        linewidths=1.5,
        zorder=4,
        label=f"Pareto front ({len(best)})",
    )
