"""A Pareto front of trial runs, pure: which runs are on it, in what order, and as a table.

The records are anything with ``run_id``, ``params``, ``metrics``, ``tags`` (and optionally
``status``): :class:`~graft_hpo.tracking.RunRecord` from MLflow, or :class:`ParetoPoint`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from graft_hpo._names import CO2_KG
from graft_hpo._names import TAG_EARLY_STOPPED
from graft_hpo._names import TAG_ROLE
from graft_hpo._names import TAG_STRATEGY
from graft_hpo._names import VAL_ACC
from graft_hpo.exceptions import ConfigError
from graft_hpo.pareto._dominance import pareto_mask

__all__ = [
    "ParetoPoint",
    "front_of",
    "is_front_candidate",
    "normalize_objectives",
    "pareto_table",
]

_logger = logging.getLogger(__name__)

DEFAULT_OBJECTIVES: tuple[tuple[str, str], ...] = ((VAL_ACC, "max"), (CO2_KG, "min"))


@dataclass(frozen=True)
class ParetoPoint:
    """One non-dominated trial run.

    Attributes:
        run_id: MLflow run id (load the model or config from its artifacts).
        params: dotted config path -> value, as strings.
        metrics: final metrics (``val_acc``, ``co2_kg`` in kg CO2eq, ...).
        tags: run tags (``strategy``, ``sweep_id``, ...).
    """

    run_id: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "run_id": self.run_id,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }


def normalize_objectives(objectives: Sequence[Any] | None) -> list[tuple[str, str]]:
    """Objectives as ``[(metric, "max" | "min"), ...]``.

    Args:
        objectives: pairs ``(metric, mode)`` or objects with ``metric`` and ``mode`` attributes
            (``ObjectiveConfig``); ``None`` -> val_acc max, co2_kg min.

    Raises:
        ConfigError: empty, or a pair that is not ``(str, "max" | "min")``.
    """
    if objectives is None:
        return list(DEFAULT_OBJECTIVES)
    out: list[tuple[str, str]] = []
    errors: list[str] = []
    for i, objective in enumerate(objectives):
        if hasattr(objective, "metric") and hasattr(objective, "mode"):
            metric, mode = objective.metric, objective.mode
        elif isinstance(objective, (list, tuple)) and len(objective) == 2:
            metric, mode = objective
        else:
            errors.append(f"objectives[{i}] must be a (metric, mode) pair; got {objective!r}")
            continue
        if not isinstance(metric, str) or not metric:
            errors.append(f"objectives[{i}].metric must be a metric name; got {metric!r}")
        if mode not in ("max", "min"):
            errors.append(f"objectives[{i}].mode must be 'max' or 'min'; got {mode!r}")
        out.append((str(metric), str(mode)))
    if not errors and not out:
        errors.append("objectives must hold at least one (metric, mode) pair; got []")
    if errors:
        raise ConfigError(errors)
    return out


def is_front_candidate(record: Any) -> bool:
    """A finished trial that was not stopped early (records without a status count as done)."""
    tags = getattr(record, "tags", {})
    return (
        getattr(record, "status", "FINISHED") == "FINISHED"
        and tags.get(TAG_EARLY_STOPPED, "").lower() != "true"
        and tags.get(TAG_ROLE) != "sweep"
    )


def _sort_key(point: ParetoPoint, objectives: Sequence[tuple[str, str]]) -> tuple[float, ...]:
    # best first on the first objective, ties broken by the next ones
    return tuple(
        -point.metrics[m] if mode == "max" else point.metrics[m] for m, mode in objectives
    )


def front_of(records: Sequence[Any], objectives: Sequence[Any] | None) -> list[ParetoPoint]:
    """The non-dominated records among those that could be on a front, best first.

    The computation behind :func:`pareto_front`, on runs already read (``RunRecord``): a
    finished, not early-stopped trial that logged every objective is a candidate.

    Args:
        records: the sweep's trial runs.
        objectives: ``[(metric, "max" | "min"), ...]``; ``None`` -> val_acc max, co2_kg min.
    """
    objs = normalize_objectives(objectives)
    candidates = [r for r in records if is_front_candidate(r)]
    values = np.array(
        [[r.metrics.get(m, math.nan) for m, _ in objs] for r in candidates], dtype=np.float64
    ).reshape(len(candidates), len(objs))
    # MLflow's SQL stores keep an infinite metric as +-float max: missing, as inf would be
    values[~(np.abs(values) < np.finfo(np.float64).max)] = math.nan
    missing = int(np.isnan(values).any(axis=1).sum())
    if missing:
        _logger.warning("%d finished trial(s) lack an objective metric; left out", missing)
    mask = pareto_mask(values, [mode == "max" for _, mode in objs])
    points = [
        ParetoPoint(r.run_id, dict(r.params), dict(r.metrics), dict(r.tags))
        for r, keep in zip(candidates, mask, strict=True)
        if keep
    ]
    return sorted(points, key=lambda p: (_sort_key(p, objs), p.run_id))


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def pareto_table(points: Sequence[ParetoPoint], objectives: Sequence[Any] | None = None) -> str:
    """The front as a plain-text table: rank, run id, strategy, then one column per objective.

    Example:
        >>> p = ParetoPoint("a1b2", metrics={"val_acc": 0.91, "co2_kg": 2.5e-06},
        ...                 tags={"strategy": "graft"})
        >>> print(pareto_table([p]))
        #  run_id  strategy  val_acc (max)  co2_kg (min)
        1  a1b2    graft     0.91           2.5e-06
    """
    objs = normalize_objectives(objectives)
    header = ["#", "run_id", "strategy", *(f"{m} ({mode})" for m, mode in objs)]
    rows = [
        [
            str(i),
            p.run_id,
            p.tags.get(TAG_STRATEGY, "-"),
            *(_cell(p.metrics.get(m)) for m, _ in objs),
        ]
        for i, p in enumerate(points, start=1)
    ]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    lines = [
        "  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)
