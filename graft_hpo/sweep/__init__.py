"""HPO sweeps: Ray Tune runs the trials, Optuna searches jointly over model and GRAFT knobs.

The only package that imports ray and optuna (lazily, inside the functions).

Example:
    >>> import graft_hpo
    >>> result = graft_hpo.run_sweep("mnist", trials=12)  # doctest: +SKIP
    >>> best = [p["metrics"]["val_acc"] for p in result.pareto]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from graft_hpo.sweep._budget import clear_stop
from graft_hpo.sweep._budget import read_stop
from graft_hpo.sweep._budget import session_ended
from graft_hpo.sweep._budget import session_started
from graft_hpo.sweep._finish import final_stage
from graft_hpo.sweep._finish import finish_sweep
from graft_hpo.sweep._prepare import check_sweep
from graft_hpo.sweep._prepare import find_sweep_dir
from graft_hpo.sweep._prepare import prepare_sweep
from graft_hpo.sweep._result import SweepResult
from graft_hpo.sweep._space import ParamSpec
from graft_hpo.sweep._space import SearchSpace
from graft_hpo.sweep._space import load_space
from graft_hpo.sweep._space import validate_space
from graft_hpo.sweep._tune import execute
from graft_hpo.sweep._tune import init_ray
from graft_hpo.sweep._tune import read_plan

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

Printer = Callable[[str], None]


def run_sweep(
    config: Any,
    *,
    trials: int | None = None,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    address: str | None = None,
    tracking_uri: str | None = None,
    sweep_dir: str | os.PathLike[str] | None = None,
    printer: Printer | None = None,
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

    Returns:
        A JSON-serialisable :class:`SweepResult`.
    """
    plan = prepare_sweep(
        config,
        trials=trials,
        overrides=overrides,
        address=address,
        tracking_uri=tracking_uri,
        sweep_dir=sweep_dir,
        sweep_id=_new_sweep_id(config),
    )
    return _run(plan, resume=False, printer=printer)


def resume_sweep(
    sweep_dir_or_pipeline: str | os.PathLike[str], *, printer: Printer | None = None
) -> SweepResult:
    """Continue an interrupted sweep: the same Ray experiment and the same Optuna study.

    Trials that had finished are kept (never trained twice); trials that were running when
    the sweep stopped are marked KILLED in MLflow and run again; the sweep then goes on until
    it has its number of trials.

    Args:
        sweep_dir_or_pipeline: a sweep folder (holding ``sweep.json``), or a pipeline name or
            path, meaning its most recent sweep under ``./mlruns/sweeps``.
    """
    plan = read_plan(find_sweep_dir(sweep_dir_or_pipeline))
    return _run(plan, resume=True, printer=printer)


def _run(plan: Any, *, resume: bool, printer: Printer | None) -> SweepResult:
    from graft_hpo.sweep._finish import mark_interrupted
    from graft_hpo.sweep._finish import reopen_parent

    say = printer or (lambda line: logger.info("%s", line))
    if resume:
        reopen_parent(plan)
        mark_interrupted(plan, reason="the sweep was interrupted; this trial is run again")
        clear_stop(plan.sweep_dir)
    say(
        f"sweep {plan.sweep_id}: {plan.trials} trials of pipeline {plan.config.name!r}, "
        f"MLflow experiment {plan.experiment!r}, state in {plan.sweep_dir}"
    )
    session_started(plan.sweep_dir)
    try:
        completed = execute(plan, resume=resume, printer=say)
    except KeyboardInterrupt:
        completed = False
    finally:
        session_ended(plan.sweep_dir)
    if not completed:  # Ctrl-C: Tune saved its state; the sweep can be resumed
        mark_interrupted(plan, reason="interrupted (Ctrl-C)", parent_status="KILLED")
        say(f"interrupted; continue with: graft-hpo resume {plan.sweep_dir}")
        raise KeyboardInterrupt(f"sweep {plan.sweep_id} interrupted")
    stop_reason = read_stop(plan.sweep_dir)
    if stop_reason is not None:
        say(f"stopped before {plan.trials} trials: {stop_reason}")
    return final_stage(plan, finish_sweep(plan, stop_reason=stop_reason), say)


def _new_sweep_id(config: Any) -> str:
    name = getattr(config, "name", None) or Path(str(config)).stem
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{name}-{stamp}-{uuid.uuid4().hex[:4]}"
