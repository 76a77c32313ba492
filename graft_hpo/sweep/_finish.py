"""After the trials: close stray runs, compute and publish the Pareto front."""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from graft_hpo.exceptions import ConfigError
from graft_hpo.sweep._result import SweepResult
from graft_hpo.sweep._tune import SweepPlan
from graft_hpo.tracking import TAG_EARLY_STOPPED
from graft_hpo.tracking import TAG_ROLE
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import RunRecord
from graft_hpo.tracking import pareto_front
from graft_hpo.tracking import plot_front
from graft_hpo.tracking import query_runs
from graft_hpo.tracking import tag_pareto

__all__ = ["finish_sweep", "mark_interrupted", "reopen_parent", "trial_runs"]

logger = logging.getLogger(__name__)


def trial_runs(plan: SweepPlan) -> list[RunRecord]:
    runs = query_runs(plan.tracking_uri, plan.experiment, sweep_id=plan.sweep_id)
    return [r for r in runs if r.tags.get(TAG_ROLE) != "sweep"]


def mark_interrupted(plan: SweepPlan, *, reason: str, parent_status: str | None = None) -> int:
    """End the sweep's RUNNING trial runs as KILLED (their process is gone); returns how many."""
    stale = [r for r in trial_runs(plan) if r.status == "RUNNING"]
    for record in stale:
        run = RunLogger(plan.tracking_uri, record.run_id)
        run.set_tags({"killed_reason": reason})
        run.end("KILLED")
    if parent_status is not None:
        RunLogger(plan.tracking_uri, plan.parent_run_id).end(parent_status)
    return len(stale)


def reopen_parent(plan: SweepPlan) -> None:
    """A resumed sweep's parent run is RUNNING again (an interruption ended it KILLED)."""
    if plan.owns_parent_run:
        from graft_hpo.tracking._store import open_client

        open_client(plan.tracking_uri).update_run(plan.parent_run_id, status="RUNNING")


def _counts(runs: list[RunRecord]) -> dict[str, int]:
    early = [r.tags.get(TAG_EARLY_STOPPED) == "true" for r in runs]
    counts = Counter(r.status for r, stopped in zip(runs, early, strict=True) if not stopped)
    return {
        "FINISHED": counts.get("FINISHED", 0),
        "early_stopped": sum(early),
        "FAILED": counts.get("FAILED", 0),
        "KILLED": counts.get("KILLED", 0),
    }


def finish_sweep(plan: SweepPlan) -> SweepResult:
    """Publish the sweep's front on its parent run and return the sweep's result."""
    mark_interrupted(plan, reason="the sweep ended while this trial's run was still open")
    runs = trial_runs(plan)
    parent = RunLogger(plan.tracking_uri, plan.parent_run_id)
    try:
        front = pareto_front(
            experiment=plan.experiment,
            sweep_id=plan.sweep_id,
            tracking_uri=plan.tracking_uri,
            objectives=plan.objectives,
        )
    except ConfigError:
        front = []
    if front:
        tag_pareto(plan.tracking_uri, front, sweep_id=plan.sweep_id)
    pareto = [{"run_id": p.run_id, "params": p.params, "metrics": p.metrics} for p in front]
    counts = _counts(runs)
    totals = {
        "sweep_energy_kwh": sum(r.metrics.get("energy_kwh", 0.0) for r in runs),
        "sweep_co2_kg": sum(r.metrics.get("co2_kg", 0.0) for r in runs),
        "sweep_trial_duration_s": sum(r.metrics.get("duration_s", 0.0) for r in runs),
    }
    parent.log_metrics({**totals, **{f"trials_{k}": float(v) for k, v in counts.items()}})
    artifacts = _log_front(parent, plan, pareto, runs)
    if plan.owns_parent_run:
        parent.end("FINISHED")
    failed = [
        {"run_id": r.run_id, "error": r.tags.get("error", "")}
        for r in runs
        if r.status == "FAILED"
    ]
    return SweepResult(
        sweep_id=plan.sweep_id,
        experiment=plan.experiment,
        parent_run_id=plan.parent_run_id,
        tracking_uri=plan.tracking_uri,
        sweep_dir=plan.sweep_dir,
        objectives=[list(o) for o in plan.objectives],
        pareto=pareto,
        trials=counts,
        failed=failed,
        artifacts=artifacts,
    )


def _log_front(
    parent: RunLogger, plan: SweepPlan, pareto: list[dict[str, Any]], runs: list[RunRecord]
) -> list[str]:
    """The front as JSON and CSV, and a plot of every trial with the front highlighted."""
    parent.log_dict({"objectives": plan.objectives, "pareto": pareto}, "pareto/front.json")
    columns = sorted({k for p in pareto for k in p["metrics"]})
    params = sorted({k for p in pareto for k in p["params"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run_id", *columns, *params])
    for p in pareto:
        writer.writerow(
            [
                p["run_id"],
                *(p["metrics"].get(c, "") for c in columns),
                *(p["params"].get(k, "") for k in params),
            ]
        )
    parent.log_text(buffer.getvalue(), "pareto/front.csv")
    logged = ["pareto/front.json", "pareto/front.csv"]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = plot_front(runs, plan.objectives[:2], str(Path(tmp) / "front.png"))
            parent.log_artifact(str(path), "pareto")
            logged.append("pareto/front.png")
        except (ValueError, ConfigError) as err:  # e.g. no finished trial to plot
            logger.warning("no Pareto plot: %s", err)
    parent.log_text(json.dumps({"trials": _counts(runs)}), "pareto/summary.json")
    return [*logged, "pareto/summary.json"]
