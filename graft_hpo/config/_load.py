"""Load a pipeline from YAML, apply dotted overrides, convert to and from plain data."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graft_hpo._registry import is_plugin
from graft_hpo.config._resolve import resolve_bundled
from graft_hpo.config._schema import PipelineConfig
from graft_hpo.config._validate import build_config
from graft_hpo.config._validate import plain
from graft_hpo.config._validate import show
from graft_hpo.config._yaml import load_yaml
from graft_hpo.config._yaml import parse_yaml_value
from graft_hpo.exceptions import ConfigError

__all__ = [
    "Overrides",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "flatten_config",
    "load_pipeline",
    "parse_overrides",
]

logger = logging.getLogger(__name__)

# ["train.epochs=3", ...] as typed on a command line, or {"train.epochs": 3} already typed
Overrides = Sequence[str] | Mapping[str, Any] | None

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _check_key(key: object, item: str, errors: list[str]) -> str | None:
    if not isinstance(key, str) or any(part.strip() == "" for part in key.split(".")):
        errors.append(f"override key must be a dotted path like 'train.epochs'; got {item}")
        return None
    return ".".join(part.strip() for part in key.split("."))


def _parse(overrides: Overrides, errors: list[str]) -> list[tuple[str, Any]]:
    if overrides is None:
        return []
    if isinstance(overrides, str):  # one "key=value" passed where a list was meant
        overrides = [overrides]
    parsed: list[tuple[str, Any]] = []
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            checked = _check_key(key, show(key), errors)
            if checked is not None:
                parsed.append((checked, value))
        return parsed
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            errors.append(f"override must be 'dotted.key=value'; got {show(item)}")
            continue
        key, text = item.split("=", 1)
        checked = _check_key(key, show(item), errors)
        if checked is None:
            continue
        try:
            parsed.append((checked, parse_yaml_value(text, what=f"override {item!r}")))
        except ConfigError as exc:
            errors.extend(exc.errors)
    return parsed


def parse_overrides(overrides: Overrides) -> dict[str, Any]:
    """Parse overrides into ``{dotted_key: typed_value}``.

    Args:
        overrides: ``["train.epochs=3", "selection.rank=null"]`` (values read as YAML:
            ``3`` -> int, ``null`` -> None, ``1e-3`` -> float, ``[1, 2]`` -> list), or a mapping
            ``{"train.epochs": 3}`` whose values are taken as they are, or None.

    Returns:
        One entry per override, in order (a later one for the same key wins).

    Raises:
        ConfigError: an item without ``=``, an empty key part, or a value that is not YAML.
    """
    errors: list[str] = []
    parsed = _parse(overrides, errors)
    if errors:
        raise ConfigError(errors)
    return dict(parsed)


def _set(data: dict[str, Any], key: str, value: Any, errors: list[str]) -> None:
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:  # a null or absent section: "search.scheduler.type=asha" creates it
            child = node[part] = {}
        if not isinstance(child, dict):
            parent = ".".join(parts[: depth + 1])
            errors.append(f"override {key!r} needs {parent} to be a section; it is {show(child)}")
            return
        node = child
    node[parts[-1]] = value


def _apply(data: Any, items: list[tuple[str, Any]], errors: list[str]) -> Any:
    if not items or not isinstance(data, Mapping):
        return data
    data = plain(data)
    for key, value in items:
        _set(data, key, plain(value), errors)
    return data


def _with_source(errors: list[str], source: str | None) -> list[str]:
    # the file is named once, on the first message, so a list of problems stays readable
    return [f"{source}: {errors[0]}", *errors[1:]] if source else errors


def _retrain_override_errors(config: PipelineConfig) -> list[str]:
    """Check ``retrain.overrides`` now: a typo found after the whole sweep costs the sweep."""
    retrain = config.retrain
    if retrain is None or not retrain.overrides:
        return []
    # the retrained config is a trial's config (this pipeline's schema) plus these overrides
    base = config_to_dict(dataclasses.replace(config, retrain=None))
    try:
        _finish(base, retrain.overrides, None)
    except ConfigError as exc:
        return [f"retrain.overrides: {message}" for message in exc.errors]
    return []


def _finish(data: Any, overrides: Overrides, source: str | None) -> PipelineConfig:
    errors: list[str] = []
    data = _apply(data, _parse(overrides, errors), errors)
    config, problems = build_config(data)
    problems.extend(errors)
    if config is not None and not problems:
        problems.extend(_retrain_override_errors(config))
    if config is None or problems:
        raise ConfigError(_with_source(problems, source))
    return config


def config_from_dict(
    data: Mapping[str, Any], *, overrides: Overrides = None, source: str | None = None
) -> PipelineConfig:
    """Validate plain nested data (a parsed pipeline YAML) and build the config.

    Missing keys and sections take the defaults of :mod:`graft_hpo.config._schema`.

    Args:
        data: ``{"train": {"epochs": 3}, ...}``.
        overrides: dotted changes applied to ``data`` first (see :func:`parse_overrides`).
        source: where the data came from (a file name), named in error messages.

    Raises:
        ConfigError: every problem found (unknown keys, wrong types, violated constraints).
    """
    return _finish(data, overrides, source)


def config_to_dict(config: PipelineConfig) -> dict[str, Any]:
    """The config as plain nested data (a deep copy); ``config_from_dict`` reverses it."""
    return dataclasses.asdict(config)


def apply_overrides(config: PipelineConfig, overrides: Overrides) -> PipelineConfig:
    """A new, validated config with dotted overrides applied (see :func:`parse_overrides`).

    Args:
        config: the config to start from; it is not changed.
        overrides: ``["selection.fraction=0.1"]`` or ``{"selection.fraction": 0.1}``.

    A relative ``data.root`` or ``plugin_path`` entry is made absolute from the working
    directory, and a plug-in named without a ``plugin_path`` gets it, as :func:`load_pipeline`
    does (Ray starts each trial in a working directory of its own).

    Raises:
        ConfigError: a malformed override, or a result that does not validate.
    """
    config = _finish(config_to_dict(config), overrides, None)
    return _anchor_data_root(_anchor_plugin_path(config, Path.cwd()))


def flatten_config(config: PipelineConfig) -> dict[str, Any]:
    """Every leaf of the config under its dotted path, for MLflow params.

    Free-form ``options`` are flattened too (``model.options.width``); the objectives become
    one compact string ``"val_acc:max,co2_kg:min"``, ``plugin_path`` one ``os.pathsep``-joined
    string; a null ``search.scheduler`` stays None.

    Returns:
        ``{"name": "mnist", "data.name": "mnist5k", ..., "resources.gpu": 0.0}``.
    """
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if prefix == "search.objectives":
            flat[prefix] = ",".join(f"{item['metric']}:{item['mode']}" for item in value)
        elif prefix == "plugin_path":  # folders, joined as in PYTHONPATH
            flat[prefix] = os.pathsep.join(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            flat[prefix] = value

    walk("", config_to_dict(config))
    return flat


def _anchor_space(data: dict[str, Any], folder: Path) -> None:
    """Read a relative ``search.space`` path from the pipeline file's folder, not the cwd."""
    search = data.get("search")
    if not isinstance(search, Mapping):
        return
    space = search.get("space")
    if not isinstance(space, str) or not (
        "/" in space or os.sep in space or space.endswith((".yaml", ".yml"))
    ):
        return  # absent, invalid (reported later) or a bundled name
    path = Path(space).expanduser()
    if not path.is_absolute() and (folder / path).is_file():
        data["search"] = {**dict(search), "space": str((folder / path).resolve())}


def load_pipeline(
    path_or_name: str | os.PathLike[str], overrides: Overrides = None
) -> PipelineConfig:
    """Load, override and validate a pipeline.

    Args:
        path_or_name: a YAML file, or the name of a bundled pipeline (``"mnist"`` ->
            ``pipelines/mnist.yaml``; see :func:`bundled_pipelines`).
        overrides: dotted overrides applied before validation, e.g. ``["train.epochs=3",
            "model.options.width=64", "selection.rank=null"]`` or ``{"selection.fraction": 0.1}``.

    Returns:
        The validated, frozen config. Without a ``name`` key the file's stem names it; a
        relative ``search.space`` path is taken relative to the file, a relative ``data.root``
        relative to the working directory (both made absolute).

    Raises:
        ConfigError: a missing file, an unknown bundled name, invalid YAML, or every problem
            found in the content and the overrides; messages name the file once.
    """
    path = resolve_bundled("pipelines", path_or_name)
    source = str(path)
    raw = load_yaml(path)
    data: Any = raw
    if isinstance(raw, Mapping):
        data = dict(raw)
        if "name" not in data and _NAME.fullmatch(path.stem):
            data["name"] = path.stem
        _anchor_space(data, path.parent)
    logger.debug("loading pipeline %s with overrides %r", source, overrides)
    return _anchor_data_root(_anchor_plugin_path(_finish(data, overrides, source), path.parent))


def _anchor_data_root(config: PipelineConfig) -> PipelineConfig:
    """An absolute ``data.root`` (a relative one from the working directory, as it is read
    in this process): Ray starts each trial in a working directory of its own."""
    root = config.data.root
    if root is None or Path(root).expanduser().is_absolute():
        return config
    data = dataclasses.replace(config.data, root=str(Path(root).expanduser().absolute()))
    return dataclasses.replace(config, data=data)


def _anchor_plugin_path(config: PipelineConfig, folder: Path) -> PipelineConfig:
    """Absolute ``plugin_path`` entries (relative ones from the pipeline file's folder); a
    pipeline naming a plug-in without one gets the file's folder, then the working directory,
    so that its plug-ins import beside it from any working directory and in Ray's workers."""
    paths = [str((folder / Path(p).expanduser()).resolve()) for p in config.plugin_path]
    if not paths and (is_plugin(config.data.name) or is_plugin(config.model.name)):
        paths = list(dict.fromkeys([str(folder.resolve()), str(Path.cwd().resolve())]))
    return (
        config if paths == config.plugin_path else dataclasses.replace(config, plugin_path=paths)
    )
