"""The data containers: in-memory tensors, CIFAR-style augmentation, the bundle, ``gather``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from graft_hpo._registry import is_plugin
from graft_hpo._torch import gather_batch as gather

__all__ = ["CropFlipDataset", "DataBundle", "InMemoryDataset", "crop_flip", "gather"]


class InMemoryDataset(Dataset[tuple[torch.Tensor, int]]):
    """Samples held as two tensors, indexable one at a time or (via :func:`gather`) in bulk.

    Args:
        x: ``(n, *input_shape)`` float32 inputs.
        y: ``(n,)`` int64 labels.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must share dim 0")
        self.x = x
        self.y = y.long()

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``, as in :class:`torch.utils.data.TensorDataset`."""
        return self.x, self.y

    @property
    def targets(self) -> torch.Tensor:
        """``(n,)`` int64 labels (torchvision's attribute name)."""
        return self.y

    @property
    def device(self) -> torch.device:
        """Where the samples are held."""
        return self.x.device

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.x[index], int(self.y[index])

    def __repr__(self) -> str:
        return f"InMemoryDataset(n={len(self)}, input_shape={tuple(self.x.shape[1:])})"


def crop_flip(
    x: torch.Tensor,
    *,
    padding: int,
    fill: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random crop after padding, then random horizontal flip, per image, vectorised.

    Equivalent to torchvision's ``RandomCrop(size, padding)`` + ``RandomHorizontalFlip()``.

    Args:
        x: ``(b, c, h, w)`` images.
        padding: pixels of padding on every side before cropping back to ``(h, w)``.
        fill: ``(c,)`` padding value per channel (the normalised value of black).
        generator: source of randomness; None uses torch's default generator of ``x``'s
            device (which a DataLoader seeds per worker from its own generator), so batches
            held on a GPU are augmented there without a host round trip.

    Returns:
        ``(b, c, h, w)`` augmented images (a new tensor).
    """
    b, c, h, w = x.shape
    padded = fill.to(x).view(1, c, 1, 1).expand(b, c, h + 2 * padding, w + 2 * padding).clone()
    padded[:, :, padding : padding + h, padding : padding + w] = x
    dev = generator.device if generator is not None else x.device
    top = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev).to(x.device)
    left = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev).to(x.device)
    flip = (torch.rand(b, generator=generator, device=dev) < 0.5).to(x.device)
    rows = (top[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[batch, chan, rows, cols]
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


class CropFlipDataset(Dataset[tuple[torch.Tensor, int]]):
    """An :class:`InMemoryDataset` seen through random crop + horizontal flip (training only).

    Args:
        base: the un-augmented data set (also the bundle's ``train_eval``).
        padding: crop padding in pixels.
        fill: ``(c,)`` per-channel padding value.
    """

    def __init__(self, base: InMemoryDataset, *, padding: int, fill: torch.Tensor) -> None:
        self.base = base
        self.padding = padding
        self.fill = fill

    @property
    def targets(self) -> torch.Tensor:
        """``(n,)`` int64 labels."""
        return self.base.y

    @property
    def device(self) -> torch.device:
        """Where the samples are held (and augmented)."""
        return self.base.device

    def augment(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a ``(b, c, h, w)`` batch."""
        return crop_flip(x, padding=self.padding, fill=self.fill, generator=generator)

    def gather_batch(
        self, index: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented ``(x, y)`` batch of ``index`` (see :func:`graft_hpo.data.gather`)."""
        x, y = gather(self.base, index)
        return self.augment(x, generator), y

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.base[index]
        return self.augment(x.unsqueeze(0))[0], y


@dataclass(frozen=True)
class DataBundle:
    """The splits of one data set, ready for training.

    Attributes:
        train: training samples (augmented where the data set augments), addressed by
            dataset index ``0..len(train)-1``.
        val: validation samples.
        test: test samples (the official test split where there is one).
        train_eval: ``train`` without augmentation: same samples, same order. For data sets
            without augmentation it is the same object as ``train``.
        num_classes: number of classes; labels are ``0..num_classes-1``.
        input_shape: one sample's shape, ``(C, H, W)`` or ``(D,)``.
        name: the data set's name (``data.name``).
        mean: per-channel mean used for normalisation (computed on ``train``), or None.
        std: per-channel standard deviation used for normalisation, or None.
    """

    train: Dataset[Any]
    val: Dataset[Any]
    test: Dataset[Any]
    train_eval: Dataset[Any]
    num_classes: int
    input_shape: tuple[int, ...]
    name: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def describe(self) -> str:
        """One line for the log, written once the data and the model built on it are checked
        (an error found later is then the only line a user sees)."""
        plugin = is_plugin(self.name)
        note = " (no test split: test = val)" if plugin and self.test is self.val else ""
        return (
            f"{'plug-in' if plugin else 'data'} {self.name}: {len(self.train)} train, "  # type: ignore[arg-type]
            f"{len(self.val)} val, {len(self.test)} test, {self.num_classes} classes, "  # type: ignore[arg-type]
            f"input {self.input_shape}{note}"
        )
