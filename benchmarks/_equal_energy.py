"""Compare data-efficiency strategies at equal energy, not at equal nominal budget.

A strategy's settings (GRAFT's and random's fractions, InfoBatch's prune ratios) trace a curve
of (energy per trial, accuracy). At a target energy, e.g. a third of the full-data trial's,
each curve is read by linear interpolation between its two neighbouring settings; a target
outside a curve's measured range has no value (no extrapolation: the strategy was never seen
running that cheaply, or that dearly).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from collections.abc import Sequence

__all__ = ["accuracy_at", "best_at"]


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
