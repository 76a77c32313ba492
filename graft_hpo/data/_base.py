"""The data set registry and what a registered builder receives and returns.

A built-in data set is a function ``build(source: Source, **options) -> Pool`` registered with
``@DATASETS.register("name")``. It returns raw (un-normalised) tensors; :func:`load_data`
splits, normalises and wraps them, the same way for every data set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from graft_hpo._registry import Registry

__all__ = ["DATASETS", "Pool", "SampleTruth", "Source"]

DATASETS = Registry("data")


@dataclass(frozen=True)
class Source:
    """Where and how a builder may read its files.

    Attributes:
        root: absolute folder holding torchvision-format data sets.
        download: whether missing files may be downloaded.
        seed: the split seed (builders that generate data use their own ``seed`` option).
    """

    root: Path
    download: bool
    seed: int


@dataclass(frozen=True)
class Pool:
    """Raw samples from a builder, before splitting and normalisation.

    Attributes:
        x: ``(n, *input_shape)`` inputs, float32 or uint8 (kept small until after the split).
        y: ``(n,)`` int64 labels in ``0..num_classes-1``.
        num_classes: number of classes.
        test_x: ``(m, *input_shape)`` official test inputs, or None (then ``test_fraction``
            of the pool becomes the test split).
        test_y: ``(m,)`` official test labels, or None.
        augment_padding: > 0 gives ``train`` random-crop (this padding) + flip augmentation.
        scale: the loader divides inputs by it (255 for uint8 images) before normalising.
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    test_x: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    augment_padding: int = 0
    scale: float = 1.0


@dataclass(frozen=True)
class SampleTruth:
    """What each sample of a data set really is: for benchmarks that report what a subset
    holds. Training and selection never see it (they get labels, nothing else).

    Attributes:
        true_y: ``(n,)`` int64 clean labels; a sample is mislabelled where its label differs.
        duplicate: ``(n,)`` bool, True for a near-copy of another sample; None when unknown.
        mode: ``(n,)`` int64 sub-population of each sample; None when unknown.
    """

    true_y: torch.Tensor
    duplicate: torch.Tensor | None = None
    mode: torch.Tensor | None = None

    def take(self, index: torch.Tensor) -> SampleTruth:
        """The truth of the samples ``index`` (``(m,)`` int64), in that order."""
        return SampleTruth(
            self.true_y[index],
            None if self.duplicate is None else self.duplicate[index],
            None if self.mode is None else self.mode[index],
        )
