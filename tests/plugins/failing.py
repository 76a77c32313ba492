"""Plug-in models that fail on command (``"tests.plugins.failing:<name>"``)."""

from __future__ import annotations

import math

import torch
from torch import nn


class _NaNAfter(nn.Module):
    """A linear classifier whose logits turn NaN after ``after`` forward passes in train mode."""

    def __init__(self, in_features: int, num_classes: int, after: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(in_features, num_classes)
        self.after = after
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(x.flatten(1))
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                return logits * float("nan")
        return logits


def nan_after(input_shape: tuple[int, ...], num_classes: int, after: int = 3) -> nn.Module:
    """Train normally for ``after`` steps, then produce NaN logits."""
    return _NaNAfter(math.prod(input_shape), num_classes, after)


class _Raises(nn.Module):
    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("plug-in model failed on purpose")
        return self.classifier(x.flatten(1))


def raises(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Raise RuntimeError on every training forward pass."""
    return _Raises(math.prod(input_shape), num_classes)
