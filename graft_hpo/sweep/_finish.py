"""After the trials: close stray runs, compute and publish the Pareto front, then the
pipeline's final stage (select a point, retrain it).

Finishing reads the sweep's runs from MLflow once; the front, its tags, its plot and the
totals are all computed from that one read.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from graft_hpo._names import DURATION_S
from graft_hpo._names import TAG_EARLY_STOPPED
from graft_hpo._names import TAG_ERROR
from graft_hpo._names import TAG_KILLED_REASON
from graft_hpo._names import TAG_MODEL_URI
from graft_hpo._names import TAG_SELECTED
from graft_hpo._names import TAG_SELECTED_POLICY
from graft_hpo._names import TAG_SELECTED_RUN
from graft_hpo._names import TAG_STOP_REASON
from graft_hpo.exceptions import ConfigError
from graft_hpo.pareto import ParetoPoint
from graft_hpo.pareto import front_of
from graft_hpo.pareto import plot_front
from graft_hpo.sweep._budget import emissions_totals
from graft_hpo.sweep._plan import SweepPlan
from graft_hpo.sweep._ranking import COST_PREFIX
from graft_hpo.sweep._result import SweepResult
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import RunRecord
from graft_hpo.tracking import link_artifact
from graft_hpo.tracking import redact
from graft_hpo.tracking import select_run
from graft_hpo.tracking import sweep_runs
from graft_hpo.tracking import tag_pareto

__all__ = ["final_stage", "finish_sweep", "mark_interrupted", "reopen_parent"]

logger = logging.getLogger(__name__)


def _trial_runs(plan: SweepPlan) -> list[RunRecord]:
    return sweep_runs(
        experiment=plan.experiment, sweep_id=plan.sweep_id, tracking_uri=plan.tracking_uri
    )


_STOP_TAGS = (TAG_EARLY_STOPPED, TAG_STOP_REASON)


def _early_stop(record: RunRecord) -> bool:
    return record.status == "FINISHED" and record.tags.get(TAG_EARLY_STOPPED) == "true"


def _kill_running(
    plan: SweepPlan, runs: Sequence[RunRecord], reason: str, *, ray_stops: bool = False
) -> list[RunRecord]:
    """End the RUNNING runs as KILLED (their process is gone), and with ``ray_stops`` the
    runs that ended as an early stop too, without its tags; the runs as they are now."""
    now = []
    for record in runs:
        ray_stop = ray_stops and _early_stop(record)
        if record.status == "RUNNING" or ray_stop:
            run = RunLogger(plan.tracking_uri, record.run_id)
            if ray_stop:
                run.reopen(drop_tags=list(_STOP_TAGS))
            run.set_tags({TAG_KILLED_REASON: reason})
            run.end("KILLED")
            tags = {k: v for k, v in record.tags.items() if not (ray_stop and k in _STOP_TAGS)}
            record = replace(record, status="KILLED", tags={**tags, TAG_KILLED_REASON: reason})
        now.append(record)
    return now


def mark_interrupted(
    plan: SweepPlan, *, reason: str, parent_status: str | None = None, error: str | None = None
) -> None:
    """End the sweep's RUNNING trial runs as KILLED, and the parent run with ``parent_status``
    (and ``error`` as its error tag).

    Without a scheduler, a run that ended as an early stop was stopped by Ray for the
    interruption (its worker cannot tell that stop from a scheduler's): KILLED too, without
    the early stop's tags, as ``resume`` reads it. With a scheduler the two cannot be told apart
    here; ``resume`` reads such runs as interrupted all the same.
    """
    no_scheduler = plan.config.search.scheduler is None
    _kill_running(plan, _trial_runs(plan), reason, ray_stops=no_scheduler)
    if parent_status is not None:
        parent = RunLogger(plan.tracking_uri, plan.parent_run_id)
        if error is not None:
            parent.set_tags({TAG_ERROR: error})
        parent.end(parent_status)


def reopen_parent(plan: SweepPlan) -> None:
    """A resumed sweep's parent run is RUNNING again (an interruption ended it KILLED)."""
    if plan.owns_parent_run:
        RunLogger(plan.tracking_uri, plan.parent_run_id).reopen()


def _counts(runs: list[RunRecord]) -> dict[str, int]:
    early = [r.tags.get(TAG_EARLY_STOPPED) == "true" for r in runs]
    counts = Counter(r.status for r, stopped in zip(runs, early, strict=True) if not stopped)
    return {
        "FINISHED": counts.get("FINISHED", 0),
        TAG_EARLY_STOPPED: sum(early),
        "FAILED": counts.get("FAILED", 0),
        "KILLED": counts.get("KILLED", 0),
    }


def _totals(plan: SweepPlan, runs: list[RunRecord]) -> dict[str, float]:
    """What the sweep spent: energy and CO2 (the shared selection's included), and time."""
    spent = emissions_totals((r.metrics for r in runs), plan.ranking_cost)
    return {
        **{f"sweep_{k}": v for k, v in spent.items()},
        **{f"sweep_{COST_PREFIX}{k}": v for k, v in plan.ranking_cost.items()},
        "sweep_trial_duration_s": sum(r.metrics.get(DURATION_S, 0.0) for r in runs),
        "sweep_wall_s": plan.folder.wall_s(),
    }


def finish_sweep(plan: SweepPlan, *, stop_reason: str | None = None) -> SweepResult:
    """Publish the sweep's front on its parent run and return the sweep's result.

    Args:
        stop_reason: why the sweep ended before its trial count (a budget, fail-fast).
    """
    reason = "the sweep ended while this trial's run was still open"
    runs = _kill_running(plan, _trial_runs(plan), reason)  # the one read of the runs
    front = front_of(runs, plan.objectives)
    if runs:
        tag_pareto(front, runs=runs, tracking_uri=plan.tracking_uri)
    pareto = [p.to_dict() for p in front]
    counts = _counts(runs)
    totals = _totals(plan, runs)
    parent = RunLogger(plan.tracking_uri, plan.parent_run_id)
    parent.log_metrics({**totals, **{f"trials_{k}": float(v) for k, v in counts.items()}})
    if stop_reason is not None:  # on the parent: why the sweep ended before its trial count
        parent.set_tags({TAG_STOP_REASON: stop_reason})
    artifacts = _log_front(parent, plan, front, runs, stop_reason)
    if plan.owns_parent_run:
        parent.end("FINISHED")
    failed = [
        {"run_id": r.run_id, "error": r.tags.get(TAG_ERROR, "")}
        for r in runs
        if r.status == "FAILED"
    ]
    return SweepResult(
        sweep_id=plan.sweep_id,
        experiment=plan.experiment,
        experiment_id=parent.experiment_id(),
        parent_run_id=plan.parent_run_id,
        tracking_uri=plan.tracking_uri,
        sweep_dir=plan.sweep_dir,
        optuna_storage=redact("search.storage", plan.optuna_storage),
        objectives=[list(o) for o in plan.objectives],
        pareto=pareto,
        trials=counts,
        failed=failed,
        artifacts=artifacts,
        stop_reason=stop_reason,
        totals=totals,
    )


def _log_front(
    parent: RunLogger,
    plan: SweepPlan,
    front: list[ParetoPoint],
    runs: list[RunRecord],
    stop_reason: str | None,
) -> list[str]:
    """The front as JSON and CSV, and a plot of every trial with the front highlighted."""
    pareto = [{"run_id": p.run_id, "params": p.params, "metrics": p.metrics} for p in front]
    parent.log_dict({"objectives": plan.objectives, "pareto": pareto}, "pareto/front.json")
    columns = sorted({k for p in front for k in p.metrics})
    params = sorted({k for p in front for k in p.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run_id", *columns, *params])
    for p in front:
        writer.writerow(
            [
                p.run_id,
                *(p.metrics.get(c, "") for c in columns),
                *(p.params.get(k, "") for k in params),
            ]
        )
    parent.log_text(buffer.getvalue(), "pareto/front.csv")
    logged = ["pareto/front.json", "pareto/front.csv"]
    title = "Pareto front"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = str(Path(tmp) / "front.png")
            plot_front(runs, plan.objectives[:2], path, front=front)
            parent.log_artifact(str(path), "pareto")
            # one click from the parent's page: a link (and the plot) in its description
            link_artifact(plan.tracking_uri, plan.parent_run_id, "pareto/front.png", title)
            logged.append("pareto/front.png")
        except (ValueError, ConfigError) as err:  # e.g. no finished trial to plot
            logger.warning("no Pareto plot: %s", err)
    summary = {"trials": _counts(runs), "requested": plan.trials, "stop_reason": stop_reason}
    parent.log_text(json.dumps(summary), "pareto/summary.json")
    return [*logged, "pareto/summary.json"]


def final_stage(plan: SweepPlan, result: SweepResult, say: Any) -> SweepResult:
    """The pipeline's ``select`` (and ``retrain``) stage: from the front to a model, with the
    functions ``graft-hpo select`` and ``graft-hpo retrain`` call (:func:`select_run`,
    :func:`~graft_hpo.retraining.retrain`).

    A policy no point of the front satisfies (the error names the closest one) ends the stage
    with ``selected == {"policy", "error"}``: the sweep's result stands.
    """
    config = plan.config
    if config.select is None:
        return result
    policy = config.select.policy
    try:
        point = select_run(
            policy,
            experiment=plan.experiment,
            sweep_id=plan.sweep_id,
            tracking_uri=plan.tracking_uri,
            objectives=plan.objectives,
        )
    except ConfigError as err:  # raised, it lost the front the sweep had paid for
        say(f"select stage failed: {err}")
        return replace(result, selected={"policy": policy, "error": str(err)})
    selected = {"policy": policy, **point.to_dict()}
    selected.pop("tags", None)
    parent = RunLogger(plan.tracking_uri, plan.parent_run_id)
    parent.set_tags({TAG_SELECTED_RUN: point.run_id, TAG_SELECTED_POLICY: policy})
    RunLogger(plan.tracking_uri, point.run_id).set_tags({TAG_SELECTED: "true"})
    say(f"selected run {point.run_id} ({policy})")
    if config.retrain is None:
        return replace(result, selected=selected)
    folder = plan.folder
    model = folder.read_model(point.run_id)  # a resumed sweep that chose the same run
    if model is not None:
        say(f"model {model['model_uri']} (retrained from this run before: not again)")
    else:
        from graft_hpo.retraining import retrain

        # the stage's fields are retrain()'s keyword arguments, one for one
        stage = asdict(config.retrain)
        retrained = retrain(point.run_id, tracking_uri=plan.tracking_uri, **stage)
        model = retrained.to_dict()
        if retrained.model_uri is not None:
            folder.write_model(model)
            parent.set_tags({TAG_MODEL_URI: retrained.model_uri})
            say(f"model {retrained.model_uri} (retraining run {retrained.run_id})")
        if retrained.error is not None:  # the run failed, or its model was not registered
            say(f"{'retraining failed: ' if retrained.model_uri is None else ''}{retrained.error}")
    return replace(result, selected=selected, model=model)
