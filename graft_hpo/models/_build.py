"""``build_model``: a registered model, a torchvision model, or a user plug-in, checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import torch
from torch import nn

from graft_hpo._registry import call_plugin
from graft_hpo._registry import check_int
from graft_hpo._registry import check_options
from graft_hpo._registry import is_plugin
from graft_hpo.exceptions import ConfigError

# Imported for their registrations.
from graft_hpo.models import _cnn  # noqa: F401
from graft_hpo.models import _mlp  # noqa: F401
from graft_hpo.models import _resnet  # noqa: F401
from graft_hpo.models._base import MODELS
from graft_hpo.models._base import find_classifier
from graft_hpo.models._torchvision import TORCHVISION

if TYPE_CHECKING:
    from collections.abc import Sequence

    from graft_hpo.config import ModelConfig

__all__ = ["available_models", "build_model", "check_model"]

_NOMINAL_INPUT, _NOMINAL_CLASSES = (3, 32, 32), 10  # what check_model builds registered models for
# how graft-hpo calls a model plug-in (the contract, quoted in messages)
_CALLED_AS = "factory(input_shape: tuple[int, ...], num_classes: int, **model.options)"


def available_models(*, include_torchvision: bool = False) -> list[str]:
    """The registered model names, sorted; optionally followed by torchvision's names.

    Args:
        include_torchvision: also list every torchvision classification model (imports
            torchvision).
    """
    names = MODELS.names()
    if include_torchvision:
        names += [n for n in TORCHVISION.names() if n not in names]
    return names


def _owner(name: str) -> str:
    if is_plugin(name):
        return f"model plug-in {name!r}"
    if name in MODELS:
        return f"model {name.lower()!r}"
    return f"torchvision model {name.lower()!r}"


def check_model(cfg: ModelConfig, *, values: bool = True) -> Callable[..., Any]:
    """Resolve ``cfg.name`` and check ``cfg.options`` against it, without data or memory.

    With ``values``, a registered model (``cnn``, ``mlp``, ``resnet18``) is also built on the
    meta device for a nominal ``3 x 32 x 32`` input, which each of them takes: an option's value
    out of range (``width: 0``) is found here, before a sweep starts, not in its trials.
    torchvision models and plug-ins are built with the data only
    (:func:`~graft_hpo.trial.check_plugins`, a trial). Without it, only the names are checked.

    Returns:
        The model's factory.

    Raises:
        ConfigError: an unknown name (with the valid ones and a close match), a plug-in that
            cannot be imported, an option the factory does not take, or a registered model's
            option value it refuses.
    """
    factory = _factory(cfg)
    if values and cfg.name in MODELS:
        with torch.device("meta"):
            factory(_NOMINAL_INPUT, _NOMINAL_CLASSES, **cfg.options)
    return factory


def _factory(cfg: ModelConfig) -> Callable[..., Any]:
    """``cfg.name``'s factory, ``cfg.options``' names checked against it."""
    factory = MODELS.get(cfg.name)
    check_options(
        factory,
        cfg.options,
        section="model",
        owner=_owner(cfg.name),
        positional=("input_shape", "num_classes"),
    )
    return factory


def build_model(cfg: ModelConfig, *, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Build ``cfg.name`` with ``cfg.options`` for the given inputs and classes.

    Registered names and torchvision names are built with random weights; a plug-in
    ``"package.module:factory"`` is called as ``factory(input_shape, num_classes, **options)``
    (it runs the user's code). Every model must end in an ``nn.Linear`` producing
    ``num_classes`` logits (see :func:`classifier_layer`).

    Args:
        cfg: the ``model`` section.
        input_shape: one sample's shape, ``(C, H, W)`` or ``(D,)``.
        num_classes: logits per sample.

    Returns:
        The model, in training mode, on the CPU.

    Raises:
        ConfigError: an unknown name or option, an input shape the model cannot take, or a
            model that does not end in a ``num_classes``-wide ``nn.Linear``.

    Example:
        >>> from graft_hpo.config import ModelConfig  # doctest: +SKIP
        >>> cfg = ModelConfig("cnn", {"width": 16})  # doctest: +SKIP
        >>> model = build_model(cfg, input_shape=(1, 28, 28), num_classes=10)  # doctest: +SKIP
    """
    shape = tuple(check_int(d, "input_shape", minimum=1) for d in input_shape)
    num_classes = check_int(num_classes, "num_classes", minimum=1)
    factory = _factory(cfg)
    if is_plugin(cfg.name):  # the user's code: what it raises names the plug-in and the call
        model = call_plugin(
            factory,
            (shape, num_classes),
            cfg.options,
            section="model",
            spec=cfg.name,
            expected=f"; a model plug-in is called as {_CALLED_AS}",
        )
    else:
        model = factory(shape, num_classes, **cfg.options)
    key = f"model.name {cfg.name!r}"
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{key} must build an nn.Module; got {type(model).__name__}")
    layer = find_classifier(model)
    if layer is None:
        raise ConfigError(
            f"{key} must build a model ending in an nn.Linear classifier; "
            f"{type(model).__name__} has no nn.Linear"
        )
    if layer.out_features != num_classes:
        raise ConfigError(
            f"{key} must build a model whose last nn.Linear has out_features == num_classes "
            f"({num_classes}); got out_features={layer.out_features}"
        )
    return model
