"""User data sets: ``data.name: "package.module:function"``.

The function is called as ``function(**data.options)`` and returns ``(train, val)`` or
``(train, val, test)``: map-style torch Datasets (``torch.utils.data.Dataset``, e.g.
``TensorDataset``) yielding ``(x, y)`` with ``x`` a float tensor (float32 for graft-hpo's
models) and ``y`` an integer class label in ``0..C-1``. Every class of ``0..C-1`` must appear
in ``train``, unless the training set names its classes (a ``classes`` attribute, then
``C = len(classes)``). graft-hpo neither normalises nor augments them. Plug-ins run the user's
code (see :mod:`graft_hpo._registry`); what the function returns is checked here, before
anything is written, and each broken rule is one message naming the plug-in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from graft_hpo._registry import call_plugin
from graft_hpo._registry import check_options
from graft_hpo._registry import load_plugin
from graft_hpo._registry import user_line
from graft_hpo._torch import declared_targets
from graft_hpo._torch import labels_of
from graft_hpo.data._datasets import DataBundle
from graft_hpo.exceptions import ConfigError

if TYPE_CHECKING:
    from graft_hpo.config import DataConfig

__all__ = ["load_plugin_data"]


_EXPECTED = "(train, val) or (train, val, test) torch Datasets"
_SPLITS = ("train", "val", "test")
_WRAP = "wrap arrays as TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y))"


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        inner = ", ".join(type(v).__name__ for v in value)
        return f"a {type(value).__name__} of {len(value)} ({inner})"
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"a {type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def _as_label(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    is_int_tensor = isinstance(value, torch.Tensor) and value.dim() == 0  # (1,): multi-target
    if is_int_tensor and not (value.dtype.is_floating_point or value.dtype.is_complex):
        return int(value.item())
    return None


def _is_dataset(part: Any) -> bool:
    """A map-style data set: a torch ``Dataset`` or alike, not bare arrays or a tuple of them."""
    bare = (np.ndarray, torch.Tensor, tuple, list, dict)
    return not isinstance(part, bare) and hasattr(part, "__getitem__") and hasattr(part, "__len__")


def _check_splits(result: Any, where: str) -> tuple[Any, ...]:
    """``(train, val[, test])`` as returned, or ConfigError naming the first broken rule."""
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise ConfigError(f"{where}; got {_describe(result)}")
    for part, split in zip(result, _SPLITS, strict=False):
        if not _is_dataset(part):
            raise ConfigError(f"{where}; got {split} = {_describe(part)} ({_WRAP})")
        if len(part) == 0:
            raise ConfigError(f"{where}; got an empty {split} set")
    return tuple(result)


def _check_first_item(part: Any, split: str, where: str) -> torch.Tensor:
    """A split's first input, checked: an ``(x, y)`` pair, float tensor x, integer y."""
    first = part[0]
    if not (isinstance(first, (tuple, list)) and len(first) == 2):
        raise ConfigError(f"{where} yielding (x, y) pairs; {split}[0] is {_describe(first)}")
    x, y = first
    if not isinstance(x, torch.Tensor):
        raise ConfigError(
            f"{where} yielding x as a float torch.Tensor; {split}[0][0] is {_describe(x)} "
            f"({_WRAP})"
        )
    if not x.dtype.is_floating_point:
        raise ConfigError(
            f"{where} yielding float tensors x; {split}[0][0] has dtype {x.dtype} "
            "(convert with x.float())"
        )
    if _as_label(y) is None:
        raise ConfigError(
            f"{where} yielding integer class labels y in 0..C-1; {split}[0][1] is {y!r} "
            "(convert with torch.as_tensor(y, dtype=torch.long))"
        )
    return x


def _check_inputs(parts: tuple[Any, ...], where: str) -> torch.Tensor:
    """The first training input, after checking each split's first item and that val's and
    test's inputs have train's shape (the model is built for train's)."""
    x = _check_first_item(parts[0], "train", where)
    for part, split in zip(parts[1:], _SPLITS[1:], strict=False):
        other = _check_first_item(part, split, where)
        if other.shape != x.shape:
            raise ConfigError(
                f"{where} yielding inputs of one shape in every split; train[0][0] has shape "
                f"{tuple(x.shape)}, {split}[0][0] {tuple(other.shape)}"
            )
    return x


def _labels(dataset: Dataset[Any], split: str, where: str) -> torch.Tensor:
    """A split's labels, refusing declared float labels (``labels_of`` would truncate them)."""
    declared = declared_targets(dataset)
    if declared is not None and (declared.dtype.is_floating_point or declared.dtype.is_complex):
        raise ConfigError(
            f"{where} yielding integer class labels y in 0..C-1; {split} labels have dtype "
            f"{declared.dtype} (convert with torch.as_tensor(y, dtype=torch.long))"
        )
    return labels_of(dataset)


def _check_labels(parts: tuple[Any, ...], where: str) -> int:
    """The number of classes C, after checking every split's labels lie in ``0..C-1`` and,
    unless the training set names its classes, that ``train`` holds every one of them."""
    labels = {
        split: _labels(part, split, where) for part, split in zip(parts, _SPLITS, strict=False)
    }
    rule = f"{where} yielding integer class labels y in 0..C-1"
    low = min(int(y.min()) for y in labels.values())
    if low < 0:
        raise ConfigError(f"{rule}; got a label {low}")
    classes = getattr(parts[0], "classes", None)
    if classes is not None:
        num_classes = len(classes)
        high = max(int(y.max()) for y in labels.values())
        if high >= num_classes:
            raise ConfigError(
                f"{rule} with C = len(train.classes) = {num_classes}; got a label {high}"
            )
        return num_classes
    num_classes = max(int(y.max()) for y in labels.values()) + 1
    present = set(labels["train"].unique().tolist())
    missing = [c for c in range(num_classes) if c not in present]
    if missing:
        shown = ", ".join(str(c) for c in missing[:5]) + (", ..." if len(missing) > 5 else "")
        hint = " (labels start at 1? subtract 1)" if missing == [0] else ""
        raise ConfigError(
            f"{rule}, every class appearing in train; got labels {sorted(present)[0]}.."
            f"{num_classes - 1}, class {shown} never in train{hint}"
        )
    return num_classes


def load_plugin_data(cfg: DataConfig) -> DataBundle:
    """Call the user's data function and check what it returns against the contract.

    ``num_classes`` is ``len(train.classes)`` when the training set has a ``classes``
    attribute, else the largest label (over all splits) + 1; ``input_shape`` is the shape of
    the first training input. Without a test split, ``test`` is ``val``.

    Raises:
        ConfigError: unknown options, a function that raised, or a return value that breaks
            the contract (the message names the plug-in, the rule and what was found).
    """
    spec = cfg.name
    function = load_plugin(spec, section="data")
    owner = f"data plug-in {spec!r}"
    check_options(function, cfg.options, section="data", owner=owner)
    result = call_plugin(function, (), cfg.options, section="data", spec=spec)
    where = f"data.name {spec!r} must return {_EXPECTED}"
    try:  # len() and items run the user's Dataset code
        parts = _check_splits(result, where)
        x = _check_inputs(parts, where)
        num_classes = _check_labels(parts, where)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"data.name {spec!r}: reading the data sets it returned raised "
            f"{type(exc).__name__}: {exc}{user_line(exc, function)}"
        ) from exc
    if num_classes < 2:
        raise ConfigError(f"{where} with at least 2 classes; got {num_classes}")
    train, val = parts[0], parts[1]
    test = parts[2] if len(parts) == 3 else val
    return DataBundle(
        train=train,
        val=val,
        test=test,
        train_eval=train,
        num_classes=num_classes,
        input_shape=tuple(x.shape),
        name=spec,
    )
