"""``resnet18``: ResNet-18 with the CIFAR stem (He et al. 2016, as used for 32x32 images).

The stem is one 3x3 convolution with stride 1 and no max-pooling, so 32x32 inputs keep their
resolution into the first stage (torchvision's ImageNet stem would shrink them to 8x8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from graft_hpo._registry import check_int
from graft_hpo.models._base import MODELS
from graft_hpo.models._base import image_shape


class BasicBlock(nn.Module):
    """Two 3x3 Conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c_in, h, w)`` -> ``(b, c_out, h / stride, w / stride)``."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 (2-2-2-2 basic blocks) with a CIFAR stem and a linear classifier.

    Args:
        in_channels: input channels.
        num_classes: logits per sample.
        width: channels of the first stage; stages have ``width * (1, 2, 4, 8)``.
    """

    def __init__(self, in_channels: int, num_classes: int, *, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        c_in = width
        for stage, stride in enumerate((1, 2, 2, 2)):
            c_out = width * 2**stage
            blocks += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, c, h, w)`` -> ``(b, num_classes)`` logits."""
        return self.classifier(self.pool(self.layers(self.stem(x))))


@MODELS.register("resnet18")
def resnet18(input_shape: tuple[int, ...], num_classes: int, *, width: int = 64) -> nn.Module:
    """Build a :class:`ResNet18` for ``(C, H, W)`` inputs of any channel count."""
    c, _, _ = image_shape(input_shape, "resnet18")
    return ResNet18(c, num_classes, width=check_int(width, "model.options.width", minimum=1))
