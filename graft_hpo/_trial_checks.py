"""What a trial checks before anything is written: registry names, selector parameters, the
final stage, and plug-in data and models against their contracts (``validate`` and ``sweep``
call these too)."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from typing import TypeVar

import torch

from graft_hpo._names import EMISSIONS_METRICS
from graft_hpo._names import TRIAL_METRICS
from graft_hpo._registry import add_plugin_path
from graft_hpo._registry import is_plugin
from graft_hpo._torch import gather_batch
from graft_hpo.config import PipelineConfig
from graft_hpo.data import DataBundle
from graft_hpo.data import check_data
from graft_hpo.data import load_data
from graft_hpo.emissions import check_country
from graft_hpo.exceptions import ConfigError
from graft_hpo.models import build_model
from graft_hpo.models import check_model
from graft_hpo.models import check_model_outputs
from graft_hpo.pareto import check_policy
from graft_hpo.selection import Selector
from graft_hpo.selection import selector_for

__all__ = ["check_pipeline", "check_plugins"]

_T = TypeVar("_T")

logger = logging.getLogger(__name__)


def check_pipeline(config: PipelineConfig) -> Selector:
    """Check what the config loader cannot: registry names and selector parameters.

    Cheap (no data is loaded). Raises :class:`ConfigError` listing every problem.

    Returns:
        The selector :func:`~graft_hpo.selection.selector_for` decides for ``config`` (no
        ranking yet), built by the check: a trial trains with it rather than build another.
    """
    add_plugin_path(config.plugin_path)
    errors: list[str] = []
    _collect(errors, lambda: check_data(config.data))
    selector = _collect(errors, lambda: _selector(config))
    _collect(errors, lambda: check_model(config.model))
    _collect(errors, lambda: _check_final_stage(config))
    if config.emissions.enabled:  # else every trial fails to measure co2_kg, or logs none
        _collect(errors, lambda: check_country(config.emissions.country_iso_code))
    if errors or selector is None:
        raise ConfigError(errors)
    return selector


def check_plugins(
    config: PipelineConfig, parts: tuple[DataBundle, torch.nn.Module] | None = None
) -> None:
    """Check plug-in data and models against their contracts (see the README): runs the
    data function and factory (unless ``parts`` holds what they built) and the model on 8
    training inputs. ``validate`` and ``sweep`` call it before anything is written.

    Raises:
        ConfigError: the first broken rule, naming the plug-in, the rule and what was found.
    """
    if not (is_plugin(config.data.name) or is_plugin(config.model.name)):
        return
    loaded = parts is None
    if parts is None:
        bundle = load_data(config.data, seed=config.train.seed)
        shape, classes = bundle.input_shape, bundle.num_classes
        parts = bundle, build_model(config.model, input_shape=shape, num_classes=classes)
    bundle, model = parts
    x, _ = gather_batch(bundle.train_eval, torch.arange(min(8, len(bundle.train_eval))))  # type: ignore[arg-type]
    keys = {"model_key": f"model.name {config.model.name!r}"}
    keys["data_key"] = f"data.name {config.data.name!r}"
    check_model_outputs(model, x, num_classes=bundle.num_classes, **keys)
    if loaded:  # the trial logs its own bundle once built
        logger.info(bundle.describe())


def _selector(config: PipelineConfig) -> Selector:
    """:func:`selector_for` the config; GRAFT's selection batches too small are blamed on the
    key the user set (``train.batch_size``, which a null ``selection.batch_size`` takes)."""
    selection, train = config.selection, config.train
    if selection.strategy == "graft" and selection.batch_size is None and train.batch_size < 2:
        raise ConfigError(
            "train.batch_size must be >= 2 for GRAFT's selection batches (or set "
            f"selection.batch_size); got {train.batch_size}"
        )
    return selector_for(selection, train)


def _collect(errors: list[str], check: Callable[[], _T]) -> _T | None:
    """``check()``, or None with its :class:`ConfigError`'s messages added to ``errors``."""
    try:
        return check()
    except ConfigError as err:
        errors += err.errors
        return None


def _check_final_stage(config: PipelineConfig) -> None:
    """The select and retrain stages: a policy's metric must be one the trials log, and the
    sweep's objectives must leave it one to optimise (else a whole sweep ran before its select
    stage refused it)."""
    if config.select is not None:
        key = "select.policy"
        metric = check_policy(config.select.policy, config.search.objectives, key=key).metric
        if metric is not None and metric not in TRIAL_METRICS:
            close = difflib.get_close_matches(metric, TRIAL_METRICS, n=1)
            raise ConfigError(
                f"select.policy's metric must be one a trial logs ({', '.join(TRIAL_METRICS)})"
                f"{f' (did you mean {close[0]!r}?)' if close else ''}; got {metric!r}"
            )
        if metric in EMISSIONS_METRICS and not config.emissions.enabled:
            raise ConfigError(
                f"select.policy's metric {metric!r} needs emissions.enabled=true; got "
                "emissions.enabled=false"
            )
    if config.retrain is not None and config.select is None:
        raise ConfigError(
            "retrain needs a select stage to choose the run; got select: null "
            "(add e.g. select: {policy: knee})"
        )
