"""``synthetic``: a seeded Gaussian mixture of images, one component per class."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from graft_hpo._registry import check_float
from graft_hpo._registry import check_int
from graft_hpo.data._base import DATASETS
from graft_hpo.data._base import Pool
from graft_hpo.data._base import Source
from graft_hpo.exceptions import ConfigError


def parse_shape(value: object) -> tuple[int, ...]:
    """``data.options.shape`` checked: ``[C, H, W]`` or ``[D]`` of positive integers."""
    message = f"data.options.shape must be [C, H, W] or [D] of positive integers; got {value!r}"
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) not in (1, 3):
        raise ConfigError(message)
    try:
        return tuple(check_int(v, "data.options.shape", minimum=1) for v in value)
    except ConfigError:
        raise ConfigError(message) from None


def class_means(count: int, dims: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """``(count, *dims)`` unit-scale patterns: smooth images (a standard-normal 4x4 pattern per
    channel, upsampled bilinearly) for ``[C, H, W]``, standard normal vectors for ``[D]``."""
    if len(dims) == 3:
        c, h, w = dims
        coarse = torch.randn(count, c, 4, 4, generator=g)
        means = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        # Bilinear upsampling shrinks the variance; restore unit scale per pattern.
        return means / means.flatten(1).std(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
    return torch.randn(count, *dims, generator=g)


@DATASETS.register("synthetic")
def synthetic(
    source: Source,
    *,
    n: int = 2048,
    shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    noise: float = 1.0,
    seed: int = 0,
) -> Pool:
    """Images ``x = mean[y] + noise * N(0, 1)``, with smooth, class-dependent means.

    Each class mean is a standard-normal 4x4 pattern (per channel) upsampled bilinearly to
    ``H x W``, so it is learnable by CNNs and MLPs alike; ``noise`` sets how hard. Labels are
    balanced (``i % num_classes``). Meant for GPU and throughput checks. There is no official
    test split: ``data.test_fraction`` of the pool becomes the test set.

    Args:
        source: unused (the data is generated).
        n: number of samples, >= 2.
        shape: ``[C, H, W]`` or ``[D]``.
        num_classes: >= 2.
        noise: standard deviation of the per-pixel noise, >= 0 (the means have unit scale).
        seed: seeds the generated pool, so every trial sees the same data (the split still
            follows the trial's seed).

    Returns:
        A pool with ``x`` ``(n, *shape)`` float32.
    """
    n = check_int(n, "data.options.n", minimum=2)
    dims = parse_shape(shape)
    num_classes = check_int(num_classes, "data.options.num_classes", minimum=2)
    noise = check_float(noise, "data.options.noise", low=0.0)
    seed = check_int(seed, "data.options.seed")
    g = torch.Generator().manual_seed(seed)
    means = class_means(num_classes, dims, g)
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=g)]
    x = means[y] + noise * torch.randn(n, *dims, generator=g)
    return Pool(x=x.float(), y=y, num_classes=num_classes)
