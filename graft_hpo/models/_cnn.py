"""``cnn``: a small, fast convolutional network for 8x8 to 32x32 images."""

from __future__ import annotations

import math

import torch
from torch import nn

from graft_hpo._registry import check_float
from graft_hpo._registry import check_int
from graft_hpo.models._base import MODELS
from graft_hpo.models._base import image_shape


def _block(c_in: int, c_out: int, *, stride: int, pool: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    return [*layers, nn.MaxPool2d(2)] if pool else layers


class SmallCNN(nn.Module):
    """Two Conv-BN-ReLU blocks, adaptive pooling to 4x4, an embedding layer, a classifier.

    The second (wider, costlier) convolution runs at 7-8 px: inputs of 16 px or more enter
    the first convolution with stride 2, and it is followed by a 2x max-pool while its output
    is 14 px or more. So 8x8 digits keep all their detail, and 28x28 MNIST trains an epoch of
    4,000 images in well under a second on two CPU cores. The adaptive pooling makes any
    input size work.

    Args:
        in_channels: input channels.
        side: the smaller of the input's height and width (chooses the down-sampling).
        num_classes: logits per sample.
        width: channels of the first conv (the second has twice as many).
        embed_dim: size of the embedding fed to the classifier (GRAFT's features).
        dropout: dropout probability on the embedding.
    """

    def __init__(
        self,
        in_channels: int,
        side: int,
        num_classes: int,
        *,
        width: int,
        embed_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        stride = 2 if side >= 16 else 1
        pool = math.ceil(side / stride) >= 14
        self.features = nn.Sequential(
            *_block(in_channels, width, stride=stride, pool=pool),
            *_block(width, 2 * width, stride=1, pool=False),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * width * 16, embed_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c, h, w)`` -> ``(b, num_classes)`` logits."""
        return self.classifier(self.features(x))


@MODELS.register("cnn")
def cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    width: int = 32,
    dropout: float = 0.0,
    embed_dim: int = 128,
) -> nn.Module:
    """Build a :class:`SmallCNN` for ``(C, H, W)`` inputs."""
    c, h, w = image_shape(input_shape, "cnn")
    return SmallCNN(
        c,
        min(h, w),
        num_classes,
        width=check_int(width, "model.options.width", minimum=1),
        embed_dim=check_int(embed_dim, "model.options.embed_dim", minimum=1),
        dropout=check_float(dropout, "model.options.dropout", low=0.0, high=1.0, high_open=True),
    )
