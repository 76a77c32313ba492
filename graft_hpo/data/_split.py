"""Seeded train/val/test splits and train-only normalisation statistics."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

__all__ = ["channel_stats", "flip_labels", "split_indices", "subsample"]


def split_indices(
    labels: torch.Tensor,
    sizes: Sequence[int],
    *,
    generator: torch.Generator,
    stratify: bool = True,
) -> list[torch.Tensor]:
    """Split ``range(n)`` into parts of the given sizes plus a last part holding the rest.

    Stratified splits keep each class's share equal across parts, within two samples per class
    (a middle part's two boundaries round separately): every sample gets its quantile within
    its own class (in a seeded random order), and parts are consecutive runs of the samples
    sorted by that quantile. Part sizes are exact.

    Args:
        labels: ``(n,)`` int64 labels.
        sizes: sizes of the leading parts; their sum must be at most ``n``.
        generator: seeds every random choice.
        stratify: keep class proportions (else a plain seeded permutation).

    Returns:
        ``len(sizes) + 1`` int64 index tensors, disjoint, covering ``range(n)``, each in a
        seeded random order.

    Example:
        >>> y = torch.arange(100) % 4
        >>> parts = split_indices(y, [20, 20], generator=torch.Generator().manual_seed(0))
        >>> [len(p) for p in parts], torch.bincount(y[parts[0]]).tolist()
        ([20, 20, 60], [5, 5, 5, 5])
    """
    n = int(labels.shape[0])
    if sum(sizes) > n or min(sizes, default=0) < 0:
        raise ValueError(f"part sizes {list(sizes)} do not fit {n} samples")
    perm = torch.randperm(n, generator=generator)
    if stratify and n > 0:
        shuffled = labels[perm].long()
        order = torch.argsort(shuffled, stable=True)
        grouped, grouped_labels = perm[order], shuffled[order]
        counts = torch.bincount(grouped_labels)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(n) - starts[grouped_labels]
        quantile = (rank.double() + 0.5) / counts[grouped_labels].double()
        # Random tie-breaking below the smallest gap between distinct quantiles (> 1/(2 n^2)),
        # so no class is favoured when several share a quantile.
        jitter = torch.rand(n, generator=generator, dtype=torch.float64) / (4.0 * n * n)
        perm = grouped[torch.argsort(quantile + jitter)]
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + int(size))
    bounds.append(n)
    parts = [perm[a:b] for a, b in itertools.pairwise(bounds)]
    # Leave no trace of the class interleaving in the order samples are stored in.
    return [p[torch.randperm(len(p), generator=generator)] for p in parts]


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of a batch of samples.

    Args:
        x: ``(n, c, *spatial)`` images (one statistic per channel) or ``(n, d)`` vectors (one
            per feature).

    Returns:
        ``mean`` and ``std``, each ``(c,)`` (or ``(d,)``) float32; ``std`` is at least 1e-6 so
        constant channels normalise to 0 rather than NaN.
    """
    if x.dim() == 2:
        x64 = x.double()
        return x64.mean(0).float(), x64.std(0, unbiased=False).clamp_min(1e-6).float()
    # float64, one channel at a time: a float32 sum over 50,000 CIFAR images loses digits, and
    # a float64 copy of the whole set would need 1.2 GB.
    means, stds = [], []
    for c in range(x.shape[1]):
        channel = x[:, c].double()
        means.append(channel.mean())
        stds.append(channel.std(unbiased=False))
    mean = torch.stack(means).float()
    std = torch.stack(stds).clamp_min(1e-6).float()
    return mean, std


def subsample(
    x: torch.Tensor, y: torch.Tensor, limit: int | None, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified, seeded subset of ``limit`` samples (all of them when ``limit`` is None).

    The default seed is fixed so that every trial of a sweep trains on the same subset.

    Args:
        x: ``(n, ...)`` inputs.
        y: ``(n,)`` int64 labels.
        limit: how many samples to keep.
        seed: seeds the choice.
    """
    if limit is None or limit >= len(y):
        return x, y
    keep = split_indices(y, [limit], generator=torch.Generator().manual_seed(seed))[0]
    keep = keep.sort().values  # keep the file order: a subset, not a reshuffle
    return x[keep], y[keep]


def flip_labels(
    labels: torch.Tensor, share: float, num_classes: int, *, generator: torch.Generator
) -> torch.Tensor:
    """Symmetric label noise: ``round(share * n)`` samples, drawn uniformly, get a wrong label
    drawn uniformly from the other ``num_classes - 1`` classes.

    The share of wrong labels is exactly ``share`` (up to rounding), as in ``synthetic_hard``
    and the noisy-CIFAR protocols that flip to a different class.

    Args:
        labels: ``(n,)`` int64 labels in ``0..num_classes-1``; not modified.
        share: the share of samples to mislabel, in [0, 1).
        num_classes: >= 2.
        generator: seeds which samples and which wrong labels.

    Returns:
        ``(n,)`` int64 noisy labels (a copy).

    Example:
        >>> y = torch.zeros(10, dtype=torch.long)
        >>> noisy = flip_labels(y, 0.3, 4, generator=torch.Generator().manual_seed(0))
        >>> int((noisy != y).sum()), bool(((noisy >= 0) & (noisy < 4)).all())
        (3, True)
    """
    noisy = labels.clone().long()
    n = int(labels.shape[0])
    wrong = torch.randperm(n, generator=generator)[: round(share * n)]
    shift = torch.randint(1, num_classes, (len(wrong),), generator=generator)
    noisy[wrong] = (noisy[wrong] + shift) % num_classes
    return noisy
