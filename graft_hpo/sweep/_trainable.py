"""The trainable: what a Ray worker process runs for one trial of the sweep.

It trains the sampled configuration through :func:`graft_hpo.trial.run_trial` (which logs the
trial's MLflow run and measures it), reports every validated epoch to Tune (the scheduler
decides on them), with a checkpoint every ``train.checkpoint_every`` epochs, and reports once
more at the end (Optuna is told that one).

A trial that fails by itself (a NaN loss, a plug-in's error) ends with a report that says so
(``FAILED_KEY``), not an exception: Ray retries exceptions, meant for lost workers. A trial Tune
runs again (its worker died, or the sweep was resumed) goes on in its MLflow run from its last
checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from graft_hpo._names import ATTR_MLFLOW_RUN
from graft_hpo._names import CHECKPOINT_S
from graft_hpo._names import DONE_KEY
from graft_hpo._names import DURATION_S
from graft_hpo._names import EPOCHS_DONE
from graft_hpo._names import FAILED_KEY
from graft_hpo._names import TAG_ATTEMPTS
from graft_hpo._names import TAG_EARLY_STOPPED
from graft_hpo._names import TAG_ERROR
from graft_hpo._names import TAG_KILLED_REASON
from graft_hpo._names import TAG_NODE
from graft_hpo._names import TAG_NODE_ID
from graft_hpo._names import TAG_RAY_TRIAL
from graft_hpo._names import TAG_RESUMED_FROM
from graft_hpo._names import TAG_ROLE
from graft_hpo._names import TAG_STOP_REASON
from graft_hpo._names import TAG_SWEEP_ID
from graft_hpo._names import TRAIN_LOSS
from graft_hpo._names import VAL_ACC
from graft_hpo.config import PipelineConfig
from graft_hpo.config import apply_overrides
from graft_hpo.config import flatten_config
from graft_hpo.exceptions import ConfigError
from graft_hpo.exceptions import TrialFailedError
from graft_hpo.selection import Ranking
from graft_hpo.sweep._checkpoint import Checkpoints
from graft_hpo.sweep._checkpoint import read_checkpoint
from graft_hpo.sweep._search import EMISSIONS_METRICS
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import RunRecord
from graft_hpo.tracking import last_logged_s
from graft_hpo.tracking import query_runs
from graft_hpo.trial import Resume
from graft_hpo.trial import TrialHooks
from graft_hpo.trial import TrialResult
from graft_hpo.trial import run_trial
from graft_hpo.trial import start_trial_run

if TYPE_CHECKING:
    from graft_hpo.sweep._plan import SweepPlan

__all__ = ["TrialPlan", "check_measured", "trainable", "trial_runs"]

SCHEDULER_STOP = "stopped early by the scheduler"  # a stopped trial's stop_reason tag

_STOPPED_TRIAL_CLOSE_S = 120  # see trainable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialPlan:
    """What a trial needs of its sweep: built once by the driver
    (:func:`graft_hpo.sweep._driver.trial_plan`) and sent to every trial, so a worker parses no
    search space and recomputes nothing.

    Attributes:
        config: the pipeline; a trial's sampled values apply over it.
        needed: the metrics every validated report must carry (the objectives; ASHA's metric).
        rungs: the epochs the scheduler compares trials at: a trial validates there.
        storage: the sweep's Ray storage; checkpoints are read only from inside it.
    """

    config: PipelineConfig
    sweep_id: str
    tracking_uri: str
    experiment: str
    parent_run_id: str
    needed: tuple[str, ...]
    rungs: frozenset[int]
    storage: str


class _ReportToRay(TrialHooks):
    """Each epoch's metrics to Ray (ASHA decides on them; Optuna gets the final report)."""

    def __init__(self, needed: Sequence[str], checkpoints: Checkpoints) -> None:
        self.run_id: str | None = None
        self.stopped = False
        self.needed = needed  # the objectives: Ray refuses a report without them
        self.checkpoints = checkpoints

    def on_trial_start(self, run_id: str | None) -> None:
        self.run_id = self.checkpoints.run_id = run_id

    def on_train_start(self, state: Any) -> None:
        state.eval_at |= self.checkpoints.rungs  # the scheduler's rungs: validated there
        # the clock of the checkpoints' cost share starts with training, not with the process
        # and the data's loading (else a worker's first trial checkpointed after one epoch)
        self.checkpoints.started = self.checkpoints.last_at = time.perf_counter()

    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None:
        from ray import tune

        # the trial's time spent checkpointing so far, written and persisted with the report it
        # goes with; the last epoch's value is in the final metrics (set before returning)
        metrics[CHECKPOINT_S] = self.checkpoints.spent_s
        if state.epoch + 1 >= self.checkpoints.epochs:
            # the last epoch: the final report follows with the same metrics, marked done; a
            # scheduler with a rung here would stop a trial that has trained every epoch
            return
        due = self.checkpoints.due(state.epoch + 1)
        if VAL_ACC in metrics:
            check_measured(metrics, self.needed)
        elif not due:  # no validation this epoch (train.eval_every > 1), nothing to report
            return
        # else: a checkpoint without a validation; the scheduler and Optuna pass it by
        report = {**metrics, "epoch": state.epoch, EPOCHS_DONE: state.epoch + 1}
        report[ATTR_MLFLOW_RUN] = self.run_id
        try:
            if not (due and self._report_with_checkpoint(state, metrics, report)):
                tune.report(report)
        except SystemExit:
            # A scheduler (ASHA) stopped the trial: Ray's report raises SystemExit(0) in the
            # training thread. Stop after this epoch, cooperatively, so the run is closed and
            # measured; the driver's callback closes it too if Ray ends the process first.
            self.stopped = True
            state.should_stop = True
            state.stop_reason = SCHEDULER_STOP

    def _report_with_checkpoint(
        self, state: Any, metrics: dict[str, float], report: dict[str, Any]
    ) -> bool:
        """Report with a checkpoint of the trial. False when it cannot be written or persisted
        (e.g. the sweep's storage is not shared with this node): the trial goes on without
        checkpoints, and the report is still to be sent."""
        from ray import tune

        try:
            with self.checkpoints.written(state.snapshot(), metrics) as folder:
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
        except Exception as err:  # a checkpoint never fails a trial
            logger.warning(
                "trial %s: no checkpoint after epoch %d (%s: %s); it goes on without them",
                self.checkpoints.owner.get("trial_id"),
                state.epoch,
                type(err).__name__,
                err,
            )
            self.checkpoints.off = True
            return False
        finally:
            metrics[CHECKPOINT_S] = self.checkpoints.spent_s
        return True


def trainable(params: dict[str, Any], *, plan: TrialPlan, ranking: Ranking | None = None) -> None:
    """Train one sampled configuration; report per epoch and once more at the end."""
    import torch
    from ray import tune

    # A trial stopped by the scheduler closes its run when its actor is reused for the next
    # trial; Tune waits only this long for that (default 2 s) before failing the next trial.
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", str(_STOPPED_TRIAL_CLOSE_S))
    torch.set_num_threads(max(1, int(plan.config.resources.cpu)))
    trial_id = tune.get_context().get_trial_id()
    earlier, over = _look_back(plan, trial_id)
    if over:
        return
    try:
        config = apply_overrides(plan.config, params)
    except ConfigError as err:  # a draw the cross-checks refuse (val + test fractions >= 1)
        refused = _refused(plan, plan.config, trial_id, err, sampled=params)
        tune.report({FAILED_KEY: refused.error, ATTR_MLFLOW_RUN: refused.run_id})
        return
    owner = {"sweep_id": plan.sweep_id, "trial_id": trial_id}
    saved = read_checkpoint(tune.get_checkpoint(), storage=plan.storage, owner=owner)
    resume = _resume(plan, earlier, saved)
    checkpoints = Checkpoints(
        config.train.checkpoint_every,
        rungs=set(plan.rungs),
        epochs=config.train.epochs,
        owner=owner,
        spent=resume.spent,
    )
    reporter = _ReportToRay(plan.needed, checkpoints)
    try:
        result = _train(plan, config, trial_id, reporter, ranking, resume)
    except ConfigError as err:  # bad input only a worker sees (its data, a model's option)
        result = _refused(plan, config, trial_id, err)
    if result.status != "FINISHED":
        # Not an exception: Ray would retry it (Ray retries lost workers, and it cannot tell
        # them apart), and it would fail again. Optuna is told FAIL; the run is already FAILED.
        tune.report({FAILED_KEY: result.error or "trial failed", ATTR_MLFLOW_RUN: result.run_id})
        return
    if reporter.stopped:
        # Leave as Ray's own stop does: a normal return makes Ray's wrapper report once more,
        # and that report blocks the thread forever, so a reused actor never frees up.
        raise SystemExit(0)
    try:
        check_measured(result.metrics, plan.needed)
    except TrialFailedError as err:  # e.g. codecarbon failed: the trial cannot be ranked
        error = f"TrialFailedError: {err}"
        if result.run_id is not None:
            run = RunLogger(plan.tracking_uri, result.run_id)
            run.set_tags({TAG_ERROR: error})
            run.end("FAILED")
        tune.report({FAILED_KEY: error, ATTR_MLFLOW_RUN: result.run_id})
        return
    tune.report({**result.metrics, ATTR_MLFLOW_RUN: result.run_id, DONE_KEY: 1})


def _look_back(plan: TrialPlan, trial_id: str) -> tuple[RunRecord | None, bool]:
    """The run of this trial's earlier attempt, and whether the trial is over, reported to
    Tune: replayed (it had finished), failed by itself (it would again), or a store this node
    cannot open (raised, Ray would retry it as a lost worker)."""
    from ray import tune

    try:
        earlier = _earlier_run(plan, trial_id)
    except ConfigError as err:
        tune.report({FAILED_KEY: f"ConfigError: {err}"})
        return None, True
    if earlier is not None and earlier.status == "FINISHED":
        # re-run by a resumed sweep after it had finished: never twice
        tune.report({**earlier.metrics, ATTR_MLFLOW_RUN: earlier.run_id, DONE_KEY: 1})
        return earlier, True
    if earlier is not None and earlier.status == "FAILED":
        tune.report({FAILED_KEY: earlier.tags.get(TAG_ERROR, ""), ATTR_MLFLOW_RUN: earlier.run_id})
        return earlier, True
    return earlier, False


def _train(
    plan: TrialPlan,
    config: PipelineConfig,
    trial_id: str,
    reporter: _ReportToRay,
    ranking: Ranking | None,
    resume: Resume,
) -> TrialResult:
    """Train and log the sampled configuration as a nested run of the sweep."""
    return run_trial(
        config,
        tracking_uri=plan.tracking_uri,
        parent_run_id=plan.parent_run_id,
        run_name=_run_name(config, trial_id),
        tags=_trial_tags(plan, trial_id),
        hooks=[reporter],
        evaluate_test=True,  # test_acc of the trials trained to the end: a front to score
        ranking=ranking,
        resume=resume,
    )


def _run_name(config: PipelineConfig, trial_id: str) -> str:
    return f"{config.selection.strategy}-{trial_id}"  # the id Ray prints for the trial


def _trial_tags(plan: TrialPlan, trial_id: str) -> dict[str, str]:
    import ray

    return {
        TAG_SWEEP_ID: plan.sweep_id,
        TAG_ROLE: "trial",
        TAG_RAY_TRIAL: trial_id,
        TAG_NODE: socket.gethostname(),
        TAG_NODE_ID: ray.get_runtime_context().get_node_id(),
    }


def _refused(
    plan: TrialPlan,
    config: PipelineConfig,
    trial_id: str,
    err: ConfigError,
    sampled: Mapping[str, Any] | None = None,
) -> TrialResult:
    """A sampled configuration the trial refused before training, as a FAILED run with its
    params (``sampled``' values over ``config``'s, when they made no config) and the error:
    raised, it would read as a lost worker, which Ray retries (the same refusal each time)
    and the sweep's failure list would not name."""
    error = f"ConfigError: {err}"
    params = {**flatten_config(config), **(sampled or {})}
    run = start_trial_run(
        config,
        params,
        uri=plan.tracking_uri,
        parent=plan.parent_run_id,
        name=_run_name(config, trial_id),
        tags={**_trial_tags(plan, trial_id), TAG_ERROR: error},
    )
    run.end("FAILED")
    logger.warning("trial %s refused its configuration: %s", trial_id, err)
    return TrialResult(run.run_id, "FAILED", params, {}, error, {TAG_ERROR: error})


def check_measured(metrics: dict[str, float], needed: Sequence[str]) -> None:
    """Fail a trial whose report lacks an objective (Ray would end the whole sweep)."""
    missing = [m for m in needed if m not in metrics]
    if missing:
        raise TrialFailedError(
            f"{', '.join(missing)} not measured, so the trial cannot be ranked "
            "(see the run's emissions_error tag if it is an emissions metric)"
        )


def _earlier_run(plan: TrialPlan, trial_id: str) -> RunRecord | None:
    """The run of an earlier attempt of this Ray trial, if one was started.

    FINISHED: the trial had ended, and a resumed sweep runs it again (it is replayed).
    FAILED: it failed by itself. Otherwise its process was lost: RUNNING (the worker or node
    died), KILLED (an interrupted sweep closed it), or FINISHED tagged early-stopped (Tune stops
    running trials the way ASHA does when a sweep is interrupted; a trial ASHA stopped is never
    run again): it goes on. The last two come back with the status they are read as.
    """
    mine = trial_runs(plan, trial_id)
    if not mine:
        return None
    run = mine[0]  # newest first
    if run.status == "FINISHED" and run.tags.get(TAG_EARLY_STOPPED) == "true":
        return dataclasses.replace(run, status="KILLED")
    return run


def trial_runs(plan: SweepPlan | TrialPlan, trial_id: str) -> list[RunRecord]:
    """The runs of Ray trial ``trial_id`` of the sweep, newest first: found by the store's own
    search, so a trial's start costs the same however many trials the sweep holds."""
    return query_runs(
        plan.tracking_uri, plan.experiment, sweep_id=plan.sweep_id, tags={TAG_RAY_TRIAL: trial_id}
    )


def _resume(plan: TrialPlan, earlier: RunRecord | None, saved: Any) -> Resume:
    """Go on in ``earlier``'s run from checkpoint ``saved`` (None: from the first epoch), with
    what the lost attempts spent: what the checkpoint recorded, raised to what the run logged
    after it (the epochs trained again were paid for too)."""
    if earlier is None:
        return Resume()
    spent = dict(saved["spent"]) if saved is not None else {}
    for key in EMISSIONS_METRICS:
        if key in earlier.metrics:
            spent[key] = max(spent.get(key, 0.0), earlier.metrics[key])
    since = saved["wall_time"] if saved is not None else (earlier.start_time_ms or 0) / 1000
    last = last_logged_s(plan.tracking_uri, earlier.run_id, TRAIN_LOSS)
    lost_s = max(0.0, (last or since) - since)
    spent[DURATION_S] = max(
        spent.get(DURATION_S, 0.0) + lost_s, earlier.metrics.get(DURATION_S, 0.0)
    )
    attempts = int(earlier.tags.get(TAG_ATTEMPTS, "1")) + 1
    epoch = len(saved["loop"]["progress"]["history"]) if saved is not None else 0
    run = RunLogger(plan.tracking_uri, earlier.run_id)
    run.reopen(drop_tags=[TAG_STOP_REASON, TAG_KILLED_REASON])
    run.set_tags({TAG_EARLY_STOPPED: "false", TAG_ATTEMPTS: attempts, TAG_RESUMED_FROM: epoch})
    logger.warning(
        "trial %s: attempt %d goes on from epoch %d in run %s",
        earlier.tags.get(TAG_RAY_TRIAL),
        attempts,
        epoch,
        earlier.run_id,
    )
    return Resume(earlier.run_id, saved["loop"] if saved is not None else None, spent)
