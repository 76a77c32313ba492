"""``mlp``: a multilayer perceptron on flattened inputs."""

from __future__ import annotations

import math

import torch
from torch import nn

from graft_hpo._registry import check_float
from graft_hpo._registry import check_int
from graft_hpo.models._base import MODELS


class MLP(nn.Module):
    """``depth`` hidden layers of ``Linear -> ReLU -> Dropout``, then a linear classifier.

    Args:
        in_features: flattened input size.
        num_classes: logits per sample.
        width: hidden units per layer.
        depth: hidden layers (0 gives multinomial logistic regression).
        dropout: dropout probability after each hidden layer.
    """

    def __init__(
        self, in_features: int, num_classes: int, *, width: int, depth: int, dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        size = in_features
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            size = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, *input_shape)`` -> ``(b, num_classes)`` logits."""
        return self.classifier(self.features(x))


@MODELS.register("mlp")
def mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    width: int = 256,
    depth: int = 2,
    dropout: float = 0.0,
) -> nn.Module:
    """Build an :class:`MLP` for inputs of any shape (they are flattened)."""
    return MLP(
        math.prod(input_shape),
        num_classes,
        width=check_int(width, "model.options.width", minimum=1),
        depth=check_int(depth, "model.options.depth", minimum=0),
        dropout=check_float(dropout, "model.options.dropout", low=0.0, high=1.0, high_open=True),
    )
