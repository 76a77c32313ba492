"""Pareto dominance and 2-D hypervolume: pure numpy, no I/O."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from graft_hpo.exceptions import ConfigError

__all__ = ["hypervolume_2d", "pareto_mask"]


def _as_minimisation(
    values: npt.ArrayLike, maximize: Sequence[bool], name: str
) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ConfigError(f"{name} must be a 2-D array (n, m); got shape {array.shape}")
    if len(maximize) != array.shape[1]:
        raise ConfigError(
            f"maximize must have one flag per objective ({array.shape[1]}); got {len(maximize)}"
        )
    sign = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    return array * sign


def _front_2d(points: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    # Sorted by (x, y), a point is dominated exactly when an earlier point that is not its
    # duplicate has y <= its y. Duplicates are adjacent, so compare with the running minimum
    # of y over all points before its group of duplicates.
    order = np.lexsort((points[:, 1], points[:, 0]))
    xy = points[order]
    new_group = np.ones(len(xy), dtype=bool)
    new_group[1:] = np.any(xy[1:] != xy[:-1], axis=1)
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(xy)), 0))
    min_before = np.concatenate(([np.inf], np.minimum.accumulate(xy[:, 1])[:-1]))
    keep = (group_start == 0) | (min_before[group_start] > xy[:, 1])  # y may be +inf
    mask = np.zeros(len(xy), dtype=bool)
    mask[order] = keep
    return mask


def _front_nd(points: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    # The lexicographically smallest remaining point is never dominated: anything dominating
    # it would sort before it and would already have removed it. Take it, drop what it
    # dominates, repeat: O(n * front size * m).
    order = np.lexsort(points.T[::-1])
    remaining = order
    mask = np.zeros(len(points), dtype=bool)
    while remaining.size:
        best = points[remaining[0]]
        mask[remaining[0]] = True
        rest = points[remaining[1:]]
        dominated = np.all(rest >= best, axis=1) & np.any(rest > best, axis=1)
        remaining = remaining[1:][~dominated]
    return mask


def pareto_mask(values: npt.ArrayLike, maximize: Sequence[bool]) -> npt.NDArray[np.bool_]:
    """Which rows are non-dominated.

    A row dominates another if it is at least as good in every objective and strictly better
    in one. Duplicates of a non-dominated row are all kept; rows with a NaN are never on the
    front and dominate nothing.

    Args:
        values: (n, m) objective values, one row per candidate.
        maximize: m flags, ``True`` where larger is better.

    Returns:
        (n,) bool mask of the non-dominated rows.

    Example:
        >>> acc_co2 = [[0.9, 2.0], [0.8, 1.0], [0.7, 1.5], [0.9, 2.0]]
        >>> pareto_mask(acc_co2, maximize=[True, False]).tolist()
        [True, True, False, True]
    """
    points = _as_minimisation(values, maximize, "values")
    mask = np.zeros(points.shape[0], dtype=bool)
    finite = ~np.isnan(points).any(axis=1)
    if not finite.any():
        return mask
    candidates = points[finite]
    if candidates.shape[1] == 2:
        mask[finite] = _front_2d(candidates)
    else:
        mask[finite] = _front_nd(candidates)
    return mask


def hypervolume_2d(
    points: npt.ArrayLike, reference: Sequence[float], maximize: Sequence[bool]
) -> float:
    """Area dominated by ``points`` and bounded by ``reference`` (two objectives).

    Larger is better; use it to compare the fronts of two sweeps against one reference point
    (e.g. accuracy 0, the largest CO2 seen). Points that do not strictly beat the reference
    in both objectives, or hold a NaN, add nothing.

    Args:
        points: (n, 2) objective values.
        reference: the worst corner, one value per objective.
        maximize: 2 flags, ``True`` where larger is better.

    Returns:
        The area, in the product of the two objectives' units.

    Example:
        >>> acc_co2 = [[0.9, 2.0], [0.8, 1.0]]
        >>> hv = hypervolume_2d(acc_co2, reference=[0.0, 3.0], maximize=[True, False])
        >>> round(hv, 9)  # 0.1 * (3 - 2) + 0.8 * (3 - 1)
        1.7
    """
    pts = _as_minimisation(points, maximize, "points")
    if pts.shape[1] != 2:
        raise ConfigError(f"points must have 2 columns; got {pts.shape[1]}")
    ref = _as_minimisation(np.asarray(reference, dtype=np.float64)[None, :], maximize, "reference")
    ref_x, ref_y = ref[0]
    pts = pts[~np.isnan(pts).any(axis=1)]
    pts = pts[(pts[:, 0] < ref_x) & (pts[:, 1] < ref_y)]
    if not len(pts):
        return 0.0
    front = pts[_front_2d(pts)]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]
    # On the front, x increases while y decreases: a staircase of rectangles up to ref_x.
    widths = np.diff(np.append(front[:, 0], ref_x))
    return float(np.sum(widths * (ref_y - front[:, 1])))
