"""The accuracy-vs-emissions Pareto front of a sweep, read from MLflow."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from graft_hpo.exceptions import ConfigError
from graft_hpo.tracking._names import TAG_EARLY_STOPPED
from graft_hpo.tracking._names import TAG_OBJECTIVES
from graft_hpo.tracking._names import TAG_PARENT_RUN_ID
from graft_hpo.tracking._names import TAG_PARETO
from graft_hpo.tracking._names import TAG_ROLE
from graft_hpo.tracking._names import TAG_STRATEGY
from graft_hpo.tracking._names import TAG_SWEEP_ID
from graft_hpo.tracking._pareto import pareto_mask
from graft_hpo.tracking._runs import RunRecord
from graft_hpo.tracking._runs import search_records
from graft_hpo.tracking._runs import tag_filter
from graft_hpo.tracking._store import experiment_or_error
from graft_hpo.tracking._store import open_client
from graft_hpo.tracking._store import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "DEFAULT_OBJECTIVES",
    "ParetoPoint",
    "front_of",
    "is_front_candidate",
    "normalize_objectives",
    "pareto_front",
    "pareto_table",
    "sweep_objectives",
    "tag_pareto",
]

_logger = logging.getLogger(__name__)

DEFAULT_OBJECTIVES: tuple[tuple[str, str], ...] = (("val_acc", "max"), ("co2_kg", "min"))


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


_NEWEST_SWEEPS = 50  # how far back "the latest sweep with a front" looks


def _objectives_of(parent: RunRecord | None) -> list[tuple[str, str]]:
    text = parent.tags.get(TAG_OBJECTIVES) if parent is not None else None
    if not text:
        return list(DEFAULT_OBJECTIVES)
    try:
        return normalize_objectives(json.loads(text))
    except (ValueError, TypeError, ConfigError) as exc:
        _logger.warning(
            "sweep run %s has an unreadable objectives tag %r (%s); using %s",
            parent.run_id if parent else "?",
            text,
            exc,
            DEFAULT_OBJECTIVES,
        )
        return list(DEFAULT_OBJECTIVES)


def _experiment_ids(client: MlflowClient, uri: str, experiment: str | None) -> list[str]:
    if experiment is not None:
        return [str(experiment_or_error(client, uri, experiment).experiment_id)]
    return [str(e.experiment_id) for e in client.search_experiments()]


def _open(tracking_uri: str | None, experiment: str | None) -> tuple[MlflowClient, list[str]]:
    """A client of the store and the ids of the experiments to search (all if None)."""
    uri = resolve_tracking_uri(tracking_uri)
    client = open_client(uri)
    return client, _experiment_ids(client, uri, experiment)


def _sweep_runs(
    client: MlflowClient, experiment_ids: list[str], sweep_id: str | None
) -> tuple[RunRecord | None, list[RunRecord]]:
    """The sweep's parent run (or ``None``) and its trial runs; latest sweep if no id."""
    parent = _latest_parent(client, experiment_ids, sweep_id)
    if sweep_id is None and parent is not None:
        sweep_id = parent.tags.get(TAG_SWEEP_ID)
    if sweep_id is not None:
        runs = search_records(client, experiment_ids, tag_filter({TAG_SWEEP_ID: sweep_id}))
    elif parent is not None:  # a parent without a sweep_id tag: its nested runs
        runs = search_records(
            client, experiment_ids, tag_filter({TAG_PARENT_RUN_ID: parent.run_id})
        )
    else:
        runs = []
    return parent, [r for r in runs if r.tags.get(TAG_ROLE) != "sweep"]


def _latest_parent(
    client: MlflowClient, experiment_ids: list[str], sweep_id: str | None
) -> RunRecord | None:
    """The sweep's parent run; without an id, the newest sweep with a finished trial (so a
    sweep whose every trial failed, or one still starting, does not hide the last front), or
    the newest sweep if none has one."""
    parents = search_records(
        client,
        experiment_ids,
        tag_filter({TAG_ROLE: "sweep", TAG_SWEEP_ID: sweep_id}),
        max_results=1 if sweep_id is not None else _NEWEST_SWEEPS,
        order_by=["attributes.start_time DESC"],
    )
    for parent in parents if sweep_id is None else ():
        runs = tag_filter({TAG_SWEEP_ID: parent.tags.get(TAG_SWEEP_ID)})
        done = search_records(  # at most one of them is the parent run itself
            client, experiment_ids, f"{runs} AND attributes.status = 'FINISHED'", max_results=2
        )
        if any(r.tags.get(TAG_ROLE) != "sweep" for r in done):
            if parent is not parents[0]:
                _logger.info(
                    "reading sweep %s: the newer sweeps have no finished trial",
                    parent.tags.get(TAG_SWEEP_ID),
                )
            return parent
    return parents[0] if parents else None


def sweep_objectives(
    *,
    experiment: str | None = None,
    sweep_id: str | None = None,
    tracking_uri: str | None = None,
) -> tuple[list[tuple[str, str]], str | None]:
    """The objectives a sweep's front is computed for, and its id (the latest sweep's if None).

    Pinning the id lets a caller read the front of the same sweep afterwards.
    """
    client, experiment_ids = _open(tracking_uri, experiment)
    parent = _latest_parent(client, experiment_ids, sweep_id)
    resolved = sweep_id or (parent.tags.get(TAG_SWEEP_ID) if parent is not None else None)
    return _objectives_of(parent), resolved


def sweep_runs(
    *,
    experiment: str | None = None,
    sweep_id: str | None = None,
    tracking_uri: str | None = None,
) -> list[RunRecord]:
    """The trial runs of a sweep (the most recent sweep when ``sweep_id`` is None)."""
    client, experiment_ids = _open(tracking_uri, experiment)
    _, runs = _sweep_runs(client, experiment_ids, sweep_id)
    return runs


def _sort_key(point: ParetoPoint, objectives: Sequence[tuple[str, str]]) -> tuple[float, ...]:
    # best first on the first objective, ties broken by the next ones
    return tuple(
        -point.metrics[m] if mode == "max" else point.metrics[m] for m, mode in objectives
    )


def pareto_front(
    *,
    experiment: str | None = None,
    sweep_id: str | None = None,
    tracking_uri: str | None = None,
    objectives: Sequence[Any] | None = None,
) -> list[ParetoPoint]:
    """The non-dominated trials of a sweep.

    Candidates are the sweep's trial runs (tag ``sweep_id``) that FINISHED and were not stopped
    early (tag ``early_stopped`` is not ``"true"``), and that logged every objective.

    Args:
        experiment: experiment name; ``None`` -> search every experiment.
        sweep_id: which sweep; ``None`` -> the most recent sweep parent run (tag
            ``graft_hpo.role=sweep``).
        tracking_uri: ``None`` -> ``$MLFLOW_TRACKING_URI`` or ``./mlruns`` (see
            :func:`resolve_tracking_uri`).
        objectives: ``[(metric, "max" | "min"), ...]``; ``None`` -> the sweep run's
            ``objectives`` tag, else val_acc max and co2_kg min.

    Returns:
        The front, best first on the first objective (ties: the next objectives).

    Raises:
        ConfigError: the store cannot be opened, or the experiment or sweep does not exist.

    Example:
        >>> front = pareto_front(experiment="mnist")  # doctest: +SKIP
        >>> [(p.run_id[:8], p.metrics["val_acc"], p.metrics["co2_kg"]) for p in front]
        ... # doctest: +SKIP
    """
    client, experiment_ids = _open(tracking_uri, experiment)
    parent, runs = _sweep_runs(client, experiment_ids, sweep_id)
    if parent is None and not runs:
        where = (
            f"experiment {experiment!r}"
            if experiment is not None
            else resolve_tracking_uri(tracking_uri)
        )
        if sweep_id is None:
            raise ConfigError(f"no sweep found in {where} (no run tagged {TAG_ROLE}=sweep)")
        raise ConfigError(f"sweep_id {sweep_id!r} not found in {where}")
    objs = normalize_objectives(objectives) if objectives is not None else _objectives_of(parent)
    return front_of(runs, objs)


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
    values[~np.isfinite(values)] = math.nan
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


def tag_pareto(
    points: Sequence[ParetoPoint],
    *,
    runs: Sequence[RunRecord] | None = None,
    sweep_id: str | None = None,
    tracking_uri: str | None = None,
) -> None:
    """Tag ``pareto=true`` on the winners and ``pareto=false`` on the sweep's other trials.

    Args:
        points: the front (from :func:`pareto_front` or :func:`front_of`).
        runs: the sweep's trial runs, when already read; else they are read by ``sweep_id``.
        sweep_id: the sweep whose other trials get ``false``; ``None`` -> the points'
            ``sweep_id`` tags.
        tracking_uri: ``None`` -> ``$MLFLOW_TRACKING_URI`` or ``./mlruns``.
    """
    uri = resolve_tracking_uri(tracking_uri)
    client = open_client(uri)
    if runs is None:
        sweep_ids = {sweep_id} if sweep_id else {p.tags.get(TAG_SWEEP_ID) for p in points}
        experiment_ids = _experiment_ids(client, uri, None)
        runs = [
            run
            for sid in sorted(s for s in sweep_ids if s)
            for run in _sweep_runs(client, experiment_ids, sid)[1]
        ]
    winners = {p.run_id for p in points}
    for run_id in sorted(winners | {r.run_id for r in runs}):
        client.set_tag(run_id, TAG_PARETO, "true" if run_id in winners else "false")


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
