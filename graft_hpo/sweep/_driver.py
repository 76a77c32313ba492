"""The driver: run (or continue) a sweep's trials on Ray Tune, and watch them end.

Tune runs :func:`~graft_hpo.sweep._trainable.trainable` once per trial, asking the searcher
(Optuna behind the budget gate) for each configuration; the scheduler stops poor trials at its
rungs. This module's callback closes the runs of stopped trials, records a failure under
``search.fail_fast`` and keeps the console up to date.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graft_hpo._names import ATTR_MLFLOW_RUN
from graft_hpo._names import DONE_KEY
from graft_hpo._names import FAILED_KEY
from graft_hpo._names import METRICS
from graft_hpo._names import TAG_EARLY_STOPPED
from graft_hpo._names import TAG_ERROR
from graft_hpo._names import TAG_STOP_REASON
from graft_hpo.exceptions import ConfigError
from graft_hpo.sweep._checkpoint import ray_storage
from graft_hpo.sweep._console import Printer
from graft_hpo.sweep._console import SweepConsole
from graft_hpo.sweep._console import is_number
from graft_hpo.sweep._plan import SweepPlan
from graft_hpo.sweep._ray_compat import refill_named_checkpoints
from graft_hpo.sweep._ray_compat import watch_interruption
from graft_hpo.sweep._search import scheduler
from graft_hpo.sweep._search import scheduler_rungs
from graft_hpo.sweep._search import searcher
from graft_hpo.sweep._trainable import SCHEDULER_STOP
from graft_hpo.sweep._trainable import TrialPlan
from graft_hpo.sweep._trainable import trainable
from graft_hpo.sweep._trainable import trial_runs
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import sweep_runs

__all__ = ["execute", "trial_plan"]

logger = logging.getLogger(__name__)

# a trial's checkpoints kept in the sweep's storage: the latest, and one before it should the
# latest be cut short by the loss of its node
_CHECKPOINTS_KEPT = 2


def execute(
    plan: SweepPlan, *, resume: bool, say: Printer, progress: bool = False, verbose: bool = False
) -> str | None:
    """Run (or continue) the sweep's trials on Ray (started by then: prepare, or resume).

    Args:
        say: gets a line per finished trial (see :class:`SweepConsole`).
        progress: also show a live progress bar on stderr.
        verbose: let Ray print to the console too (its experiment box, its warnings).

    Returns:
        Why the sweep stopped before its trial count (a budget, ``search.fail_fast``), or None
        when every trial ran.

    Raises:
        KeyboardInterrupt: Tune stopped early (Ctrl-C: Tune catches SIGINT itself, saves its
            state and returns from ``fit``); the sweep can be resumed.
    """
    # A recorded stop stays: resumed, a sweep that a budget or fail-fast stopped keeps its reason
    # (Tune's restored searcher is finished and asks the gate nothing; one that is not is told
    # to stop again at once by the same record)
    folder = plan.folder
    # resumed, the console goes on from what earlier sessions did (one read of the store)
    where = {"experiment": plan.experiment, "tracking_uri": plan.tracking_uri}
    earlier = sweep_runs(sweep_id=plan.sweep_id, **where) if resume else []
    console = SweepConsole(
        plan.objectives,
        plan.trials,
        say,
        bar=progress,
        spent=plan.ranking_cost,
        default_strategy=plan.config.selection.strategy,
        earlier=[(r.run_id, r.status, r.metrics) for r in earlier],
    )
    folder.session_started()
    _SESSIONS[plan.sweep_id] = (plan, console)
    try:
        ended = _fit(plan, resume=resume, verbose=verbose)
    except KeyboardInterrupt:
        ended = False
    finally:
        _SESSIONS.pop(plan.sweep_id, None)
        console.close()
        folder.session_ended()
    stop_reason = folder.read_stop()  # the budget gate's or fail-fast's record
    # None: Tune's signal hook was not found, and not every trial ended: a recorded stop
    if not (ended or (ended is None and stop_reason is not None)):
        raise KeyboardInterrupt(f"sweep {plan.sweep_id} interrupted")
    return stop_reason


def _fit(plan: SweepPlan, *, resume: bool, verbose: bool) -> bool | None:
    """Run Tune: whether the sweep ended (False: Ctrl-C), or None when Tune's signal hook was
    not found and not every trial ended."""
    tuner = _tuner(plan, resume=resume)
    start = time.perf_counter()
    if not verbose:
        # The console's lines say what happened, with a failed trial's error; Ray's own
        # tracebacks and "trials did not complete" tables would bury them.
        logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    with contextlib.ExitStack() as stack:
        # a failed trial's final report holds no objective (Tune would refuse it); graft-hpo
        # checks the objectives itself (prepare, and check_measured in the trial)
        stack.enter_context(_environ(TUNE_DISABLE_STRICT_METRIC_CHECKING="1"))
        # stdout is for --json's one object: Ray's prints go to stderr, or nowhere
        sink = sys.stderr if verbose else stack.enter_context(open(os.devnull, "w"))
        stack.enter_context(contextlib.redirect_stdout(sink))
        watch = stack.enter_context(watch_interruption())
        grid = tuner.fit()
    logger.debug("sweep %s: trials ran for %.1fs", plan.sweep_id, time.perf_counter() - start)
    if watch.hooked:  # Tune caught SIGINT, stopped the trials and saved its state
        return not watch.happened()
    # Tune's signal hook was not found: judge by the trials that ended
    return True if grid.num_terminated + grid.num_errors >= plan.trials else None


def trial_plan(plan: SweepPlan) -> TrialPlan:
    """What every trial needs of the sweep, built once here: a worker parses no search space."""
    needed = [m for m, _ in plan.objectives]
    sched = plan.config.search.scheduler
    if sched is not None and sched.type == "asha":  # MO-ASHA ranks on the objectives
        needed.append(sched.metric)
    return TrialPlan(
        config=plan.config,
        sweep_id=plan.sweep_id,
        tracking_uri=plan.tracking_uri,
        experiment=plan.experiment,
        parent_run_id=plan.parent_run_id,
        needed=tuple(needed),
        rungs=frozenset(scheduler_rungs(plan.config)),
        storage=ray_storage(plan.sweep_dir, plan.sweep_id, plan.config.search.checkpoint_storage),
    )


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` set, as it was again afterwards."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _tuner(plan: SweepPlan, *, resume: bool) -> Any:
    """A new Tuner for the plan, or the sweep's saved one restored."""
    from ray import tune

    trial = trial_plan(plan)
    runnable = tune.with_resources(
        # the shared ranking travels through Ray's object store: no shared folder needed
        tune.with_parameters(trainable, plan=trial, ranking=plan.folder.read_ranking()),
        {"cpu": plan.config.resources.cpu, "gpu": plan.config.resources.gpu},
    )
    experiment = trial.storage
    storage_path, name = experiment.rsplit("/", 1)
    if resume:
        refilled = refill_named_checkpoints(experiment)
        if refilled:  # docs/reliability.md: a driver killed while Tune snapshotted its state
            logger.warning(
                "%d checkpoint(s) the sweep's saved state names were gone; each trial goes on "
                "from its newest checkpoint instead: %s",
                len(refilled),
                ", ".join(f"{p.parent.name}/{p.name}" for p in refilled),
            )
        try:
            return tune.Tuner.restore(
                experiment,
                trainable=runnable,
                resume_unfinished=True,
                resume_errored=False,
                restart_errored=False,
            )
        except RecursionError as err:  # the saved state holds a console and its tqdm bar
            raise ConfigError(
                f"sweep folder {plan.sweep_dir} cannot be resumed: a graft-hpo older than this "
                "one saved its Tune state (ray/tuner.pkl) with the terminal's progress bar in "
                f"it, which cannot be read back. Its finished trials stay in the store "
                f"(graft-hpo pareto --sweep-id {plan.sweep_id}); start a new sweep for more"
            ) from err
    return tune.Tuner(
        runnable,
        tune_config=tune.TuneConfig(
            search_alg=searcher(plan),
            scheduler=scheduler(plan.config, plan.sweep_dir),
            num_samples=plan.trials,
            max_concurrent_trials=plan.config.search.max_concurrent,
            # one worker process serves trial after trial: torch, MLflow and codecarbon load
            # once, not per trial (halves a sweep of short trials here)
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,  # "ray" in the sweep folder, the sweep id in checkpoint_storage
            storage_path=storage_path,
            callbacks=[_callback(plan.sweep_id)],
            verbose=0,
            # a trial whose worker dies restarts from its last checkpoint (the trainable does
            # not train one that failed by itself again); fail-fast is ours (the budget gate):
            # Tune's would kill running trials
            failure_config=tune.FailureConfig(max_failures=plan.config.search.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=_CHECKPOINTS_KEPT),
        ),
    )


# The session's plan and console, by sweep id. Tune pickles its callbacks with its state and a
# restored sweep gets the pickled ones back, so the callback holds the sweep id alone and finds
# the running session's here: a console (its tqdm bar) in the pickle broke the restore
# (RecursionError), and a resumed session's trials went to the first session's console.
_SESSIONS: dict[str, tuple[SweepPlan, SweepConsole]] = {}


def _session(sweep_id: str) -> tuple[SweepPlan, SweepConsole]:
    return _SESSIONS[sweep_id]


def _callback(sweep_id: str) -> Any:
    from ray.tune import Callback

    class SweepCallback(Callback):
        """Driver-side bookkeeping: close the runs of stopped trials; keep the console."""

        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **_: Any) -> None:
            _session(sweep_id)[1].started(trial.trial_id)

        def on_trial_result(
            self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **_: Any
        ) -> None:
            _session(sweep_id)[1].reported(trial.trial_id, result)

        def on_trial_complete(
            self, iteration: int, trials: list[Any], trial: Any, **_: Any
        ) -> None:
            plan, console = _session(sweep_id)
            result = trial.last_result or {}
            if result.get(FAILED_KEY):  # it failed by itself (its run says so already)
                self._failed(trial, _last_line(result[FAILED_KEY]))
            elif result.get(DONE_KEY):
                console.ended("FINISHED", trial)
            else:
                _close_stopped_run(plan, result)
                console.ended("early-stopped", trial)

        def on_trial_recover(
            self, iteration: int, trials: list[Any], trial: Any, **_: Any
        ) -> None:
            # its worker (or node) was lost: Ray restarts it from its last checkpoint
            _session(sweep_id)[1].retried(trial, _trial_error(trial).split(". ")[0])

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **_: Any) -> None:
            # lost more than search.max_failures times, or an error outside the training
            error = _trial_error(trial)
            _close_lost_run(_session(sweep_id)[0], trial, error)
            self._failed(trial, error)

        def _failed(self, trial: Any, error: str) -> None:
            plan, console = _session(sweep_id)
            if plan.config.search.fail_fast:
                # the gate then starts no new trial; running ones finish (and are measured)
                reason = f"trial {trial.trial_id} failed: {error} (search.fail_fast)"
                plan.folder.write_stop(reason)
            console.ended("FAILED", trial, error)

    return SweepCallback()


def _close_stopped_run(plan: SweepPlan, result: dict[str, Any]) -> None:
    """A scheduler stopped the trial: its run keeps its last epoch's metrics, tagged."""
    run_id = result.get(ATTR_MLFLOW_RUN)
    if not run_id:
        return
    run = RunLogger(plan.tracking_uri, run_id)
    # the trial tags it too, unless Ray ends its process first (a worker not reused)
    run.set_tags({TAG_EARLY_STOPPED: "true", TAG_STOP_REASON: SCHEDULER_STOP})
    # at the reported epoch's step: this logger has seen no step, and step 0 would put the
    # last epoch's cumulative energy into the first epoch's history
    run.log_metrics(
        # an epoch's report carries every final metric, each as it stood (EnergySoFar)
        {k: float(v) for k, v in result.items() if k in METRICS and is_number(v)},
        step=int(result["epoch"]) if is_number(result.get("epoch")) else None,
    )
    run.end("FINISHED")


def _close_lost_run(plan: SweepPlan, trial: Any, error: str) -> None:
    """A trial that failed for good with its worker lost left its run RUNNING: it ends FAILED
    with the error, as the console says (a trial that failed by itself closed its own)."""
    run_id = (trial.last_result or {}).get(ATTR_MLFLOW_RUN)
    if not run_id:  # lost before its first report: find its run by its Ray trial id
        mine = trial_runs(plan, trial.trial_id)
        if not mine:
            return
        run_id = mine[0].run_id
    run = RunLogger(plan.tracking_uri, run_id)
    if run.status() == "RUNNING":
        run.set_tags({TAG_ERROR: error or "the trial's worker was lost"})
        run.end("FAILED")


def _last_line(error: Any) -> str:
    """The exception line of a Ray error, e.g. ``TrialFailedError: loss became nan``."""
    lines = [ln.strip() for ln in str(error or "").splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _trial_error(trial: Any) -> str:
    """A failed trial's error line; Tune writes ``get_error()``'s copy only later."""
    text = _last_line(trial.get_error())
    if not text and getattr(trial, "error_file", None):
        with contextlib.suppress(OSError):
            text = _last_line(Path(trial.error_file).read_text())
    return text
