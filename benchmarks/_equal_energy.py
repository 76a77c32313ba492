"""Compare data-efficiency strategies at equal energy, not at equal nominal budget.

A strategy's settings (GRAFT's and random's fractions, InfoBatch's prune ratios) trace a curve
of (energy per trial, accuracy). At a target energy, e.g. a third of the full-data trial's,
each curve is read by linear interpolation between its two neighbouring settings; a target
outside a curve's measured range has no value (no extrapolation: the strategy was never seen
running that cheaply, or that dearly). :func:`equal_energy` reads a summary's rows this way
(``train_bench.py``'s), :func:`equal_energy_lines` renders the result as a Markdown table.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from benchmarks._tables import head

__all__ = ["EQUAL_ENERGY_SHARES", "accuracy_at", "best_at", "equal_energy", "equal_energy_lines"]

Json = dict[str, Any]

EQUAL_ENERGY_SHARES = (1 / 3, 1 / 2)  # of the full-data trial's median energy


def accuracy_at(curve: Sequence[tuple[float, float]], energy: float) -> float | None:
    """Accuracy of a strategy at ``energy``, interpolated along its ``(energy, accuracy)``
    points; None outside their energy range."""
    points = sorted((e, a) for e, a in curve if math.isfinite(e) and math.isfinite(a))
    if not points or not points[0][0] <= energy <= points[-1][0]:
        return None
    for (e0, a0), (e1, a1) in itertools.pairwise(points):
        if e0 <= energy <= e1:
            return a0 if e1 == e0 else a0 + (a1 - a0) * (energy - e0) / (e1 - e0)
    return points[0][1]  # a single point, exactly at the target


def best_at(
    curves: Mapping[str, Sequence[tuple[float, float]]], energy: float
) -> tuple[str | None, dict[str, float | None]]:
    """Every strategy's accuracy at ``energy`` and the most accurate one (None if none reach)."""
    values = {name: accuracy_at(curve, energy) for name, curve in curves.items()}
    reached = {k: v for k, v in values.items() if v is not None}
    return (max(reached, key=lambda k: reached[k]) if reached else None), values


def equal_energy(
    summary: Mapping[str, Mapping[str, Json]], shares: Sequence[float] = EQUAL_ENERGY_SHARES
) -> Json:
    """Per dataset and share of full's median energy: each strategy's interpolated accuracy
    (along its settings' curve of median energy against mean accuracy) and the best one.

    ``summary``: dataset -> ``"strategy@setting"`` -> a row with ``strategy``, ``n`` (runs),
    ``energy_median`` and ``acc_mean``; the full-data row is ``"full@1"``.
    """
    out: Json = {}
    for name, rows in summary.items():
        full = rows.get("full@1")
        if not full or not full["n"]:
            continue
        curves: dict[str, list[tuple[float, float]]] = {}
        for row in rows.values():
            if row["strategy"] != "full" and row["n"]:
                curves.setdefault(row["strategy"], []).append(
                    (row["energy_median"], row["acc_mean"])
                )
        out[name] = {}
        for share in shares:
            best, values = best_at(curves, share * full["energy_median"])
            out[name][f"{share:.3g}"] = {"best": best, "acc": values}
    return out


def equal_energy_lines(table: Json) -> list[str]:
    """The "At equal energy" section of a report (nothing when ``table`` is empty)."""
    if not table:
        return []
    strategies = sorted(
        {s for shares in table.values() for v in shares.values() for s in v["acc"]}
    )
    lines = [
        "## At equal energy",
        "",
        "Accuracy (%) at a share of the full-data trial's median energy, interpolated along each "
        "strategy's settings; '-' where no setting of it ran that cheaply or that dearly.",
        "",
        *head(" | ".join(["dataset", "energy", *strategies, "most accurate"])),
    ]
    for name, shares in table.items():
        for share, cell in shares.items():
            accs = [cell["acc"].get(s) for s in strategies]
            text = " | ".join("-" if a is None else f"{a:.2f}" for a in accs)
            lines.append(f"| {name} | {share} x full | {text} | {cell['best'] or '-'} |")
    return [*lines, ""]
