"""torchvision classification models by name: the registry's fallback.

Any name in ``torchvision.models.list_models(module=torchvision.models)`` (``resnet50``,
``mobilenet_v2``, ``efficientnet_b0``, ...) is built with random weights: graft-hpo never loads
pretrained weights (no network at run time, and a sweep compares training recipes).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from graft_hpo._registry import Fallback
from graft_hpo.exceptions import ConfigError

__all__ = ["TORCHVISION"]

_NO_WEIGHTS = ("weights", "weights_backbone")


@functools.lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    models = importlib.import_module("torchvision.models")
    return tuple(models.list_models(module=models))


def _build(name: str, input_shape: tuple[int, ...], num_classes: int, **options: Any) -> nn.Module:
    if len(input_shape) != 3 or input_shape[0] != 3:
        raise ConfigError(
            f"model.name {name!r} is a torchvision model and needs (3, H, W) images; the data "
            f"gives input_shape {tuple(input_shape)}; use cnn, resnet18 or mlp instead"
        )
    for key in _NO_WEIGHTS:
        if key in options:
            raise ConfigError(
                f"model.options.{key} must be absent (graft-hpo never loads pretrained "
                f"weights); got {options[key]!r}"
            )
    models = importlib.import_module("torchvision.models")
    try:
        model: nn.Module = models.get_model(name, weights=None, num_classes=num_classes, **options)
    except TypeError as exc:  # an option the model's constructor does not take
        raise ConfigError(
            f"model.options {sorted(options)} are not all accepted by torchvision model "
            f"{name!r}: {exc}"
        ) from exc
    return model


def _resolve(name: str) -> Callable[..., nn.Module] | None:
    if name not in _names():
        return None
    return functools.partial(_build, name)


TORCHVISION = Fallback(description="a torchvision model", names=_names, resolve=_resolve)
