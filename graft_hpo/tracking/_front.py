"""A sweep's runs and its Pareto front read from MLflow, the front's tags written back, and
one run chosen off it (the maths are :mod:`graft_hpo.pareto`'s)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from graft_hpo._names import TAG_OBJECTIVES
from graft_hpo._names import TAG_PARENT_RUN_ID
from graft_hpo._names import TAG_PARETO
from graft_hpo._names import TAG_ROLE
from graft_hpo._names import TAG_SWEEP_ID
from graft_hpo.exceptions import ConfigError
from graft_hpo.pareto import ParetoPoint
from graft_hpo.pareto import Policy
from graft_hpo.pareto import check_logged
from graft_hpo.pareto import choose
from graft_hpo.pareto import front_of
from graft_hpo.pareto import is_front_candidate
from graft_hpo.pareto import normalize_objectives
from graft_hpo.pareto import parse_policy
from graft_hpo.tracking._runs import RunRecord
from graft_hpo.tracking._runs import search_records
from graft_hpo.tracking._runs import tag_filter
from graft_hpo.tracking._store import experiment_or_error
from graft_hpo.tracking._store import open_client
from graft_hpo.tracking._store import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["pareto_front", "select_run", "sweep_objectives", "sweep_runs", "tag_pareto"]

_logger = logging.getLogger(__name__)

_NEWEST_SWEEPS = 50  # how far back "the latest sweep with a front" looks
_FIRST_PAGE = 50  # finished runs read first to tell whether a sweep has a front


def _objectives_of(parent: RunRecord | None) -> list[tuple[str, str]]:
    text = parent.tags.get(TAG_OBJECTIVES) if parent is not None else None
    try:
        return normalize_objectives(json.loads(text) if text else None)
    except (ValueError, TypeError, ConfigError) as exc:
        default = normalize_objectives(None)
        run = parent.run_id if parent else "?"
        _logger.warning(
            "sweep run %s has an unreadable objectives tag %r (%s); using %s",
            run,
            text,
            exc,
            default,
        )
        return default


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
    """The sweep's parent run; without an id, the newest sweep with a trial that can be on a
    front (finished, not stopped early: so a sweep whose every trial failed, one still
    starting, or one interrupted after only early stops does not hide the last front), or the
    newest sweep if none has one."""
    parents = search_records(
        client,
        experiment_ids,
        tag_filter({TAG_ROLE: "sweep", TAG_SWEEP_ID: sweep_id}),
        max_results=1 if sweep_id is not None else _NEWEST_SWEEPS,
        order_by=["attributes.start_time DESC"],
    )
    for parent in parents if sweep_id is None else ():
        runs = tag_filter({TAG_SWEEP_ID: parent.tags.get(TAG_SWEEP_ID)})
        # an early stop is FINISHED too, and a filter on its tag would drop untagged runs: a
        # first page, then the rest only when that page holds early stops alone
        finished = f"{runs} AND attributes.status = 'FINISHED'"
        done = search_records(client, experiment_ids, finished, max_results=_FIRST_PAGE)
        if len(done) == _FIRST_PAGE and not any(is_front_candidate(r) for r in done):
            done = search_records(client, experiment_ids, finished)
        if any(is_front_candidate(r) for r in done):
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

    Raises:
        ConfigError: the store cannot be opened, or the experiment or a named sweep does not
            exist (an unnamed one that does not: the default objectives and None).
    """
    client, experiment_ids = _open(tracking_uri, experiment)
    parent = _latest_parent(client, experiment_ids, sweep_id)
    if (
        parent is None
        and sweep_id is not None
        and not _sweep_runs(client, experiment_ids, sweep_id)[1]
    ):
        raise _no_sweep(experiment, tracking_uri, sweep_id)  # as pareto_front says it
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
        raise _no_sweep(experiment, tracking_uri, sweep_id)
    objs = normalize_objectives(objectives) if objectives is not None else _objectives_of(parent)
    if objectives is not None:  # the caller's names, not the sweep's own
        check_logged(
            [r for r in runs if is_front_candidate(r)], [m for m, _ in objs], what="objectives"
        )
    return front_of(runs, objs)


def _no_sweep(
    experiment: str | None, tracking_uri: str | None, sweep_id: str | None
) -> ConfigError:
    where = (
        f"experiment {experiment!r}"
        if experiment is not None
        else resolve_tracking_uri(tracking_uri)
    )
    if sweep_id is None:
        return ConfigError(f"no sweep found in {where} (no run tagged {TAG_ROLE}=sweep)")
    return ConfigError(f"sweep_id {sweep_id!r} not found in {where}")


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


def select_run(
    policy: Policy | str,
    *,
    experiment: str | None = None,
    sweep_id: str | None = None,
    tracking_uri: str | None = None,
    objectives: Sequence[Any] | None = None,
    key: str = "select.policy",
) -> ParetoPoint:
    """Read a sweep's Pareto front from MLflow and pick one run by ``policy``.

    Args:
        policy: a :class:`Policy` or a string such as ``"knee"`` or ``"budget:co2_kg<=5e-4"``.
        experiment: experiment name; ``None`` -> search every experiment.
        sweep_id: which sweep; ``None`` -> the most recent one.
        tracking_uri: ``None`` -> ``$MLFLOW_TRACKING_URI`` or ``./mlruns``.
        objectives: ``None`` -> the sweep run's ``objectives`` tag (as :func:`pareto_front`
            reads it), else val_acc max and co2_kg min.
        key: the name shown in error messages.

    Returns:
        The chosen point of the front (run id, params, metrics, tags).

    Raises:
        ConfigError: a bad policy (checked before the store is opened), a store, experiment or
            sweep that does not exist, or any error of :func:`choose`.

    Example:
        >>> run = select_run("floor:val_acc>=0.97", experiment="mnist")  # doctest: +SKIP
        >>> run.run_id, run.metrics["co2_kg"]  # doctest: +SKIP
    """
    parsed = policy if isinstance(policy, Policy) else parse_policy(policy, key=key)
    uri = resolve_tracking_uri(tracking_uri)
    if objectives is None:
        objs, sweep_id = sweep_objectives(
            experiment=experiment, sweep_id=sweep_id, tracking_uri=uri
        )
    else:
        objs = normalize_objectives(objectives)
    front = pareto_front(
        experiment=experiment, sweep_id=sweep_id, tracking_uri=uri, objectives=objs
    )
    chosen = choose(front, parsed, objs, key=key)
    _logger.info(
        "%s chose run %s of %d on the front (%s)",
        parsed.text,
        chosen.run_id,
        len(front),
        ", ".join(f"{m}={chosen.metrics[m]:.6g}" for m, _ in objs),
    )
    return chosen
