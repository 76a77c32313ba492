"""The trainable: what a Ray worker process runs for one trial of the sweep.

It trains the sampled configuration through :func:`graft_hpo.trial.run_trial` (which logs the
trial's MLflow run and measures it), reports every validated epoch to Tune (the scheduler
decides on them) and reports once more at the end (Optuna is told that one).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from graft_hpo.config import apply_overrides
from graft_hpo.exceptions import TrialFailedError
from graft_hpo.selection import Ranking
from graft_hpo.sweep._plan import SweepPlan
from graft_hpo.sweep._plan import plan_from_dict
from graft_hpo.sweep._search import DONE_KEY
from graft_hpo.sweep._search import EPOCHS_DONE
from graft_hpo.sweep._search import scheduler_rungs
from graft_hpo.tracking import TAG_EARLY_STOPPED
from graft_hpo.tracking import TAG_ROLE
from graft_hpo.tracking import TAG_SWEEP_ID
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import query_runs
from graft_hpo.trial import TrialHooks
from graft_hpo.trial import TrialResult
from graft_hpo.trial import run_trial

__all__ = ["TAG_RAY_TRIAL", "check_measured", "trainable"]

TAG_RAY_TRIAL = "ray_trial_id"
TAG_NODE = "node"
_STOPPED_TRIAL_CLOSE_S = 120  # see trainable


class _ReportToRay(TrialHooks):
    """Each epoch's metrics to Ray (ASHA decides on them; Optuna gets the final report)."""

    def __init__(self, needed: list[str], rungs: set[int]) -> None:
        self.run_id: str | None = None
        self.stopped = False
        self.needed = needed  # the objectives: Ray refuses a report without them
        self.rungs = rungs  # the epochs a scheduler compares trials at: validated there

    def on_trial_start(self, run_id: str | None) -> None:
        self.run_id = run_id

    def on_train_start(self, state: Any) -> None:
        state.eval_at |= self.rungs

    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None:
        from ray import tune

        if "val_acc" not in metrics:  # no validation this epoch (train.eval_every > 1)
            return
        check_measured(metrics, self.needed)
        try:
            report = {**metrics, "epoch": state.epoch, EPOCHS_DONE: state.epoch + 1}
            tune.report({**report, "mlflow_run_id": self.run_id})
        except SystemExit:
            # A scheduler (ASHA) stopped the trial: Ray's report raises SystemExit(0) in the
            # training thread. Stop after this epoch, cooperatively, so the run is closed and
            # measured; the driver's callback closes it too if Ray ends the process first.
            self.stopped = True
            state.should_stop = True
            state.stop_reason = "stopped early by the scheduler"


def trainable(
    params: dict[str, Any], *, plan_dict: dict[str, Any], ranking: Ranking | None = None
) -> None:
    """Train one sampled configuration; report per epoch and once more at the end."""
    import torch
    from ray import tune

    plan = plan_from_dict(plan_dict)
    # A trial stopped by the scheduler closes its run when its actor is reused for the next
    # trial; Tune waits only this long for that (default 2 s) before failing the next trial.
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", str(_STOPPED_TRIAL_CLOSE_S))
    torch.set_num_threads(max(1, int(plan.config.resources.cpu)))
    trial_id = tune.get_context().get_trial_id()
    finished = _finished_run(plan, trial_id)
    if finished is not None:  # re-run by a resumed sweep after it had finished: never twice
        tune.report({**finished.metrics, "mlflow_run_id": finished.run_id, DONE_KEY: 1})
        return
    needed = [m for m, _ in plan.objectives]
    sched = plan.config.search.scheduler
    if sched is not None and sched.type == "asha":  # MO-ASHA ranks on the objectives
        needed.append(sched.metric)
    reporter = _ReportToRay(needed, scheduler_rungs(plan.config))
    result = _train(plan, params, trial_id, reporter, ranking)
    if result.status != "FINISHED":
        # Ray marks the trial ERROR and Optuna is told FAIL; the MLflow run is already FAILED
        raise TrialFailedError(result.error or "trial failed")
    if reporter.stopped:
        # Leave as Ray's own stop does: a normal return makes Ray's wrapper report once more,
        # and that report blocks the thread forever, so a reused actor never frees up.
        raise SystemExit(0)
    try:
        check_measured(result.metrics, needed)
    except TrialFailedError as err:  # e.g. codecarbon failed: the trial cannot be ranked
        if result.run_id is not None:
            run = RunLogger(plan.tracking_uri, result.run_id)
            run.set_tags({"error": f"TrialFailedError: {err}"})
            run.end("FAILED")
        raise
    tune.report({**result.metrics, "mlflow_run_id": result.run_id, DONE_KEY: 1})


def _train(
    plan: SweepPlan,
    params: dict[str, Any],
    trial_id: str,
    reporter: _ReportToRay,
    ranking: Ranking | None,
) -> TrialResult:
    """Train and log the sampled configuration as a nested run of the sweep."""
    import ray

    config = apply_overrides(plan.config, params)
    return run_trial(
        config,
        tracking_uri=plan.tracking_uri,
        parent_run_id=plan.parent_run_id,
        run_name=f"{config.selection.strategy}-{trial_id}",  # the id Ray prints for the trial
        tags={
            TAG_SWEEP_ID: plan.sweep_id,
            TAG_ROLE: "trial",
            TAG_RAY_TRIAL: trial_id,
            TAG_NODE: socket.gethostname(),
            "node_id": ray.get_runtime_context().get_node_id(),
        },
        hooks=[reporter],
        evaluate_test=True,  # test_acc of the trials trained to the end: a front to score
        ranking=ranking,
    )


def check_measured(metrics: dict[str, float], needed: list[str]) -> None:
    """Fail a trial whose report lacks an objective (Ray would end the whole sweep)."""
    missing = [m for m in needed if m not in metrics]
    if missing:
        raise TrialFailedError(
            f"{', '.join(missing)} not measured, so the trial cannot be ranked "
            "(see the run's emissions_error tag if it is an emissions metric)"
        )


def _finished_run(plan: SweepPlan, trial_id: str) -> Any:
    """This Ray trial's earlier run if it finished; None if it must (still) be trained.

    A resumed Tune only re-runs trials it had not completed. A run of such a trial that ended
    "stopped early" was stopped by the interruption (Tune stops running trials the way ASHA
    does), not by the scheduler: it is marked KILLED and the trial is trained again.
    """
    runs = query_runs(plan.tracking_uri, plan.experiment, sweep_id=plan.sweep_id)
    for run in runs:
        if run.tags.get(TAG_RAY_TRIAL) != trial_id or run.status != "FINISHED":
            continue
        if run.tags.get(TAG_EARLY_STOPPED) != "true":
            return run
        stale = RunLogger(plan.tracking_uri, run.run_id)
        stale.set_tags({TAG_EARLY_STOPPED: "false", "killed_reason": "the sweep was interrupted"})
        stale.end("KILLED")
    return None
