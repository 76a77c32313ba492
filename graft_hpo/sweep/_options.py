"""Searched ``model.options.*`` and ``data.options.*`` keys, checked against their builders.

A key under a free-form ``options`` section passes the config's own checks, so a typo in the
search space (``model.options.widht``) would fail inside every trial. Each searched key must be
a keyword of the model factory (or data builder) that will receive it: the pipeline's, or at
least one of the searched ``model.name`` choices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graft_hpo.config import DataConfig
from graft_hpo.config import ModelConfig
from graft_hpo.data import check_data
from graft_hpo.exceptions import ConfigError
from graft_hpo.models import check_model

if TYPE_CHECKING:
    from graft_hpo.config import PipelineConfig
    from graft_hpo.space import SearchSpace

__all__ = ["check_fixed_model_options", "check_option_params"]


def _key_error(section: str, name: str, key: str) -> str | None:
    """What ``<section>.name = name`` says of the option ``key``, or None if it takes it."""
    try:
        if section == "model":
            check_model(ModelConfig(name=name, options={key: None}), values=False)
        else:
            check_data(DataConfig(name=name, options={key: None}))
    except ConfigError as err:
        path = f"{section}.options.{key}"
        found = [m for m in err.errors if path in m and "is required by" not in m]
        return found[0] if found else None
    return None


def _names(space: SearchSpace, config: PipelineConfig, section: str) -> list[str]:
    for spec in space.params:
        if spec.name == f"{section}.name" and spec.choices:
            return [str(choice) for choice in spec.choices]
    return [getattr(config, section).name]


def check_option_params(space: SearchSpace, config: PipelineConfig) -> None:
    """Refuse a searched options key no candidate builder accepts.

    Raises:
        ConfigError: one message per such key, naming the parameter and the close match.
    """
    errors = []
    for section in ("model", "data"):
        prefix = f"{section}.options."
        keys = [
            spec.name.removeprefix(prefix) for spec in space.params if spec.name.startswith(prefix)
        ]
        names = _names(space, config, section) if keys else []
        for key in keys:
            found = [_key_error(section, name, key) for name in names]
            if found and all(message is not None for message in found):
                errors.append(f"params.{prefix}{key}: {found[0]}")
    if errors:
        raise space.error(errors)


def check_fixed_model_options(space: SearchSpace, config: PipelineConfig) -> None:
    """Refuse the pipeline's own ``model.options`` (those the space does not search) that a
    ``model.name`` the space draws does not take: every trial drawing that model would fail.

    Raises:
        ConfigError: one message per such model, naming it and the option.
    """
    searched = {
        spec.name.removeprefix("model.options.")
        for spec in space.params
        if spec.name.startswith("model.options.")
    }
    fixed = {k: v for k, v in config.model.options.items() if k not in searched}
    errors = []
    for name in _names(space, config, "model") if fixed else []:
        try:
            check_model(ModelConfig(name=name, options=fixed))
        except ConfigError as err:
            errors += [
                f"params.model.name draws {name!r}, which the pipeline's model.options do not "
                f"fit: {message}"
                for message in err.errors
            ]
    if errors:
        raise space.error(errors)
