"""Ray Tune runs the trials; Optuna (through Ray's OptunaSearch) chooses them.

The only module that imports ray. One sweep:

1. ``prepare``: validate the pipeline, its search space, objectives and scheduler; open the
   MLflow store and create the experiment and the sweep's parent run (in the driver, once, so
   parallel trials never race MLflow's migrations); write ``sweep.json`` into the sweep folder.
2. ``execute``: start (or join) Ray, check the resources a trial asks for exist, then run a
   ``Tuner`` whose trainable calls :func:`graft_hpo.trial.run_trial` with the sampled params.
   The Optuna study lives in sqlite in the sweep folder (resume, optuna-dashboard).
3. ``finish``: mark early-stopped and interrupted trial runs, compute the Pareto front, tag
   the winners, log the front (JSON, CSV, PNG) on the parent run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from graft_hpo.config import PipelineConfig
from graft_hpo.config import apply_overrides
from graft_hpo.config import config_from_dict
from graft_hpo.config import config_to_dict
from graft_hpo.exceptions import ConfigError
from graft_hpo.exceptions import TrialFailedError
from graft_hpo.selection import Ranking
from graft_hpo.sweep._budget import Budgets
from graft_hpo.sweep._budget import budget_gate
from graft_hpo.sweep._budget import read_stop
from graft_hpo.sweep._budget import write_json
from graft_hpo.sweep._budget import write_stop
from graft_hpo.sweep._ranking import ranking_cost
from graft_hpo.sweep._ranking import read_ranking
from graft_hpo.sweep._space import SearchSpace
from graft_hpo.sweep._space import define_by_run
from graft_hpo.tracking import METRICS
from graft_hpo.tracking import TAG_EARLY_STOPPED
from graft_hpo.tracking import TAG_ROLE
from graft_hpo.tracking import TAG_SWEEP_ID
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import query_runs
from graft_hpo.tracking import redact
from graft_hpo.trial import TrialHooks
from graft_hpo.trial import run_trial

__all__ = ["SweepPlan", "execute"]

logger = logging.getLogger(__name__)

TAG_RAY_TRIAL = "ray_trial_id"
TAG_NODE = "node"
DONE_KEY = "trial_done"  # set on a trial's final report only: its absence means stopped early
EPOCHS_DONE = "epochs_done"  # on every epoch's report: the scheduler's clock (not the final one)
_STOPPED_TRIAL_CLOSE_S = 120  # see _trainable


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep needs, resolved in the driver; plain data, picklable."""

    config: PipelineConfig
    space: SearchSpace
    sweep_id: str
    sweep_dir: str  # absolute
    tracking_uri: str  # absolute
    experiment: str
    parent_run_id: str
    trials: int
    address: str | None
    owns_parent_run: bool = True  # False inside `mlflow run`, which ends its own run

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return [(o.metric, o.mode) for o in self.config.search.objectives]


# ---- the trainable: runs in a Ray worker process


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


def _trainable(
    params: dict[str, Any], *, plan_dict: dict[str, Any], ranking: Ranking | None = None
) -> None:
    """Train one sampled configuration; report per epoch and once more at the end."""
    import ray
    import torch
    from ray import tune

    plan = _plan_from_dict(plan_dict)
    config = apply_overrides(plan.config, params)
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
    if plan.config.search.scheduler is not None:
        needed.append(plan.config.search.scheduler.metric)
    reporter = _ReportToRay(needed, scheduler_rungs(plan.config))
    result = run_trial(
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
        ranking=ranking,
    )
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


def plan_to_dict(plan: SweepPlan) -> dict[str, Any]:
    return {
        "config": config_to_dict(plan.config),
        "space": plan.space.to_dict(),
        "space_source": plan.space.source,
        "sweep_id": plan.sweep_id,
        "sweep_dir": plan.sweep_dir,
        "tracking_uri": plan.tracking_uri,
        "experiment": plan.experiment,
        "parent_run_id": plan.parent_run_id,
        "trials": plan.trials,
        "address": plan.address,
        "owns_parent_run": plan.owns_parent_run,
    }


def _plan_from_dict(data: dict[str, Any]) -> SweepPlan:
    from graft_hpo.sweep._space import space_from_dict

    return SweepPlan(
        config=config_from_dict(data["config"]),
        space=space_from_dict(data["space"], source=data.get("space_source")),
        sweep_id=data["sweep_id"],
        sweep_dir=data["sweep_dir"],
        tracking_uri=data["tracking_uri"],
        experiment=data["experiment"],
        parent_run_id=data["parent_run_id"],
        trials=data["trials"],
        address=data.get("address"),
        owns_parent_run=data.get("owns_parent_run", True),
    )


# ---- the driver side


def _sampler(config: PipelineConfig) -> Any:
    import optuna

    search = config.search
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=search.seed, multivariate=True, constant_liar=True)
    if search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=search.seed)
    if search.sampler == "gp":
        return optuna.samplers.GPSampler(seed=search.seed)
    return optuna.samplers.RandomSampler(seed=search.seed)


def _scheduler(config: PipelineConfig) -> Any:
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.schedulers import FIFOScheduler

    sched = config.search.scheduler
    if sched is None:
        return FIFOScheduler()
    return ASHAScheduler(
        # epochs, not reports: a trial validates, and so reports, only at some epochs
        time_attr=EPOCHS_DONE,
        metric=sched.metric,
        mode=sched.mode,
        max_t=config.train.epochs + 1,  # never reached: the last epoch is not a stop
        grace_period=sched.grace_period,
        reduction_factor=sched.reduction_factor,
    )


def scheduler_rungs(config: PipelineConfig) -> set[int]:
    """The epochs (1-based) at which the scheduler compares trials: ASHA's milestones
    ``grace_period * reduction_factor**k`` below ``max_t``, rounded up, as Ray computes them.

    A trial validates after these epochs whatever ``train.eval_every`` says, so ASHA can
    decide there and nowhere else: no trial pays a validation pass per epoch for it.
    """
    sched = config.search.scheduler
    if sched is None:
        return set()
    max_t, rf = config.train.epochs + 1, sched.reduction_factor
    count = int(math.log(max_t / sched.grace_period) / math.log(rf) + 1)
    return {math.ceil(sched.grace_period * rf**k) for k in range(count)}


def init_ray(address: str | None, *, num_cpus: int | None = None) -> None:
    """Start a local Ray bound to loopback, or join the cluster at ``address``.

    :func:`run_sweep` calls it itself; call it first to share one Ray between several sweeps
    (a benchmark, a pipeline step that sweeps more than once). A no-op if Ray is running.

    Raises:
        ConfigError: nothing answers at ``address``, or it is not a Ray cluster.
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        _keep_on_loopback()
        ray.init(
            include_dashboard=False,
            num_cpus=num_cpus,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
        return
    _check_reachable(address)
    host = address.removeprefix("ray://").rpartition(":")[0]
    if host in ("127.0.0.1", "localhost"):
        _keep_on_loopback()  # else Ray rewrites the head's address to the host's public IP
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ConfigError(
            f"--address {address!r}: cannot join a Ray cluster there: {err}"
        ) from err


def _keep_on_loopback() -> None:
    """Make Ray honour 127.0.0.1: unless clusters are disabled, it swaps loopback for the
    host's routable address and listens on every interface.

    The variable reaches the raylet and workers; Ray reads it into a constant at import, so
    a driver that imported ray already needs the constant set too.
    """
    variable = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    os.environ.setdefault(variable, "0")
    if os.environ[variable] == "0":
        with contextlib.suppress(ImportError, AttributeError):
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False


def _check_reachable(address: str) -> None:
    """Refuse in seconds an address nothing listens on (``ray.init`` retries for minutes)."""
    if address == "auto":
        return
    client = address.startswith("ray://")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host:
        host, port = port, ""
    try:
        port_number = int(port) if port else (10001 if client else 6379)
        socket.create_connection((host, port_number), timeout=5).close()
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"--address {address!r}: cannot join a Ray cluster there: cannot connect to "
            f"{host}:{port or '(default port)'} ({err}); expected HOST:PORT of a running Ray "
            "head, ray://HOST:10001, or auto"
        ) from err


def check_resources(config: PipelineConfig) -> None:
    """Refuse at once a trial that no node of the cluster can host (instead of a hang)."""
    import ray

    wanted = {"CPU": config.resources.cpu, "GPU": config.resources.gpu}
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    for node in nodes:
        have = node.get("Resources", {})
        if all(have.get(k, 0.0) >= v for k, v in wanted.items() if v > 0):
            return
    best = {
        k: max((n.get("Resources", {}).get(k, 0.0) for n in nodes), default=0.0) for k in wanted
    }
    raise ConfigError(
        "resources must fit on one node: a trial asks for "
        f"resources.cpu={config.resources.cpu:g}, resources.gpu={config.resources.gpu:g}; "
        f"the largest node has cpu={best['CPU']:g}, "
        f"gpu={best['GPU']:g}"
    )


class _Progress:
    """One line per finished trial, instead of Ray's progress tables."""

    def __init__(self, plan: SweepPlan, printer: Callable[[str], None]) -> None:
        self.plan = plan
        self.printer = printer
        self.done = 0

    def line(self, status: str, trial: Any, note: str = "") -> None:
        self.done += 1
        result = trial.last_result or {}
        objs = "  ".join(
            f"{m}={result[m]:.4g}" for m, _ in self.plan.objectives if _is_number(result.get(m))
        )
        objs = f"{objs}  {note}" if note else objs
        strategy = trial.config.get("selection.strategy", self.plan.config.selection.strategy)
        total = self.plan.trials
        count = f"[{self.done:>{len(str(total))}}/{total}]"  # "[ 9/12]": the columns stay put
        self.printer(f"{count} trial {trial.trial_id} {status:<13} {strategy:<6} {objs}")


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _callback(plan: SweepPlan, printer: Callable[[str], None]) -> Any:
    from ray.tune import Callback

    progress = _Progress(plan, printer)

    class SweepCallback(Callback):
        """Driver-side bookkeeping: tag trials a scheduler stopped; print progress."""

        def on_trial_complete(
            self, iteration: int, trials: list[Any], trial: Any, **_: Any
        ) -> None:
            result = trial.last_result or {}
            if result.get(DONE_KEY):
                progress.line("FINISHED", trial)
                return
            _close_stopped_run(plan, result)
            progress.line("early-stopped", trial)

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **_: Any) -> None:
            error = _trial_error(trial)
            if plan.config.search.fail_fast:
                # the gate then starts no new trial; running ones finish (and are measured)
                reason = f"trial {trial.trial_id} failed: {error} (search.fail_fast)"
                write_stop(plan.sweep_dir, reason)
            progress.line("FAILED", trial, error)

    return SweepCallback()


def _close_stopped_run(plan: SweepPlan, result: dict[str, Any]) -> None:
    """A scheduler stopped the trial: its run keeps its last epoch's metrics, tagged."""
    run_id = result.get("mlflow_run_id")
    if not run_id:
        return
    run = RunLogger(plan.tracking_uri, run_id)
    run.set_tags({TAG_EARLY_STOPPED: "true"})
    # at the reported epoch's step: this logger has seen no step, and step 0 would put the
    # last epoch's cumulative energy into the first epoch's history
    run.log_metrics(
        {k: float(v) for k, v in result.items() if k in _FINAL and _is_number(v)},
        step=int(result["epoch"]) if _is_number(result.get("epoch")) else None,
    )
    run.end("FINISHED")


# what an epoch's report carries of the final metrics (not the whole-run duration and count)
_FINAL = set(METRICS) - {"duration_s", "epochs_completed"}


def optuna_storage(plan: SweepPlan) -> str:
    """The study's RDB URL: ``search.storage``, else sqlite in the sweep folder."""
    return plan.config.search.storage or f"sqlite:///{Path(plan.sweep_dir) / 'optuna.db'}"


def open_storage(url: str) -> Any:
    """Optuna's RDB storage at ``url``; ConfigError (naming ``search.storage``) if unreachable."""
    import optuna
    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    try:
        return RDBStorage(url, heartbeat_interval=None)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(
            f"search.storage {redact('search.storage', url)!r} cannot be opened as an Optuna "
            f"RDB storage: {reason}"
        ) from err
    finally:
        optuna.logging.disable_default_handler()


def execute(plan: SweepPlan, *, resume: bool, printer: Callable[[str], None]) -> bool:
    """Run (or continue) the sweep's trials on Ray.

    Returns:
        True when the sweep has ended: every trial ran, or a budget or ``fail_fast`` stopped it
        (``stop.json`` in the sweep folder says why); False when Tune stopped early (Ctrl-C:
        Tune catches SIGINT itself, saves its state and returns from ``fit``).
    """
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    init_ray(plan.address)
    check_resources(plan.config)
    trainable = tune.with_resources(
        # the shared ranking travels through Ray's object store: no shared folder needed
        tune.with_parameters(
            _trainable, plan_dict=plan_to_dict(plan), ranking=read_ranking(plan.sweep_dir)
        ),
        {"cpu": plan.config.resources.cpu, "gpu": plan.config.resources.gpu},
    )
    experiment_path = Path(plan.sweep_dir) / "ray"
    if resume:
        tuner = tune.Tuner.restore(
            str(experiment_path),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
        )
    else:
        search = OptunaSearch(
            space=define_by_run(plan.space),
            metric=[m for m, _ in plan.objectives],
            mode=[mode for _, mode in plan.objectives],
            sampler=_sampler(plan.config),
            storage=open_storage(optuna_storage(plan)),
            study_name=plan.sweep_id,
        )
        gate = budget_gate(
            search,
            plan.config.search.max_concurrent,
            Budgets.of(plan.config.search),
            tracking_uri=plan.tracking_uri,
            experiment=plan.experiment,
            sweep_id=plan.sweep_id,
            sweep_dir=plan.sweep_dir,
            shared=ranking_cost(plan.sweep_dir),  # written before any trial, fixed since
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=gate,
                scheduler=_scheduler(plan.config),
                num_samples=plan.trials,
                max_concurrent_trials=plan.config.search.max_concurrent,
                # one worker process serves trial after trial: torch, MLflow and codecarbon
                # load once, not per trial (halves a sweep of short trials here)
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="ray",
                storage_path=plan.sweep_dir,
                callbacks=[_callback(plan, printer)],
                verbose=0,
                # fail-fast is ours (the budget gate): Tune's would kill running trials
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
    start = time.perf_counter()
    # Our callback prints one line per trial, with the error of a failed one; Ray's own
    # tracebacks and "trials did not complete" tables would bury it.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    with contextlib.redirect_stdout(sys.stderr), _watch_interruption() as watch:
        grid = tuner.fit()  # stdout is for --json's one object
    logger.info("sweep %s: trials ran for %.1fs", plan.sweep_id, time.perf_counter() - start)
    if watch.hooked:  # Tune caught SIGINT, stopped the trials and saved its state
        return not watch.happened()
    # Tune's signal hook was not found: judge by the trials that ended
    done = grid.num_terminated + grid.num_errors >= plan.trials
    return bool(done) or read_stop(plan.sweep_dir) is not None


@dataclass
class _Interruption:
    hooked: bool = False  # Tune's interruption event could be watched
    events: list[Any] = field(default_factory=list)

    def happened(self) -> bool:
        return any(event.is_set() for event in self.events)


@contextlib.contextmanager
def _watch_interruption() -> Iterator[_Interruption]:
    """Whether Tune's ``fit`` ended because of Ctrl-C (SIGINT).

    Tune catches SIGINT itself and returns from ``fit`` as if done; its event is the only
    reliable witness (trial counts are not: the trials it stops may count as terminated).
    The event is captured by wrapping Tune's private ``_setup_signal_catching``; a Ray
    version without it leaves ``hooked`` False and the caller falls back on counts.
    """
    watch = _Interruption()
    try:
        from ray.tune import tune as tune_module

        original = tune_module._setup_signal_catching
    except (ImportError, AttributeError):
        yield watch
        return

    def capture() -> Any:
        event = original()
        watch.events.append(event)
        return event

    tune_module._setup_signal_catching = capture
    watch.hooked = True
    try:
        yield watch
    finally:
        tune_module._setup_signal_catching = original


def write_plan(plan: SweepPlan) -> Path:
    path = Path(plan.sweep_dir) / "sweep.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, plan_to_dict(plan), indent=2)
    return path


def read_plan(sweep_dir: str) -> SweepPlan:
    path = Path(sweep_dir) / "sweep.json"
    if not path.is_file():
        raise ConfigError(f"SWEEP_DIR {sweep_dir!r} holds no sweep.json: not a sweep folder")
    try:
        return _plan_from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"SWEEP_DIR {sweep_dir!r}: sweep.json is not a readable graft-hpo sweep plan "
            f"({type(err).__name__}: {err})"
        ) from err
