"""HPO sweeps: Ray Tune runs the trials, Optuna searches jointly over model and GRAFT knobs.

The only package that imports ray and optuna (lazily, inside the functions). A sweep reads in
one direction, one module per step:

1. prepare (``_prepare``): check the pipeline, its search space and the cluster; rank the
   data once if trials share a GRAFT ranking (``_ranking``); create the parent run and the
   sweep folder (``_folder``, which alone knows its files) holding the plan (``_plan``).
   Ray starts once per sweep (``_ray``): here, or when a sweep resumes.
2. run (``_driver``): Tune runs the trainable (``_trainable``) in Ray's workers, each trial
   given the small plan the driver built for it; Optuna chooses each configuration behind
   the budget gate (``_search``, ``_budget``); the console shows progress (``_console``).
3. finish (``_finish``): one read of the trial runs; the front, its tags and plot, the
   totals; then the pipeline's final stage.

Example:
    >>> import graft_hpo
    >>> result = graft_hpo.run_sweep("mnist", trials=12)  # doctest: +SKIP
    >>> best = [p["metrics"]["val_acc"] for p in result.pareto]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

# re-exported: they were graft_hpo.sweep's names before graft_hpo.space held them
from graft_hpo.exceptions import ConfigError
from graft_hpo.space import ParamSpec
from graft_hpo.space import SearchSpace
from graft_hpo.space import load_space
from graft_hpo.space import validate_space
from graft_hpo.sweep._console import Printer
from graft_hpo.sweep._driver import execute
from graft_hpo.sweep._finish import final_stage
from graft_hpo.sweep._finish import finish_sweep
from graft_hpo.sweep._finish import mark_interrupted
from graft_hpo.sweep._finish import reopen_parent
from graft_hpo.sweep._folder import SweepFolder
from graft_hpo.sweep._plan import SweepPlan
from graft_hpo.sweep._plan import read_plan
from graft_hpo.sweep._plan import write_plan
from graft_hpo.sweep._prepare import check_sweep
from graft_hpo.sweep._prepare import prepare_sweep
from graft_hpo.sweep._ray import init_ray
from graft_hpo.sweep._ray import start_ray
from graft_hpo.sweep._result import SweepResult

__all__ = [
    "ParamSpec",
    "SearchSpace",
    "SweepResult",
    "check_sweep",
    "init_ray",
    "load_space",
    "resume_sweep",
    "run_sweep",
    "validate_space",
]

logger = logging.getLogger(__name__)


def run_sweep(
    config: Any,
    *,
    trials: int | None = None,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    address: str | None = None,
    tracking_uri: str | None = None,
    sweep_dir: str | os.PathLike[str] | None = None,
    printer: Printer | None = None,
    progress: bool = False,
    verbose: bool = False,
) -> SweepResult:
    """Run an HPO sweep of a pipeline and return its Pareto front.

    Everything that can be wrong (config, search space, objectives, tracking store, resources)
    is checked before the first trial starts; bad input raises :class:`ConfigError` and writes
    nothing to the tracking store.

    Args:
        config: a :class:`PipelineConfig`, or a pipeline path or bundled name.
        trials: number of trials; defaults to ``search.trials``.
        overrides: dotted overrides applied to the pipeline first.
        address: a Ray cluster (``ray://host:10001`` or ``auto``); None starts Ray locally,
            bound to 127.0.0.1.
        tracking_uri: MLflow store; defaults to ``tracking.uri``, ``$MLFLOW_TRACKING_URI``,
            then ``./mlruns``.
        sweep_dir: where Ray's state, the Optuna study and ``sweep.json`` go; defaults to
            ``./mlruns/sweeps/<sweep_id>``.
        printer: receives one line per finished trial; None logs them at INFO instead.
        progress: also show a live progress bar on stderr (for a terminal): trials done,
            running and failed, the best value so far, energy and CO2 so far, time left.
        verbose: let Ray print to the console too (its experiment box and notices).

    Returns:
        A JSON-serialisable :class:`SweepResult`.
    """
    _check_printer(printer)
    plan = prepare_sweep(
        config,
        trials=trials,
        overrides=overrides,
        address=address,
        tracking_uri=tracking_uri,
        sweep_dir=sweep_dir,
        sweep_id=_new_sweep_id(config),
        verbose=verbose,
    )
    return _run(plan, resume=False, printer=printer, progress=progress, verbose=verbose)


def resume_sweep(
    sweep_dir_or_pipeline: str | os.PathLike[str],
    *,
    address: str | None = None,
    printer: Printer | None = None,
    progress: bool = False,
    verbose: bool = False,
) -> SweepResult:
    """Continue an interrupted sweep: the same Ray experiment and the same Optuna study.

    Trials that had finished are kept (never trained twice); trials that were running when
    the sweep stopped go on from their last checkpoint (``train.checkpoint_every``) in their
    own MLflow runs, or from their first epoch if they had none; the sweep then goes on until
    it has its number of trials.

    Args:
        sweep_dir_or_pipeline: a sweep folder (holding ``sweep.json``), or a pipeline name or
            path, meaning its most recent sweep under ``./mlruns/sweeps``.
        address: the Ray cluster to go on in (a restarted head, another one); None: the one
            the sweep ran in. Once joined, it is the sweep's (written to ``sweep.json``).
        printer, progress, verbose: as for :func:`run_sweep`.
    """
    _check_printer(printer)
    plan = read_plan(SweepFolder.find(sweep_dir_or_pipeline))
    moved = address is not None and address != plan.address
    start_ray(plan.config, address if moved else plan.address, quiet=not verbose)
    if moved:  # joined: the sweep goes on there from now on
        plan = replace(plan, address=address)
        write_plan(plan)
    reopen_parent(plan)
    mark_interrupted(plan, reason="the sweep was interrupted; this trial is run again")
    return _run(plan, resume=True, printer=printer, progress=progress, verbose=verbose)


def _run(
    plan: SweepPlan, *, resume: bool, printer: Printer | None, progress: bool, verbose: bool
) -> SweepResult:
    say = printer or (lambda line: logger.info("%s", line))
    say(
        f"sweep {plan.sweep_id}: {plan.trials} trials of pipeline {plan.config.name!r}, "
        f"MLflow experiment {plan.experiment!r}, state in {plan.sweep_dir}"
    )
    try:
        stop_reason = execute(plan, resume=resume, say=say, progress=progress, verbose=verbose)
    except KeyboardInterrupt:  # Tune saved its state: the sweep can be resumed
        mark_interrupted(plan, reason="interrupted (Ctrl-C)", parent_status="KILLED")
        say(f"interrupted; continue with: graft-hpo resume {plan.sweep_dir}")
        raise KeyboardInterrupt(f"sweep {plan.sweep_id} interrupted") from None
    except Exception as err:  # the driver's own failure: no run is left RUNNING
        error = f"{type(err).__name__}: {err}"
        try:
            reason = f"the sweep's driver failed ({error})"
            status = "FAILED" if plan.owns_parent_run else None  # mlflow run ends its own
            mark_interrupted(plan, reason=reason, parent_status=status, error=error)
        except Exception as store_err:  # the store itself failing: the first error is the news
            logger.warning("could not mark the sweep's runs as ended: %s", store_err)
        raise
    if stop_reason is not None:
        say(f"stopped before {plan.trials} trials: {stop_reason}")
    return final_stage(plan, finish_sweep(plan, stop_reason=stop_reason), say)


def _check_printer(printer: Any) -> None:
    if printer is not None and not callable(printer):  # else a parent run stayed RUNNING
        raise ConfigError(
            f"printer must be a callable taking one line (e.g. print) or None; got {printer!r}"
        )


def _new_sweep_id(config: Any) -> str:
    name = getattr(config, "name", None) or Path(str(config)).stem
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{name}-{stamp}-{uuid.uuid4().hex[:4]}"
