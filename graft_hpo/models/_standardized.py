"""A trained model with its data's input normalisation in front: what a registered model is."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Standardized"]


class Standardized(nn.Module):
    """``model((x - mean) / std)``, per channel (or per feature for vector inputs).

    A built-in data set is normalised by the loader with its training split's statistics, which
    depend on the seed; a model logged without them would take inputs in a scale nobody can
    reproduce. Wrapped, it takes the data set's own scale (pixels in [0, 1]).

    Args:
        model: the trained model.
        mean, std: the loader's per-channel statistics (``DataBundle.mean`` / ``.std``).
        input_shape: one sample's shape, ``(C, H, W)`` or ``(D,)``.

    Example:
        >>> inner = nn.Identity()
        >>> m = Standardized(inner, (0.5,), (0.25,), input_shape=(1, 2, 2))
        >>> m(torch.ones(1, 1, 2, 2)).flatten().tolist()
        [2.0, 2.0, 2.0, 2.0]
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        input_shape: Sequence[int],
    ) -> None:
        super().__init__()
        self.model = model
        shape = (1, -1) + (1,) * (len(input_shape) - 1)  # as the loader broadcasts them
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, *input_shape)`` in the data set's own scale -> the model's logits."""
        return self.model((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised inputs (what the loader gives) back in the data set's own scale."""
        return x * self.std.to(x.dtype) + self.mean.to(x.dtype)
