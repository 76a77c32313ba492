"""Pipeline configuration: YAML files -> validated, frozen dataclasses.

A pipeline is a YAML file with the sections ``name``, ``data``, ``model``, ``train``,
``selection``, ``emissions``, ``tracking``, ``search`` and ``resources`` (fields and defaults in
:class:`PipelineConfig`). Files hold only what differs from the defaults. Loading checks every
key, type and constraint and reports all problems in one :class:`~graft_hpo.ConfigError`.

Example:
    >>> from graft_hpo import ConfigError
    >>> from graft_hpo.config import load_pipeline, flatten_config, apply_overrides
    >>> cfg = load_pipeline("mnist", overrides=["train.epochs=3", "model.options.width=64"])
    >>> cfg.train.epochs, cfg.model.options
    (3, {'width': 64})
    >>> cfg = apply_overrides(cfg, {"selection.fraction": 0.1})  # typed values, e.g. from Optuna
    >>> flatten_config(cfg)["selection.fraction"]
    0.1
    >>> try:  # doctest: +ELLIPSIS
    ...     load_pipeline("mnist", overrides=["selection.select_evry=3", "train.lr=-1"])
    ... except ConfigError as exc:
    ...     for message in exc.errors:
    ...         print(message)
    /.../pipelines/mnist.yaml: train.lr must be > 0; got -1
    unknown key 'selection.select_evry' (did you mean 'selection.select_every'?)

``"mnist"`` names a bundled pipeline (``pipelines/mnist.yaml``); any other argument is a path.
:func:`resolve_bundled` does the same lookup for search spaces
(``resolve_bundled("search_spaces", "mnist")``).
"""

from __future__ import annotations

from graft_hpo.config._load import Overrides
from graft_hpo.config._load import apply_overrides
from graft_hpo.config._load import config_from_dict
from graft_hpo.config._load import config_to_dict
from graft_hpo.config._load import flatten_config
from graft_hpo.config._load import load_pipeline
from graft_hpo.config._load import parse_overrides
from graft_hpo.config._resolve import BUNDLED_KINDS
from graft_hpo.config._resolve import bundled_names
from graft_hpo.config._resolve import bundled_pipelines
from graft_hpo.config._resolve import is_bundled_name
from graft_hpo.config._resolve import resolve_bundled
from graft_hpo.config._schema import DataConfig
from graft_hpo.config._schema import EmissionsConfig
from graft_hpo.config._schema import ModelConfig
from graft_hpo.config._schema import ObjectiveConfig
from graft_hpo.config._schema import PipelineConfig
from graft_hpo.config._schema import ResourcesConfig
from graft_hpo.config._schema import RetrainConfig
from graft_hpo.config._schema import SchedulerConfig
from graft_hpo.config._schema import SearchConfig
from graft_hpo.config._schema import SelectConfig
from graft_hpo.config._schema import SelectionConfig
from graft_hpo.config._schema import TrackingConfig
from graft_hpo.config._schema import TrainConfig
from graft_hpo.config._validate import NOISE_FILTERS
from graft_hpo.config._validate import SAMPLERS
from graft_hpo.config._validate import STRATEGIES
from graft_hpo.config._validate import rule_errors
from graft_hpo.config._validate import show
from graft_hpo.config._yaml import load_yaml

__all__ = [
    "BUNDLED_KINDS",
    "NOISE_FILTERS",
    "SAMPLERS",
    "STRATEGIES",
    "DataConfig",
    "EmissionsConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "Overrides",
    "PipelineConfig",
    "ResourcesConfig",
    "RetrainConfig",
    "SchedulerConfig",
    "SearchConfig",
    "SelectConfig",
    "SelectionConfig",
    "TrackingConfig",
    "TrainConfig",
    "apply_overrides",
    "bundled_names",
    "bundled_pipelines",
    "config_from_dict",
    "config_to_dict",
    "flatten_config",
    "is_bundled_name",
    "load_pipeline",
    "load_yaml",
    "parse_overrides",
    "resolve_bundled",
    "rule_errors",
    "show",
]
