"""The model registry and the contract every model meets: it ends in an ``nn.Linear``.

A model family is a factory ``factory(input_shape, num_classes, **options) -> nn.Module``
registered with ``@MODELS.register("name")``. Names that are not registered fall back to
torchvision's classification models (resolved lazily, so torchvision is imported only then).
"""

from __future__ import annotations

from graft_hpo._registry import Registry
from graft_hpo._torch import classifier_layer
from graft_hpo._torch import find_classifier
from graft_hpo.exceptions import ConfigError
from graft_hpo.models._torchvision import TORCHVISION

__all__ = ["MODELS", "classifier_layer", "find_classifier", "image_shape"]

MODELS = Registry("model", fallback=TORCHVISION)


def image_shape(input_shape: tuple[int, ...], model: str) -> tuple[int, int, int]:
    """``input_shape`` as ``(C, H, W)``, or ``ConfigError`` for models that need images."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"model.name {model!r} needs image inputs of shape (C, H, W); the data gives "
            f"input_shape {tuple(input_shape)}; use mlp or a plug-in for vector data"
        )
    c, h, w = input_shape
    return int(c), int(h), int(w)
