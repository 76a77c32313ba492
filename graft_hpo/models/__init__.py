"""Models by name: ``mlp``, ``cnn``, ``resnet18``, any torchvision classifier, or a plug-in.

Every model ends in an ``nn.Linear`` classifier; :func:`classifier_layer` finds it, and GRAFT
reads its input as the sample embedding. A ``"package.module:factory"`` name loads a user
plug-in, called as ``factory(input_shape, num_classes, **options)`` (it runs the user's code).

Example:
    >>> from graft_hpo.config import ModelConfig  # doctest: +SKIP
    >>> model = build_model(ModelConfig("mlp", {"width": 64}), input_shape=(1, 8, 8),
    ...                     num_classes=10)  # doctest: +SKIP
    >>> classifier_layer(model).in_features  # doctest: +SKIP
    64
"""

from __future__ import annotations

from graft_hpo.models._base import classifier_layer
from graft_hpo.models._build import available_models
from graft_hpo.models._build import build_model
from graft_hpo.models._build import check_model
from graft_hpo.models._contract import check_model_outputs
from graft_hpo.models._standardized import Standardized

__all__ = [
    "Standardized",
    "available_models",
    "build_model",
    "check_model",
    "check_model_outputs",
    "classifier_layer",
]
