"""Before any trial: check everything, then create the sweep's parent run and folder."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import Any

from graft_hpo._names import METRICS
from graft_hpo._names import TAG_OBJECTIVES
from graft_hpo._names import TAG_ROLE
from graft_hpo._names import TAG_SWEEP_ID
from graft_hpo.config import PipelineConfig
from graft_hpo.config import apply_overrides
from graft_hpo.config import flatten_config
from graft_hpo.config import load_pipeline
from graft_hpo.config import parse_overrides
from graft_hpo.exceptions import ConfigError
from graft_hpo.space import SearchSpace
from graft_hpo.space import load_space
from graft_hpo.space import validate_space
from graft_hpo.sweep._folder import SweepFolder
from graft_hpo.sweep._options import check_fixed_model_options
from graft_hpo.sweep._options import check_option_params
from graft_hpo.sweep._plan import SweepPlan
from graft_hpo.sweep._plan import write_plan
from graft_hpo.sweep._ranking import COST_PREFIX
from graft_hpo.sweep._ranking import compute_ranking
from graft_hpo.sweep._ranking import needs_ranking
from graft_hpo.sweep._ray import start_ray
from graft_hpo.sweep._search import EMISSIONS_METRICS
from graft_hpo.sweep._search import open_storage
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import check_store
from graft_hpo.tracking import ensure_experiment
from graft_hpo.tracking import resolve_tracking_uri
from graft_hpo.trial import check_pipeline
from graft_hpo.trial import check_plugins

__all__ = ["check_sweep", "prepare_sweep"]

logger = logging.getLogger(__name__)


def _check_search(config: PipelineConfig) -> list[str]:
    errors = []
    for i, objective in enumerate(config.search.objectives):
        if objective.metric not in METRICS:
            errors.append(
                f"search.objectives[{i}].metric must be one of {', '.join(METRICS)}; "
                f"got {objective.metric!r}"
            )
        elif objective.metric in EMISSIONS_METRICS and not config.emissions.enabled:
            errors.append(
                f"search.objectives[{i}].metric {objective.metric!r} needs emissions.enabled=true"
                "; got emissions.enabled=false"
            )
    # every metric is reported after every epoch, so far (EnergySoFar): any can be ranked on
    sched = config.search.scheduler
    if sched is not None and sched.type == "asha" and sched.metric not in METRICS:
        errors.append(
            f"search.scheduler.metric must be one of {', '.join(METRICS)}; got {sched.metric!r}"
        )
    elif (
        sched is not None
        and sched.type == "asha"
        and sched.metric in EMISSIONS_METRICS
        and not config.emissions.enabled
    ):
        errors.append(
            f"search.scheduler.metric {sched.metric!r} needs emissions.enabled=true; got "
            "emissions.enabled=false"
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


def check_sweep(
    config: PipelineConfig, *, overrides: Sequence[str] | Mapping[str, Any] | None = None
) -> SearchSpace:
    """Everything about a sweep that needs no Ray and no store: pipeline, objectives, space.

    ``overrides``, the ``--set`` changes ``config`` holds, only to warn of those the space
    searches (a trial's draw replaces them).

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
    validate_space(space, config, checks=_check_search)  # a searched value may break them
    check_option_params(space, config)
    check_fixed_model_options(space, config)
    _check_threshold_searched(space, config)
    _warn_searched_overrides(space, overrides)
    if config.search.scheduler is not None and "train.epochs" in space.names:
        # the rungs, ASHA's max_t and projected reports are the pipeline's epochs, not a trial's
        raise ConfigError(
            f"{space.source or 'the search space'}: params.train.epochs must not be searched "
            "with a search.scheduler (its rungs and the stopped trials' projections follow the "
            f"pipeline's train.epochs, {config.train.epochs}); got search.scheduler.type "
            f"{config.search.scheduler.type!r}"
        )
    for name in _models_tried(space, config):  # last: it runs the user's code
        check_plugins(replace(config, model=replace(config.model, name=name)))
    return space


def _models_tried(space: SearchSpace, config: PipelineConfig) -> list[str]:
    """The ``model.name`` values trials may build: the space's choices (and the pipeline's,
    when a condition may leave it), or the pipeline's alone."""
    for spec in space.params:
        if spec.name == "model.name" and spec.choices:
            names = [str(c) for c in spec.choices]
            return list(dict.fromkeys([*names, *([config.model.name] if spec.when else [])]))
    return [config.model.name]


# GRAFT's knobs a trial's prefix of the shared ranking does not read, and why
_RANKED_WITH = "ranked once with the pipeline's value, {}"
_UNUSED_BY_A_PREFIX = {
    "features": _RANKED_WITH,
    "rank": _RANKED_WITH,
    "batch_size": _RANKED_WITH,
    "stratify": _RANKED_WITH,
    "noise_filter": _RANKED_WITH,
    "dedup": _RANKED_WITH,
    "proxy_epochs": _RANKED_WITH,
    "select_every": "re-taken, the prefix is the same",
    "weighted": "a prefix has no weights",
    "maxvol_tol": "a ranking orders without swaps",
}


def _check_threshold_searched(space: SearchSpace, config: PipelineConfig) -> None:
    """Refuse searching GRAFT's alignment threshold over one shared ranking; warn that the
    GRAFT knobs a prefix of that ranking does not read (:data:`_UNUSED_BY_A_PREFIX`) have no
    effect there when searched.

    The proxy that ranks has trained on all the data, so its selection batches are aligned
    with few samples: on MNIST-5k a threshold of 0.8-0.95 kept 4-39% of the budget. Searched,
    the knob measures emptied subsets, not budgets (search ``selection.fraction`` instead).
    GRAFT's other knobs act when the sweep ranks, before any trial, with the pipeline's values,
    or not at all on a prefix: a GRAFT trial's drawn value is unused (a warning, not an error:
    the bundled digits space searches some, and ``--set selection.scope=sweep`` on it must run).
    """
    if config.selection.scope != "sweep" or "selection.scope" in space.names:
        return
    where = space.source or "the search space"
    for key in (k for k in _UNUSED_BY_A_PREFIX if f"selection.{k}" in space.names):
        logger.warning(
            "%s: selection.%s is searched, but with selection.scope 'sweep' a GRAFT trial "
            "trains on a prefix of the sweep's one ranking (%s): the drawn values change "
            "nothing a GRAFT trial trains on",
            where,
            key,
            _UNUSED_BY_A_PREFIX[key].format(repr(getattr(config.selection, key))),
        )
    if "selection.alignment_threshold" in space.names:
        raise ConfigError(
            f"{where}: selection.alignment_threshold cannot be searched with selection.scope "
            "'sweep' (under one shared ranking a threshold below ~0.98 empties the subset "
            "whatever its budget); search selection.fraction, or set selection.scope=trial; "
            "got it in the space"
        )


def prepare_sweep(
    config: PipelineConfig | str | os.PathLike[str],
    *,
    trials: int | None,
    overrides: Sequence[str] | Mapping[str, Any] | None,
    address: str | None,
    tracking_uri: str | None,
    sweep_dir: str | os.PathLike[str] | None,
    sweep_id: str,
    verbose: bool = False,
) -> SweepPlan:
    """Validate a sweep and create its parent run and folder; raise ConfigError before that."""
    config = _resolve(config, overrides, trials)
    space = check_sweep(config, overrides=overrides)
    if sweep_dir:
        _check_creatable(Path(sweep_dir).resolve())
        _check_unused(SweepFolder(Path(sweep_dir).resolve()))
    _check_store(resolve_tracking_uri(tracking_uri or config.tracking.uri))
    storage = config.search.checkpoint_storage  # a local folder here; a URI is Ray's to open
    if storage is not None and Path(storage).is_absolute():
        _check_creatable(Path(storage), key="search.checkpoint_storage")
    # an unreachable --address, impossible resources: refused before anything reaches the store
    start_ray(config, address, quiet=not verbose)
    if config.search.storage is not None:
        open_storage(config.search.storage)  # the study's RDB must be reachable too
    # the shared selection runs before anything is written: if it fails, nothing is left
    shared = compute_ranking(config) if needs_ranking(config, space) else None
    folder = SweepFolder(Path(sweep_dir).resolve()) if sweep_dir else SweepFolder.default(sweep_id)
    parent = _parent_run(config, space, sweep_id, folder.path, tracking_uri)
    uri = parent.run.tracking_uri
    # trials log where the parent is, whatever the pipeline file said
    tracking = replace(config.tracking, uri=uri, experiment=parent.experiment)
    config = replace(config, tracking=tracking)
    parent.run.log_params(flatten_config(config))
    cost: dict[str, float] = {}
    if shared is not None:
        ranking, cost = shared
        folder.write_ranking(ranking, cost)
        parent.run.log_metrics({f"{COST_PREFIX}{k}": v for k, v in cost.items()})
    plan = SweepPlan(
        config=config,
        space=space,
        sweep_id=sweep_id,
        sweep_dir=str(folder.path),
        tracking_uri=uri,
        experiment=parent.experiment,
        parent_run_id=parent.run.run_id,
        trials=config.search.trials,
        address=address,
        owns_parent_run=not parent.adopted,
        ranking_cost=cost,
    )
    write_plan(plan)
    return plan


def _warn_searched_overrides(
    space: SearchSpace, overrides: Sequence[str] | Mapping[str, Any] | None
) -> None:
    """Warn that a ``--set`` of a key the space searches is replaced by each trial's draw."""
    keys = parse_overrides(overrides or ()).keys()
    for key in (k for k in keys if k in space.names):
        logger.warning(
            "--set %s: %s searches %s, so a trial that samples it uses its drawn value instead "
            "(fix it with a search space without it)",
            key,
            space.source or "the search space",
            key,
        )


def _check_creatable(path: Path, key: str = "--sweep-dir") -> None:
    """Refuse a folder of the sweep's (``key`` names it) that cannot be made, before anything
    is written (a store, Ray)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{key} {str(path)!r} must be a folder; it is a file")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{key} {str(path)!r} cannot be created: {str(ancestor)!r} is not a folder "
            "this user can write to"
        )


def _resolve(
    config: PipelineConfig | str | os.PathLike[str],
    overrides: Sequence[str] | Mapping[str, Any] | None,
    trials: int | None,
) -> PipelineConfig:
    """The pipeline with its overrides and trial count applied."""
    if not isinstance(config, PipelineConfig):
        config = load_pipeline(config, overrides)
    elif overrides:
        config = apply_overrides(config, overrides)
    if trials is not None:
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ConfigError(f"--trials must be an integer >= 1; got {trials!r}")
        config = replace(config, search=replace(config.search, trials=trials))
    return config


def _check_unused(folder: SweepFolder) -> None:
    """Refuse a folder holding another sweep's state: a new sweep there would rewrite its plan
    (it could no longer be resumed) and count its sessions' wall time as its own."""
    if folder.holds_plan():
        raise ConfigError(
            f"--sweep-dir {str(folder.path)!r} holds another sweep ({SweepFolder.PLAN}): "
            f"continue it with `graft-hpo resume {folder.path}`, or give a new folder"
        )


def _check_store(uri: str) -> None:
    """The store opens, before Ray starts and the shared ranking runs; inside `mlflow run`,
    the run it opened for this step is not another sweep's parent already."""
    check_store(uri)
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        earlier = RunLogger(uri, run_id).tags().get(TAG_SWEEP_ID)
        if earlier is not None:
            raise ConfigError(
                f"MLFLOW_RUN_ID {run_id} is already the parent run of sweep {earlier}: one "
                "sweep per run of `mlflow run`; start another run for this one"
            )


@dataclass(frozen=True)
class _Parent:
    """The sweep's parent run and the experiment it is in."""

    run: RunLogger
    experiment: str
    adopted: bool  # opened by `mlflow run`, which ends it itself


def _parent_run(
    config: PipelineConfig,
    space: SearchSpace,
    sweep_id: str,
    folder: Path,
    tracking_uri: str | None,
) -> _Parent:
    """Create the sweep's parent run, or adopt the one ``mlflow run`` opened for this process
    (``$MLFLOW_RUN_ID``), and tag it as the sweep's."""
    uri = resolve_tracking_uri(tracking_uri or config.tracking.uri)
    tags = {
        TAG_ROLE: "sweep",
        TAG_SWEEP_ID: sweep_id,
        TAG_OBJECTIVES: json.dumps([[o.metric, o.mode] for o in config.search.objectives]),
        "sweep_dir": str(folder),
        "search_space": space.source or str(config.search.space),
    }
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:  # inside `mlflow run`: the project's run is the sweep's parent
        adopted = RunLogger(uri, run_id)
        adopted.set_tags(tags)
        return _Parent(adopted, adopted.experiment_name(), adopted=True)
    experiment = config.tracking.experiment or config.name
    ensure_experiment(uri, experiment)  # in the driver, once: trials never race migrations
    started = RunLogger.start(uri, experiment, run_name=sweep_id, tags=tags)
    return _Parent(started, experiment, adopted=False)
