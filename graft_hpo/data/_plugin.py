"""User data sets: ``data.name: "package.module:function"``.

The function is called as ``function(**data.options)`` and returns ``(train, val)`` or
``(train, val, test)``: map-style torch Datasets yielding ``(x, y)`` with ``x`` a float tensor
and ``y`` an integer label. graft-hpo neither normalises nor augments them. Plug-ins run the
user's code (see :mod:`graft_hpo._registry`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from graft_hpo._registry import check_options
from graft_hpo._registry import load_plugin
from graft_hpo._torch import declared_targets
from graft_hpo.data._datasets import DataBundle
from graft_hpo.exceptions import ConfigError

if TYPE_CHECKING:
    from graft_hpo.config import DataConfig

__all__ = ["load_plugin_data"]

logger = logging.getLogger(__name__)

_EXPECTED = "(train, val) or (train, val, test) torch Datasets"


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        inner = ", ".join(type(v).__name__ for v in value)
        return f"a {type(value).__name__} of {len(value)} ({inner})"
    return f"a {type(value).__name__}"


def _as_label(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    is_int_tensor = isinstance(value, torch.Tensor) and value.numel() == 1
    if is_int_tensor and not (value.dtype.is_floating_point or value.dtype.is_complex):
        return int(value.item())
    return None


def _max_label(dataset: Dataset[Any]) -> int:
    """The largest label: from ``targets`` or ``tensors`` if present, else by reading items."""
    targets = declared_targets(dataset)
    if targets is not None and len(targets) > 0:
        return int(targets.max())
    labels = [_as_label(dataset[i][1]) for i in range(len(dataset))]  # type: ignore[arg-type]
    return max((label for label in labels if label is not None), default=-1)


def load_plugin_data(cfg: DataConfig) -> DataBundle:
    """Call the user's data function and check what it returns.

    ``num_classes`` is ``len(train.classes)`` when the training set has a ``classes``
    attribute, else the largest label (over all splits) + 1; ``input_shape`` is the shape of
    the first training input. Without a test split, ``test`` is ``val``.

    Raises:
        ConfigError: unknown options, or a return value of the wrong shape.
    """
    spec = cfg.name
    function = load_plugin(spec, section="data")
    check_options(function, cfg.options, section="data", owner=f"data plug-in {spec!r}")
    result = function(**cfg.options)
    where = f"data.name {spec!r} must return {_EXPECTED}"
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise ConfigError(f"{where}; got {_describe(result)}")
    for part, label in zip(result, ("train", "val", "test"), strict=False):
        if not (hasattr(part, "__getitem__") and hasattr(part, "__len__")):
            raise ConfigError(f"{where}; got {label} = {_describe(part)}")
        if len(part) == 0:
            raise ConfigError(f"{where}; got an empty {label} set")
    train, val = result[0], result[1]
    test = result[2] if len(result) == 3 else val
    first = train[0]
    if not (isinstance(first, (tuple, list)) and len(first) == 2):
        raise ConfigError(f"{where} yielding (x, y) pairs; train[0] is {_describe(first)}")
    x, y = first
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise ConfigError(f"{where} yielding float tensors x; train[0][0] is {_describe(x)}")
    if _as_label(y) is None:
        raise ConfigError(f"{where} yielding integer labels y; train[0][1] is {y!r}")
    classes = getattr(train, "classes", None)
    if classes is not None:
        num_classes = len(classes)
    else:
        num_classes = max(_max_label(d) for d in {id(d): d for d in result}.values()) + 1
    if num_classes < 2:
        raise ConfigError(f"{where} with at least 2 classes; got {num_classes}")
    logger.info(
        "plug-in %s: %d train, %d val, %d test, %d classes, input %s%s",
        spec,
        len(train),
        len(val),
        len(test),
        num_classes,
        tuple(x.shape),
        "" if len(result) == 3 else " (no test split: test = val)",
    )
    return DataBundle(
        train=train,
        val=val,
        test=test,
        train_eval=train,
        num_classes=num_classes,
        input_shape=tuple(x.shape),
        name=spec,
    )
