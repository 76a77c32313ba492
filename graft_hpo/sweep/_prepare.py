"""Before any trial: check everything, then create the sweep's parent run and folder."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from graft_hpo.config import PipelineConfig
from graft_hpo.config import apply_overrides
from graft_hpo.config import flatten_config
from graft_hpo.config import load_pipeline
from graft_hpo.exceptions import ConfigError
from graft_hpo.sweep._ranking import COST_PREFIX
from graft_hpo.sweep._ranking import compute_ranking
from graft_hpo.sweep._ranking import needs_ranking
from graft_hpo.sweep._ranking import write_ranking
from graft_hpo.sweep._space import SearchSpace
from graft_hpo.sweep._space import load_space
from graft_hpo.sweep._space import validate_space
from graft_hpo.sweep._tune import SweepPlan
from graft_hpo.sweep._tune import check_resources
from graft_hpo.sweep._tune import init_ray
from graft_hpo.sweep._tune import open_storage
from graft_hpo.sweep._tune import write_plan
from graft_hpo.tracking import METRICS
from graft_hpo.tracking import TAG_OBJECTIVES
from graft_hpo.tracking import TAG_ROLE
from graft_hpo.tracking import TAG_SWEEP_ID
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import ensure_experiment
from graft_hpo.tracking import resolve_tracking_uri
from graft_hpo.trial import check_pipeline

__all__ = ["check_sweep", "default_sweeps_dir", "find_sweep_dir", "prepare_sweep"]

# reported after every epoch, so a scheduler can compare trials on them
EPOCH_METRICS = ("val_acc", "val_loss", "train_loss", "co2_kg", "energy_kwh", "selection_s")


_EMISSIONS_METRICS = ("co2_kg", "energy_kwh", "cpu_energy_kwh", "gpu_energy_kwh", "ram_energy_kwh")


def default_sweeps_dir() -> Path:
    return Path.cwd() / "mlruns" / "sweeps"


def _check_search(config: PipelineConfig) -> list[str]:
    errors = []
    for i, objective in enumerate(config.search.objectives):
        if objective.metric not in METRICS:
            errors.append(
                f"search.objectives[{i}].metric must be one of {', '.join(METRICS)}; "
                f"got {objective.metric!r}"
            )
        elif objective.metric in _EMISSIONS_METRICS and not config.emissions.enabled:
            errors.append(
                f"search.objectives[{i}].metric {objective.metric!r} needs emissions.enabled=true"
                "; got emissions.enabled=false"
            )
    sched = config.search.scheduler
    if sched is not None and sched.metric not in EPOCH_METRICS:
        errors.append(
            f"search.scheduler.metric must be a per-epoch metric ({', '.join(EPOCH_METRICS)}); "
            f"got {sched.metric!r}"
        )
    if sched is not None and sched.grace_period > config.train.epochs:
        errors.append(
            f"search.scheduler.grace_period must be <= train.epochs ({config.train.epochs}); "
            f"got {sched.grace_period}"
        )
    if config.train.device.startswith("cuda") and config.resources.gpu == 0:
        errors.append(
            f"resources.gpu must be > 0 for train.device={config.train.device!r} (Ray gives a "
            "trial without GPUs none to use); got 0"
        )
    if config.search.space is None:
        errors.append(
            "search.space must name a search space (bundled name or YAML path); got None"
        )
    return errors


def check_sweep(config: PipelineConfig) -> SearchSpace:
    """Everything about a sweep that needs no Ray and no store: pipeline, objectives, space.

    Returns:
        The validated search space.

    Raises:
        ConfigError: listing every problem found.
    """
    check_pipeline(config)
    errors = _check_search(config)
    if errors:
        raise ConfigError(errors)
    assert config.search.space is not None  # checked above
    space = load_space(config.search.space)
    validate_space(space, config)
    return space


def prepare_sweep(
    config: PipelineConfig | str | os.PathLike[str],
    *,
    trials: int | None,
    overrides: Sequence[str] | Mapping[str, Any] | None,
    address: str | None,
    tracking_uri: str | None,
    sweep_dir: str | os.PathLike[str] | None,
    sweep_id: str,
) -> SweepPlan:
    """Validate a sweep and create its parent run and folder; raise ConfigError before that."""
    if not isinstance(config, PipelineConfig):
        config = load_pipeline(config, overrides)
    elif overrides:
        config = apply_overrides(config, overrides)
    if trials is not None:
        if trials < 1:
            raise ConfigError(f"--trials must be >= 1; got {trials}")
        config = replace(config, search=replace(config.search, trials=trials))
    space = check_sweep(config)
    init_ray(address)  # an unreachable --address or impossible resources: refused here,
    check_resources(config)  # before anything is written to the tracking store
    if config.search.storage is not None:
        open_storage(config.search.storage)  # the study's RDB must be reachable too
    # the shared selection runs before anything is written: if it fails, nothing is left
    shared = compute_ranking(config) if needs_ranking(config, space) else None
    uri = resolve_tracking_uri(tracking_uri or config.tracking.uri)
    experiment = config.tracking.experiment or config.name
    folder = Path(sweep_dir).resolve() if sweep_dir else default_sweeps_dir() / sweep_id
    tags = {
        TAG_ROLE: "sweep",
        TAG_SWEEP_ID: sweep_id,
        TAG_OBJECTIVES: json.dumps([[o.metric, o.mode] for o in config.search.objectives]),
        "sweep_dir": str(folder),
        "search_space": space.source or str(config.search.space),
    }
    adopted = _mlflow_project_run(uri)
    if adopted is not None:  # inside `mlflow run`: the project's run is the sweep's parent
        parent, experiment = adopted
        parent.set_tags(tags)
    else:
        ensure_experiment(uri, experiment)  # in the driver, once: trials never race migrations
        parent = RunLogger.start(uri, experiment, run_name=sweep_id, tags=tags)
    # trials log where the parent is, whatever the pipeline file said
    config = replace(config, tracking=replace(config.tracking, uri=uri, experiment=experiment))
    parent.log_params(flatten_config(config))
    if shared is not None:
        ranking, cost = shared
        write_ranking(str(folder), ranking, cost)
        parent.log_metrics({f"{COST_PREFIX}{k}": v for k, v in cost.items()})
    plan = SweepPlan(
        config=config,
        space=space,
        sweep_id=sweep_id,
        sweep_dir=str(folder),
        tracking_uri=uri,
        experiment=experiment,
        parent_run_id=parent.run_id,
        trials=config.search.trials,
        address=address,
        owns_parent_run=adopted is None,
    )
    write_plan(plan)
    return plan


def _mlflow_project_run(uri: str) -> tuple[RunLogger, str] | None:
    """The run ``mlflow run`` opened for this process (``$MLFLOW_RUN_ID``), and its experiment."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return None
    from graft_hpo.tracking._store import open_client

    client = open_client(uri)
    run = client.get_run(run_id)
    return RunLogger(uri, run_id), client.get_experiment(run.info.experiment_id).name


def find_sweep_dir(sweep_dir_or_pipeline: str | os.PathLike[str]) -> str:
    """A sweep folder, or the most recent sweep folder of a pipeline under ./mlruns/sweeps."""
    given = Path(sweep_dir_or_pipeline)
    if (given / "sweep.json").is_file():
        return str(given.resolve())
    if given.is_dir():
        raise ConfigError(f"SWEEP_DIR {str(given)!r} holds no sweep.json: not a sweep folder")
    config = load_pipeline(sweep_dir_or_pipeline)
    candidates = []
    for plan_file in default_sweeps_dir().glob("*/sweep.json"):
        with plan_file.open() as handle:
            data = json.load(handle)
        if data.get("config", {}).get("name") == config.name:
            candidates.append((plan_file.stat().st_mtime, plan_file.parent))
    if not candidates:
        raise ConfigError(
            f"no sweep of pipeline {config.name!r} under {default_sweeps_dir()}; "
            "pass the sweep folder printed when the sweep started"
        )
    return str(max(candidates)[1])
