"""Small torch helpers shared by the data, models, selection and training packages.

Kept at the bottom of the dependency graph so that siblings (``selection``, ``data``,
``models``) can share them without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset
from torch.utils.data import Subset

__all__ = ["classifier_layer", "gather_batch", "iter_batches"]


def _tensor_view(dataset: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Return ``(x, y)`` tensors behind an in-memory data set (or a Subset of one), else None."""
    base, index = dataset, None
    if isinstance(base, Subset):
        index = torch.as_tensor(base.indices, dtype=torch.long)
        base = base.dataset
    tensors = getattr(base, "tensors", None)
    if not (isinstance(tensors, tuple) and len(tensors) == 2):
        return None
    x, y = tensors
    return (x, y) if index is None else (x[index], y[index])


def gather_batch(dataset: Dataset[Any], index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fetch the samples ``dataset[index]`` as one ``(x, y)`` batch.

    In-memory data sets (anything with a ``tensors == (x, y)`` attribute, or a ``Subset`` of one)
    are indexed directly, which is orders of magnitude faster than item-by-item collation.

    Args:
        dataset: a map-style data set yielding ``(x, y)``.
        index: ``(m,)`` int64 dataset indices.

    Returns:
        ``x`` of shape ``(m, ...)`` and ``y`` of shape ``(m,)`` int64.
    """
    view = _tensor_view(dataset)
    if view is not None:
        x, y = view
        return x[index], y[index].long()
    items = [dataset[int(i)] for i in index]
    xs = torch.stack([torch.as_tensor(x) for x, _ in items])
    ys = torch.as_tensor([int(y) for _, y in items], dtype=torch.long)
    return xs, ys


class _Indexed(Dataset[Any]):
    def __init__(self, dataset: Dataset[Any]) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, int, int]:
        x, y = self.dataset[i]
        return x, int(y), i


def iter_batches(
    dataset: Dataset[Any],
    order: torch.Tensor,
    batch_size: int,
    *,
    num_workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y, index)`` batches of ``dataset`` in the given order of dataset indices.

    Args:
        dataset: a map-style data set yielding ``(x, y)``.
        order: ``(m,)`` int64 dataset indices, visited in this order.
        batch_size: samples per batch (the last batch may be smaller).
        num_workers: DataLoader workers for data sets that are not in memory.
    """
    if _tensor_view(dataset) is not None:
        for chunk in order.split(batch_size):
            x, y = gather_batch(dataset, chunk)
            yield x, y, chunk
        return
    batch_sampler = [chunk.tolist() for chunk in order.split(batch_size)]
    loader = DataLoader(_Indexed(dataset), batch_sampler=batch_sampler, num_workers=num_workers)
    for x, y, index in loader:
        yield x, y.long(), index.long()


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The model's final ``nn.Linear``: the classifier whose input is the sample embedding.

    It is the last ``nn.Linear`` in ``model.modules()`` order, which is registration order; every
    model graft-hpo builds, and every plug-in model it accepts, ends in one.

    Raises:
        ValueError: the model has no ``nn.Linear``.
    """
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise ValueError(
            f"{type(model).__name__} has no nn.Linear layer; GRAFT needs a final linear classifier"
        )
    return last
